"""The control file format (``qfID``): render and parse, self-validating.

sendmail keeps each queued message as a data file ``dfID`` and a control file
``qfID`` holding the envelope, one record per line (sendmail's Installation
and Operation Guide, "Queue file formats"). This module owns postoffice's
own qf text, readable with ``cat``::

    postoffice-qf 1
    id 4ZrT0b3fKq9A1x
    arrival 1700000000.25
    data-size 10240
    data-sha256 9f86d0...
    held no
    sender alice@example.test            (<> for the null reverse-path)
    smtputf8 no
    client-protocol ESMTPS
    client-helo client.example.net
    rcpt bob@example.test notify=SUCCESS,FAILURE orcpt=rfc822;bob@example.test state=pending
    rcpt carol@example.org state=deferred attempts=2 next-attempt=... remote-mta=mx.example.org
        reply=451%204.4.1%20...                              (one line in the file)
    checksum sha256 1b4f0e...

Invariants:
- The first line is the magic and format version; the last line is the
  SHA-256 of every octet before it. A file that fails either is corrupt.
- Every value is escaped (``escape``): ``%``, whitespace, controls and any
  non-printable character become ``%XX`` per UTF-8 octet, so no input (CR/LF
  in a HELO name, spaces in a quoted local part, U+2028) can end a line or
  start a token. Printable non-ASCII stays readable. Parsing accepts only
  the canonical escaped form.
- Size is bounded: ``MAX_QF_OCTETS`` for the file (1000 recipients with
  long ORCPTs fit), ``MAX_LINE_OCTETS`` per line. Larger is corrupt, and the
  renderer refuses to produce it.
- ``parse_qf`` raises only ``CorruptQueueFile`` on any input.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Callable
from typing import TypeVar

from postoffice.core.address import Address, parse_address
from postoffice.core.envelope import (
    BodyType,
    ClientInfo,
    Envelope,
    EnvelopeRecipient,
    Notify,
    OriginalRecipient,
    Ret,
)
from postoffice.core.errors import AddressError
from postoffice.queue.errors import CorruptQueueFile
from postoffice.queue.ids import QueueId, is_queue_id
from postoffice.queue.model import QueueEntry, RecipientState, RecipientStatus

MAGIC = "postoffice-qf"
VERSION = 1
MAX_QF_OCTETS = 1 << 20
MAX_LINE_OCTETS = 32 * 1024
_CHECKSUM_PREFIX = b"checksum sha256 "
_HEX64 = re.compile(rb"[0-9a-f]{64}")
_HEX64_STR = re.compile(r"[0-9a-f]{64}")
_INT = re.compile(r"0|[1-9][0-9]{0,18}")
_FLOAT = re.compile(r"-?(?:0|[1-9][0-9]{0,15})(?:\.[0-9]{1,17})?(?:e[+-]?[0-9]{1,3})?")
# Characters written as they are; everything else is %XX-escaped.
_NEEDS_ESCAPE = re.compile(r"[^\x21-\x24\x26-\x7e]")
_PERCENT_RUN = re.compile(r"(?:%[0-9A-F]{2})+")
_E = TypeVar("_E")


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    if char >= "\x80" and char.isprintable() and not char.isspace():
        return char  # readable non-ASCII (é, 日本) stays as it is
    return "".join(f"%{octet:02X}" for octet in char.encode("utf-8", "surrogatepass"))


def escape(text: str, also: str = "") -> str:
    """``text`` as one token: no whitespace, no control, no bare ``%``.

    Characters in ``also`` (ASCII separators such as ``;``) are escaped too.
    """
    escaped = _NEEDS_ESCAPE.sub(_escape_char, text)
    for char in also:
        escaped = escaped.replace(char, f"%{ord(char):02X}")
    return escaped


def _unescape_run(match: re.Match[str]) -> str:
    octets = bytes(int(match.group()[i + 1 : i + 3], 16) for i in range(0, len(match.group()), 3))
    return octets.decode("utf-8", "surrogatepass")


def unescape(token: str, also: str = "") -> str:
    """The inverse of ``escape``; only canonical tokens are accepted."""
    try:
        text = _PERCENT_RUN.sub(_unescape_run, token)
    except UnicodeDecodeError as error:
        raise CorruptQueueFile(f"bad escape in {token[:80]!r}") from error
    if escape(text, also) != token:
        raise CorruptQueueFile(f"badly escaped token {token[:80]!r}")
    return text


def _float_text(value: float) -> str:
    return repr(float(value))


# ---------------------------------------------------------------- rendering


def render_qf(entry: QueueEntry) -> bytes:
    """The control file for ``entry``, checksum line included."""
    env = entry.envelope
    client = env.client
    lines = [
        f"{MAGIC} {VERSION}",
        f"id {entry.id}",
        f"arrival {_float_text(entry.arrival)}",
        f"data-size {entry.size}",
        f"data-sha256 {entry.sha256}",
        f"held {'yes' if entry.held else 'no'}",
        f"sender {'<>' if env.sender is None else escape(str(env.sender))}",
        f"smtputf8 {'yes' if env.smtputf8 else 'no'}",
    ]
    if env.body is not None:
        lines.append(f"body {env.body.value}")
    if env.ret is not None:
        lines.append(f"ret {env.ret.value}")
    if env.envid is not None:
        lines.append(f"envid {escape(env.envid)}")
    if env.declared_size is not None:
        lines.append(f"declared-size {env.declared_size}")
    if client.address is not None:
        lines.append(f"client-address {escape(client.address)}")
    if client.port is not None:
        lines.append(f"client-port {client.port}")
    for key, value in _client_fields(client):
        if value is not None:
            lines.append(f"{key} {escape(value)}")
    for recipient, status in zip(env.recipients, entry.statuses, strict=True):
        lines.append(_render_recipient(recipient, status))
    body = "".join(line + "\n" for line in lines).encode("utf-8")
    for line in lines:
        if len(line.encode("utf-8")) + 1 > MAX_LINE_OCTETS:
            raise CorruptQueueFile(f"{entry.id}: a control file line exceeds {MAX_LINE_OCTETS}")
    data = body + _CHECKSUM_PREFIX + hashlib.sha256(body).hexdigest().encode("ascii") + b"\n"
    if len(data) > MAX_QF_OCTETS:
        raise CorruptQueueFile(f"{entry.id}: control file would exceed {MAX_QF_OCTETS} octets")
    return data


def _client_fields(client: ClientInfo) -> list[tuple[str, str | None]]:
    return [
        ("client-hostname", client.hostname),
        ("client-helo", client.helo),
        ("client-protocol", client.protocol),
        ("client-tls-version", client.tls_version),
        ("client-tls-cipher", client.tls_cipher),
        ("client-auth", client.authenticated_as),
    ]


def _render_recipient(recipient: EnvelopeRecipient, status: RecipientStatus) -> str:
    tokens = ["rcpt", escape(str(recipient.address))]
    if recipient.notify is not None:
        order = [n for n in Notify if n in recipient.notify]
        tokens.append("notify=" + ",".join(n.value for n in order))
    if recipient.orcpt is not None:
        orcpt = recipient.orcpt
        tokens.append(f"orcpt={escape(orcpt.addr_type, also=';')};{escape(orcpt.address)}")
    tokens.append(f"state={status.state.value}")
    if status.attempts:
        tokens.append(f"attempts={status.attempts}")
    if status.last_attempt is not None:
        tokens.append(f"last-attempt={_float_text(status.last_attempt)}")
    if status.next_attempt is not None:
        tokens.append(f"next-attempt={_float_text(status.next_attempt)}")
    if status.delay_warned:
        tokens.append("delay-warned=yes")
    if status.remote_mta is not None:
        tokens.append(f"remote-mta={escape(status.remote_mta)}")
    if status.reply is not None:
        tokens.append(f"reply={escape(status.reply)}")
    return " ".join(tokens)


# ------------------------------------------------------------------ parsing


def verified_body(data: bytes) -> bytes:
    """The octets covered by the checksum, after checking magic, bounds and checksum."""
    if len(data) > MAX_QF_OCTETS:
        raise CorruptQueueFile(f"control file larger than {MAX_QF_OCTETS} octets")
    if not data.startswith(MAGIC.encode() + b" "):
        raise CorruptQueueFile("not a postoffice control file (bad magic)")
    if not data.endswith(b"\n"):
        raise CorruptQueueFile("truncated control file (no final newline)")
    cut = data.rfind(b"\n", 0, len(data) - 1) + 1
    body, last = data[:cut], data[cut:-1]
    if not last.startswith(_CHECKSUM_PREFIX):
        raise CorruptQueueFile("truncated control file (no checksum line)")
    digest = last[len(_CHECKSUM_PREFIX) :]
    if _HEX64.fullmatch(digest) is None:
        raise CorruptQueueFile("malformed checksum line")
    if not hmac.compare_digest(hashlib.sha256(body).hexdigest().encode("ascii"), digest):
        raise CorruptQueueFile("checksum mismatch")
    return body


def parse_qf(data: bytes, *, expected_id: str | None = None) -> QueueEntry:
    """Parse and validate a control file; raises ``CorruptQueueFile`` on any fault."""
    body = verified_body(data)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CorruptQueueFile("control file is not UTF-8") from error
    lines = text.split("\n")[:-1]
    first = lines[0]
    if first != f"{MAGIC} {VERSION}":
        raise CorruptQueueFile(f"unsupported control file version {first[len(MAGIC) + 1 :]!r}")
    fields: dict[str, str] = {}
    recipients: list[str] = []
    for number, line in enumerate(lines[1:], start=2):
        if len(line.encode("utf-8")) + 1 > MAX_LINE_OCTETS:
            raise CorruptQueueFile(f"line {number} longer than {MAX_LINE_OCTETS} octets")
        key, sep, value = line.partition(" ")
        if not sep:
            raise CorruptQueueFile(f"line {number}: no value for {key[:40]!r}")
        if key == "rcpt":
            recipients.append(value)
        elif key not in _SINGLE_FIELDS:
            raise CorruptQueueFile(f"line {number}: unknown field {key[:40]!r}")
        elif key in fields:
            raise CorruptQueueFile(f"line {number}: duplicate field {key!r}")
        else:
            fields[key] = value
    try:
        return _build_entry(fields, recipients, expected_id)
    except CorruptQueueFile:
        raise
    except (ValueError, AddressError, KeyError, IndexError) as error:
        raise CorruptQueueFile(f"invalid control file: {error}") from error


_SINGLE_FIELDS = frozenset(
    {
        "id",
        "arrival",
        "data-size",
        "data-sha256",
        "held",
        "sender",
        "smtputf8",
        "body",
        "ret",
        "envid",
        "declared-size",
        "client-address",
        "client-port",
        "client-hostname",
        "client-helo",
        "client-protocol",
        "client-tls-version",
        "client-tls-cipher",
        "client-auth",
    }
)
_REQUIRED = ("id", "arrival", "data-size", "data-sha256", "held", "sender", "smtputf8")


def _required(fields: dict[str, str], key: str) -> str:
    if key not in fields:
        raise CorruptQueueFile(f"missing field {key!r}")
    return fields[key]


def _parse_int(text: str, what: str) -> int:
    if _INT.fullmatch(text) is None:
        raise CorruptQueueFile(f"{what}: not a number: {text[:40]!r}")
    return int(text)


def _parse_float(text: str, what: str) -> float:
    if _FLOAT.fullmatch(text) is None:
        raise CorruptQueueFile(f"{what}: not a time: {text[:40]!r}")
    value = float(text)
    if not math.isfinite(value):
        raise CorruptQueueFile(f"{what}: not finite")
    return value


def _parse_bool(text: str, what: str) -> bool:
    if text not in ("yes", "no"):
        raise CorruptQueueFile(f"{what}: expected yes or no, not {text[:40]!r}")
    return text == "yes"


def _parse_address(token: str) -> Address:
    text = unescape(token)
    address = parse_address(text)
    if str(address) != text:
        raise CorruptQueueFile(f"address {text[:80]!r} is not in canonical form")
    return address


def _optional(fields: dict[str, str], key: str) -> str | None:
    return unescape(fields[key]) if key in fields else None


def _optional_enum(fields: dict[str, str], key: str, kind: Callable[[str], _E]) -> _E | None:
    return kind(fields[key]) if key in fields else None


def _build_entry(
    fields: dict[str, str], recipients: list[str], expected_id: str | None
) -> QueueEntry:
    for key in _REQUIRED:
        _required(fields, key)
    queue_id = fields["id"]
    if not is_queue_id(queue_id):
        raise CorruptQueueFile(f"malformed queue id {queue_id[:40]!r}")
    if expected_id is not None and queue_id != expected_id:
        raise CorruptQueueFile(f"control file names {queue_id}, not {expected_id}")
    if _HEX64_STR.fullmatch(fields["data-sha256"]) is None:
        raise CorruptQueueFile("malformed data-sha256")
    if not recipients:
        raise CorruptQueueFile("no recipients")
    sender_text = fields["sender"]
    sender = None if sender_text == "<>" else _parse_address(sender_text)
    client = ClientInfo(
        address=_optional(fields, "client-address"),
        port=_parse_int(fields["client-port"], "client-port") if "client-port" in fields else None,
        hostname=_optional(fields, "client-hostname"),
        helo=_optional(fields, "client-helo"),
        protocol=unescape(fields.get("client-protocol", "ESMTP")),
        tls_version=_optional(fields, "client-tls-version"),
        tls_cipher=_optional(fields, "client-tls-cipher"),
        authenticated_as=_optional(fields, "client-auth"),
    )
    parsed = [_parse_recipient(value) for value in recipients]
    envelope = Envelope(
        sender=sender,
        recipients=tuple(recipient for recipient, _ in parsed),
        body=_optional_enum(fields, "body", BodyType),
        smtputf8=_parse_bool(fields["smtputf8"], "smtputf8"),
        ret=_optional_enum(fields, "ret", Ret),
        envid=_optional(fields, "envid"),
        declared_size=(
            _parse_int(fields["declared-size"], "declared-size")
            if "declared-size" in fields
            else None
        ),
        client=client,
    )
    return QueueEntry(
        id=QueueId(queue_id),
        envelope=envelope,
        arrival=_parse_float(fields["arrival"], "arrival"),
        size=_parse_int(fields["data-size"], "data-size"),
        sha256=fields["data-sha256"],
        statuses=tuple(status for _, status in parsed),
        held=_parse_bool(fields["held"], "held"),
    )


_RCPT_ATTRS = frozenset(
    {
        "notify",
        "orcpt",
        "state",
        "attempts",
        "last-attempt",
        "next-attempt",
        "delay-warned",
        "remote-mta",
        "reply",
    }
)


def _parse_recipient(value: str) -> tuple[EnvelopeRecipient, RecipientStatus]:
    tokens = value.split(" ")
    address = _parse_address(tokens[0])
    attrs: dict[str, str] = {}
    for token in tokens[1:]:
        name, sep, attr = token.partition("=")
        if not sep or name not in _RCPT_ATTRS:
            raise CorruptQueueFile(f"recipient attribute {token[:40]!r} unknown")
        if name in attrs:
            raise CorruptQueueFile(f"recipient attribute {name!r} repeated")
        attrs[name] = attr
    notify: frozenset[Notify] | None = None
    if "notify" in attrs:
        words = attrs["notify"].split(",") if attrs["notify"] else []
        notify = frozenset(Notify(word) for word in words)
    orcpt = None
    if "orcpt" in attrs:
        addr_type, sep, orcpt_address = attrs["orcpt"].partition(";")
        if not sep:
            raise CorruptQueueFile("orcpt without ';'")
        orcpt = OriginalRecipient(unescape(addr_type, also=";"), unescape(orcpt_address))
    if "state" not in attrs:
        raise CorruptQueueFile("recipient without state")
    status = RecipientStatus(
        state=RecipientState(attrs["state"]),
        attempts=_parse_int(attrs["attempts"], "attempts") if "attempts" in attrs else 0,
        last_attempt=(
            _parse_float(attrs["last-attempt"], "last-attempt") if "last-attempt" in attrs else None
        ),
        next_attempt=(
            _parse_float(attrs["next-attempt"], "next-attempt") if "next-attempt" in attrs else None
        ),
        reply=unescape(attrs["reply"]) if "reply" in attrs else None,
        delay_warned=(
            _parse_bool(attrs["delay-warned"], "delay-warned") if "delay-warned" in attrs else False
        ),
        remote_mta=unescape(attrs["remote-mta"]) if "remote-mta" in attrs else None,
    )
    return EnvelopeRecipient(address=address, notify=notify, orcpt=orcpt), status
