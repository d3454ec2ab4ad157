"""What a message gets when a local program or a mail client submits it.

What this module owns: the header work of message submission (RFC 6409
§8) that the ``sendmail`` command does, and later the submission service:

- ``to_crlf_lines``: a program's message with LF (or CRLF) line ends, and
  with sendmail's rule that a line of one dot ends it unless ``-i``;
- ``header_recipients``: the addresses of To, Cc and Bcc (``sendmail -t``,
  RFC 5322 §3.6.3), read with the same address parser as ENVELOPE;
- ``complete_header``: Bcc fields removed (RFC 5322 §3.6.3: their
  addresses must not reach the other recipients), and a missing From,
  Date or Message-ID added (RFC 6409 §8.1-§8.3), in front of the header;
- ``missing_date_and_id``: the same Date and Message-ID for a message that
  streams through the submission service, from its header section alone.

Invariants: only the header section is rewritten, and only by removing
whole fields or adding new ones; the body's octets are kept as they are.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from email.utils import format_datetime
from typing import Final

from postoffice.mime.decoding import scan_header
from postoffice.mime.envelope import parse_addresses
from postoffice.mime.headers import header_values
from postoffice.mime.structure import parse_structure

_RECIPIENT_FIELDS: Final = ("to", "cc", "bcc")


def to_crlf_lines(data: bytes, *, dot_ends: bool) -> bytes:
    """Lines ended by CRLF (a bare LF or CR becomes CRLF); with ``dot_ends``, a line
    holding one ``.`` ends the message (sendmail without ``-i``/``-oi``)."""
    lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    kept: list[bytes] = []
    for line in lines:
        if dot_ends and line == b".":
            break
        kept.append(line)
    return b"".join(line + b"\r\n" for line in kept)


def header_recipients(data: bytes) -> list[str]:
    """``local@domain`` of every address in To, Cc and Bcc, in order, once each."""
    return header_addresses(data, _RECIPIENT_FIELDS)


def header_senders(data: bytes) -> list[str]:
    """``local@domain`` of every author in From (RFC 5322 §3.6.2 allows several)."""
    return header_addresses(data, ("from",))


def header_addresses(data: bytes, fields: tuple[str, ...]) -> list[str]:
    """``local@domain`` of every address in the named fields, in order, once each."""
    root = parse_structure(data)
    found: dict[str, None] = {}
    for name in fields:
        for value in header_values(data, root, name):
            for address in parse_addresses(value):
                if not isinstance(address, list) or len(address) != 4:
                    continue
                mailbox, host = (_text(part) for part in address[2:4])
                if host is None or not mailbox or mailbox == "MISSING_MAILBOX":
                    continue  # a group's start or end, or no mailbox at all
                # A bare name (``To: root``) is a local user, qualified by the caller.
                found.setdefault(mailbox if host == "MISSING_DOMAIN" else f"{mailbox}@{host}", None)
    return list(found)


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def _date_and_id(present: set[bytes], hostname: str, now: datetime) -> bytes:
    """Date and Message-ID fields for those not ``present`` (RFC 6409 §8.2, §8.3)."""
    added = b""
    if b"date" not in present:
        added += f"Date: {format_datetime(now)}\r\n".encode()
    if b"message-id" not in present:
        stamp = now.strftime("%Y%m%d%H%M%S")
        added += f"Message-ID: <{stamp}.{secrets.token_hex(8)}@{hostname}>\r\n".encode()
    return added


def missing_date_and_id(header: bytes, *, hostname: str, now: datetime) -> bytes:
    """What a submission server puts in front of a message whose header section is
    ``header`` (up to and with its empty line, or all a message without one has):
    the Date and Message-ID fields it lacks (RFC 6409 §8.2, §8.3)."""
    block = scan_header(header, 0, len(header))
    return _date_and_id({field.name for field in block.fields}, hostname, now)


def complete_header(
    data: bytes,
    *,
    sender: str,
    full_name: str | None,
    hostname: str,
    now: datetime,
) -> bytes:
    """Remove Bcc; add From (with ``full_name``), Date and Message-ID where missing.
    ``data`` has CRLF line ends (``to_crlf_lines``)."""
    block = scan_header(data, 0, len(data))
    present = {field.name for field in block.fields}
    added: list[bytes] = []
    if b"from" not in present:
        shown = sender or f"MAILER-DAEMON@{hostname}"
        if full_name:
            quoted = full_name.replace("\\", "\\\\").replace('"', '\\"')
            added.append(f'From: "{quoted}" <{shown}>\r\n'.encode())
        else:
            added.append(f"From: {shown}\r\n".encode())
    added.append(_date_and_id(present, hostname, now))
    kept = b"".join(data[f.start : f.end] for f in block.fields if f.name != b"bcc")
    return b"".join(added) + kept + b"\r\n" + data[block.body_start :]
