"""Delivery status notifications: the message that tells a sender what became of
their mail (RFC 3464), when they want to hear it (RFC 3461 §4.1).

Owns ``build_dsn``, which writes the whole notification as bytes, and
``wants_dsn``, the NOTIFY decision. Pure: the original message comes in as a
readable binary stream, the time as ``now``; nothing else is read.

Shape (RFC 6522 multipart/report, RFC 3464 §2):
1. ``text/plain``: what happened, in plain words, for a person;
2. ``message/delivery-status``: per-message fields, then one block of
   per-recipient fields each, in the order of the RFC 3464 §2.2/§2.3 grammar;
3. the returned content: ``message/rfc822`` (the whole message) or
   ``text/rfc822-headers`` (its header section only, RFC 6522 §4), chosen by
   RET (RFC 3461 §4.3) and the size limit, as Postfix's bounce_size_limit.
When any address is non-ASCII (SMTPUTF8 mail), parts 2 and 3 use the RFC 6533
types instead: ``message/global-delivery-status`` with ``utf-8`` addresses,
``message/global`` or ``message/global-headers``.

Invariants of the output:
- every CR and LF is part of a CRLF pair; the original's LF, CR and CRLF line
  ends all become CRLF;
- every line this module writes is at most 998 octets (RFC 5322 §2.1.1);
  lines of the returned original are kept as they were stored;
- text from outside (remote replies, addresses, names) never carries a line
  break or control character into a field: each is removed or escaped, so a
  hostile reply cannot add fields or blocks;
- the boundary occurs nowhere in the parts it separates (RFC 2046 §5.1.1);
- at most ``size_limit + 1`` octets of the original are held at once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from textwrap import wrap
from typing import Final, Literal, Protocol, TypeAlias

from postoffice.core.address import Address
from postoffice.core.envelope import Notify, OriginalRecipient, Ret
from postoffice.mime.sections import to_crlf

DsnAction: TypeAlias = Literal["failed", "delayed", "delivered", "relayed", "expanded"]

ACTIONS: Final = ("failed", "delayed", "delivered", "relayed", "expanded")
_CHUNK: Final = 64 * 1024
_FOLD_AT: Final = 78  # RFC 5322 §2.1.1: lines SHOULD be no longer than 78 characters
_MAX_WORD: Final = 900  # a word longer than this is split, so no line passes 998 octets
_TEXT_WIDTH: Final = 72
_MAX_DIAGNOSTIC: Final = 16 * 1024  # characters of a remote reply kept (DESIGN.md §5 bounds)
# RFC 3463 §2: class "." subject "." detail; only 2, 4 and 5 are classes.
_STATUS: Final = re.compile(r"[245]\.[0-9]{1,3}\.[0-9]{1,3}")
# Control characters, lone surrogates and Unicode line/paragraph separators.
_UNSAFE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029]")
_LINE_BREAK: Final = re.compile(r"\r\n|\r|\n")
# RFC 2046 §5.1.1 bchars without space (kept out so no quoting trouble arises).
_NOT_BCHAR: Final = re.compile(r"[^0-9A-Za-z'()+_,./:=?-]")
_SUBJECTS: Final = {
    "failed": "Undelivered Mail Returned to Sender",
    "delayed": "Delayed Mail (still being retried)",
    "success": "Successful Mail Delivery Report",
}
_EXPLANATIONS: Final = {
    "failed": "Your message could not be delivered to the recipients below. The mail "
    "system has stopped trying; sending it again will not help until the problem "
    "shown for each recipient is put right.",
    "delayed": "Your message has not reached the recipients below yet. This is only a "
    "warning: the mail system is still trying, so there is no need to send the "
    "message again. You will hear from it again only if it gives up.",
    "delivered": "Your message was delivered to the recipients below; you asked to be "
    "told when that happened.",
    "relayed": "Your message was passed on for the recipients below to a mail system "
    "that does not report on delivery, so you will get no further report for them.",
    "expanded": "Your message reached the lists or aliases below, which passed it on "
    "to their members.",
}


class ReadableBytes(Protocol):
    """What ``build_dsn`` needs of the original (a ``BinaryIO``, the queue's
    reader): ``read(n)`` gives at most ``n`` octets, ``b""`` at the end."""

    def read(self, size: int, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class DsnRecipient:
    """One recipient's outcome: the RFC 3464 §2.3 per-recipient fields."""

    final_recipient: str  # the envelope recipient delivery was attempted to
    action: DsnAction
    status: str  # RFC 3463 enhanced code, "5.1.1"
    original_recipient: OriginalRecipient | None = None  # ORCPT (RFC 3461 §4.2)
    remote_mta: str | None = None  # host name of the MTA that answered
    diagnostic: str | None = None  # its reply; lines of a multi-line reply split by "\n"
    last_attempt: float | None = None  # epoch seconds
    will_retry_until: float | None = None  # epoch seconds; written for "delayed" only


