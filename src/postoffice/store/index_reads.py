"""Index-only reads and caches of ``engine.UserEngine``: what changed since a MODSEQ,
and the kept part trees and header field values of messages.

Owns ``IndexReads``, the part of the engine that answers from the index alone
(a mailbox's version and STATUS figures, after a look at the disk when
asked; changes and expunges since a MODSEQ, kept part trees, header values
and answers (``field_cache``), the quota usage), without a look at the disk
and without the user's file lock (bounded work for an IMAP session catching
up, a FETCH reading kept structure or a SORT reading kept Date fields), and
the writes of those caches, which change no mail file. Its methods run on
the engine's own parts (``_EngineParts``) under the engine's thread lock.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from postoffice.core.quota import Usage
from postoffice.store import names
from postoffice.store.api import (
    Change,
    ExpungedSince,
    MailboxChanges,
    MailboxStatus,
    MailboxVersion,
    MessageFile,
)
from postoffice.store.backend import FolderFormat, delivery_tag
from postoffice.store.convert import message_infos
from postoffice.store.field_cache import FieldRow
from postoffice.store.index import MailboxRow, MailIndex


class _EngineParts(Protocol):
    """What ``IndexReads`` uses of ``UserEngine``."""

    @property
    def _thread_lock(self) -> AbstractContextManager[Any]: ...

    @property
    def _index(self) -> MailIndex: ...

    @property
    def _fmt(self) -> FolderFormat: ...

    def _box(self, name: str) -> MailboxRow: ...

    def _sync(self, box: MailboxRow, changes: list[Change]) -> MailboxRow: ...


class IndexReads:
    """See the module docstring."""

    def version(
        self: _EngineParts, name: str, changes: list[Change], *, sync: bool = True
    ) -> MailboxVersion:
        """``status`` without the figures that need every message's row
        (``MailboxVersion``); with ``sync``, after a look at the disk."""
        name = names.mailbox_name(name)
        with self._thread_lock:
            box = self._box(name)
            if sync:
                box = self._sync(box, changes)
            return MailboxVersion(box.uidvalidity, box.uidnext, box.highestmodseq)

    def status(
        self: _EngineParts, name: str, changes: list[Change], *, sync: bool = True
    ) -> MailboxStatus:
        """The STATUS figures; without ``sync``, as the index has them (every change
        made through any store is there; only another program's are not yet)."""
        name = names.mailbox_name(name)
        with self._thread_lock:
            box = self._box(name)
            if sync:
                box = self._sync(box, changes)
            count, unseen, size = self._index.totals(box.id)
            return MailboxStatus(
                name=name,
                messages=count,
                unseen=unseen,
                uidvalidity=box.uidvalidity,
                uidnext=box.uidnext,
                highestmodseq=box.highestmodseq,
                size=size,
            )

    def changed_since(
        self: _EngineParts, name: str, modseq: int, changes: list[Change]
    ) -> MailboxChanges:
        """The messages changed or added after ``modseq`` and the UIDs expunged since,
        as the index has them (no look at the disk): what a session that saw the
        mailbox at ``modseq`` needs to catch up. Every UID of the mailbox (a read
        of all its rows) only when the index no longer remembers every expunge
        since ``modseq``."""
        name = names.mailbox_name(name)
        with self._thread_lock:
            box = self._box(name)
            changed = message_infos(self._index.summaries_since(box.id, modseq))
            gone = self._index.expunged_since(box.id, modseq)
            if gone.complete:
                return MailboxChanges(changed, gone.uids)
            return MailboxChanges(changed, None, self._index.uids(box.id))

    def vanished_since(
        self: _EngineParts, name: str, modseq: int, changes: list[Change]
    ) -> ExpungedSince:
        """UIDs expunged after ``modseq`` as the index remembers them (``expunged``)."""
        name = names.mailbox_name(name)
        with self._thread_lock:
            box = self._box(name)
            return self._index.expunged_since(box.id, modseq)

    def structures(
        self: _EngineParts, name: str, uids: Collection[int], changes: list[Change]
    ) -> dict[int, bytes]:
        """Kept part trees of messages (``index.structures``): one indexed query, no sync."""
        name = names.mailbox_name(name)
        with self._thread_lock:
            box = self._index.mailbox(name)
            return {} if box is None else self._index.structures(box.id, uids)

    def message_files(
        self: _EngineParts, name: str, uids: Collection[int], changes: list[Change]
    ) -> dict[int, MessageFile]:
        """Where the index says the messages of ``uids`` are, as whole files
        (``MessageFile``); none for a format that keeps several in one file (mbox).
        For many of a mailbox's messages: it reads every row of the mailbox once."""
        name = names.mailbox_name(name)
        with self._thread_lock:
            box = self._index.mailbox(name)
            if box is None or not self._fmt.immutable_messages:
                return {}
            wanted = set(uids)
            rows = [row for row in self._index.messages(box.id) if row.uid in wanted]
            paths = self._fmt.message_paths(name, rows)
            if paths is None:
                return {}
            return {
                row.uid: MessageFile(path, row.size) for row, path in zip(rows, paths, strict=True)
            }

    def delivered(self: _EngineParts, key: str) -> int | None:
        """The UID of the copy a delivery with ``key`` made (``AppendMeta.delivery_key``),
        as the index has it; None when it has none."""
        with self._thread_lock:
            return self._index.delivered(delivery_tag(key))

    def usage(self: _EngineParts, changes: list[Change]) -> Usage:
        """What the user's mailboxes hold, as the index has them (no look at the
        disk): the usage a quota is measured against. One aggregate per mailbox
        (``totals``, on the primary key's range); a quota check needs no snapshot."""
        with self._thread_lock:
            octets = messages = 0
            for box in self._index.mailboxes():
                count, _, size = self._index.totals(box.id)
                octets, messages = octets + size, messages + count
            return Usage(octets, messages)

    def save_structures(
        self: _EngineParts, name: str, blobs: Sequence[tuple[int, bytes]], changes: list[Change]
    ) -> None:
        """Keep part trees computed by a reader, in one transaction (no mail file changes)."""
        name = names.mailbox_name(name)
        with self._thread_lock:
            box = self._index.mailbox(name)
            if box is None:
                return
            with self._index.transaction(durable=False):  # a cache: lost, it is made again
                self._index.set_structures(box.id, blobs)

    def header_fields(
        self: _EngineParts,
        name: str,
        uidvalidity: int,
        uids: Collection[int],
        fields: Iterable[str],
        changes: list[Change],
    ) -> dict[tuple[int, str], list[str]]:
        """Kept header values (``index.header_fields``) by (uid, field); none when the
        mailbox is gone or has another UIDVALIDITY than the caller's."""
        with self._thread_lock:
            box = _mailbox_in(self, name, uidvalidity)
            if box is None:
                return {}
            return self._index.header_fields(box.id, uids, fields)

    def save_header_fields(
        self: _EngineParts,
        name: str,
        uidvalidity: int,
        rows: Sequence[FieldRow],
        changes: list[Change],
    ) -> None:
        """Keep header values computed by a reader under ``uidvalidity``, in one
        transaction (no mail file changes)."""
        name = names.mailbox_name(name)
        with self._thread_lock:
            box = self._index.mailbox(name)
            if box is None or not rows:
                return
            with self._index.transaction(durable=False):  # a cache: lost, it is made again
                self._index.save_header_fields(box.id, uidvalidity, rows)

    def answer(
        self: _EngineParts,
        name: str,
        uidvalidity: int,
        kind: str,
        digest: bytes,
        changes: list[Change],
    ) -> bytes | None:
        """The kept answer of ``kind`` for ``digest`` (``index.answer``); None when
        there is none, or the mailbox is gone or has another UIDVALIDITY."""
        with self._thread_lock:
            box = _mailbox_in(self, name, uidvalidity)
            if box is None:
                return None
            return self._index.answer(box.id, kind, digest)

    def save_answer(
        self: _EngineParts,
        name: str,
        uidvalidity: int,
        kind: str,
        digest: bytes,
        blob: bytes,
        changes: list[Change],
    ) -> None:
        """Keep an answer computed under ``uidvalidity`` (no mail file changes)."""
        with self._thread_lock:
            box = _mailbox_in(self, name, uidvalidity)
            if box is None:
                return
            with self._index.transaction(durable=False):  # a cache: lost, it is made again
                self._index.save_answer(box.id, kind, digest, blob)


def _mailbox_in(engine: _EngineParts, name: str, uidvalidity: int) -> MailboxRow | None:
    """The mailbox's row when it exists with ``uidvalidity`` (under the thread lock):
    a reader's UIDs mean its messages only in the UIDVALIDITY it read them in."""
    box = engine._index.mailbox(names.mailbox_name(name))
    return box if box is not None and box.uidvalidity == uidvalidity else None
