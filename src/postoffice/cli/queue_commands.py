"""``postoffice queue ...`` and ``postoffice mailq``: the operator's view of the mail queue.

Owns the queue commands of DESIGN.md §4: ``list`` (alias ``mailq``, the
listing of sendmail's ``mailq`` / Postfix's ``postqueue -p``), ``show ID``
(envelope, client and headers, like ``postcat -q``), ``delete``, ``hold``,
``release`` (Postfix's ``postsuper -d/-h/-H``) and ``flush`` (``postqueue
-f``: deferred recipients become due now).

Invariants:
- The queue is opened with ``recover=False``: these commands run while the
  server does and never remove or quarantine anything of its. Every change
  goes through ``Queue`` (df lock, atomic qf rewrite), so a change here and a
  delivery update there never lose each other.
- Nothing read from the queue reaches the terminal raw: control characters
  (CR/LF, ESC, bidi overrides...) in addresses, replies, HELO names and
  message headers are shown escaped, so a hostile client cannot forge lines
  of the listing or drive the operator's terminal. UTF-8 stays as it is.
- A queue id given on the command line that is malformed or absent is an
  error (exit 1) with a message that says which; a missing queue directory
  is an error too (it is never created from here).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import click

from postoffice.cli.context import config_option, load
from postoffice.cli.queue_render import (
    HEADER_LIMIT,
    envelope_lines,
    listing_lines,
    plural,
    read_headers,
    stream_text,
    text_lines,
    visible,
)
from postoffice.config.loader import LoadedConfig
from postoffice.core.clock import SystemClock
from postoffice.core.maillog import log_event, maillog, setup_maillog, teardown_maillog
from postoffice.queue import (
    DataReader,
    Queue,
    QueueEntry,
    QueueError,
    RecipientState,
    UnknownQueueId,
    is_queue_id,
)
from postoffice.queue.maildrop import request_flush

_T = TypeVar("_T")

COMPONENT = "postqueue"
QUEUE_WORKERS = 2


def _queue_dir(loaded: LoadedConfig) -> Path:
    queue_dir = loaded.paths.queue_dir
    if not queue_dir.is_dir():
        raise QueueError(
            f"no queue directory {queue_dir} (wrong configuration? `postoffice init` creates it)"
        )
    return queue_dir


def with_queue(loaded: LoadedConfig, action: Callable[[Queue], Awaitable[_T]]) -> _T:
    """Run ``action(queue)`` on the configured queue, opened without recovery."""
    queue_dir = _queue_dir(loaded)

    async def run() -> _T:
        queue = await Queue.open(queue_dir, SystemClock(), recover=False, workers=QUEUE_WORKERS)
        async with queue:
            return await action(queue)

    return asyncio.run(run())


def checked_id(queue_id: str) -> str:
    """``queue_id`` if it has the shape of one, else an error that says so."""
    if not is_queue_id(queue_id):
        raise QueueError(
            f"'{visible(queue_id)}' is not a queue id (14 letters and digits, "
            "as `postoffice mailq` shows them)"
        )
    return queue_id


@contextlib.contextmanager
def unknown_id_message(queue_id: str) -> Iterator[None]:
    """Turn ``UnknownQueueId`` into a message an operator understands."""
    try:
        yield
    except UnknownQueueId as error:
        raise QueueError(
            f"{queue_id}: no such message in the queue (delivered, deleted or never there)"
        ) from error


@contextlib.contextmanager
def admin_maillog(loaded: LoadedConfig) -> Iterator[None]:
    """Send this command's queue changes to the maillog too, as Postfix's postsuper does.

    The logger's settings are put back afterwards (tests run many commands in
    one process). A maillog the user may not write is skipped with a warning.
    """
    saved = (maillog.level, maillog.propagate)
    try:
        handlers = setup_maillog(
            loaded.paths.maillog,
            hostname=loaded.config.hostname,
            foreground=False,
            level=loaded.config.log.level,
        )
    except OSError as error:
        click.echo(f"postoffice: warning: not logging to {loaded.paths.maillog}: {error}", err=True)
        handlers = []
    try:
        yield
    finally:
        teardown_maillog(handlers)
        maillog.setLevel(saved[0])
        maillog.propagate = saved[1]


# --------------------------------------------------------------------- commands


def _print_listing(ctx: click.Context) -> None:
    loaded = load(ctx)
    entries = with_queue(loaded, lambda queue: queue.list())
    for line in listing_lines(entries, time.time()):
        click.echo(line)


LIST_HELP = """List the mail queue (mailq, postqueue -p).

