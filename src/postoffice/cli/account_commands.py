"""``postoffice user ...`` and ``postoffice domain ...``: accounts and local domains."""

from __future__ import annotations

import asyncio
import sys

import click

from postoffice.cli.context import config_option, open_directory
from postoffice.core.address import Address, parse_address
from postoffice.core.errors import AccountError, AddressError
from postoffice.store import StoreFactory
from postoffice.store.layout import layout_from_config


def _address(value: str) -> Address:
    try:
        return parse_address(value)
    except AddressError as exc:
        raise click.BadParameter(str(exc)) from exc


def _read_password(password: str | None, from_stdin: bool) -> str:
    if password is not None and from_stdin:
        raise click.UsageError("give either --password or --password-stdin, not both")
    if from_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    if password is not None:
        return password
    if not sys.stdin.isatty():
        raise click.UsageError("no password: use --password-stdin or --password")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@click.group("user")
def user_group() -> None:
    """Add, remove and list mail accounts."""


@user_group.command("add")
@config_option
@click.argument("address")
@click.option("--password", metavar="P", help="The password (visible to `ps`: prefer stdin).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option(
    "--quota", "quota_mb", type=click.IntRange(min=0), default=0, help="Quota in MiB (0: none)."
)
@click.pass_context
def user_add(
    ctx: click.Context, address: str, password: str | None, password_stdin: bool, quota_mb: int
) -> None:
    """Create the account ADDRESS and its mailboxes."""
    who = _address(address)
    secret = _read_password(password, password_stdin)
    directory = open_directory(ctx)
    try:
        if not directory.is_local_domain(who.domain):
            raise AccountError(
                f"{who.domain} is not a local domain: `postoffice domain add {who.domain}` first"
            )
        account = directory.accounts.add_user(who, secret, quota_bytes=quota_mb * 1024 * 1024)
        layout = layout_from_config(directory.config, directory.paths)
        asyncio.run(StoreFactory(layout).provision(account.address))
    finally:
        directory.close()
    click.echo(f"added {account.address.key}")


@user_group.command("del")
@config_option
@click.argument("address")
@click.pass_context
def user_del(ctx: click.Context, address: str) -> None:
    """Remove the account ADDRESS (its stored mail is left on disk)."""
    who = _address(address)
    directory = open_directory(ctx)
    try:
        directory.accounts.delete_user(who)
    finally:
        directory.close()
    click.echo(f"deleted {who.key} (mail left in place)")


@user_group.command("passwd")
@config_option
@click.argument("address")
@click.option("--password", metavar="P", help="The new password.")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
@click.pass_context
def user_passwd(
    ctx: click.Context, address: str, password: str | None, password_stdin: bool
) -> None:
    """Set a new password for ADDRESS."""
    who = _address(address)
    secret = _read_password(password, password_stdin)
    directory = open_directory(ctx)
    try:
        directory.accounts.set_password(who, secret)
    finally:
        directory.close()
    click.echo(f"password changed for {who.key}")


@user_group.command("list")
@config_option
@click.argument("domain", required=False)
@click.pass_context
def user_list(ctx: click.Context, domain: str | None) -> None:
    """List accounts (of DOMAIN only, if given)."""
    directory = open_directory(ctx)
    try:
        accounts = directory.accounts.users(domain)
    finally:
        directory.close()
    for account in accounts:
        quota = f"{account.quota_bytes // (1024 * 1024)} MiB" if account.quota_bytes else "-"
        state = "enabled" if account.enabled else "disabled"
        click.echo(f"{account.address.key}\t{state}\tquota {quota}")


@click.group("domain")
def domain_group() -> None:
    """Add, remove and list local domains."""


@domain_group.command("add")
@config_option
@click.argument("domain")
@click.pass_context
def domain_add(ctx: click.Context, domain: str) -> None:
    """Make DOMAIN local: mail for it is delivered here."""
    directory = open_directory(ctx)
    try:
        name = directory.accounts.add_domain(domain)
    finally:
        directory.close()
    click.echo(f"added domain {name}")


@domain_group.command("del")
@config_option
@click.argument("domain")
@click.pass_context
def domain_del(ctx: click.Context, domain: str) -> None:
    """Remove DOMAIN from the domain table (it must have no accounts)."""
    directory = open_directory(ctx)
    try:
        directory.accounts.delete_domain(domain)
    finally:
        directory.close()
    click.echo(f"deleted domain {domain}")


@domain_group.command("list")
@config_option
@click.pass_context
def domain_list(ctx: click.Context) -> None:
    """List local domains and where each comes from."""
    directory = open_directory(ctx)
    try:
        for name, source in directory.local_domains():
            click.echo(f"{name}\t{source}")
    finally:
        directory.close()
