"""The async face of the file stores: ``FileMailStore`` and ``StoreFactory``.

Owns two rules:
- The event loop never waits long on the disk: every engine call (file I/O,
  fsync, SQLite, lock waits) runs in a worker thread (``asyncio.to_thread``),
  except the reading of a Maildir message (``read``, ``iter_bytes``) found
  where the index says it is: two indexed look-ups, one open, reads of a
  bounded chunk, no lock (``UserEngine.open_indexed``; anything more, such
  as a sync after another program renamed the file, goes to a thread).
  Those run on the loop, since three thread hand-offs per message, with
  their GIL switches, took longer than the work (a POP3 client downloading
  a mailbox waited on them message after message). mbox reads, which may
  wait for a mail reader's lock, stay in threads.
- Foreign exceptions are translated here, at one boundary (DESIGN.md §6):
  ``OSError``, ``sqlite3.Error`` and anything a message source raises leave
  as ``StoreError`` (with the original as ``__cause__``); our own
  ``PostofficeError`` subclasses (``StoreError``, ``MailboxNameError``) pass
  unchanged.
Changes an operation made (including those a sync discovered) are
published on the factory's ``ChangeHub`` after the operation, even when it
failed part way, and even when its caller was cancelled meanwhile (the
worker thread finishes the operation regardless).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

from postoffice.core.address import Address, parse_address
from postoffice.core.clock import Clock, SystemClock
from postoffice.core.errors import AddressError, PostofficeError, StoreError
from postoffice.core.quota import Usage
from postoffice.store import names
from postoffice.store.api import (
    Change,
    ConditionalStoreResult,
    ExpungedSince,
    FlagMode,
    MailboxChanges,
    MailboxInfo,
    MailboxStatus,
    MailboxVersion,
    MessageFile,
    MessageInfo,
    flag_bits,
    keyword_set,
)
from postoffice.store.backend import AppendMeta, MessageReader
from postoffice.store.changes import ChangeHub, ChangeSubscription
from postoffice.store.convert import timestamp_of
from postoffice.store.engine import UserEngine
from postoffice.store.fileio import MessageSource, open_message_file
from postoffice.store.layout import StoreLayout, UserPaths
from postoffice.store.locking import DEFAULT_TIMEOUT

T = TypeVar("T")


def translate_error(exc: BaseException, what: str) -> BaseException:
    """The exception to raise for ``exc`` at the store boundary (module docstring)."""
    if isinstance(exc, PostofficeError | asyncio.CancelledError):
        return exc
    if isinstance(exc, Exception):
        error = StoreError(f"{what} failed: {exc.__class__.__name__}: {exc}")
        error.__cause__ = exc
        return error
    return exc


class FileMailStore:
    """One user's mailboxes in Maildir or mbox (implements ``api.MailStore``)."""

    def __init__(self, engine: UserEngine, hub: ChangeHub, clock: Clock):
        self._engine = engine
        self._hub = hub
        self._clock = clock
        self._user = str(engine.paths.mail_dir)
        self._inline_reads = engine.paths.layout.format == "maildir"

    @property
    def paths(self) -> UserPaths:
        return self._engine.paths

    async def _run(
        self,
        what: str,
        function: Callable[..., T],
        *args: Any,
        dispose: Callable[[T], object] | None = None,
    ) -> T:
        """Run ``function(*args, changes)`` in a worker thread; publish ``changes`` after.

        A worker thread cannot be stopped: when the caller is cancelled the
        operation still finishes, so its changes are published when it does
        (not when the caller gave up), and ``dispose`` releases a result that
        nobody will receive (an open reader).
        """
        changes: list[Change] = []

        def publish(work: asyncio.Future[T]) -> None:
            self._hub.publish(self._user, changes)

        def orphan(work: asyncio.Future[T]) -> None:
            if not work.cancelled() and work.exception() is None and dispose is not None:
                dispose(work.result())

        work = asyncio.ensure_future(asyncio.to_thread(function, *args, changes))
        work.add_done_callback(publish)
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            work.add_done_callback(orphan)  # runs at once if the work is already done
            raise
        except BaseException as exc:
            translated = translate_error(exc, what)
            if translated is exc:
                raise
            raise translated from exc

    async def _read(self, function: Callable[..., T], *args: Any) -> T:
        """A message read: on the loop for Maildir, else in a thread (module docstring)."""
        if not self._inline_reads:
            return await self._run("read", function, *args)
        changes: list[Change] = []
        try:
            return function(*args, changes)
        except BaseException as exc:
            translated = translate_error(exc, "read")
            if translated is exc:
                raise
            raise translated from exc
        finally:
            self._hub.publish(self._user, changes)

    async def __aenter__(self) -> FileMailStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await asyncio.to_thread(self._engine.close)

    # -- mailboxes --------------------------------------------------------------

    async def list_mailboxes(self) -> list[MailboxInfo]:
        return await self._run("list", self._engine.list_mailboxes)

    async def create_mailbox(
        self, name: str, special_use: str | None = None, *, parent: bool = False
    ) -> None:
        """Create a mailbox; with ``parent`` (IMAP's trailing delimiter) a place for
        mailboxes below, which mbox makes a directory rather than a mailbox."""
        create = functools.partial(self._engine.create_mailbox, parent=parent)
        await self._run("create", create, name, special_use)

    async def delete_mailbox(self, name: str) -> None:
        await self._run("delete", self._engine.delete_mailbox, name)

    async def rename_mailbox(self, old: str, new: str) -> None:
        await self._run("rename", self._engine.rename_mailbox, old, new)

    async def subscribe(self, name: str) -> None:
        await self._run("subscribe", self._engine.subscribe, name)

    async def unsubscribe(self, name: str) -> None:
        await self._run("unsubscribe", self._engine.unsubscribe, name)

    async def subscriptions(self) -> list[str]:
        return await self._run("subscriptions", self._engine.subscriptions)

    async def status(self, name: str, *, sync: bool = True) -> MailboxStatus:
        """STATUS figures. ``sync=False`` skips the look at the disk for changes made
        by other programs (bounded work: on the loop for Maildir)."""
        if not sync:
            return await self._read(functools.partial(self._engine.status, sync=False), name)
        return await self._run("status", self._engine.status, name)

    async def version(self, name: str, *, sync: bool = True) -> MailboxVersion:
        """Whether the mailbox changed (``MailboxVersion``): ``status`` without the
        totals, which read every message's row; the same ``sync`` rule."""
        if not sync:
            return await self._read(functools.partial(self._engine.version, sync=False), name)
        return await self._run("status", self._engine.version, name)

    async def usage(self) -> Usage:
        """Octets and messages of all the user's mailboxes (``IndexReads.usage``)."""
        return await self._read(self._engine.usage)

    async def messages(self, name: str, *, sync: bool = True) -> list[MessageInfo]:
        return await self._run(
            "listing messages", functools.partial(self._engine.messages, sync=sync), name
        )

    # -- messages -----------------------------------------------------------------

    async def append(
        self,
        name: str,
        data: MessageSource,
        flags: Iterable[str] = (),
        keywords: Iterable[str] = (),
        internal_date: datetime | None = None,
        *,
        sender: str = "",
    ) -> int:
        """Store a message; returns its UID. A stream is copied in chunks."""
        meta = AppendMeta(
            flags=flag_bits(flags),
            keywords=" ".join(sorted(keyword_set(keywords))),
            internal_date=(
                timestamp_of(internal_date) if internal_date is not None else self._clock.now()
            ),
            sender=sender,
        )
        return await self._run("append", self._engine.append, name, data, meta)

    async def deliver(
        self, data: MessageSource, sender: str = "", internal_date: datetime | None = None
    ) -> int:
        """Local delivery: append to INBOX (``sender`` goes in the mbox ``From`` line)."""
        return await self.append(names.INBOX, data, internal_date=internal_date, sender=sender)

    async def read(self, name: str, uid: int, start: int = 0, length: int | None = None) -> bytes:
        """Octets ``[start, start + length)`` of a message (to its end without ``length``)."""
        if start < 0 or (length is not None and length < 0):
            raise StoreError("a byte range cannot be negative")
        reader = await self._open_reader(name, uid)
        try:
            wanted = reader.size - start if length is None else length
            return await self._read(_reader_call(reader.read, start, wanted))
        finally:
            reader.close()

    async def message_files(self, name: str, uids: Collection[int]) -> dict[int, MessageFile]:
        """Messages of ``uids`` stored as whole files (``MessageFile``; Maildir only),
        for a reader that opens many of them again and again (a POP3 session)."""
        return await self._run("listing messages", self._engine.message_files, name, uids)

    def read_file(self, file: MessageFile) -> bytes | None:
        """All the octets of ``file``, read at once on the caller's thread (bounded
        by its size: for small messages); None when it was renamed or removed
        since (``MessageFile``), where ``read`` finds it."""
        reader = open_message_file(file.path, file.size)
        if reader is None:
            return None
        try:
            data = reader.read(0, file.size)
        finally:
            reader.close()
        if len(data) != file.size:
            raise StoreError(f"{file.path}: {len(data)} octets where the index has {file.size}")
        return data

    async def iter_bytes(
        self,
        name: str,
        uid: int,
        start: int = 0,
        end: int | None = None,
        chunk_size: int = 65536,
    ) -> AsyncIterator[bytes]:
        """Stream octets ``[start, end)`` of a message in chunks of at most ``chunk_size``."""
        if start < 0 or (end is not None and end < 0) or chunk_size <= 0:
            raise StoreError("invalid byte range or chunk size")
        reader = await self._open_reader(name, uid)
        try:
            chunks = reader.chunks(start, reader.size if end is None else end, chunk_size)
            while True:
                chunk = await self._read(_reader_call(next, chunks, b""))
                if not chunk:
                    return
                yield chunk
        finally:
            reader.close()

    async def measure(
        self, name: str, uids: Collection[int], measure: Callable[[bytes], T]
    ) -> dict[int, T]:
        """``measure(octets)`` of each message of ``uids``, in one worker-thread call.

        For figures that need every octet of many messages (a POP3 listing's
        sizes): one message at a time in memory, and never on the loop,
        however many there are. A message gone meanwhile is left out.
        """

        def measure_all(changes: list[Change]) -> dict[int, T]:
            found: dict[int, T] = {}
            for uid in uids:
                try:
                    reader = self._engine.open_message(name, uid, changes)
                except StoreError:
                    continue
                try:
                    found[uid] = measure(reader.read(0, reader.size))
                finally:
                    reader.close()
            return found

        return await self._run("measure", measure_all)

    async def changed_since(self, name: str, modseq: int) -> MailboxChanges:
        """What changed in ``name`` after ``modseq`` (``MailboxChanges``; index only)."""
        return await self._run("reading changes", self._engine.changed_since, name, modseq)

    async def vanished_since(self, name: str, modseq: int) -> ExpungedSince:
        """UIDs of ``name`` expunged after ``modseq`` (index only; see ``api``)."""
        return await self._run("reading expunges", self._engine.vanished_since, name, modseq)

    async def structures(self, name: str, uids: Collection[int]) -> dict[int, bytes]:
        """The part trees kept for ``uids`` (those that have one), by UID."""
        return await self._read(self._engine.structures, name, uids)

    async def save_structures(self, name: str, blobs: Sequence[tuple[int, bytes]]) -> None:
        """Keep part trees (``mime.structure.encode_structure``) of messages of ``name``."""
        await self._run("save structures", self._engine.save_structures, name, blobs)

    async def header_fields(
        self, name: str, uidvalidity: int, uids: Collection[int], fields: Iterable[str]
    ) -> dict[tuple[int, str], list[str]]:
        """Header values kept for ``uids`` of ``name`` under ``uidvalidity``, by (uid,
        lower-case field); a pair not kept is absent (``field_cache``)."""
        return await self._read(self._engine.header_fields, name, uidvalidity, uids, fields)

    async def save_header_fields(
        self, name: str, uidvalidity: int, rows: Sequence[tuple[int, str, list[str]]]
    ) -> None:
        """Keep (uid, field, values) rows read from messages of ``name`` under
        ``uidvalidity`` (``mime.headers.header_values``)."""
        await self._run(
            "save header fields", self._engine.save_header_fields, name, uidvalidity, rows
        )

    async def answer(self, name: str, uidvalidity: int, kind: str, digest: bytes) -> bytes | None:
        """The answer of ``kind`` kept for ``name`` when it was computed from
        ``digest`` under ``uidvalidity``; None otherwise (``field_cache``)."""
        return await self._read(self._engine.answer, name, uidvalidity, kind, digest)

    async def save_answer(
        self, name: str, uidvalidity: int, kind: str, digest: bytes, blob: bytes
    ) -> None:
        """Keep ``blob`` as the answer of ``kind`` for ``digest`` (the one before goes)."""
        await self._run(
            "save answer", self._engine.save_answer, name, uidvalidity, kind, digest, blob
        )

    async def _open_reader(self, name: str, uid: int) -> MessageReader:
        if self._inline_reads:
            # On the loop only the bounded way; a sync or a lock wait, in a thread.
            reader = await self._read(_reader_call(self._engine.open_indexed, name, uid))
            if reader is not None:
                return reader
        return await self._run("read", self._engine.open_message, name, uid, dispose=_close)

    async def store_flags(
        self,
        name: str,
        uids: Collection[int],
        flags: Iterable[str] = (),
        keywords: Iterable[str] = (),
        mode: FlagMode = FlagMode.ADD,
    ) -> list[MessageInfo]:
        """Change flags (RFC 3501 §6.4.6); returns the messages' new state, in UID order."""
        bits = flag_bits(flags)
        words = keyword_set(keywords)
        result = await self._run(
            "store", self._engine.store_flags, name, _uid_set(uids), bits, words, FlagMode(mode)
        )
        return result.stored

    async def store_flags_if_unchanged(
        self,
        name: str,
        uids: Collection[int],
        unchanged_since: int,
        flags: Iterable[str] = (),
        keywords: Iterable[str] = (),
        mode: FlagMode = FlagMode.ADD,
    ) -> ConditionalStoreResult:
        """Change flags of the messages whose MODSEQ is at most ``unchanged_since``
        (RFC 7162 §3.1.3); the others are left as they are (see ``api``)."""
        bits = flag_bits(flags)
        words = keyword_set(keywords)
        store = functools.partial(self._engine.store_flags, unchanged_since=unchanged_since)
        return await self._run(
            "conditional store", store, name, _uid_set(uids), bits, words, FlagMode(mode)
        )

    async def copy(self, src: str, uids: Collection[int], dst: str) -> dict[int, int]:
        return await self._run(
            "copy", functools.partial(self._engine.copy, remove=False), src, _uid_set(uids), dst
        )

    async def move(self, src: str, uids: Collection[int], dst: str) -> dict[int, int]:
        return await self._run(
            "move", functools.partial(self._engine.copy, remove=True), src, _uid_set(uids), dst
        )

    async def expunge(self, name: str, uids: Collection[int] | None = None) -> list[int]:
        """Remove messages flagged ``\\Deleted`` (only among ``uids`` when given)."""
        wanted = None if uids is None else _uid_set(uids)
        return await self._run("expunge", self._engine.expunge, name, wanted)

    def changes(self, name: str | None = None) -> ChangeSubscription:
        """Subscribe to this user's changes (of one mailbox, or all with None)."""
        mailbox = None if name is None else names.mailbox_name(name)
        return self._hub.subscribe(self._user, mailbox)


