"""The ``postoffice`` command: one entry point for every operator task (DESIGN.md §4).

Owns the command group and the translation of postoffice's errors into a
message on stderr and a non-zero exit status; each subcommand lives in its
own module.
"""

from __future__ import annotations

import sys

import click

from postoffice import __version__
from postoffice.cli.account_commands import domain_group, user_group
from postoffice.cli.context import CliState
from postoffice.cli.dns_commands import dkim_group, dns_command
from postoffice.cli.init_command import init_command
from postoffice.cli.queue_commands import mailq_command, queue_group
from postoffice.cli.sendmail_command import link_arguments, sendmail_command
from postoffice.cli.serve_command import serve_command
from postoffice.cli.table_commands import (
    check_command,
    explain_command,
    makemap_command,
    newaliases_command,
)
from postoffice.core.errors import PostofficeError

EXIT_ERROR = 1


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-c", "--config", "config_path", metavar="FILE", help="Configuration file.")
@click.version_option(__version__, prog_name="postoffice")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """postoffice: a complete Internet mail system in one program."""
    ctx.ensure_object(CliState).config_path = config_path


for command in (
    init_command,
    serve_command,
    check_command,
    newaliases_command,
    makemap_command,
    explain_command,
    user_group,
    domain_group,
    queue_group,
    mailq_command,
    sendmail_command,
    dkim_group,
    dns_command,
):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Run the command; through a link named sendmail, mailq or newaliases, run that."""
    if argv is None:
        argv = link_arguments(sys.argv[0], sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="postoffice", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(EXIT_ERROR)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except PostofficeError as exc:
        click.echo(f"postoffice: {exc}", err=True)
        sys.exit(EXIT_ERROR)
