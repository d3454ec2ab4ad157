"""``postoffice init``: a working setup in one step.

Writes a commented config, documented table files and a self-signed
certificate, creates the data layout (``spool/mail``, ``spool/mqueue``,
``log``, ``mail``) and the account database with the given domains, so that
``postoffice serve`` right after it works. It refuses to overwrite an existing
config without ``--force``; even with ``--force`` it never replaces a table
file or the account database that already exist, since those hold the
operator's data.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import click

from postoffice.cli.context import CliState
from postoffice.cli.selfsigned import write_self_signed
from postoffice.cli.templates import CONFIG_TEMPLATE, TABLE_TEMPLATES
from postoffice.config.loader import load_config, parse_listen_override
from postoffice.config.model import PROTOCOLS
from postoffice.core.address import canonical_domain
from postoffice.core.errors import AddressError, ConfigError
from postoffice.directory.accounts import AccountDatabase
from postoffice.server.daemon import ensure_layout

# With this data dir the textbook layout appears: /var/spool/mail/USER (mbox),
# /var/spool/mqueue, /var/log/maillog.
CLASSIC_DATA_DIR = Path("/var")

# Loopback and unprivileged: a fresh setup never faces the network by accident.
DEFAULT_LISTENERS = {
    "smtp": "127.0.0.1:2525",
    "submission": "127.0.0.1:2587",
    "submissions": "127.0.0.1:2465",
    "pop3": "127.0.0.1:2110",
    "pop3s": "127.0.0.1:2995",
    "imap": "127.0.0.1:2143",
    "imaps": "127.0.0.1:2993",
    "http": "127.0.0.1:2080",
}


def _domain_argument(value: str) -> str:
    try:
        return canonical_domain(value)
    except AddressError as exc:
        raise click.BadParameter(str(exc)) from exc


def _choose_names(domains: list[str], hostname: str | None) -> tuple[str, list[str]]:
    if hostname is None:
        hostname = f"mail.{domains[0]}" if domains else socket.getfqdn()
    hostname = _domain_argument(hostname)
    if not domains:
        parent = hostname.partition(".")[2]
        domains = [parent if "." in parent else hostname]
    return hostname, domains


def _listen_lines(overrides: tuple[str, ...]) -> str:
    """The ``[listen]`` body: the listeners named with ``--listen``, else the defaults."""
    chosen: dict[str, list[str]] = {}
    for text in overrides:
        try:
            proto, endpoint = parse_listen_override(text)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--listen") from exc
        chosen.setdefault(proto, []).append(endpoint)
    if not overrides:
        chosen = {proto: [endpoint] for proto, endpoint in DEFAULT_LISTENERS.items()}
    return "\n".join(f"{proto} = {json.dumps(chosen.get(proto, []))}" for proto in PROTOCOLS)


@click.command("init")
@click.option(
    "-c",
    "--config",
    "config_path",
    metavar="FILE",
    help="Where to write the config (default: DATA-DIR/postoffice.toml).",
)
@click.option(
    "--data-dir",
    default="var",
    show_default=True,
    metavar="DIR",
    type=click.Path(file_okay=False),
    help="Where mail, queue, log and tables live.",
)
@click.option(
    "--domain",
    "domains",
    multiple=True,
    metavar="D",
    help="A local mail domain (repeatable); the first is the primary domain.",
)
@click.option("--hostname", metavar="H", help="This mail host's name (default: mail.DOMAIN).")
@click.option(
    "--listen",
    "listen",
    multiple=True,
    metavar="PROTO=HOST:PORT",
    help="A listener (repeatable); default: every role on 127.0.0.1, ports 2xxx.",
)
@click.option(
    "--store",
    "store_format",
    type=click.Choice(["maildir", "mbox"]),
    default=None,
    help="Mailbox format: maildir (default), or mbox (default with --data-dir /var, "
    "the classic /var/spool/mail/USER).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing config and certificate.")
@click.pass_context
def init_command(
    ctx: click.Context,
    config_path: str | None,
    data_dir: str,
    domains: tuple[str, ...],
    hostname: str | None,
    listen: tuple[str, ...],
    store_format: str | None,
    force: bool,
) -> None:
    """Create a configuration, tables, certificate and data layout."""
    data = Path(data_dir).absolute()
    target = ctx.ensure_object(CliState).config_path if config_path is None else config_path
    config_file = Path(target).absolute() if target else data / "postoffice.toml"
    if config_file.exists() and not force:
        raise ConfigError(
            "a configuration already exists; use --force to overwrite it", file=config_file
        )
    host, domain_list = _choose_names([_domain_argument(d) for d in domains], hostname)
    relative = os.path.relpath(data, config_file.parent)
    text = CONFIG_TEMPLATE.format(
        hostname=host,
        primary_domain=domain_list[0],
        data_dir=relative if not relative.startswith("..") else str(data),
        listen=_listen_lines(listen),
        store_format=store_format or ("mbox" if data == CLASSIC_DATA_DIR else "maildir"),
    )
    ensure_layout(data)
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text(text, encoding="utf-8")
    loaded = load_config(config_file)  # what we wrote must load: check it now
    paths = loaded.paths
    paths.tables_dir.mkdir(parents=True, exist_ok=True)
    written_tables = []
    for name, body in TABLE_TEMPLATES.items():
        table = paths.tables_dir / name
        if not table.exists():
            table.write_text(body, encoding="utf-8")
            written_tables.append(name)
    if force or not paths.tls_cert.exists():
        write_self_signed(paths.tls_cert, paths.tls_key, host, domain_list)
    accounts = AccountDatabase(paths.directory_db)
    try:
        existing = set(accounts.domains())
        for domain in domain_list:
            if domain not in existing:
                accounts.add_domain(domain)
    finally:
        accounts.close()
    click.echo(f"config:      {config_file}")
    click.echo(f"data:        {paths.data_dir}")
    click.echo(f"tables:      {paths.tables_dir} ({', '.join(written_tables) or 'kept'})")
    click.echo(f"certificate: {paths.tls_cert} (self-signed for {host})")
    click.echo(f"hostname:    {host}; domains: {', '.join(domain_list)}")
    click.echo(f"next: postoffice -c {config_file} user add USER@{domain_list[0]}")
    click.echo(f"      and point root at USER in {paths.tables_dir / 'aliases'} (postmaster: root)")
