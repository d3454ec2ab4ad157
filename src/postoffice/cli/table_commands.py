"""``postoffice check``, ``newaliases``, ``makemap`` and ``explain``: the tables, checked and asked.

There is no database to build: tables are read as text and reloaded when
they change. ``newaliases`` and ``makemap`` keep their classic names so that
habits and scripts still work; they validate and report, and exit non-zero
with the file and line at fault.
"""

from __future__ import annotations

import sys

import click

from postoffice.cli.context import config_option, load, open_directory
from postoffice.core.errors import AddressError, ConfigError, PostofficeError
from postoffice.directory.accounts import AccountDatabase
from postoffice.directory.tables.tableset import TABLE_FILE_NAMES, TableCheck, check_tables
from postoffice.server.tls import server_tls_context


def _report(check: TableCheck, names: tuple[str, ...]) -> None:
    for count in check.counts:
        if count.name in names:
            click.echo(f"{count.path}: {count.summary}")
    for error in check.errors:
        if (
            error.file is None
            or error.file.name in names
            or error.file.name not in TABLE_FILE_NAMES
        ):
            click.echo(f"error: {error}", err=True)


@click.command("check")
@config_option
@click.pass_context
def check_command(ctx: click.Context) -> None:
    """Validate the configuration, the tables, the certificate and the databases."""
    loaded = load(ctx)
    click.echo(f"{loaded.paths.config_file}: ok")
    problems = 0
    result = check_tables(loaded.paths.tables_dir)
    _report(result, TABLE_FILE_NAMES)
    problems += len(result.errors)
    try:
        server_tls_context(loaded.paths)
        click.echo(f"{loaded.paths.tls_cert}: ok")
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        problems += 1
    try:
        accounts = AccountDatabase(loaded.paths.directory_db)
        users, domains = len(accounts.users()), len(accounts.domains())
        accounts.close()
        click.echo(f"{loaded.paths.directory_db}: {users} accounts, {domains} domains")
    except (PostofficeError, OSError) as exc:
        click.echo(f"error: {loaded.paths.directory_db}: {exc}", err=True)
        problems += 1
    if problems:
        click.echo(f"check: {problems} problem(s) found", err=True)
        sys.exit(1)
    click.echo("check: everything is in order")


def _validate(ctx: click.Context, names: tuple[str, ...]) -> None:
    loaded = load(ctx)
    result = check_tables(loaded.paths.tables_dir)
    _report(result, names)
    relevant = [
        e
        for e in result.errors
        if e.file is None or e.file.name in names or e.file.name not in TABLE_FILE_NAMES
    ]
    if relevant:
        sys.exit(1)


@click.command("newaliases")
@config_option
@click.pass_context
def newaliases_command(ctx: click.Context) -> None:
    """Validate the aliases file and report it (it is reloaded automatically on change)."""
    _validate(ctx, ("aliases",))


MAP_TYPES = ("hash", "btree", "dbm", "text")


@click.command("makemap")
@config_option
@click.argument("tables", nargs=-1, metavar="[MAPTYPE] [TABLE]...")
@click.pass_context
def makemap_command(ctx: click.Context, tables: tuple[str, ...]) -> None:
    """Validate tables (all, or the ones named) and report them.

    The classic form ``makemap hash /etc/mail/access`` is accepted: the map
    type is ignored and a path names its table by its file name. Nothing is
    built: tables are read as text and reloaded automatically on change.
    """
    names = [t for t in tables if t not in MAP_TYPES] if tables else list(TABLE_FILE_NAMES)
    chosen = tuple(name.rsplit("/", 1)[-1] for name in names)
    unknown = [name for name in chosen if name not in TABLE_FILE_NAMES]
    if unknown:
        raise click.BadParameter(
            f"unknown table {unknown[0]!r}; tables are: {', '.join(TABLE_FILE_NAMES)}",
            param_hint="TABLE",
        )
    _validate(ctx, chosen)


@click.command("explain")
@config_option
@click.argument("recipient")
@click.option("--from", "sender", metavar="ADDR", help="The envelope sender ('' for <>).")
@click.option("--client", "client_ip", metavar="IP", help="The connecting client's address.")
@click.option(
    "--client-name", "client_hostname", metavar="HOST", help="The connecting client's host name."
)
@click.pass_context
def explain_command(
    ctx: click.Context,
    recipient: str,
    sender: str | None,
    client_ip: str | None,
    client_hostname: str | None,
) -> None:
    """Show where mail for RECIPIENT goes and why, step by step (like sendmail -bv)."""
    directory = open_directory(ctx)
    try:
        text = directory.explain(
            recipient, sender=sender, client_ip=client_ip, client_hostname=client_hostname
        )
    except AddressError as exc:
        raise click.BadParameter(str(exc), param_hint="RECIPIENT/--from") from exc
    finally:
        directory.close()
    click.echo(text)
