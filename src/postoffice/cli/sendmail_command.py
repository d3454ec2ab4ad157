"""``postoffice sendmail``: the classic interface for programs on the host (cron, scripts,
PHP's mail()), also reached through links named ``sendmail``, ``mailq`` and
``newaliases``.

What this module owns: reading sendmail's options (its own syntax, not
click's: ``-f FROM`` or ``-fFROM``, ``-oi``, unknown ``-o`` options ignored
as sendmail and Postfix do), reading the message from standard input, and
leaving it in the maildrop (``queue.maildrop``), from which a running
server, or the next one to start, queues and delivers it. It needs no
server and no privileges beyond writing to the maildrop.

Options: ``-t`` (recipients from To/Cc/Bcc, Bcc removed), ``-i``/``-oi``
(a line of one dot does not end the message), ``-f FROM`` (envelope
sender; ``<>`` for none), ``-F NAME`` (full name in a From: it adds),
``-bm`` (the default: deliver), ``-bs`` (an SMTP session on standard input
and output, ``sendmail_smtp``), ``-bp`` (= mailq), ``-bi`` (= newaliases),
``-q`` (= queue flush), ``-bv`` (= explain, per recipient), ``-v`` and
other ``-o`` options accepted and ignored.

Exit statuses are sendmail's (sysexits.h): 0, 64 usage, 65 bad data,
67 unknown address, 73 cannot create, 75 temporary failure.
"""

from __future__ import annotations

import getpass
import os
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

import click

from postoffice.cli.context import config_option, load
from postoffice.cli.queue_commands import mailq_command, queue_flush
from postoffice.cli.sendmail_smtp import speak_smtp
from postoffice.cli.table_commands import explain_command, newaliases_command
from postoffice.core.address import parse_address
from postoffice.core.errors import AddressError
from postoffice.mime.submission import complete_header, header_recipients, to_crlf_lines
from postoffice.queue.maildrop import Drop, DropError, ensure_maildrop, write_drop

EX_USAGE: Final = 64
EX_DATAERR: Final = 65
EX_NOUSER: Final = 67
EX_CANTCREAT: Final = 73
EX_TEMPFAIL: Final = 75
MAX_MESSAGE_OCTETS: Final = 64 * 1024 * 1024
LINK_NAMES: Final = ("sendmail", "mailq", "newaliases")


class SendmailUsage(Exception):
    def __init__(self, text: str, status: int = EX_USAGE):
        super().__init__(text)
        self.status = status


@dataclass
class SendmailOptions:
    mode: str = "m"  # -bm deliver, -bs SMTP, -bp list, -bi aliases, -bv verify, -q flush
    extract: bool = False  # -t
    dot_ends: bool = True  # cleared by -i / -oi
    sender: str | None = None  # -f
    full_name: str | None = None  # -F
    recipients: list[str] = field(default_factory=list)


def parse_options(args: list[str]) -> SendmailOptions:
    """sendmail's command line (see the module docstring)."""
    options = SendmailOptions()
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            options.recipients += args[index:]
            break
        if not arg.startswith("-") or arg == "-":
            options.recipients.append(arg)
            continue
        flag, rest = arg[1:2], arg[2:]
        if flag in ("f", "F", "r"):
            if not rest:
                if index >= len(args):
                    raise SendmailUsage(f"option -{flag} needs a value")
                rest, index = args[index], index + 1
            if flag == "F":
                options.full_name = rest
            else:
                options.sender = rest
        elif flag == "t" and not rest:
            options.extract = True
        elif flag == "i" and not rest:
            options.dot_ends = False
        elif flag == "o":
            if rest == "i":
                options.dot_ends = False
            # other -oX options (delivery modes, error modes...) are accepted and ignored
        elif flag == "b":
            if rest not in ("m", "p", "i", "v", "s"):
                raise SendmailUsage(f"unknown mode -b{rest}")
            options.mode = rest
        elif flag == "q":
            options.mode = "q"
        elif flag in ("v", "U", "n", "m", "e", "x", "h", "N", "R", "V", "X", "O"):
            if flag in ("N", "R", "V", "X", "O", "h") and not rest and index < len(args):
                index += 1  # options that take a value, ignored with it
        else:
            raise SendmailUsage(f"unknown option {arg}")
    return options


