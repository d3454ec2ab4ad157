"""The store's public interface: value types, change events and the ``MailStore`` protocol.

Every store implementation (Maildir and mbox today, PostgreSQL later) offers
the ``MailStore`` protocol; protocol servers (IMAP, POP3) and local delivery
program against it and nothing else.

Semantics follow IMAP (RFC 3501, RFC 9051) because IMAP is the most demanding
client:
- UIDs are strictly ascending within a mailbox and never reused while its
  UIDVALIDITY stays the same (RFC 3501 §2.3.1.1).
- Every change to a message (arrival, flag change, expunge) gets a new,
  higher MODSEQ; HIGHESTMODSEQ is the largest one given (RFC 7162 §3.1).
- ``store_flags_if_unchanged`` is IMAP's conditional STORE (RFC 7162 §3.1.3):
  each message's MODSEQ is compared with the limit and changed, or not, in
  one index transaction under the user's lock, so no change made meanwhile
  by another session or process slips between the test and the change.
- Expunged UIDs are remembered with the MODSEQ of their expunge, the newest
  100,000 per mailbox (``vanished_since``, for RFC 7162 §3.2 QRESYNC).
- ``size`` is the number of octets returned by ``read`` for the whole message,
  which is exactly what was appended (RFC 3501 §2.3.4 RFC822.SIZE).
- Flags are the five storable system flags; keywords are IMAP atoms kept as
  given (RFC 3501 §2.3.2). ``\\Recent`` is not stored (IMAP4rev2 drops it).
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from postoffice.core.errors import StoreError
from postoffice.store.fileio import MessageSource

# RFC 3501 §2.3.2 system flags (``\Recent`` excluded: it is session state).
SEEN = "\\Seen"
ANSWERED = "\\Answered"
FLAGGED = "\\Flagged"
DELETED = "\\Deleted"
DRAFT = "\\Draft"
SYSTEM_FLAGS: tuple[str, ...] = (ANSWERED, DELETED, DRAFT, FLAGGED, SEEN)
FLAG_BITS: dict[str, int] = {flag: 1 << i for i, flag in enumerate(SYSTEM_FLAGS)}
SEEN_BIT = FLAG_BITS[SEEN]
DELETED_BIT = FLAG_BITS[DELETED]
_FLAG_BY_FOLDED = {flag.lower(): flag for flag in SYSTEM_FLAGS}

# RFC 6154 §2 special-use attributes.
SPECIAL_USES: tuple[str, ...] = (
    "\\All",
    "\\Archive",
    "\\Drafts",
    "\\Flagged",
    "\\Junk",
    "\\Sent",
    "\\Trash",
)
_SPECIAL_BY_FOLDED = {use.lower(): use for use in SPECIAL_USES}
# RFC 3501 §9 atom: no atom-specials, and keywords may not start with "\".
_KEYWORD = re.compile(r"[!#$&'+,\-./0-9:;<=>?@A-Z^_`a-z|~]{1,100}")


class FlagMode(enum.Enum):
    """How ``store_flags`` combines the given flags with the present ones (RFC 3501 §6.4.6)."""

    ADD = "add"
    REMOVE = "remove"
    REPLACE = "replace"


@dataclass(frozen=True, slots=True)
class MailboxInfo:
    """One entry of ``list_mailboxes``.

    ``selectable`` is False for a name that exists only because a mailbox
    below it exists (IMAP ``\\Noselect``, RFC 3501 §7.2.2).
    """

    name: str
    special_use: str | None
    subscribed: bool
    has_children: bool
    selectable: bool = True


@dataclass(frozen=True, slots=True)
class MailboxStatus:
    """``status(name)``: the figures of IMAP STATUS (RFC 3501 §6.3.10, RFC 9051 §6.3.11)."""

    name: str
    messages: int
    unseen: int
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    size: int


@dataclass(frozen=True, slots=True)
class MailboxVersion:
    """``version(name)``: what tells whether a mailbox changed, without its totals.

    Every change to a mailbox (an append, an expunge, a flag change, one found
    on disk) takes a new MODSEQ, so ``highestmodseq`` moves with each; a new
    ``uidvalidity`` means the mailbox was reset.
    """

    uidvalidity: int
    uidnext: int
    highestmodseq: int


@dataclass(frozen=True, slots=True)
class MessageFile:
    """``message_files``: a message stored as one whole file that never changes
    (Maildir), by its path and size; a reader may open it without the index.

    A flag change renames the file and an expunge removes it, so the path may
    be gone by the time it is opened (never another message's: Maildir base
    names are unique); the reader then asks the store again.
    """

    path: str
    size: int


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """What the index knows about one message; ``internal_date`` is timezone-aware (UTC)."""

    uid: int
    flags: frozenset[str]
    keywords: frozenset[str]
    internal_date: datetime
    size: int
    modseq: int


@dataclass(frozen=True, slots=True)
class ConditionalStoreResult:
    """``store_flags_if_unchanged``: ``stored`` holds the messages the change was made
    to (their new state; one the change left as it was is there too), ``modified``
    those whose MODSEQ was above the limit, left untouched (their present state);
    both in UID order. A UID that names no message is in neither."""

    stored: list[MessageInfo]
    modified: list[MessageInfo]


@dataclass(frozen=True, slots=True)
class ExpungedSince:
    """``vanished_since``: the UIDs expunged after a MODSEQ, ascending. ``complete``
    is False when the store forgot expunges that old (it keeps many, not all):
    then other UIDs below UIDNEXT that name no message may have vanished too."""

    uids: list[int]
    complete: bool


@dataclass(frozen=True, slots=True)
class MailboxChanges:
    """``changed_since(name, modseq)``: what a session that saw the mailbox at
    ``modseq`` needs to catch up. ``changed``: the messages changed or added after
    it, in UID order. ``expunged``: the UIDs expunged after it, when the store
    remembers all of them (``ExpungedSince.complete``); otherwise None, and
    ``uids`` holds every UID the mailbox has now, to compare with."""

    changed: list[MessageInfo]
    expunged: list[int] | None
    uids: list[int] | None = None


class ChangeKind(enum.Enum):
    """What happened, for the change feed (it drives IMAP IDLE and NOTIFY)."""

    APPENDED = "appended"  # a new message: uid, modseq
    FLAGS = "flags"  # flags or keywords changed: uid, modseq, flags, keywords
    EXPUNGED = "expunged"  # a message is gone: uid, modseq
    RESET = "reset"  # UIDVALIDITY changed: every UID the watcher knew is void
    CREATED = "created"  # a mailbox was created
    DELETED = "deleted"  # a mailbox was deleted
    RENAMED = "renamed"  # a mailbox was renamed to ``new_name``
    OVERFLOW = "overflow"  # the watcher fell behind and events were dropped: re-read


@dataclass(frozen=True, slots=True)
class Change:
    """One change-feed event. ``uid``/``modseq`` are 0 where they do not apply."""

    kind: ChangeKind
    mailbox: str
    uid: int = 0
    modseq: int = 0
    flags: frozenset[str] = field(default_factory=frozenset)
    keywords: frozenset[str] = field(default_factory=frozenset)
    new_name: str | None = None


def flag_bits(flags: Iterable[str]) -> int:
    """System flag names (case-insensitive, RFC 3501 §2.3.2) to a bit set; others raise."""
    bits = 0
    for flag in flags:
        known = _FLAG_BY_FOLDED.get(flag.lower()) if isinstance(flag, str) else None
        if known is None:
            raise StoreError(f"{flag!r} is not a storable system flag")
        bits |= FLAG_BITS[known]
    return bits


@functools.cache
def flags_of(bits: int) -> frozenset[str]:
    """The inverse of ``flag_bits``."""
    return frozenset(flag for flag, bit in FLAG_BITS.items() if bits & bit)


def keyword_set(keywords: Iterable[str]) -> frozenset[str]:
    """Validate IMAP keywords (atoms not starting with a backslash)."""
    result: set[str] = set()
    for keyword in keywords:
        if not isinstance(keyword, str) or not _KEYWORD.fullmatch(keyword):
            raise StoreError(f"{keyword!r} is not a valid keyword (an IMAP atom)")
        result.add(keyword)
    return frozenset(result)


def special_use(value: str | None) -> str | None:
    """Canonical RFC 6154 special-use attribute, or ``StoreError``."""
    if value is None:
        return None
    known = _SPECIAL_BY_FOLDED.get(value.lower())
    if known is None:
        raise StoreError(f"{value!r} is not a special-use attribute (RFC 6154)")
    return known


class ChangeFeed(Protocol):
    """A subscription to changes: iterate it; ``close()`` (or ``async with``) ends it."""

    def __aiter__(self) -> AsyncIterator[Change]: ...

    async def __anext__(self) -> Change: ...

    def close(self) -> None: ...


class MailStore(Protocol):
    """The async interface to one user's mailboxes (see the module docstring)."""

    async def list_mailboxes(self) -> list[MailboxInfo]: ...

    async def create_mailbox(
        self, name: str, special_use: str | None = None, *, parent: bool = False
    ) -> None: ...

    async def delete_mailbox(self, name: str) -> None: ...

    async def rename_mailbox(self, old: str, new: str) -> None: ...

    async def subscribe(self, name: str) -> None: ...

    async def unsubscribe(self, name: str) -> None: ...

    async def subscriptions(self) -> list[str]: ...

    async def status(self, name: str, *, sync: bool = True) -> MailboxStatus: ...

    async def version(self, name: str, *, sync: bool = True) -> MailboxVersion: ...

    async def messages(self, name: str, *, sync: bool = True) -> list[MessageInfo]: ...

    async def append(
        self,
        name: str,
        data: MessageSource,
        flags: Iterable[str] = (),
        keywords: Iterable[str] = (),
        internal_date: datetime | None = None,
    ) -> int: ...

    async def deliver(
        self, data: MessageSource, sender: str = "", internal_date: datetime | None = None
    ) -> int: ...

    async def read(
        self, name: str, uid: int, start: int = 0, length: int | None = None
    ) -> bytes: ...

    def iter_bytes(
        self,
        name: str,
        uid: int,
        start: int = 0,
        end: int | None = None,
        chunk_size: int = 65536,
    ) -> AsyncIterator[bytes]: ...

    async def store_flags(
        self,
        name: str,
        uids: Collection[int],
        flags: Iterable[str] = (),
        keywords: Iterable[str] = (),
        mode: FlagMode = FlagMode.ADD,
    ) -> list[MessageInfo]: ...

    async def store_flags_if_unchanged(
        self,
        name: str,
        uids: Collection[int],
        unchanged_since: int,
        flags: Iterable[str] = (),
        keywords: Iterable[str] = (),
        mode: FlagMode = FlagMode.ADD,
    ) -> ConditionalStoreResult: ...

    async def copy(self, src: str, uids: Collection[int], dst: str) -> dict[int, int]: ...

    async def move(self, src: str, uids: Collection[int], dst: str) -> dict[int, int]: ...

    async def expunge(self, name: str, uids: Collection[int] | None = None) -> list[int]: ...

    async def changed_since(self, name: str, modseq: int) -> MailboxChanges: ...

    async def vanished_since(self, name: str, modseq: int) -> ExpungedSince: ...

    async def structures(self, name: str, uids: Collection[int]) -> dict[int, bytes]: ...

    async def save_structures(self, name: str, blobs: Sequence[tuple[int, bytes]]) -> None: ...

    async def header_fields(
        self, name: str, uidvalidity: int, uids: Collection[int], fields: Iterable[str]
    ) -> dict[tuple[int, str], list[str]]: ...

    async def save_header_fields(
        self, name: str, uidvalidity: int, rows: Sequence[tuple[int, str, list[str]]]
    ) -> None: ...

    async def answer(
        self, name: str, uidvalidity: int, kind: str, digest: bytes
    ) -> bytes | None: ...

    async def save_answer(
        self, name: str, uidvalidity: int, kind: str, digest: bytes, blob: bytes
    ) -> None: ...

    def changes(self, name: str | None = None) -> ChangeFeed: ...

    async def close(self) -> None: ...
