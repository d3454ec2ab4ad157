"""What the format-independent engine asks of an on-disk format (Maildir, mbox).

A ``FolderFormat`` does file work only: it never touches the index. The
engine (``engine.py``) calls it with names already validated, under the
user lock for everything that changes disk or index, and inside
``locked(names)`` for operations that must exclude other mail programs
(for mbox: the fcntl + dot lock; for Maildir nothing is needed, its
operations are atomic renames, D. J. Bernstein's "Using maildir format").

Two-phase append: ``prepare`` may run without any lock (Maildir writes and
fsyncs the file in ``tmp/`` there), ``commit`` runs under the locks and
makes the message visible; if registering it in the index then fails the
engine calls ``discard`` to take it back (mbox: truncate to the old size).

Crash safety of an append in place (mbox): before ``commit`` the engine asks
``append_intent`` and commits the answer to the index; under the locks, an
intent left there by a crashed append goes to ``recover_append`` before the
folder is scanned. A format whose commit is atomic (Maildir: one link into
``new/``, which the next scan adopts if the index row was never written)
answers None and has nothing to recover.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence, Set
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from postoffice.core.errors import StoreError
from postoffice.store.fileio import MessageSource
from postoffice.store.index import AppendIntent, MessageRow, NewMessage


class MessageGone(StoreError):
    """A message file the index knows is not on disk (any more): the engine re-syncs."""


_DELIVERY_TAG = re.compile(r"^\d+\.M\d+P\d+Q\d+R[0-9a-f]+K([0-9a-f]{32})\.")


def delivery_tag(key: str) -> str:
    """The short, file-name-safe form of a delivery key, as the index keeps it."""
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def delivery_tag_of(locator: str) -> str | None:
    """The delivery tag a Maildir unique name carries (``K<tag>``), if any."""
    match = _DELIVERY_TAG.match(locator)
    return None if match is None else match[1]


class AppendMeta(NamedTuple):
    """The index fields an append sets, plus the envelope sender (mbox ``From`` line)."""

    flags: int
    keywords: str
    internal_date: float
    sender: str = ""
    # Local delivery's name for this copy (queue id and recipient): an append
    # whose key the mailbox has already taken is not made twice (a delivery
    # repeated after a crash, see UserEngine.append).
    delivery_key: str | None = None
    # True when that delivery may have been made before (a retry, or mail found
    # in the queue at start): the folder is synced first, so that a file a crash
    # left without its index row is found by the tag in its name.
    resync: bool = False
    # The caller makes this copy durable itself, with one file-system sync
    # after it (``delivery.mailbox_sync``), before it counts it delivered:
    # the Maildir file, its folder and the index commit are not synced one
    # by one (an mbox append still fsyncs under its lock).
    synced_later: bool = False


@dataclass
class ScanResult:
    """What changed on disk since the index last looked (see ``FolderFormat.scan``)."""

    state: str
    new: list[NewMessage] = field(default_factory=list)
    gone: list[int] = field(default_factory=list)
    # (uid, filename, flags) for messages renamed by another program; flags None = unchanged
    renamed: list[tuple[int, str, int | None]] = field(default_factory=list)
    reset: bool = False


class MessageReader(Protocol):
    """An open message: ranges are in octets of the message as appended."""

    size: int

    def read(self, start: int, length: int) -> bytes: ...

    def chunks(self, start: int, end: int, chunk_size: int) -> Iterator[bytes]: ...

    def close(self) -> None: ...


class FolderFormat(Protocol):
    # True when an append must sync first, because its position on disk fixes
    # its order (mbox); Maildir appends are independent files and skip it.
    sync_before_append: bool
    # True when a message's octets never change once stored, so that the
    # indexed location of a message can be opened without a sync first
    # (Maildir: one file per message; a flag change renames it, and an open
    # that finds it gone syncs then). False for mbox, whose offsets move when
    # another program rewrites the file.
    immutable_messages: bool
    # A flag change on a stale locator fails (``MessageGone``) rather than
    # touching the wrong message, so it needs no sync before it: the engine's
    # retry syncs only when a file really moved (Maildir renames; mbox offsets
    # move with other programs' rewrites, so mbox syncs first).
    flag_changes_detect_moves: bool

    def folder_exists(self, name: str) -> bool: ...

    def discover(self) -> list[str]:
        """Names of the mailboxes present on disk (INBOX always included)."""
        ...

    def create_folder(self, name: str) -> None: ...

    def create_parent(self, name: str) -> bool:
        """Make ``name`` a place for mailboxes to be created under (IMAP CREATE with
        a trailing delimiter, RFC 9051 §6.3.4). True: it made a mailbox of it
        (Maildir folders hold both); False: only a directory (mbox), no mailbox."""
        ...

    def delete_folder(self, name: str) -> None: ...

    def rename_folders(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Rename a mailbox and its inferiors: (old, new) pairs, outermost first."""
        ...

    def locked(self, names: Sequence[str]) -> AbstractContextManager[None]:
        """Exclude other mail programs from these mailboxes (re-entrant)."""
        ...

    def fingerprint(self, name: str) -> str:
        """A cheap summary of the folder's state; ``""`` means "look again next time"."""
        ...

    def scan(self, name: str, known: list[MessageRow], state: str) -> ScanResult:
        """Compare disk with the index rows ``known`` (call inside ``locked``)."""
        ...

    def same_files(self, name: str, indexed: Set[str]) -> bool:
        """True when the folder holds exactly the message files the index names
        (``indexed``: its rows' filenames), so that a ``scan`` would change
        nothing; False when it may not, and for formats without a file per
        message (call inside ``locked``)."""
        ...

    def prepare(self, name: str, source: MessageSource, meta: AppendMeta) -> object: ...

    def append_intent(self, name: str, metas: Sequence[AppendMeta]) -> AppendIntent | None:
        """What appending messages with ``metas`` (one, or a COPY's batch, in order)
        must record before it writes (call inside ``locked``)."""
        ...

    def recover_append(self, name: str, intent: AppendIntent) -> None:
        """Take back what a crashed append of ``intent`` left (call inside ``locked``)."""
        ...

    def commit(self, name: str, prepared: object, meta: AppendMeta) -> NewMessage: ...

    def discard(self, name: str, message: NewMessage) -> None: ...

    def durable(self, name: str, message: NewMessage) -> None:
        """Make a committed append durable; runs after the locks are released."""
        ...

    def abandon(self, prepared: object) -> None:
        """Clean up a prepared message that was never committed."""
        ...

    def copy_message(self, src: str, row: MessageRow, dst: str, meta: AppendMeta) -> NewMessage: ...

    def set_flags(self, name: str, row: MessageRow, flags: int) -> str | None:
        """Record system flags on disk when the format can; returns a new filename or None."""
        ...

    def remove(
        self, name: str, doomed: list[MessageRow], kept: list[MessageRow]
    ) -> list[tuple[int, int, int]]:
        """Delete messages from disk; returns (uid, offset, data_offset) moves of kept ones."""
        ...

    def open_reader(self, name: str, row: MessageRow) -> MessageReader: ...

    def message_paths(self, name: str, rows: Sequence[MessageRow]) -> list[str] | None:
        """The file of each message of ``rows``, for formats with ``immutable_messages``
        (one file per message); None for the others."""
        ...

    def finish(self, name: str) -> str | None:
        """After a locked change: fsync what is pending; return the new state if known."""
        ...
