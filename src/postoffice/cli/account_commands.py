"""``postoffice user ...`` and ``postoffice domain ...``: accounts and local domains."""

from __future__ import annotations

import asyncio
import sys

import click

from postoffice.cli.context import config_option, open_directory
from postoffice.core.address import Address, parse_address
from postoffice.core.errors import AccountError, AddressError
from postoffice.directory.accounts import Account
from postoffice.store import StoreFactory
from postoffice.store.layout import layout_from_config

MIB = 1024 * 1024


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
@click.option(
    "--quota-messages",
    type=click.IntRange(min=0),
    default=0,
    help="Quota in messages (0: none).",
)
@click.pass_context
def user_add(
    ctx: click.Context,
    address: str,
    password: str | None,
    password_stdin: bool,
    quota_mb: int,
    quota_messages: int,
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
        account = directory.accounts.add_user(
            who, secret, quota_bytes=quota_mb * MIB, quota_messages=quota_messages
        )
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


@user_group.command("quota")
@config_option
@click.argument("address")
@click.option(
    "--storage", "storage_mb", type=click.IntRange(min=0), help="Storage limit in MiB (0: none)."
)
@click.option("--messages", type=click.IntRange(min=0), help="Message limit (0: none).")
@click.pass_context
def user_quota(
    ctx: click.Context, address: str, storage_mb: int | None, messages: int | None
) -> None:
    """Show the quota of ADDRESS, or change it (IMAP QUOTA, RFC 9208; SMTP 452/552)."""
    who = _address(address)
    directory = open_directory(ctx)
    try:
        if storage_mb is None and messages is None:
            account = directory.accounts.get(who)
            if account is None:
                raise AccountError(f"no such account: {who.key}")
        else:
            octets = None if storage_mb is None else storage_mb * MIB
            account = directory.accounts.set_quota(who, octets=octets, messages=messages)
    finally:
        directory.close()
    click.echo(f"{account.address.key}\t{_quota_text(account)}")


def _quota_text(account: Account) -> str:
    storage = f"{account.quota_bytes // MIB} MiB" if account.quota_bytes else "-"
    messages = f"{account.quota_messages} messages" if account.quota_messages else "-"
    return f"quota {storage}, {messages}"


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
        state = "enabled" if account.enabled else "disabled"
        click.echo(f"{account.address.key}\t{state}\t{_quota_text(account)}")


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