def _uid_set(uids: Collection[int]) -> Collection[int]:
    """UIDs as given when they are a ``range`` (cheap membership), else a frozen copy."""
    return uids if isinstance(uids, range) else frozenset(int(uid) for uid in uids)


def _close(reader: MessageReader) -> None:
    reader.close()


def _reader_call(function: Callable[..., T], *args: Any) -> Callable[[list[Change]], T]:
    def call(changes: list[Change]) -> T:
        return function(*args)

    return call


class StoreFactory:
    """Opens user stores of one layout; stores from one factory share a change hub."""

    def __init__(
        self,
        layout: StoreLayout,
        *,
        clock: Clock | None = None,
        hub: ChangeHub | None = None,
        lock_timeout: float = DEFAULT_TIMEOUT,
    ):
        self.layout = layout
        self.clock: Clock = clock or SystemClock()
        self.hub = hub or ChangeHub()
        self.lock_timeout = lock_timeout

    def address(self, address: Address | str) -> Address:
        if isinstance(address, Address):
            return address
        try:
            return parse_address(address, default_domain=self.layout.primary_domain)
        except AddressError as exc:
            raise StoreError(f"cannot open a store for {address!r}: {exc}") from exc

    def paths(self, address: Address | str) -> UserPaths:
        """Where the user's mail lives (validated; nothing is created)."""
        return self.layout.user(self.address(address))

    async def open(self, address: Address | str, *, create: bool = True) -> FileMailStore:
        """Open a user's store; with ``create`` a new user is provisioned (INBOX and the
        RFC 6154 special-use folders Sent, Drafts, Trash, Junk, Archive)."""
        engine = UserEngine(
            self.layout, self.address(address), self.clock, lock_timeout=self.lock_timeout
        )
        try:
            await asyncio.to_thread(engine.open, create=create)
        except BaseException as exc:
            engine.close()
            translated = translate_error(exc, "opening the store")
            if translated is exc:
                raise
            raise translated from exc
        return FileMailStore(engine, self.hub, self.clock)

    async def provision(self, address: Address | str) -> None:
        """Create a user's mail directory, index and standard folders (idempotent)."""
        store = await self.open(address, create=True)
        await store.close()


async def open_store(
    layout: StoreLayout,
    address: Address | str,
    *,
    hub: ChangeHub | None = None,
    clock: Clock | None = None,
    create: bool = True,
) -> FileMailStore:
    """Open one user's store (a shortcut for ``StoreFactory(layout).open(address)``)."""
    return await StoreFactory(layout, clock=clock, hub=hub).open(address, create=create)
