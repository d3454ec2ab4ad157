"""Header and body text for IMAP SEARCH (RFC 3501 §6.4.4, RFC 9051 §6.4.4):
decoded header values, the sent date, and the searchable body text.

Owns ``header_values``, ``header_date`` (``first_date`` on values) and ``decoded_text``; re-exports
``decode_transfer`` (BINARY fetch, RFC 3516) from ``decoding``.

RFC 3501 §6.4.4: "[MIME-IMB] content transfer encodings, and [MIME-HDRS]
strings in [RFC-2822]/[MIME-IMB] headers, MUST be decoded before comparing
text in a [CHARSET] other than US-ASCII." So values here are RFC 2047 decoded,
bodies transfer-decoded and charset-decoded. Nothing here raises on malformed
mail; the body walk is iterative and stops at ``limit`` characters.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from postoffice.mime.dates import date_timestamp, parse_date
from postoffice.mime.decoding import (
    HeaderBlock,
    decode_charset,
    decode_transfer,
    decode_words,
    field_value,
    scan_header,
)
from postoffice.mime.structure import Part

__all__ = [
    "block_values",
    "decode_transfer",
    "decoded_text",
    "first_date",
    "first_timestamp",
    "header_date",
    "header_values",
    "header_values_of",
]

# Date: values read, kept (``first_date``): a SEARCH SENTBEFORE reads every
# message's date each time. A plain dict, emptied when full: the cache of
# ``functools.lru_cache`` cost more than reading a date (``mime.dates``) did.
DATE_CACHE_SIZE = 100_000
_DATES: dict[str, datetime | None] = {}
_UNREAD = datetime.min
_MAX_OCTETS_PER_CHAR = 16  # QP (3 octets per octet) of a 4-octet character, with room


def header_values(data: bytes, part: Part, name: str) -> list[str]:
    """The value of every field ``name`` (case-insensitive) in the header of
    ``part``, in order: unfolded, stripped, RFC 2047 words decoded, raw 8-bit
    text read as UTF-8 (malformed octets become U+FFFD)."""
    wanted = name.strip().lower()
    return header_values_of(data, part.start, part.body_start, (wanted,))[wanted]


def header_values_of(
    data: bytes, start: int, body_start: int, names: Iterable[str]
) -> dict[str, list[str]]:
    """``header_values`` of each of ``names`` (lower-case) in the header at
    ``[start, body_start)`` of ``data`` (a part's), from one scan of it: every
    name gets an entry, an empty list when it has no field."""
    return block_values(data, scan_header(data, start, body_start), names)


def block_values(data: bytes, block: HeaderBlock, names: Iterable[str]) -> dict[str, list[str]]:
    """``header_values_of`` a header already scanned (``block``, of ``data``)."""
    wanted = {name.encode("utf-8", "surrogateescape"): name for name in names}
    found: dict[str, list[str]] = {name: [] for name in wanted.values()}
    for field in block.fields:
        name = wanted.get(field.name)
        if name is not None:
            found[name].append(decode_words(field_value(data, field)).strip())
    return found


def header_date(data: bytes, part: Part) -> datetime | None:
    """The first Date: field (RFC 5322 §3.3, obsolete forms too) as an aware
    datetime; a date without a usable zone is taken as UTC; None if absent or
    unreadable."""
    return first_date(header_values(data, part, "date"))


def first_timestamp(values: list[str]) -> float | None:
    """``first_date(values).timestamp()`` (None for None), made without a datetime
    for the common form and not kept (``mime.dates.date_timestamp``)."""
    for value in values:
        return date_timestamp(value)
    return None


def first_date(values: list[str]) -> datetime | None:
    """The first of some Date: field values (``header_values``) as ``header_date``
    reads it; None when there is none or it is unreadable."""
    for value in values:
        when = _DATES.get(value, _UNREAD)
        if when is _UNREAD:
            if len(_DATES) >= DATE_CACHE_SIZE:
                _DATES.clear()
            when = _DATES[value] = parse_date(value)
        return when
    return None


def decoded_text(data: bytes, root: Part, limit: int) -> str:
    """The searchable text of a message body, at most ``limit`` characters.

    Each text/* leaf is decoded from its transfer encoding (an unknown one is
    read as it is) and its charset (an unknown one as UTF-8), in document
    order, joined by newlines. An encapsulated message (message/rfc822)
    contributes its decoded header fields, then its parts. Other leaves are
    skipped (RFC 3501 §6.4.4 lets SEARCH exclude them).
    """
    out: list[str] = []
    remaining = limit
    stack: list[tuple[Part, bool]] = [(root, False)]  # (entity, include its header)
    while stack and remaining > 0:
        part, with_header = stack.pop()
        texts = [_header_text(data, part)] if with_header else []
        if part.children:
            stack.extend((child, False) for child in reversed(part.children))
        elif part.message is not None:
            stack.append((part.message, True))
        elif part.type == "text":
            texts.append(_leaf_text(data, part, remaining))
        for text in texts:
            if text and remaining > 0:
                kept = text[:remaining]
                out.append(kept)
                remaining -= len(kept) + 1
    return "\n".join(out)[:limit]


def _header_text(data: bytes, part: Part) -> str:
    block = scan_header(data, part.start, part.body_start)
    lines = []
    for field in block.fields:
        if field.name:
            name = field.name.decode("utf-8", "replace")
            lines.append(f"{name}: {decode_words(field_value(data, field)).strip()}")
    return "\n".join(lines)


def _leaf_text(data: bytes, part: Part, remaining: int) -> str:
    raw = data[part.body_start : min(part.end, part.body_start + remaining * _MAX_OCTETS_PER_CHAR)]
    decoded = decode_transfer(raw, part.encoding)
    return decode_charset(raw if decoded is None else decoded, part.param("charset"))
