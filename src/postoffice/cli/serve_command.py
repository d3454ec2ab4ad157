"""``postoffice serve``: run the server in the foreground."""

from __future__ import annotations

import sys

import click

from postoffice.cli.context import config_option, load
from postoffice.server.master import serve


@click.command("serve")
@config_option
@click.option(
    "--listen",
    "listen",
    multiple=True,
    metavar="PROTO=HOST:PORT",
    help="Listen here instead of the config's listeners for PROTO (repeatable).",
)
@click.pass_context
def serve_command(ctx: click.Context, listen: tuple[str, ...]) -> None:
    """Run the mail server in the foreground; SIGTERM stops it, SIGHUP reloads."""
    loaded = load(ctx, listen_overrides=list(listen))
    sys.exit(serve(loaded, foreground=True, listen_overrides=list(listen)))
