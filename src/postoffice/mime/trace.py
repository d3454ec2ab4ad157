"""Trace headers: the ``Received:`` line added at acceptance, ``Return-Path:`` and
``Delivered-To:`` added at local delivery, and the loop checks that read them back.

Owns the exact bytes of those headers and the scan of a message's header
section for loop signs. Pure functions: time comes in as an argument.

Formats:
- ``Received:`` per RFC 5321 §4.4 (``from``/``by``/``with``/``id``/``for``
  clauses, then ``;`` and an RFC 5322 §3.3 date), with the protocol keyword of
  RFC 3848 (ESMTP, ESMTPS, ESMTPA, ESMTPSA) and, when TLS was used, a comment
  naming the version and cipher as Postfix writes it.
- ``Return-Path: <sender>`` per RFC 5321 §4.4 (``<>`` for the null sender).
- ``Delivered-To: address``: the de facto loop marker (Postfix, qmail).

Invariants: every header line is CRLF-terminated and folded below 998
octets (RFC 5322 §2.1.1); untrusted text (HELO names, rDNS names) is
reduced to printable ASCII without parentheses before it goes into a
comment, so a client cannot forge extra clauses or lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from postoffice.core.address import Address, fold_local
from postoffice.core.envelope import ClientInfo

MAX_TRACE_SCAN = 256 * 1024  # header octets examined for loop signs
_UNSAFE_IN_COMMENT = re.compile(r"[^\x21-\x7e]|[()\\]")


def _clean(text: str, limit: int = 200) -> str:
    """Printable ASCII without comment delimiters: safe inside ``( ... )``."""
    return _UNSAFE_IN_COMMENT.sub("?", text)[:limit]


def received_header(
    *,
    client: ClientInfo,
    by_host: str,
    queue_id: str,
    when: datetime,
    recipient: Address | None = None,
    withhold_client: bool = False,
) -> bytes:
    """The ``Received:`` header postoffice prepends at acceptance (RFC 5321 §4.4).

    ``recipient`` is named in a ``for`` clause only for single-recipient
    messages, as Postfix does, so that a message's other recipients stay private.
    ``withhold_client``: the client's HELO name, reverse name and address are
    not shown (an operator's choice for authenticated submission, where they
    say where a user is rather than which host relayed).
    """
    helo = _clean(client.helo) if client.helo else "unknown"
    if withhold_client:
        from_clause = "from authenticated-client (client details withheld)"
    elif client.address is not None:
        shown_ip = f"IPv6:{client.address}" if ":" in client.address else client.address
        rdns = _clean(client.hostname) if client.hostname else "unknown"
        from_clause = f"from {helo} ({rdns} [{shown_ip}])"
    else:
        from_clause = "from local (local submission)"
    lines = [f"Received: {from_clause}"]
    if client.tls_version:
        cipher = _clean(client.tls_cipher or "unknown")
        lines.append(f"\t(using {_clean(client.tls_version)} with cipher {cipher})")
    by = f"\tby {by_host} (postoffice) with {_clean(client.protocol)} id {queue_id}"
    if recipient is not None:
        lines.append(by)
        lines.append(f"\tfor <{recipient}>; {format_datetime(when)}")
    else:
        lines.append(f"{by}; {format_datetime(when)}")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def return_path_header(sender: Address | None) -> bytes:
    """``Return-Path: <sender>`` (RFC 5321 §4.4), ``<>`` for the null sender."""
    return f"Return-Path: <{'' if sender is None else sender}>\r\n".encode()


def delivered_to_header(recipient: Address) -> bytes:
    return f"Delivered-To: {recipient}\r\n".encode()


@dataclass(frozen=True, slots=True)
class TraceSummary:
    """What the header section says about the message's path so far."""

    received_count: int
    delivered_to: frozenset[str]  # lookup keys (``Address.key`` form) of Delivered-To values


def scan_trace(header_section: bytes) -> TraceSummary:
    """Count ``Received:`` headers and collect ``Delivered-To:`` values.

    Reads at most ``MAX_TRACE_SCAN`` octets of the header section (it ends at
    the first empty line); field names are case-insensitive (RFC 5322 §1.2.2).
    """
    received = 0
    delivered: set[str] = set()
    for raw in header_section[:MAX_TRACE_SCAN].split(b"\n"):
        line = raw.rstrip(b"\r")
        if not line:
            break
        if line[:1] in (b" ", b"\t"):
            continue  # a folded continuation of the previous field
        name, colon, value = line.partition(b":")
        if not colon:
            continue
        field_name = name.strip().lower()
        if field_name == b"received":
            received += 1
        elif field_name == b"delivered-to":
            text = value.decode("utf-8", "replace").strip()
            local, at, domain = text.rpartition("@")
            if at:
                delivered.add(f"{fold_local(local)}@{domain.lower()}")
    return TraceSummary(received, frozenset(delivered))
