"""Index rows to public value types, with caches for the common, repeated values.

Listing a large mailbox builds one ``MessageInfo`` per message; flag sets and
keyword sets repeat a lot, so they are shared (they are immutable).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import UTC, datetime

from postoffice.store.api import MessageInfo, flags_of
from postoffice.store.index import MessageRow


@functools.lru_cache(maxsize=4096)
def keywords_of(text: str) -> frozenset[str]:
    """The keyword set stored as space-separated atoms."""
    return frozenset(text.split()) if text else frozenset()


def timestamp_of(when: datetime) -> float:
    """Seconds since the epoch; a naive datetime is taken as UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def message_info(row: MessageRow) -> MessageInfo:
    return MessageInfo(
        uid=row.uid,
        flags=flags_of(row.flags),
        keywords=keywords_of(row.keywords),
        internal_date=datetime.fromtimestamp(row.internal_date, UTC),
        size=row.size,
        modseq=row.modseq,
    )


def message_infos(rows: Iterable[tuple[int, int, str, float, int, int]]) -> list[MessageInfo]:
    """``MailIndex.summaries()`` rows to ``MessageInfo`` (the listing's hot loop)."""
    stamp = datetime.fromtimestamp
    return [
        MessageInfo(uid, flags_of(flags), keywords_of(words), stamp(date, UTC), size, modseq)
        for uid, flags, words, date, size, modseq in rows
    ]