@dataclass(frozen=True, slots=True)
class DsnReport:
    """What one notification says about one queued message (RFC 3464 §2.2)."""

    reporting_mta: str  # this host's name
    queue_id: str
    arrival: float  # epoch seconds
    envid: str | None  # ENVID of MAIL FROM (RFC 3461 §4.4), decoded
    sender: Address  # the original envelope sender, who gets the notification
    recipients: tuple[DsnRecipient, ...]
    ret: Ret | None  # RFC 3461 §4.3; None: whole message when it fits, else headers
    postmaster: str  # "MAILER-DAEMON@host": the notification's From address


@dataclass(frozen=True, slots=True)
class _Returned:
    content: bytes  # CRLF lines
    headers_only: bool
    too_big: bool  # headers only because of the size limit, not because of RET=HDRS


def wants_dsn(notify: frozenset[Notify] | None, action: str) -> bool:
    """Whether a recipient's NOTIFY asks for a notification of ``action``.

    RFC 3461 §4.1: NEVER asks for none; an absent NOTIFY is taken as
    FAILURE,DELAY; "delivered", "relayed" and "expanded" are success reports,
    sent only on SUCCESS (RFC 3461 §6.2).
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown DSN action {action!r}")
    if notify is not None and Notify.NEVER in notify:
        return False
    if action == "failed":
        return notify is None or Notify.FAILURE in notify
    if action == "delayed":
        return notify is None or Notify.DELAY in notify
    return notify is not None and Notify.SUCCESS in notify


def build_dsn(
    report: DsnReport,
    original: ReadableBytes,
    *,
    now: float,
    message_id: str,
    size_limit: int = 50_000,
    original_size: int | None = None,
) -> bytes:
    """The complete notification, CRLF line ends, to be queued with sender ``<>``
    (RFC 3461 §6.1, RFC 5321 §4.5.5).

    ``original`` is read from its current position, at most ``size_limit + 1``
    octets. ``original_size``, when the caller knows it (the queue does), decides
    "too big" without reading; a stream longer than ``size_limit`` is too big
    whatever it says. Raises ``ValueError`` for a report with no recipients, an
    unknown action or a malformed status code.
    """
    _check(report)
    returned = _read_original(original, report.ret, size_limit, original_size)
    international = _is_international(report)
    human = _human_text(report, returned, size_limit).encode("utf-8")
    status = _status_text(report, international).encode("utf-8")
    if international:
        status_type = "message/global-delivery-status"
        returned_type = "message/global-headers" if returned.headers_only else "message/global"
    else:
        status_type = "message/delivery-status"
        returned_type = "text/rfc822-headers" if returned.headers_only else "message/rfc822"
    kind = _kind(report)
    description = "Undelivered message" if kind == "failed" else "Original message"
    description += " headers" if returned.headers_only else ""
    parts = [
        ("Notification", "text/plain; charset=utf-8", human),
        ("Delivery report", status_type, status),
        (description, returned_type, returned.content),
    ]
    boundary = _boundary(message_id, [body for _, _, body in parts])
    report_type = status_type.removeprefix("message/")
    out = [
        _field("From", f"Mail Delivery System <{_clean(report.postmaster)}>"),
        _field("To", f"<{_clean(str(report.sender))}>"),
        _field("Subject", _SUBJECTS[kind]),
        _field("Date", _date(now)),
        _field("Message-ID", _clean(message_id)),
        _field("Auto-Submitted", "auto-replied"),  # RFC 3834 §5
        _field("MIME-Version", "1.0"),
        f'Content-Type: multipart/report; report-type={report_type};\r\n boundary="{boundary}"\r\n',
        "\r\n",
        "This is a MIME-encapsulated delivery status notification.\r\n",
    ]
    data = bytearray("".join(out).encode("utf-8"))
    for description_text, content_type, body in parts:
        data += f"\r\n--{boundary}\r\n".encode()
        data += _field("Content-Description", description_text).encode()
        data += _field("Content-Type", content_type).encode()
        encoding = "7bit" if body.isascii() else "8bit"
        data += _field("Content-Transfer-Encoding", encoding).encode()
        data += b"\r\n" + body
    data += f"\r\n--{boundary}--\r\n".encode()
    return bytes(data)


def _check(report: DsnReport) -> None:
    if not report.recipients:
        raise ValueError("a delivery status notification needs at least one recipient")
    for recipient in report.recipients:
        if recipient.action not in ACTIONS:
            raise ValueError(f"unknown DSN action {recipient.action!r}")
        if not _STATUS.fullmatch(recipient.status):
            raise ValueError(f"malformed status code {recipient.status!r} (RFC 3463 §2)")


def _kind(report: DsnReport) -> str:
    """Which subject the report gets: any failure wins, then any delay."""
    actions = {recipient.action for recipient in report.recipients}
    return next((kind for kind in ("failed", "delayed") if kind in actions), "success")


def _is_international(report: DsnReport) -> bool:
    """RFC 6533 §3: a non-ASCII address needs the ``utf-8`` address type."""
    texts = [str(report.sender)]
    for recipient in report.recipients:
        orcpt = recipient.original_recipient
        if orcpt is not None and orcpt.addr_type.strip().lower() == "utf-8":
            return True
        texts += [recipient.final_recipient, orcpt.address if orcpt else ""]
    return not all(text.isascii() for text in texts)


# -- the returned content ------------------------------------------------------


def _read_original(
    original: ReadableBytes, ret: Ret | None, size_limit: int, original_size: int | None
) -> _Returned:
    """Read what is returned: the whole message when RET allows and it fits,
    else its header section (RFC 3461 §4.3, RFC 6522 §4), cut to ``size_limit``."""
    known_big = original_size is not None and original_size > size_limit
    headers_wanted = ret is Ret.HDRS or known_big
    data = _read_at_most(original, size_limit + 1, stop_at_blank_line=headers_wanted)
    too_big = known_big or len(data) > size_limit
    text = to_crlf(data)
    if text and not text.endswith(b"\r\n"):
        text += b"\r\n"
    if ret is not Ret.HDRS and not too_big:
        return _Returned(text, headers_only=False, too_big=False)
    # The header section ends with the first empty line (RFC 5322 §2.1); a
    # message without one is all header.
    if text.startswith(b"\r\n"):
        header = b"\r\n"
    else:
        blank = text.find(b"\r\n\r\n")
        header = text if blank < 0 else text[: blank + 4]
    if len(header) > size_limit:  # cut at the last line end that fits
        line_end = header.rfind(b"\r\n", 0, size_limit)
        header = header[: line_end + 2] if line_end >= 0 else b""
    return _Returned(header, headers_only=True, too_big=too_big and ret is not Ret.HDRS)


def _read_at_most(stream: ReadableBytes, limit: int, *, stop_at_blank_line: bool) -> bytes:
    """Up to ``limit`` octets, in chunks; with ``stop_at_blank_line``, stop once
    the header section is complete (two line ends in a row, as ``to_crlf`` reads
    them: LF LF, LF CR or CR CR)."""
    buffer = bytearray()
    while len(buffer) < limit:
        chunk = stream.read(min(_CHUNK, limit - len(buffer)))
        if not chunk:
            break
        searched_from = max(0, len(buffer) - 1)
        buffer += chunk
        if stop_at_blank_line and any(
            buffer.find(pair, searched_from) >= 0 for pair in (b"\n\n", b"\n\r", b"\r\r")
        ):
            break
    return bytes(buffer)


# -- part 1: for a person --------------------------------------------------------


def _human_text(report: DsnReport, returned: _Returned, size_limit: int) -> str:
    """Paragraphs of plain words, wrapped at 72 characters; a recipient's
    paragraph is indented after its first line, as in a list."""
    host = _clean(report.reporting_mta)
    paragraphs = [(f"This is the mail system at host {host}.", "")]
    for action in ACTIONS:
        recipients = [r for r in report.recipients if r.action == action]
        if recipients:
            paragraphs.append((_EXPLANATIONS[action], ""))
            paragraphs.extend((_recipient_line(r), "    ") for r in recipients)
    if returned.too_big:
        returned_note = (
            f"Your message is larger than the limit of {size_limit} octets for "
            "returned mail, so only its headers are attached."
        )
    elif returned.headers_only:
        returned_note = "As you asked, only the headers of your message are attached."
    else:
        returned_note = "Your message is attached."
    paragraphs.append((returned_note, ""))
    paragraphs.append((f"If you ask the postmaster of {host} for help, include this report.", ""))
    lines: list[str] = []
    for text, indent in paragraphs:
        lines.extend(wrap(text, _TEXT_WIDTH, subsequent_indent=indent))
        lines.append("")
    return "\r\n".join(lines)


def _recipient_line(recipient: DsnRecipient) -> str:
    who = f"<{_clean(recipient.final_recipient)}>"
    orcpt = recipient.original_recipient
    if orcpt is not None and orcpt.address.lower() != recipient.final_recipient.lower():
        who += f" (originally addressed to <{_clean(orcpt.address)}>)"
    diagnostic = _clean((recipient.diagnostic or "")[:_MAX_DIAGNOSTIC])
    if diagnostic and recipient.remote_mta:
        detail = f"host {_clean(recipient.remote_mta)} said: {diagnostic}"
    elif diagnostic:
        detail = diagnostic
    else:
        detail = f"status {recipient.status}"
    if recipient.action == "delayed" and recipient.will_retry_until is not None:
        detail += f" (the mail system keeps trying until {_date(recipient.will_retry_until)})"
    return f"{who}: {detail}"


# -- part 2: for a program (RFC 3464 §2.1) ---------------------------------------


def _status_text(report: DsnReport, international: bool) -> str:
    ascii_only = not international  # message/delivery-status is US-ASCII text
    fields: list[str] = []
    if report.envid is not None:  # RFC 3464 §2.2.1
        fields.append(_field("Original-Envelope-Id", _clean(report.envid, ascii_only)))
    fields.append(_field("Reporting-MTA", f"dns; {_clean(report.reporting_mta, ascii_only)}"))
    fields.append(_field("Arrival-Date", _date(report.arrival)))  # RFC 3464 §2.2.5
    fields.append(_field("X-Postoffice-Queue-ID", _clean(report.queue_id, ascii_only)))
    blocks = ["".join(fields)]
    for recipient in report.recipients:
        blocks.append("".join(_recipient_fields(recipient, ascii_only)))
    return "\r\n".join(blocks)  # RFC 3464 §2.1: blocks are separated by an empty line


def _recipient_fields(recipient: DsnRecipient, ascii_only: bool) -> list[str]:
    fields: list[str] = []
    orcpt = recipient.original_recipient
    if orcpt is not None:  # RFC 3464 §2.3.1: only when ORCPT was given
        fields.append(_field("Original-Recipient", _typed_address(orcpt.addr_type, orcpt.address)))
    final = _typed_address("rfc822", recipient.final_recipient)  # RFC 3464 §2.3.2
    fields.append(_field("Final-Recipient", final))
    fields.append(_field("Action", recipient.action))  # RFC 3464 §2.3.3
    fields.append(_field("Status", recipient.status))  # RFC 3464 §2.3.4
    if recipient.remote_mta:  # RFC 3464 §2.3.5
        fields.append(_field("Remote-MTA", f"dns; {_clean(recipient.remote_mta, ascii_only)}"))
    if recipient.diagnostic:  # RFC 3464 §2.3.6; each reply line on its own line
        reply = recipient.diagnostic[:_MAX_DIAGNOSTIC]
        lines = [_clean(line, ascii_only) for line in _LINE_BREAK.split(reply)]
        kept = [line for line in lines if line]
        if kept:
            kept[0] = f"smtp; {kept[0]}"
            fields.append(_field("Diagnostic-Code", kept))
    if recipient.last_attempt is not None:  # RFC 3464 §2.3.7
        fields.append(_field("Last-Attempt-Date", _date(recipient.last_attempt)))
    if recipient.action == "delayed" and recipient.will_retry_until is not None:
        fields.append(_field("Will-Retry-Until", _date(recipient.will_retry_until)))  # §2.3.9
    return fields


def _typed_address(addr_type: str, address: str) -> str:
    """``type; address``: ``utf-8`` with the unitext form for a non-ASCII address
    (RFC 6533 §3), else the given type with the address as it is (cleaned)."""
    kind = re.sub(r"[^A-Za-z0-9-]", "", addr_type).lower() or "rfc822"
    if kind == "utf-8" or not address.isascii():
        return f"utf-8; {_unitext(address)}"
    return f"{kind}; {_clean(address, ascii_only=True)}"


def _unitext(address: str) -> str:
    """RFC 6533 §3 utf-8-addr-unitext: QUCHAR as it is; controls, space, "\\",
    "+", "=" and unprintable characters as EmbeddedUnicodeChar ``\\x{HEX}``."""
    out = []
    for char in address:
        code = ord(char)
        printable_ascii = 0x21 <= code <= 0x7E and char not in "\\+="  # QCHAR
        if printable_ascii or (code >= 0x80 and char.isprintable()):
            out.append(char)
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\x{FFFD}")  # a lone surrogate has no code point to name
        else:
            out.append(f"\\x{{{code:02X}}}")
    return "".join(out)


# -- shared helpers ----------------------------------------------------------------


def _clean(text: str, ascii_only: bool = False) -> str:
    """One line of safe text: control characters and line breaks become spaces,
    runs of white space one space; with ``ascii_only`` non-ASCII becomes "?"."""
    text = _UNSAFE.sub(" ", text)
    if ascii_only:
        text = "".join(char if char.isascii() else "?" for char in text)
    return " ".join(text.split())


def _field(name: str, value: str | Sequence[str]) -> str:
    """``Name: value`` CRLF, folded at spaces (RFC 5322 §2.2.3) so that lines stay
    near 78 octets and never pass 998. Each item of a sequence value starts a
    new continuation line. Values must already be cleaned."""
    segments = [value] if isinstance(value, str) else list(value)
    lines = [f"{name}:"]
    for index, segment in enumerate(segments):
        fresh = index > 0
        for word in segment.split():
            for piece in _split_word(word):
                candidate = f"{lines[-1]} {piece}"
                too_long = len(candidate.encode("utf-8")) > _FOLD_AT and lines[-1] != f"{name}:"
                if fresh or too_long:
                    lines.append(f" {piece}")
                    fresh = False
                else:
                    lines[-1] = candidate
    return "\r\n".join(lines) + "\r\n"


def _split_word(word: str) -> list[str]:
    """A word cut into pieces of at most ``_MAX_WORD`` octets (only absurd words are)."""
    pieces: list[str] = []
    start = size = 0
    for index, char in enumerate(word):
        octets = len(char.encode("utf-8"))
        if size + octets > _MAX_WORD:
            pieces.append(word[start:index])
            start, size = index, 0
        size += octets
    return [*pieces, word[start:]]


def _date(epoch: float) -> str:
    """RFC 5322 §3.3 date-time in UTC (``+0000``), as RFC 3464 §2.2.5 asks."""
    return format_datetime(datetime.fromtimestamp(epoch, UTC))


def _boundary(message_id: str, bodies: Sequence[bytes]) -> str:
    """A boundary made from the Message-ID and a counter, the first that occurs in
    none of the parts (RFC 2046 §5.1.1). "=_" cannot start a quoted-printable or
    base64 line, so encoded content never contains it."""
    stem = _NOT_BCHAR.sub(".", message_id.strip("<> "))[:48] or "dsn"
    counter = 0
    while True:
        boundary = f"=_dsn.{stem}.{counter}"
        if not any(boundary.encode("ascii") in body for body in bodies):
            return boundary
        counter += 1