def _qualify(text: str, domain: str) -> str:
    """An address as the envelope keeps it: ``local@domain``, angle brackets dropped."""
    text = text.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    return str(parse_address(text, default_domain=domain))


@click.command(
    "sendmail",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
    add_help_option=False,
)
@config_option
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def sendmail_command(ctx: click.Context, args: tuple[str, ...]) -> None:
    """The sendmail interface: read a message on stdin and hand it to the mail system.

    -t recipients from the header, -i/-oi a lone dot is no end, -f FROM sender,
    -F NAME full name, -bs SMTP on stdin/stdout, -bp list the queue, -bi check
    aliases, -q flush the queue, -bv show where mail for the recipients goes.
    """
    try:
        options = parse_options(list(args))
        sys.exit(_run(ctx, options))
    except SendmailUsage as exc:
        click.echo(f"sendmail: {exc}", err=True)
        sys.exit(exc.status)


def _run(ctx: click.Context, options: SendmailOptions) -> int:
    if options.mode == "p":
        ctx.invoke(mailq_command)
        return 0
    if options.mode == "i":
        ctx.invoke(newaliases_command)
        return 0
    if options.mode == "q":
        ctx.invoke(queue_flush)
        return 0
    if options.mode == "s":
        loaded = load(ctx)
        speak_smtp(
            sys.stdin.buffer,
            sys.stdout.buffer,
            hostname=loaded.config.hostname,
            full_name=options.full_name,
            maildrop=loaded.paths.maildrop_dir,
            max_size=MAX_MESSAGE_OCTETS,
        )
        return 0
    if options.mode == "v":
        if not options.recipients:
            raise SendmailUsage("-bv needs recipients")
        for recipient in options.recipients:
            ctx.invoke(explain_command, recipient=recipient, sender=options.sender)
        return 0
    return _submit(ctx, options)


def _submit(ctx: click.Context, options: SendmailOptions) -> int:
    loaded = load(ctx)
    config, paths = loaded.config, loaded.paths
    domain = config.primary_domain
    user = getpass.getuser()
    raw = sys.stdin.buffer.read(MAX_MESSAGE_OCTETS + 1)
    if len(raw) > MAX_MESSAGE_OCTETS:
        raise SendmailUsage("message too big", EX_DATAERR)
    data = to_crlf_lines(raw, dot_ends=options.dot_ends)
    try:
        if options.sender in ("<>", ""):
            sender = ""
        else:
            sender = _qualify(options.sender or user, domain)
        named = [
            _qualify(r, domain) for text in options.recipients for r in text.split(",") if r.strip()
        ]
        extracted = (
            [_qualify(r, domain) for r in header_recipients(data)] if options.extract else []
        )
    except AddressError as exc:
        raise SendmailUsage(str(exc), EX_NOUSER) from exc
    recipients = list(dict.fromkeys([*named, *extracted]))
    if not recipients:
        raise SendmailUsage("no recipients" + (" in the header" if options.extract else ""))
    data = complete_header(
        data,
        sender=sender,
        full_name=options.full_name,
        hostname=config.hostname,
        now=datetime.now(UTC),
    )
    try:
        ensure_maildrop(paths.maildrop_dir)
        write_drop(paths.maildrop_dir, Drop(os.getuid(), sender, tuple(recipients), data))
    except PermissionError as exc:
        raise SendmailUsage(f"cannot write to {paths.maildrop_dir}: {exc}", EX_CANTCREAT) from exc
    except (OSError, DropError) as exc:
        raise SendmailUsage(f"cannot leave the message: {exc}", EX_TEMPFAIL) from exc
    return 0


def link_arguments(program: str, argv: list[str]) -> list[str] | None:
    """The ``postoffice`` arguments for a link named ``sendmail``, ``mailq`` or
    ``newaliases`` (None for any other name)."""
    name = os.path.basename(program)
    if name == "sendmail":
        return ["sendmail", *argv]
    if name == "mailq":
        return ["mailq"]
    if name == "newaliases":
        return ["newaliases"]
    return None