As sendmail's mailq and Postfix's postqueue -p print it: each message
shows its queue id, size in octets, arrival time and sender, then every
recipient still to be delivered, under its last reply in parentheses.
After the id, `*` means due for delivery now and `!` on hold; no mark
means waiting for its next attempt.
"""


@click.group("queue")
def queue_group() -> None:
    """Inspect and manage the mail queue (also while the server runs)."""


@queue_group.command("list", help=LIST_HELP)
@config_option
@click.pass_context
def queue_list(ctx: click.Context) -> None:
    _print_listing(ctx)


@click.command("mailq", help=LIST_HELP.replace("(mailq,", "(= queue list,"))
@config_option
@click.pass_context
def mailq_command(ctx: click.Context) -> None:
    _print_listing(ctx)


@queue_group.command("show")
@config_option
@click.argument("queue_id", metavar="ID")
@click.option("--body", is_flag=True, help="Show the whole message, not only its header.")
@click.pass_context
def queue_show(ctx: click.Context, queue_id: str, body: bool) -> None:
    """Show message ID: envelope, recipients, header.

    Like postcat -q: the sender, each recipient with its state, attempts,
    next attempt, last reply, NOTIFY and ORCPT, the client, the arrival and
    size, then the message header (the whole message with --body). Control
    characters are shown escaped.
    """
    checked = checked_id(queue_id)
    loaded = load(ctx)

    async def fetch(queue: Queue) -> tuple[QueueEntry, DataReader]:
        with unknown_id_message(checked):
            entry = await queue.load(checked)
            return entry, await queue.open_data(checked)

    entry, reader = with_queue(loaded, fetch)
    with reader:
        click.echo(f"*** ENVELOPE {entry.id} ***")
        for line in envelope_lines(entry, time.time()):
            click.echo(line)
        if body:
            click.echo(f"*** MESSAGE {entry.id} ***")
            stream_text(reader, lambda text: click.echo(text, nl=False))
            click.echo(f"*** END OF MESSAGE {entry.id} ***")
            return
        click.echo(f"*** HEADER {entry.id} ***")
        header, cut = read_headers(reader)
        for line in text_lines(header):
            click.echo(line)
        if cut:
            click.echo(f"[header longer than {HEADER_LIMIT} octets: cut here]")
        rest = entry.size - len(header)
        click.echo(f"*** END OF HEADER {entry.id} ({rest} more octets: --body shows them) ***")


@queue_group.command("delete")
@config_option
@click.argument("queue_id", metavar="ID")
@click.pass_context
def queue_delete(ctx: click.Context, queue_id: str) -> None:
    """Delete message ID, whatever its state (postsuper -d).

    The message leaves the queue at once and no bounce is sent. A delivery
    the running server has already begun may still complete.
    """
    checked = checked_id(queue_id)
    loaded = load(ctx)

    async def delete(queue: Queue) -> None:
        with unknown_id_message(checked):
            await queue.delete(checked)

    with admin_maillog(loaded):
        with_queue(loaded, delete)
    click.echo(f"{checked}: deleted")


@queue_group.command("hold")
@config_option
@click.argument("queue_id", metavar="ID")
@click.pass_context
def queue_hold(ctx: click.Context, queue_id: str) -> None:
    """Put message ID on hold (postsuper -h).

    No delivery is attempted until `postoffice queue release ID`. A held
    message stays in the queue, and its lifetime keeps running. An
    attempt the server has already begun is not interrupted.
    """
    checked = checked_id(queue_id)
    loaded = load(ctx)

    async def hold(queue: Queue) -> bool:
        with unknown_id_message(checked):
            if (await queue.load(checked)).held:
                return False
            await queue.hold(checked)
            return True

    with admin_maillog(loaded):
        changed = with_queue(loaded, hold)
    click.echo(f"{checked}: placed on hold" if changed else f"{checked}: already on hold")


@queue_group.command("release")
@config_option
@click.argument("queue_id", metavar="ID")
@click.pass_context
def queue_release(ctx: click.Context, queue_id: str) -> None:
    """Release message ID from hold (postsuper -H).

    It is then delivered on its usual schedule (`queue flush` for at once).
    """
    checked = checked_id(queue_id)
    loaded = load(ctx)

    async def release(queue: Queue) -> bool:
        with unknown_id_message(checked):
            if not (await queue.load(checked)).held:
                return False
            await queue.release(checked)
            return True

    with admin_maillog(loaded):
        changed = with_queue(loaded, release)
    click.echo(f"{checked}: released from hold" if changed else f"{checked}: was not on hold")


async def make_deferred_due(queue: Queue, now: float) -> tuple[int, int, int]:
    """Set ``next_attempt`` to ``now`` for every deferred recipient of a message not held.

    Returns (recipients changed, messages changed, messages on hold left alone).
    Only recipients not yet due are touched, so the delivery runner, which
    tries only due recipients, is not writing the same recipient meanwhile.
    """
    recipients = messages = held = 0
    for entry in await queue.list():
        if entry.held:
            held += 1
            continue
        changes = {
            queued.index: replace(queued.status, next_attempt=now)
            for queued in entry.recipients
            if queued.status.state is RecipientState.DEFERRED
            and queued.status.next_attempt is not None
            and queued.status.next_attempt > now
        }
        if not changes:
            continue
        try:
            await queue.update(entry.id, changes)
        except UnknownQueueId:
            continue  # delivered or deleted since the listing
        log_event(
            COMPONENT,
            f"{entry.id}: {plural(len(changes), 'deferred recipient')} made due now (queue flush)",
        )
        recipients += len(changes)
        messages += 1
    return recipients, messages, held


@queue_group.command("flush")
@config_option
@click.pass_context
def queue_flush(ctx: click.Context) -> None:
    """Make deferred mail due now (postqueue -f).

    Every deferred recipient's next attempt is set to now, like sendmail -q
    or postqueue -f.

    Messages on hold are left alone. A running server is asked to scan its
    queue at once (through the maildrop, within a second); a stopped one
    delivers them when it starts.
    """
    loaded = load(ctx)
    with admin_maillog(loaded):
        recipients, messages, held = with_queue(
            loaded, lambda queue: make_deferred_due(queue, time.time())
        )
    with contextlib.suppress(OSError):  # no maildrop yet: no server ever ran here
        request_flush(loaded.paths.maildrop_dir)
    if recipients:
        click.echo(
            f"{plural(recipients, 'deferred recipient')} in {plural(messages, 'message')} "
            "made due now"
        )
    else:
        click.echo("no deferred recipients to flush")
    if held:
        click.echo(f"{plural(held, 'message')} on hold left alone (`postoffice queue release ID`)")
