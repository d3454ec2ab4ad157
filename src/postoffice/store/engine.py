"""The synchronous core of one user's store: index + on-disk format, kept in step.

``UserEngine`` carries out every store operation in the calling (worker)
thread; ``service.FileMailStore`` runs it off the event loop. Invariants:

- Lock order, always: the engine's thread lock, the per-user file lock
  (``locking.UserLock``, shared by every process using this data directory),
  then the format's locks (``FolderFormat.locked``: fcntl + dotlock for mbox).
- Disk first, index second: a message is on disk before its UID exists, and
  it leaves the index only after (or as) it leaves the disk; a crash in
  between is repaired by the next sync, which treats unknown files as new
  and missing files as expunged. No mail is lost, at worst a copy doubles.
- An append in place (mbox) is all or nothing even across a crash: its
  intent (``FolderFormat.append_intent``) is committed to the index, on its
  own and durably, before the first octet is written, and deleted in the
  transaction that adds the message's row. An intent seen under the locks
  (at open, and before every sync of its mailbox) is an append that never
  completed: ``FolderFormat.recover_append`` takes its octets back first, so
  the scan never adopts a torn message. A failure the process survives
  settles its intent the same way at once.
- Before a change, the mailbox is synced with the disk under the locks, so
  that mail other programs delivered gets its UID first (RFC 3501 §2.3.1.1:
  UIDs ascend in arrival order). A Maildir flag change is the exception: it
  adds no UID, and the rename of a file another program moved fails
  (``MessageGone``), so only then does it sync and try again.
- Mail is durable (appends: file, directory and index synced before they
  return); flag changes and Maildir expunges are not synced by themselves
  (as Dovecot's ``fsync_mode = optimized``): a power cut may undo one, which
  loses no mail (an undone expunge brings a message back under a new UID).
- Every change is reported to the caller's ``changes`` list (the service
  publishes it on the change feed).
- UIDVALIDITY values come from ``provision.UidValidityCounter``, so that a
  mailbox deleted and created again, or an index rebuilt, never repeats one.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import TypeVar

from postoffice.core.address import Address
from postoffice.core.clock import Clock
from postoffice.core.errors import MailboxNotFound, StoreError
from postoffice.store import names, provision
from postoffice.store.api import (
    DELETED_BIT,
    Change,
    ChangeKind,
    ConditionalStoreResult,
    FlagMode,
    MessageInfo,
    flags_of,
)
from postoffice.store.backend import (
    AppendMeta,
    FolderFormat,
    MessageGone,
    MessageReader,
    delivery_tag,
    delivery_tag_of,
)
from postoffice.store.convert import keywords_of, message_info
from postoffice.store.fileio import MessageSource, file_identity
from postoffice.store.hierarchy import MailboxTree
from postoffice.store.index import AppendIntent, MailboxRow, MailIndex, MessageRow
from postoffice.store.index_reads import IndexReads
from postoffice.store.layout import StoreLayout
from postoffice.store.listing_cache import ListingCache
from postoffice.store.locking import DEFAULT_TIMEOUT, UserLock
from postoffice.store.maildir import MaildirFormat
from postoffice.store.mbox import MboxFormat
from postoffice.store.rules import combine_flags

T = TypeVar("T")


class AlreadyDelivered(Exception):
    """An append with a delivery key the mailbox has taken already (``AppendMeta``)."""

    def __init__(self, uid: int):
        super().__init__(f"already delivered as UID {uid}")
        self.uid = uid


class UserEngine(MailboxTree, IndexReads):
    """One user's mailboxes (see the module docstring). Safe to share between threads.

    The operations on the tree of mailboxes (create, delete, rename, list,
    subscriptions) are ``hierarchy.MailboxTree``'s; the messages' are here.
    """

    def __init__(
        self,
        layout: StoreLayout,
        address: Address,
        clock: Clock,
        *,
        lock_timeout: float = DEFAULT_TIMEOUT,
    ):
        self.layout = layout
        self.paths = layout.user(address)
        self._clock = clock
        self._fmt: FolderFormat
        if layout.format == "maildir":
            self._maildir: MaildirFormat | None = MaildirFormat(self.paths, fsync=layout.fsync)
            self._fmt = self._maildir
        else:
            self._maildir = None
            self._fmt = MboxFormat(self.paths, fsync=layout.fsync, lock_timeout=lock_timeout)
        self._thread_lock = threading.RLock()
        self._user_lock = UserLock(self.paths.lock_path)
        self._index_handle: MailIndex | None = None
        self._listings = ListingCache()  # of this index handle only: cleared with it
        self._identity: tuple[int, int] | None = None
        self._new_uidvalidity = provision.UidValidityCounter(self.paths, clock)

    # -- opening, provisioning, recovery --------------------------------------

    def open(self, *, create: bool, clean_tmp: bool = True) -> None:
        """Open the index (rebuilding a corrupt one) and provision a new user.

        With ``clean_tmp`` the old files in every folder's ``tmp/`` are removed
        (``clean_tmp``); a long-lived engine (``cache.StoreCache``) does that
        apart, off the delivery path.
        """
        mail_dir = self.paths.mail_dir
        if not mail_dir.is_dir():
            if not create:
                raise StoreError(f"no mail store for {self.paths.local}@{self.paths.domain}")
            mail_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self._thread_lock, self._user_lock.held():
            self._listings.clear()
            self._index_handle, fresh = provision.open_index(
                self.paths, durable=self.layout.fsync, now=self._clock.now()
            )
            provision.ensure_inbox(self._index, self._fmt, self._new_uidvalidity)
            if fresh:
                provision.provision(self._index, self._fmt, self._new_uidvalidity)
            self._adopt_disk_folders()
            for name in self._index.pending_appends():
                self._recover_appends(name)
            self._identity = file_identity(self.paths.index_path)
            if clean_tmp:
                self.clean_tmp()

    def ensure_open(self, *, create: bool) -> None:
        """Open the engine unless it is open on the index now at its path.

        A long-lived engine checks this before each use (one ``stat``): when
        another process set a corrupt index aside and built a new one, or the
        user's mail directory was removed, the engine opens (and, with
        ``create``, provisions) again instead of writing to a file nobody reads.
        """
        with self._thread_lock:
            if self._index_handle is not None:
                if file_identity(self.paths.index_path) == self._identity:
                    return
                self.close()
            try:
                self.open(create=create, clean_tmp=False)
            except BaseException:
                self.close()
                raise

    @property
    def is_open(self) -> bool:
        return self._index_handle is not None

    def clean_tmp(self) -> None:
        """Remove the files of every Maildir folder's ``tmp/`` not touched for 36 hours."""
        if self._maildir is None:
            return
        with self._thread_lock:
            folders = [row.name for row in self._index.mailboxes()]
        now = time.time()  # compared with file times, so the file system's clock
        for name in folders:
            self._maildir.clean_tmp(name, now)

    def close(self) -> None:
        with self._thread_lock:
            self._listings.clear()
            if self._index_handle is not None:
                self._index_handle.close()
                self._index_handle = None
            self._user_lock.close()

    @property
    def _index(self) -> MailIndex:
        if self._index_handle is None:
            raise StoreError("the store is closed")
        return self._index_handle

    def _adopt_disk_folders(self) -> None:
        provision.adopt_disk_folders(self._index, self._fmt, self._new_uidvalidity)

    # -- locking and syncing ------------------------------------------------------

    @contextlib.contextmanager
    def _exclusive(self, mailboxes: Sequence[str] = ()) -> Iterator[None]:
        with self._thread_lock, self._user_lock.held(), self._fmt.locked(mailboxes):
            yield

    def _box(self, name: str) -> MailboxRow:
        """The index row of an existing mailbox (adopting one made by another program)."""
        row = self._index.mailbox(name)
        if row is not None:
            if self._fmt.folder_exists(name):
                return row
            with self._exclusive():
                if names.is_inbox(name):
                    self._fmt.create_folder(name)
                    return row
                with self._index.transaction():
                    self._index.delete_mailbox(row.id)
        elif self._fmt.folder_exists(name):
            with self._exclusive(), self._index.transaction():
                row = self._index.mailbox(name)
                if row is None:
                    use = provision.SPECIAL_BY_NAME.get(name)
                    row = self._index.create_mailbox(name, self._new_uidvalidity(), use)
            return row
        raise MailboxNotFound(f"no such mailbox: {name}")

    def _sync(self, box: MailboxRow, changes: list[Change]) -> MailboxRow:
        """Bring the index up to date with the disk, cheaply when nothing changed."""
        if box.sync_state and self._fmt.fingerprint(box.name) == box.sync_state:
            return box
        with self._exclusive([box.name]):
            self._sync_locked(box.name, changes)
        return self._row(box.name)

    def _row(self, name: str) -> MailboxRow:
        row = self._index.mailbox(name)
        if row is None:
            raise MailboxNotFound(f"no such mailbox: {name}")
        return row

    def _sync_locked(self, name: str, changes: list[Change]) -> None:
        self._recover_appends(name)
        box = self._row(name)
        state = self._fmt.fingerprint(name)
        if state and state == box.sync_state:
            return
        if self._fmt.immutable_messages and self._fmt.same_files(
            name, self._index.filenames(box.id)
        ):
            # Nothing on disk the index does not know (our own renames, made
            # within the fingerprint's unstable window): no row to read or write.
            if state != box.sync_state:
                with self._index.transaction():
                    self._index.set_sync_state(box.id, state)
            return
        known = self._index.messages(box.id)
        result = self._fmt.scan(name, known, box.sync_state)
        by_uid = {row.uid: row for row in known}
        with self._index.transaction():
            if result.reset:
                self._index.reset_mailbox(box.id, self._new_uidvalidity())
                changes.append(Change(ChangeKind.RESET, name))
            else:
                for uid, modseq in self._index.remove_messages(box.id, result.gone):
                    changes.append(Change(ChangeKind.EXPUNGED, name, uid, modseq))
                for uid, filename, bits in result.renamed:
                    if bits is None:
                        self._index.set_filename(box.id, uid, filename)
                        continue
                    keywords = by_uid[uid].keywords
                    modseq = self._index.set_flags(box.id, uid, bits, keywords, filename)
                    changes.append(
                        Change(
                            ChangeKind.FLAGS,
                            name,
                            uid,
                            modseq,
                            flags_of(bits),
                            keywords_of(keywords),
                        )
                    )
            for message in result.new:
                uid, modseq = self._index.add_message(box.id, message)
                changes.append(Change(ChangeKind.APPENDED, name, uid, modseq))
                tag = delivery_tag_of(message.locator)
                if tag is not None:  # our delivery, whose row a crash lost
                    self._index.record_delivery(tag, box.id, uid, message.internal_date)
            self._index.set_sync_state(box.id, result.state)

    # -- append intents (module docstring) --------------------------------------------

    def _begin_append(self, box: MailboxRow, metas: list[AppendMeta]) -> AppendIntent | None:
        """Commit the intent of an append before it writes (call under its locks)."""
        intent = self._fmt.append_intent(box.name, metas)
        if intent is not None:
            if self._index.in_transaction:
                raise StoreError("internal error: an append intent must commit on its own")
            with self._index.transaction():
                self._index.set_append_intent(box.id, intent)
        return intent

    def _recover_appends(self, name: str) -> None:
        """Take back what an append that never completed left, and forget its intent."""
        box = self._index.mailbox(name)
        if box is None or (intent := self._index.append_intent(box.id)) is None:
            return
        if self._fmt.folder_exists(name):
            with self._exclusive([name]):
                self._fmt.recover_append(name, intent)
        with self._index.transaction():
            self._index.clear_append_intent(box.id)

    def _settle(self, name: str) -> None:
        """After a failed append: the same recovery, now; if it fails too, the
        intent stays for the next sync."""
        with contextlib.suppress(Exception):
            self._recover_appends(name)

    def _finish(self, box: MailboxRow) -> None:
        """After a locked change: let the format flush, and record its new state."""
        state = self._fmt.finish(box.name)
        if state is not None:
            with self._index.transaction():
                self._index.set_sync_state(box.id, state)

    def _retrying(self, name: str, operation: Callable[[], T]) -> T:
        """Run ``operation``; if a file moved under it, re-sync once and run it again."""
        try:
            return operation()
        except MessageGone:
            with self._exclusive(), self._index.transaction():
                row = self._index.mailbox(name)
                if row is not None:
                    self._index.set_sync_state(row.id, "")
        try:
            return operation()
        except MessageGone as exc:
            raise StoreError(f"{name}: {exc}") from exc

    # -- reading ----------------------------------------------------------------------

    def messages(self, name: str, changes: list[Change], *, sync: bool = True) -> list[MessageInfo]:
        name = names.mailbox_name(name)
        with self._thread_lock:
            box = self._sync(self._box(name), changes) if sync else self._box(name)
            return self._listings.listing(box, self._index)

    def open_indexed(self, name: str, uid: int) -> MessageReader | None:
        """The message where the index says it is, without a sync, the user lock or
        a folder check; None when that is not enough (mbox, whose offsets move when
        another program rewrites the file; a Maildir file renamed or removed by
        another program; an unknown UID): ``open_message`` then knows.

        Bounded work (two indexed look-ups and one open): callers may run it on
        the event loop.
        """
        if not self._fmt.immutable_messages:
            return None
        name = names.mailbox_name(name)
        with self._thread_lock:
            box = self._index.mailbox(name)
            row = None if box is None else self._index.message(box.id, int(uid))
            if row is None:
                return None
            try:
                return self._fmt.open_reader(name, row)
            except MessageGone:
                return None

    def open_message(self, name: str, uid: int, changes: list[Change]) -> MessageReader:
        name = names.mailbox_name(name)
        # Where the index says it is, first: a message downloaded after a change
        # on disk would otherwise re-read the whole folder.
        reader = self.open_indexed(name, uid)
        if reader is not None:
            return reader

        def attempt() -> MessageReader:
            # Under the user lock: no process of ours rewrites the file meanwhile.
            with self._exclusive():
                box = self._sync(self._box(name), changes)
                row = self._index.message(box.id, int(uid))
                if row is None:
                    raise StoreError(f"no message with UID {uid} in {name}")
                return self._fmt.open_reader(name, row)

        return self._retrying(name, attempt)

    # -- changing -------------------------------------------------------------------------

    def append(
        self,
        name: str,
        source: MessageSource,
        meta: AppendMeta,
        changes: list[Change],
    ) -> int:
        name = names.mailbox_name(name)
        with self._thread_lock:
            self._box(name)  # fail before writing anything
        prepared = self._fmt.prepare(name, source, meta)
        try:
            with self._exclusive([name]):
                box = self._box(name)
                tag = None if meta.delivery_key is None else delivery_tag(meta.delivery_key)
                if self._fmt.sync_before_append or (tag is not None and meta.resync):
                    # New mail from other programs takes its UIDs first (and a
                    # file of ours that a crash left without its row, its tag).
                    self._sync_locked(name, changes)
                if tag is not None:
                    earlier = self._index.delivered(tag)
                    if earlier is not None:
                        raise AlreadyDelivered(earlier)
                intent = self._begin_append(box, [meta])
                try:
                    message = self._fmt.commit(name, prepared, meta)
                    try:
                        with self._index.transaction(durable=not meta.synced_later):
                            uid, modseq = self._index.add_message(box.id, message)
                            if tag is not None:
                                self._index.record_delivery(tag, box.id, uid, meta.internal_date)
                            if intent is not None:
                                self._index.clear_append_intent(box.id)
                            state = self._fmt.finish(name)
                            if state is not None:
                                self._index.set_sync_state(box.id, state)
                    except BaseException:
                        self._fmt.discard(name, message)
                        raise
                except BaseException:
                    if intent is not None:
                        self._settle(name)
                    raise
        except BaseException:
            self._fmt.abandon(prepared)
            raise
        if not meta.synced_later:
            self._fmt.durable(name, message)
        changes.append(Change(ChangeKind.APPENDED, name, uid, modseq))
        return uid

    def store_flags(
        self,
        name: str,
        uids: Collection[int],
        bits: int,
        keywords: frozenset[str],
        mode: FlagMode,
        changes: list[Change],
        *,
        unchanged_since: int | None = None,
    ) -> ConditionalStoreResult:
        """Change flags. With ``unchanged_since`` (RFC 7162 §3.1.3 UNCHANGEDSINCE) a
        message whose MODSEQ is above it is left alone and reported in ``modified``;
        the MODSEQ is read in the transaction that writes the change, under the
        user lock, so a change made by any other store in between is seen."""
        name = names.mailbox_name(name)

        tried: list[bool] = []

        def attempt() -> ConditionalStoreResult:
            staged: list[Change] = []
            first = not tried
            tried.append(True)
            with self._exclusive([name]):
                if first and self._fmt.flag_changes_detect_moves:
                    self._box(name)  # a moved file raises MessageGone: then the retry syncs
                else:
                    self._sync_locked(self._box(name).name, changes)
                box = self._row(name)
                result = []
                modified = []
                # Flags are not mail: a power cut may undo a change (module docstring).
                with self._index.transaction(durable=not self._fmt.immutable_messages):
                    for row in self._index.messages_by_uid(box.id, uids):
                        if unchanged_since is not None and row.modseq > unchanged_since:
                            modified.append(message_info(row))
                            continue
                        new_bits, new_keywords = combine_flags(row, bits, keywords, mode)
                        old_keywords = keywords_of(row.keywords)
                        if new_bits == row.flags and new_keywords == old_keywords:
                            result.append(message_info(row))
                            continue
                        filename = None
                        if new_bits != row.flags:
                            filename = self._fmt.set_flags(name, row, new_bits)
                        text = " ".join(sorted(new_keywords))
                        modseq = self._index.set_flags(box.id, row.uid, new_bits, text, filename)
                        updated = row._replace(flags=new_bits, keywords=text, modseq=modseq)
                        result.append(message_info(updated))
                        staged.append(
                            Change(
                                ChangeKind.FLAGS,
                                name,
                                row.uid,
                                modseq,
                                flags_of(new_bits),
                                new_keywords,
                            )
                        )
                self._finish(box)
            changes.extend(staged)
            return ConditionalStoreResult(result, modified)

        return self._retrying(name, attempt)

    def copy(
        self, src: str, uids: Collection[int], dst: str, changes: list[Change], *, remove: bool
    ) -> dict[int, int]:
        src = names.mailbox_name(src)
        dst = names.mailbox_name(dst)
        with self._exclusive():
            return self._transfer(src, uids, dst, changes, remove=remove)

    def _transfer(
        self, src: str, uids: Collection[int], dst: str, changes: list[Change], *, remove: bool
    ) -> dict[int, int]:
        """COPY (RFC 3501 §6.4.7) or MOVE (RFC 6851): returns source UID -> new UID."""

        def attempt() -> dict[int, int]:
            with self._exclusive([src, dst]):
                self._sync_locked(self._box(src).name, changes)
                self._sync_locked(self._box(dst).name, changes)
                source, target = self._row(src), self._row(dst)
                rows = self._index.messages_by_uid(source.id, uids)
                mapping: dict[int, int] = {}
                committed = []
                staged: list[Change] = []
                metas = [AppendMeta(row.flags, row.keywords, row.internal_date) for row in rows]
                # One intent for the batch: it starts where the first copy does.
                intent = self._begin_append(target, metas) if rows else None
                try:
                    with self._index.transaction():
                        for row, meta in zip(rows, metas, strict=True):
                            message = self._fmt.copy_message(src, row, dst, meta)
                            committed.append(message)
                            uid, modseq = self._index.add_message(target.id, message)
                            mapping[row.uid] = uid
                            staged.append(Change(ChangeKind.APPENDED, dst, uid, modseq))
                        if intent is not None:
                            self._index.clear_append_intent(target.id)
                except BaseException:
                    for message in reversed(committed):
                        self._fmt.discard(dst, message)
                    if intent is not None:
                        self._settle(dst)
                    raise
                self._finish(target)
                if remove and rows:
                    staged.extend(self._remove(source, rows))
            changes.extend(staged)
            return mapping

        return self._retrying(src, attempt)

    def expunge(self, name: str, uids: Collection[int] | None, changes: list[Change]) -> list[int]:
        name = names.mailbox_name(name)
        with self._exclusive([name]):
            self._sync_locked(self._box(name).name, changes)
            box = self._row(name)
            rows = self._index.messages(box.id)
            doomed = [
                row for row in rows if row.flags & DELETED_BIT and (uids is None or row.uid in uids)
            ]
            if not doomed:
                return []
            removed = self._remove(box, doomed, rows)
        changes.extend(removed)
        return [change.uid for change in removed]

    def _remove(
        self, box: MailboxRow, doomed: list[MessageRow], every: list[MessageRow] | None = None
    ) -> list[Change]:
        """Take messages off the disk, then out of the index (call under the locks)."""
        if every is None:
            every = self._index.messages(box.id)
        gone = {row.uid for row in doomed}
        kept = [row for row in every if row.uid not in gone]
        doomed = [row for row in every if row.uid in gone]
        moves = self._fmt.remove(box.name, doomed, kept)
        # A Maildir expunge that a power cut undoes brings a message back, never
        # loses one; an mbox rewrite moved offsets, which the index must keep.
        with self._index.transaction(durable=not self._fmt.immutable_messages):
            removed = self._index.remove_messages(box.id, sorted(gone))
            self._index.set_mbox_locations(box.id, moves)
            state = self._fmt.finish(box.name)
            if state is not None:
                self._index.set_sync_state(box.id, state)
        return [Change(ChangeKind.EXPUNGED, box.name, uid, modseq) for uid, modseq in removed]
