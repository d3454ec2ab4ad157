"""How the queue looks to an operator: the ``mailq`` listing and ``queue show``.

Owns the text of the queue commands (``cli.queue_commands`` owns the
commands). Layout after Postfix's ``postqueue -p`` and ``postcat -q``.
Invariant: nothing read from the queue reaches the terminal raw; control
characters and bidi overrides are shown escaped (``visible``), UTF-8 stays.
"""

from __future__ import annotations

import codecs
import re
import time
from collections.abc import Callable, Sequence

from postoffice.core.envelope import EnvelopeRecipient, Notify
from postoffice.queue import DataReader, QueueEntry, RecipientStatus

READ_CHUNK = 64 * 1024

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


def plural(count: int, word: str) -> str:
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
