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
import codecs
import contextlib
import re
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import click

from postoffice.cli.context import config_option, load
from postoffice.config.loader import LoadedConfig
from postoffice.core.clock import SystemClock
from postoffice.core.envelope import EnvelopeRecipient, Notify
from postoffice.core.maillog import log_event, maillog, setup_maillog, teardown_maillog
from postoffice.queue import (
    DataReader,
    Queue,
    QueueEntry,
    QueueError,
    RecipientState,
    RecipientStatus,
    UnknownQueueId,
    is_queue_id,
)

_T = TypeVar("_T")

COMPONENT = "postqueue"
QUEUE_WORKERS = 2
EMPTY_SENDER = "MAILER-DAEMON"  # what Postfix's mailq shows for <> (empty_address_recipient)
HELD_MARK = "!"  # Postfix: on hold
DUE_MARK = "*"  # Postfix: active; here: due for delivery now
HEADER_LIMIT = 256 * 1024  # octets of header shown at most by `queue show`
READ_CHUNK = 64 * 1024
ID_COLUMN = 15  # 14-character id and its mark
RECIPIENT_INDENT = ID_COLUMN + 1 + 8 + 1 + 20 + 1
REASON_RIGHT_EDGE = 76  # Postfix's showq: reasons are right-aligned to this column

# Shown escaped: C0 and C1 controls, DEL, line and paragraph separators, bidi
# marks, embeddings, overrides and isolates. ``_UNSAFE_IN_TEXT`` keeps TAB and LF.
_BIDI = r"\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069"
_UNSAFE_IN_LINE = re.compile(rf"[\x00-\x1f\x7f-\x9f{_BIDI}]")
_UNSAFE_IN_TEXT = re.compile(rf"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")


