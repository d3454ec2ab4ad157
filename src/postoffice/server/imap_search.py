"""SEARCH: which messages of the selected mailbox match a key tree (RFC 9051 §6.4.4).

What this module owns: the meaning of each search key over one message
(its index entry, and only when a key needs them, its headers and text).
The keys come parsed from ``protocol.imap.search_keys``.

Rules (RFC 9051 §6.4.4 and RFC 3501 §6.4.4):
- string keys match a case-insensitive substring; header keys compare
  against the field's value with RFC 2047 encoded words decoded; BODY and
  TEXT against the text of the message's text parts, transfer encoding and
  charset undone (the decoding is ``mime.headers``);
- dates compare by calendar day, disregarding time and zone: BEFORE/ON/SINCE
  the internal date, SENT* the ``Date:`` header (a message without a
  readable one matches no SENT* key);
- ``*`` in a sequence set key is the last message (numbers) or its UID;
- MODSEQ n (RFC 7162 §3.1.5) matches a MODSEQ of n or more; the message has
  one MODSEQ, compared whatever flag entry the key names (§3.1.5 allows it).

Invariants: the text of one message is searched up to ``TEXT_LIMIT``
characters, so one huge message costs bounded time; a message is read at
most once per SEARCH, and only when a key needs its content. Header keys
(SUBJECT, FROM, TO, CC, BCC, HEADER, SENT*) read field values only
(``Candidate.field_values``); a key that needs nothing else
(``header_fields``) lets the caller take them from the index's kept values.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from postoffice.mime.headers import decoded_text, first_date
from postoffice.protocol.imap.search_keys import (
    AllKey,
    AndKey,
    DateKey,
    FlagKey,
    HeaderKey,
    ModSeqKey,
    NotKey,
    OrKey,
    RecentKey,
    SearchKey,
    SetKey,
    SizeKey,
    TextKey,
    leaf_keys,
)
from postoffice.protocol.imap.sequence import SavedResult
from postoffice.server.imap_fetch import MessageContent
from postoffice.store.api import MessageInfo

TEXT_LIMIT = 4 * 1024 * 1024  # characters of one message's text searched


@dataclass(slots=True)
class Candidate:
    """One message being tested; its content is read on first need."""

    number: int
    info: MessageInfo
    load: Callable[[bool], Awaitable[MessageContent]]  # load(header_only)
    last_number: int
    last_uid: int
    field_values: Callable[[str], Awaitable[list[str]]]  # one top-level header field
    saved: frozenset[int] = frozenset()  # UIDs of the saved result ($, RFC 5182)
    _content: MessageContent | None = field(default=None)

    async def content(self) -> MessageContent:
        if self._content is None or not self._content.complete:
            self._content = await self.load(False)
        return self._content


def needs_content(key: SearchKey) -> bool:
    """Whether ``key`` reads the message (a header field, the text, the sent date)."""
    return any(
        isinstance(leaf, HeaderKey | TextKey) or (isinstance(leaf, DateKey) and leaf.sent)
        for leaf in leaf_keys(key)
    )


def header_fields(key: SearchKey) -> frozenset[str] | None:
    """The header fields (lower-case names) ``key`` reads of a message; None when it
    reads more than header fields (BODY, TEXT: the message's text)."""
    found: set[str] = set()
    for leaf in leaf_keys(key):
        if isinstance(leaf, TextKey):
            return None
        if isinstance(leaf, HeaderKey):
            found.add(leaf.field.lower())
        elif isinstance(leaf, DateKey) and leaf.sent:
            found.add("date")
    return frozenset(found)


def _contains(haystack: str, needle: str) -> bool:
    return needle.casefold() in haystack.casefold()


async def matches(key: SearchKey, message: Candidate) -> bool:
    """Whether ``message`` satisfies ``key`` (cheap keys never read the message)."""
    info = message.info
    if isinstance(key, AllKey):
        return True
    if isinstance(key, FlagKey):
        have = key.flag in info.flags if key.flag.startswith("\\") else key.flag in info.keywords
        if key.flag.startswith("\\") and not have:
            have = key.flag.lower() in {f.lower() for f in info.flags}
        return have == key.present
    if isinstance(key, RecentKey):
        return not key.recent  # nothing is \Recent here (search_keys.RecentKey)
    if isinstance(key, ModSeqKey):
        return info.modseq >= key.modseq  # RFC 7162 §3.1.5: one MODSEQ per message
    if isinstance(key, SizeKey):
        return info.size > key.size if key.larger else info.size < key.size
    if isinstance(key, SetKey):
        if isinstance(key.sequence, SavedResult):
            return info.uid in message.saved
        if key.uid:
            return key.sequence.contains(info.uid, message.last_uid)
        return key.sequence.contains(message.number, message.last_number)
    if isinstance(key, DateKey):
        if key.sent:
            sent = first_date(await message.field_values("date"))  # as ``header_date``
            if sent is None:
                return False
            day = sent.date()
        else:
            day = info.internal_date.date()
        if key.relation == "BEFORE":
            return day < key.day
        if key.relation == "ON":
            return day == key.day
        return day >= key.day
    if isinstance(key, HeaderKey):
        values = await message.field_values(key.field)
        if not key.value:
            return bool(values)  # RFC 9051 §6.4.4: the empty string matches any such field
        return any(_contains(value, key.value) for value in values)
    if isinstance(key, TextKey):
        content = await message.content()
        body = decoded_text(content.data, content.root, TEXT_LIMIT)
        if _contains(body, key.value):
            return True
        if key.where == "TEXT":
            header = content.data[: content.root.body_start].decode("utf-8", "replace")
            return _contains(header, key.value)
        return False
    if isinstance(key, NotKey):
        return not await matches(key.key, message)
    if isinstance(key, OrKey):
        return await matches(key.left, message) or await matches(key.right, message)
    if isinstance(key, AndKey):
        for sub in sorted(key.keys, key=needs_content):  # cheap keys first
            if not await matches(sub, message):
                return False
        return True
    raise TypeError(f"unknown search key {key!r}")
