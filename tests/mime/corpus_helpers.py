"""Helpers that write expected ENVELOPE / BODYSTRUCTURE values as RFC 3501 §9
lays them out (None = NIL, lists = parenthesised lists)."""

from __future__ import annotations

from typing import Any

NIL = None
US_ASCII = ["CHARSET", "us-ascii"]
FROM = object()  # Sender / Reply-To default to From (RFC 3501 §7.4.2)


def size(text: str | bytes) -> int:
    return len(text.encode("utf-8") if isinstance(text, str) else text)


def addr(name: Any, mailbox: Any, host: Any, adl: Any = NIL) -> list[Any]:
    return [name, adl, mailbox, host]


def env(
    date: Any = NIL,
    subject: Any = NIL,
    from_: Any = NIL,
    sender: Any = FROM,
    reply_to: Any = FROM,
    to: Any = NIL,
    cc: Any = NIL,
    bcc: Any = NIL,
    in_reply_to: Any = NIL,
    message_id: Any = NIL,
) -> list[Any]:
    sender = from_ if sender is FROM else sender
    reply_to = from_ if reply_to is FROM else reply_to
    return [date, subject, from_, sender, reply_to, to, cc, bcc, in_reply_to, message_id]


def text(
    subtype: str,
    params: Any,
    octets: int,
    lines: int,
    *,
    id: Any = NIL,
    desc: Any = NIL,
    enc: str = "7BIT",
    md5: Any = NIL,
    dsp: Any = NIL,
    lang: Any = NIL,
    loc: Any = NIL,
) -> list[Any]:
    return ["TEXT", subtype, params, id, desc, enc, octets, lines, md5, dsp, lang, loc]


def basic(
    kind: str,
    subtype: str,
    params: Any,
    octets: int,
    *,
    id: Any = NIL,
    desc: Any = NIL,
    enc: str = "7BIT",
    md5: Any = NIL,
    dsp: Any = NIL,
    lang: Any = NIL,
    loc: Any = NIL,
) -> list[Any]:
    return [kind, subtype, params, id, desc, enc, octets, md5, dsp, lang, loc]


def message_ext(
    octets: int,
    envelope: list[Any],
    body: list[Any],
    lines: int,
    *,
    subtype: str = "RFC822",
    desc: Any = NIL,
) -> list[Any]:
    """A message/rfc822 (or /global) part; none of these sets md5, dsp, lang, loc."""
    return ["MESSAGE", subtype, NIL, NIL, desc, "7BIT", octets, envelope, body, lines] + [NIL] * 4


def multi(
    children: list[list[Any]],
    subtype: str,
    params: Any,
    dsp: Any = NIL,
    lang: Any = NIL,
    loc: Any = NIL,
) -> list[Any]:
    return [*children, subtype, params, dsp, lang, loc]


def plain(octets: int, lines: int, params: Any = US_ASCII, **kw: Any) -> list[Any]:
    return text("PLAIN", params, octets, lines, **kw)


EMPTY_PART = plain(0, 0)  # the part that stands in for a multipart with none (RFC 3501 §9)

A_ORG = [addr(NIL, "a", "example.org")]
A_COM = [addr(NIL, "a", "example.com")]
S_ORG = [addr(NIL, "s", "example.org")]


def without_extensions(body: list[Any]) -> list[Any]:
    """The BODY form of an expected BODYSTRUCTURE (RFC 3501 §9: no extension data)."""
    if isinstance(body[0], list):  # multipart: children, then the subtype, then 4 extensions
        at = next(i for i, item in enumerate(body) if isinstance(item, str))
        return [*(without_extensions(child) for child in body[:at]), body[at]]
    if body[0] == "MESSAGE" and body[1] in ("RFC822", "GLOBAL"):
        return [*body[:8], without_extensions(body[8]), body[9]]
    if body[0] == "TEXT":
        return body[:8]
    return body[:7]