# ------------------------------------------------------------------ display helpers


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` safe to print on one line: every control character escaped."""
    return _UNSAFE_IN_LINE.sub(_escape, text)


def one_line(reply: str) -> str:
    """A (possibly multi-line) reply on one line, whitespace runs collapsed, escaped."""
    return visible(" ".join(reply.split()))


def arrival_text(moment: float) -> str:
    """``Tue Nov 14 22:13:20``: the local time as mailq prints it (asctime(3) without year)."""
    return time.asctime(time.localtime(moment))[:19]


def timestamp(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(moment))


def span(seconds: float) -> str:
    """``2d 3h``, ``5h 7m``, ``12m``, ``40s``: a duration, two units at most."""
    whole = round(abs(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


def relative(moment: float, now: float) -> str:
    if moment > now:
        return f"in {span(moment - now)}"
    return f"{span(now - moment)} ago"


def sender_text(entry: QueueEntry) -> str:
    return visible(entry.sender) or EMPTY_SENDER


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


# ----------------------------------------------------------------------- listing


def mark(entry: QueueEntry, now: float) -> str:
    """``!`` held, ``*`` due for delivery now, blank: waiting for its next attempt."""
    if entry.held:
        return HELD_MARK
    return DUE_MARK if entry.is_due(now) else " "


def listing_lines(entries: Sequence[QueueEntry], now: float) -> list[str]:
    """The ``mailq`` listing, laid out as Postfix's ``postqueue -p`` (showq) does.

    One block per message: id with its mark, size in octets, arrival time,
    sender; then each recipient not yet final, each group of recipients with
    the same last reply preceded by that reply in parentheses; blocks are
    separated by a blank line, and a total ends the listing.
    """
    if not entries:
        return ["Mail queue is empty"]
    lines = [
        f"{'-Queue ID-':<{ID_COLUMN}} {'--Size--':>8} {'----Arrival Time----':<20} "
        "-Sender/Recipient-------"
    ]
    total = 0
    for number, entry in enumerate(entries):
        if number:
            lines.append("")
        total += entry.size
        lines.append(
            f"{entry.id + mark(entry, now):<{ID_COLUMN}} {entry.size:>8} "
            f"{arrival_text(entry.arrival):<20} {sender_text(entry)}"
        )
        waiting = [queued for queued in entry.recipients if not queued.status.state.is_final]
        # Postfix lists the recipients with a reason first, then the others.
        waiting.sort(key=lambda queued: queued.status.reply is None)
        shown_reason: str | None = None
        for queued in waiting:
            reply = queued.status.reply
            if reply is not None and one_line(reply) != shown_reason:
                shown_reason = one_line(reply)
                padding = max(0, REASON_RIGHT_EDGE - len(shown_reason))
                lines.append(f"{'':{padding}}({shown_reason})")
            lines.append(f"{'':{RECIPIENT_INDENT}}{visible(str(queued.recipient.address))}")
    lines.append("")
    lines.append(
        f"-- {total // 1024} Kbytes in {len(entries)} Request{'' if len(entries) == 1 else 's'}."
    )
    return lines


# ------------------------------------------------------------------------- show


def _notify_text(notify: frozenset[Notify] | None) -> str:
    if notify is None:
        return "not given (acts as FAILURE,DELAY)"
    order = [Notify.NEVER, Notify.SUCCESS, Notify.FAILURE, Notify.DELAY]
    return ",".join(value.value for value in order if value in notify)


def _state_text(status: RecipientStatus) -> str:
    return str(status.state.value)


def _message_state(entry: QueueEntry, now: float) -> str:
    if entry.held:
        return "on hold (`postoffice queue release` lets it go)"
    due = entry.due_at()
    if due is None:
        return "complete (every recipient final; leaves the queue at the next attempt)"
    if due <= now:
        return "due for delivery now"
    return f"deferred until {timestamp(due)} ({relative(due, now)})"


def _field(label: str, value: str) -> str:
    return f"{label + ':':<15}{value}"


def envelope_lines(entry: QueueEntry, now: float) -> list[str]:
    """Everything the control file says about the message, one field a line."""
    env = entry.envelope
    client = env.client
    lines = [
        _field("Queue ID", entry.id),
        _field("Status", _message_state(entry, now)),
        _field("Arrival", f"{timestamp(entry.arrival)} ({relative(entry.arrival, now)})"),
        _field("Size", f"{entry.size} octets"),
        _field("Sender", f"<{visible(entry.sender)}>"),
    ]
    parameters = []
    if env.body is not None:
        parameters.append(f"BODY={env.body.value}")
    if env.smtputf8:
        parameters.append("SMTPUTF8")
    if env.ret is not None:
        parameters.append(f"RET={env.ret.value}")
    if env.envid is not None:
        parameters.append(f"ENVID={visible(env.envid)}")
    if env.declared_size is not None:
        parameters.append(f"SIZE={env.declared_size}")
    if parameters:
        lines.append(_field("Parameters", " ".join(parameters)))
    if client.address is None:
        origin = "local submission"
    else:
        port = f":{client.port}" if client.port is not None else ""
        name = visible(client.hostname) if client.hostname else "unknown"
        origin = f"{name} [{visible(client.address)}]{port}"
    lines.append(_field("Client", origin))
    if client.helo is not None:
        lines.append(_field("HELO", visible(client.helo)))
    protocol = visible(client.protocol)
    if client.tls_version or client.tls_cipher:
        tls = " ".join(visible(part) for part in (client.tls_version, client.tls_cipher) if part)
        protocol += f" ({tls})"
    lines.append(_field("Protocol", protocol))
    if client.authenticated_as is not None:
        lines.append(_field("Authenticated", visible(client.authenticated_as)))
    counts: dict[str, int] = {}
    for status in entry.statuses:
        counts[_state_text(status)] = counts.get(_state_text(status), 0) + 1
    summary = ", ".join(f"{count} {state}" for state, count in counts.items())
    lines.append(_field("Recipients", f"{len(entry.statuses)} ({summary})"))
    for queued in entry.recipients:
        lines.extend(_recipient_lines(queued.index, queued.recipient, queued.status, now))
    return lines


def _recipient_lines(
    index: int, recipient: EnvelopeRecipient, status: RecipientStatus, now: float
) -> list[str]:
    lines = [f"  #{index + 1} <{visible(str(recipient.address))}>"]

    def add(label: str, value: str) -> None:
        lines.append(f"      {label + ':':<14}{value}")

    add("state", _state_text(status) + (" (delay warning sent)" if status.delay_warned else ""))
    add("attempts", str(status.attempts))
    if status.last_attempt is not None:
        add(
            "last attempt",
            f"{timestamp(status.last_attempt)} ({relative(status.last_attempt, now)})",
        )
    if not status.state.is_final:
        due = status.due_at()
        if due is None or due <= now:
            add("next attempt", "now")
        else:
            add("next attempt", f"{timestamp(due)} ({relative(due, now)})")
    if status.reply is not None:
        reply_lines = status.reply.splitlines() or [""]
        add("last reply", visible(reply_lines[0]))
        lines.extend(f"{'':20}{visible(line)}" for line in reply_lines[1:])
    add("NOTIFY", _notify_text(recipient.notify))
    if recipient.orcpt is not None:
        add("ORCPT", visible(str(recipient.orcpt)))
    return lines


def _header_end(data: bytes) -> int | None:
    """Where the header block ends (the empty line's start), if it is in ``data``."""
    if data.startswith((b"\r\n", b"\n")):
        return 0
    found = re.search(rb"\n\r?\n", data)
    return None if found is None else found.start() + 1


def read_headers(reader: DataReader, limit: int = HEADER_LIMIT) -> tuple[bytes, bool]:
    """The message's header block (without the empty line), and whether it was cut at ``limit``."""
    data = b""
    while True:
        end = _header_end(data)
        if end is not None:
            return data[:end], False
        if len(data) >= limit:
            return data[:limit], True
        chunk = reader.read(READ_CHUNK // 8)
        if not chunk:
            return data, False  # no body: the whole message is header
        data += chunk


def text_lines(data: bytes) -> list[str]:
    """Octets as display lines: UTF-8 (bad octets as U+FFFD), CRLF or LF, escaped."""
    return [visible(line) for line in data.decode("utf-8", "replace").splitlines()]


def stream_text(reader: DataReader, write: Callable[[str], None]) -> None:
    """The whole message as text (CRLF shown as LF, controls escaped), chunk by chunk."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    carry = ""
    ended_with_newline = True
    while True:
        chunk = reader.read(READ_CHUNK)
        text = carry + decoder.decode(chunk, final=not chunk)
        carry = ""
        if chunk and text.endswith("\r"):
            text, carry = text[:-1], "\r"
        text = text.replace("\r\n", "\n")
        if text:
            write(_UNSAFE_IN_TEXT.sub(_escape, text))
            ended_with_newline = text.endswith("\n")
        if not chunk:
            break
    if not ended_with_newline:
        write("\n")


# ------------------------------------------------------------------ queue access


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
            f"{entry.id}: {_plural(len(changes), 'deferred recipient')} made due now (queue flush)",
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

    Messages on hold are left alone. There is no control socket to the server
    yet: a running server delivers the flushed messages at its next queue
    scan (at most a minute away), not at once.
    """
    loaded = load(ctx)
    with admin_maillog(loaded):
        recipients, messages, held = with_queue(
            loaded, lambda queue: make_deferred_due(queue, time.time())
        )
    if recipients:
        click.echo(
            f"{_plural(recipients, 'deferred recipient')} in {_plural(messages, 'message')} "
            "made due now; a running server delivers them at its next queue scan"
        )
    else:
        click.echo("no deferred recipients to flush")
    if held:
        click.echo(f"{_plural(held, 'message')} on hold left alone (`postoffice queue release ID`)")
