"""Classic mbox on disk (mboxrd quoting): locked append, safe expunge, scanning.

Formats and conventions: ``mboxrd.py`` (separator, quoting); locks:
``locking.mbox_lock`` (fcntl, then dotlock).

Invariants:
- Every change to an mbox happens while ``locked()`` holds its locks, and
  the index is updated under the same locks (the engine does both inside
  one ``locked()`` block).
- Append writes at the end of the file and fsyncs it; if anything fails
  (the message source raises, the disk fills, the index refuses) the file is
  truncated back to its size before the append, so no partial message is
  ever left for another reader.
- A crash cannot leave one for long either: before the first octet, the
  engine commits the append's intent (``append_intent``) to the index, and
  under the locks an intent still there means the append never completed:
  ``recover_append`` takes its octets back (``mboxrecovery``) before the
  mailbox is scanned, so a torn message is never adopted.
- The dotlock is refreshed (``locking.Dotlock.refresh``) before each chunk
  written, copied or scanned while the locks are held.
- What is appended is what is read: the separator line and the blank line
  after the message are added on write and never returned; a message that
  does not end in LF gets one LF before the blank line (the index keeps its
  exact size, so reads still stop at its last octet).
- Expunge writes the kept messages to a new file next to the mbox
  (``.NAME.postoffice-rewrite``), fsyncs it, gives it the old file's mode
  (and owner where permitted), renames it over the mbox and fsyncs the
  directory. A crash leaves either the old or the new file complete, never
  a mix: mail cannot be lost. The dotlock stays held across the rename, so
  cooperating programs wait for the new file.
- Flags are kept in the index only (no ``Status:`` header is written, the
  message bytes stay as appended).
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Callable, Iterator, Sequence, Set
from dataclasses import dataclass
from pathlib import Path

from postoffice.core.errors import MailboxExists, MailboxNameError, MailboxNotPossible, StoreError
from postoffice.core.maillog import log_event
from postoffice.store import names
from postoffice.store.backend import AppendMeta, MessageGone, ScanResult
from postoffice.store.fileio import (
    CHUNK,
    FileReader,
    MessageSource,
    fsync_dir,
    pread_exact,
    pwrite_all,
    replace_keeping,
    source_chunks,
)
from postoffice.store.index import AppendIntent, MessageRow, NewMessage
from postoffice.store.layout import UserPaths
from postoffice.store.locking import DEFAULT_TIMEOUT, MboxLock, mbox_lock
from postoffice.store.mboxrd import (
    FROM_,
    TAG_OCTETS,
    LineQuoter,
    MboxEntry,
    from_line,
    message_tag,
    scan_mbox,
)
from postoffice.store.mboxrecovery import TornRange, find_torn, intent_for, quarantine

_REWRITE_SUFFIX = ".postoffice-rewrite"
# Longest From line the quick append check reads back; a longer one means a full scan.
_SEPARATOR_MAX = 4096


@dataclass
class _Held:
    fd: int  # the descriptor to write through (the new file after a rewrite)
    depth: int
    lock: MboxLock  # its descriptor holds the kernel lock; its dotlock is refreshed

    def replace_fd(self, fd: int) -> None:
        """Work on a new file from here on (still under the dotlock); the old
        descriptor carries our kernel lock and stays open until release."""
        if self.fd != self.lock.fd:
            os.close(self.fd)
        self.fd = fd


class QuotedReader:
    """Reads a stored mboxrd message un-quoting as it goes, in bounded memory."""

    def __init__(self, fd: int, data_offset: int, stored_size: int, size: int):
        self._fd = fd
        self._data_offset = data_offset
        self._stored_size = stored_size
        self.size = size

    def chunks(self, start: int, end: int, chunk_size: int) -> Iterator[bytes]:
        end = min(end, self.size)
        if start >= end:
            return
        quoter = LineQuoter(unquote=True)
        produced = 0  # octets of un-quoted output so far
        pending = bytearray()
        read_at = 0
        while produced < end and read_at < self._stored_size:
            raw = pread_exact(
                self._fd, self._data_offset + read_at, min(CHUNK, self._stored_size - read_at)
            )
            if not raw:
                break
            read_at += len(raw)
            out = quoter.feed(raw)
            if read_at >= self._stored_size:
                out += quoter.finish()
            lo = max(start - produced, 0)
            hi = min(end - produced, len(out))
            produced += len(out)
            if lo < hi:
                pending += out[lo:hi]
            while len(pending) >= chunk_size:
                yield bytes(pending[:chunk_size])
                del pending[:chunk_size]
        if pending:
            yield bytes(pending)

    def read(self, start: int, length: int) -> bytes:
        return b"".join(self.chunks(start, start + length, CHUNK))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class _ReaderStream:
    """A ``read(n)`` view over a reader, to copy a message as an append source."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._buffer = b""

    def read(self, size: int = -1, /) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, b"")
            if not chunk:
                break
            self._buffer += chunk
        if size < 0:
            size = len(self._buffer)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


class MboxFormat:
    """The ``FolderFormat`` for mbox files (see ``backend.FolderFormat``)."""

    sync_before_append = True
    immutable_messages = False
    flag_changes_detect_moves = False

    def __init__(
        self, paths: UserPaths, *, fsync: bool = True, lock_timeout: float = DEFAULT_TIMEOUT
    ):
        self._paths = paths
        self._fsync = fsync
        self._lock_timeout = lock_timeout
        self._held: dict[Path, _Held] = {}
        self._size_before: dict[tuple[str, int], int] = {}

    def file(self, name: str) -> Path:
        return self._paths.mbox_file(name)

    def folder_exists(self, name: str) -> bool:
        try:
            st = os.lstat(self.file(name))
        except (FileNotFoundError, NotADirectoryError):
            return False
        return stat.S_ISREG(st.st_mode)  # a symbolic link is no mailbox of ours

    def discover(self) -> list[str]:
        found = [names.INBOX]
        root = self._paths.mail_dir
        for directory, subdirs, files in os.walk(root):
            here = Path(directory)
            subdirs[:] = [d for d in subdirs if not d.startswith(".")]
            for filename in files:
                if filename.startswith(".") or filename.endswith(".lock"):
                    continue
                if (here / filename).is_symlink():
                    continue  # never follow a link out of the mail directory
                relative = (here / filename).relative_to(root)
                if len(relative.parts) == 1 and filename.startswith(names.RESERVED_PREFIX):
                    continue  # our own index and lock files
                try:
                    parts = [names.decode_component(p) for p in relative.parts]
                    name = names.mailbox_name(names.SEPARATOR.join(parts))
                except MailboxNameError:
                    continue
                if self.file(name) == here / filename:
                    found.append(name)
        return found

    def create_parent(self, name: str) -> bool:
        path = self.file(name)
        self._check_parents(name, path)
        path.mkdir(mode=0o700, parents=True, exist_ok=True)  # holds mailbox files only
        if self._fsync:
            fsync_dir(path.parent)
        return False

    def create_folder(self, name: str) -> None:
        path = self.file(name)
        if not names.is_inbox(name):
            self._check_parents(name, path)
        if path.is_dir():  # the name exists, as a place for other mailboxes (\Noselect)
            raise MailboxExists(
                f"{name!r} exists as a directory of mailboxes: an mbox mailbox cannot hold "
                "both messages and other mailboxes"
            )
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        os.close(fd)
        if self._fsync:
            fsync_dir(path.parent)

    def _check_parents(self, name: str, path: Path) -> None:
        parent = path.parent
        while parent not in (self._paths.mail_dir, parent.parent):
            if parent.is_file():
                raise MailboxNotPossible(
                    f"cannot create {name!r}: a mailbox above it is an mbox file, and an mbox "
                    "mailbox cannot also hold other mailboxes"
                )
            parent = parent.parent

    def delete_folder(self, name: str) -> None:
        path = self.file(name)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self._prune_parents(path)

    def _prune_parents(self, path: Path) -> None:
        parent = path.parent
        while parent != self._paths.mail_dir and parent.is_relative_to(self._paths.mail_dir):
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def rename_folders(self, pairs: Sequence[tuple[str, str]]) -> None:
        old, new = pairs[0]
        source = self._paths.mbox_dir_of(old)
        target = self._paths.mbox_dir_of(new)
        if target.exists():
            raise StoreError(f"cannot rename to {new!r}: it already exists on disk")
        self._check_parents(new, target)
        if not source.exists():
            return
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.rename(source, target)
        self._prune_parents(source)
        if self._fsync:
            fsync_dir(target.parent)

    @contextlib.contextmanager
    def locked(self, names: Sequence[str]) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            for path in sorted({self.file(name) for name in names}):
                stack.enter_context(self._lock(path))
            yield

    @contextlib.contextmanager
    def _lock(self, path: Path) -> Iterator[None]:
        held = self._held.get(path)
        if held is not None:
            held.depth += 1
            try:
                yield
            finally:
                held.depth -= 1
            return
        # Only INBOX comes back by itself (a spool file may be removed when
        # empty); locking must not bring back a folder deleted meanwhile.
        create = path == self._paths.mbox_inbox
        if create:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        stack = contextlib.ExitStack()
        try:
            lock = stack.enter_context(mbox_lock(path, timeout=self._lock_timeout, create=create))
        except FileNotFoundError as exc:
            raise StoreError(f"no such mailbox: {path.name} is gone") from exc
        with stack:
            held = _Held(lock.fd, 1, lock)
            self._held[path] = held
            try:
                yield
            finally:
                del self._held[path]
                held.replace_fd(-1)
                if not self._held:
                    self._size_before.clear()

    def _holding(self, name: str) -> _Held:
        held = self._held.get(self.file(name))
        if held is None:
            raise StoreError(f"internal error: mbox {name!r} used without its lock")
        return held

    def _locked_fd(self, name: str) -> int:
        return self._holding(name).fd

    def _tick(self, name: str) -> Callable[[], None]:
        """What long work on a locked mbox calls before each chunk: refresh the dotlock."""
        return self._holding(name).lock.dotlock.refresh

    def fingerprint(self, name: str) -> str:
        try:
            st = os.stat(self.file(name))
        except FileNotFoundError:
            return "missing"
        return f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"

    def same_files(self, name: str, indexed: Set[str]) -> bool:
        return False  # one file for all: only ``scan`` can tell

    def scan(self, name: str, known: list[MessageRow], state: str) -> ScanResult:
        fd = self._locked_fd(name)
        st = os.fstat(fd)
        size = st.st_size
        result = ScanResult(state=self.fingerprint(name))
        old_ino, old_size = _parse_state(state)
        ordered = sorted(known, key=lambda row: row.offset)
        if (
            ordered
            and old_ino == st.st_ino
            and 0 < old_size < size
            and pread_exact(fd, old_size, len(FROM_)) == FROM_
            and _intact(fd, ordered[0], ordered[1].offset if len(ordered) > 1 else old_size)
            and _intact(fd, ordered[-1], old_size)
        ):
            # Only appended to since we last looked: read the new part only.
            entries = self._entries(name, old_size, size, self._tick(name))
            result.new = [_new_message(e, st.st_mtime) for e in entries]
            return result
        entries = self._entries(name, 0, size, self._tick(name))
        common = 0
        for row, entry in zip(ordered, entries, strict=False):
            if not _same_message(row, entry):
                break
            common += 1
        if common == len(ordered) or common == len(entries):
            result.gone = [row.uid for row in ordered[common:]]
            result.new = [_new_message(e, st.st_mtime) for e in entries[common:]]
        else:
            # Rewritten by another program: offsets no longer hold (module docstring).
            result.reset = True
            result.new = [_new_message(e, st.st_mtime) for e in entries]
        return result

    def _entries(
        self, name: str, start: int, end: int, tick: Callable[[], None]
    ) -> list[MboxEntry]:
        with open(self.file(name), "rb") as stream:
            return scan_mbox(stream, start, end, tick)

    def prepare(self, name: str, source: MessageSource, meta: AppendMeta) -> object:
        return source  # written under the lock by commit()

    def append_intent(self, name: str, metas: Sequence[AppendMeta]) -> AppendIntent:
        separators = [from_line(meta.sender, meta.internal_date) for meta in metas]
        return intent_for(self._locked_fd(name), separators)

    def recover_append(self, name: str, intent: AppendIntent) -> None:
        held = self._holding(name)
        tick = held.lock.dotlock.refresh
        torn = find_torn(held.fd, intent, tick)
        if not isinstance(torn, TornRange):
            if torn is not None:
                log_event("store", f"{str(self.file(name))!r}: interrupted append: {torn}")
            return
        saved = ""
        if torn.quarantine:
            where = quarantine(held.fd, torn, self._paths.mail_dir, fsync=self._fsync, tick=tick)
            saved = f", saved as {where}"
        if torn.end >= torn.size:
            self._truncate(held.fd, torn.start)
        else:
            path = self.file(name)
            temporary = path.with_name("." + path.name + _REWRITE_SUFFIX)
            keep = [(0, torn.keep_to), (torn.end, torn.size)]
            held.replace_fd(
                replace_keeping(path, held.fd, temporary, keep, fsync=self._fsync, tick=tick)
            )
        log_event(
            "store",
            f"{str(self.file(name))!r}: took back an interrupted append "
            f"({torn.reason}, octets {torn.start}-{torn.end}{saved})",
            level=logging.WARNING,
        )

    def commit(self, name: str, prepared: object, meta: AppendMeta) -> NewMessage:
        held = self._holding(name)
        fd = held.fd
        size = os.fstat(fd).st_size
        try:
            message = self._append(fd, size, prepared, meta, held.lock.dotlock.refresh)
        except BaseException:
            self._truncate(fd, size)
            raise
        self._size_before[(name, message.offset)] = size
        return message

    def _append(
        self, fd: int, size: int, source: object, meta: AppendMeta, tick: Callable[[], None]
    ) -> NewMessage:
        position = size
        if size and pread_exact(fd, size - 1, 1) != b"\n":
            pwrite_all(fd, b"\n", position)  # the From line must start a line
            position += 1
        offset = position
        separator = from_line(meta.sender, meta.internal_date)
        pwrite_all(fd, separator, position)
        position += len(separator)
        data_offset = position
        quoter = LineQuoter(unquote=False)
        next_chunk = source_chunks(source)  # type: ignore[arg-type]
        original = 0
        last = b""
        while chunk := next_chunk():
            original += len(chunk)
            last = chunk[-1:]
            out = quoter.feed(chunk)
            tick()
            pwrite_all(fd, out, position)
            position += len(out)
        out = quoter.finish()
        pwrite_all(fd, out, position)
        position += len(out)
        stored = position - data_offset
        trailer = b"\n" if original and last != b"\n" else b""
        pwrite_all(fd, trailer + b"\n", position)
        head = pread_exact(fd, data_offset, TAG_OCTETS)
        if self._fsync:
            os.fsync(fd)
        return NewMessage(
            flags=meta.flags,
            keywords=meta.keywords,
            internal_date=meta.internal_date,
            size=original,
            locator=message_tag(separator, head),
            offset=offset,
            data_offset=data_offset,
            stored_size=stored,
            quoted=quoter.changed,
        )

    def _truncate(self, fd: int, size: int) -> None:
        os.ftruncate(fd, size)
        if self._fsync:
            os.fsync(fd)

    def discard(self, name: str, message: NewMessage) -> None:
        """Take back ``message`` and everything appended after it."""
        self._truncate(self._locked_fd(name), self._size_before.pop((name, message.offset)))

    def durable(self, name: str, message: NewMessage) -> None:
        return None  # commit() already fsync'd under the lock

    def abandon(self, prepared: object) -> None:
        return None

    def copy_message(self, src: str, row: MessageRow, dst: str, meta: AppendMeta) -> NewMessage:
        reader = self.open_reader(src, row)
        try:
            stream = _ReaderStream(reader.chunks(0, row.size, CHUNK))
            return self.commit(dst, stream, meta)
        finally:
            reader.close()

    def set_flags(self, name: str, row: MessageRow, flags: int) -> str | None:
        return None  # flags live in the index only

    def remove(
        self, name: str, doomed: list[MessageRow], kept: list[MessageRow]
    ) -> list[tuple[int, int, int]]:
        if not doomed:
            return []
        path = self.file(name)
        held = self._holding(name)
        size = os.fstat(held.fd).st_size
        rows = sorted([*doomed, *kept], key=lambda row: row.offset)
        ends = [row.offset for row in rows[1:]] + [size]
        keep = {row.uid for row in kept}
        ranges = [(0, rows[0].offset)]  # octets before the first message
        moves: list[tuple[int, int, int]] = []
        position = rows[0].offset
        for row, end in zip(rows, ends, strict=True):
            if row.uid in keep:
                moves.append((row.uid, position, position + row.data_offset - row.offset))
                ranges.append((row.offset, end))
                position += end - row.offset
        temporary = path.with_name("." + path.name + _REWRITE_SUFFIX)
        new_fd = replace_keeping(
            path, held.fd, temporary, ranges, fsync=self._fsync, tick=held.lock.dotlock.refresh
        )
        held.replace_fd(new_fd)
        return moves

    def message_paths(self, name: str, rows: Sequence[MessageRow]) -> None:
        return None  # one file for all, and its offsets move with other programs' rewrites

    def open_reader(self, name: str, row: MessageRow) -> FileReader | QuotedReader:
        try:
            fd = os.open(self.file(name), os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError as exc:
            raise MessageGone(f"the mbox of {name!r} is gone") from exc
        if row.quoted == 0:
            return FileReader(fd, row.size, base=row.data_offset)
        return QuotedReader(fd, row.data_offset, row.stored_size, row.size)

    def finish(self, name: str) -> str | None:
        return self.fingerprint(name)


def _parse_state(state: str) -> tuple[int, int]:
    parts = state.split(":")
    if len(parts) != 3:
        return -1, -1
    try:
        return int(parts[0]), int(parts[1])
    except ValueError:
        return -1, -1


def _intact(fd: int, row: MessageRow, end: int) -> bool:
    """True when ``row``'s From line and first octets are still where the index has them.

    A file that grew is only taken as appended to when its first and last
    known messages are unchanged: a program rewriting the mbox in place (mutt
    does) keeps the inode, and a From line may then start where the file
    used to end by chance.
    """
    if not 0 < row.data_offset - row.offset <= _SEPARATOR_MAX or end < row.data_offset:
        return False
    separator = pread_exact(fd, row.offset, row.data_offset - row.offset)
    head = pread_exact(fd, row.data_offset, min(TAG_OCTETS, end - row.data_offset))
    return separator.startswith(FROM_) and message_tag(separator, head) == row.locator


def _same_message(row: MessageRow, entry: MboxEntry) -> bool:
    # Our append may have added one LF after a message without a final LF.
    return (
        row.offset == entry.offset
        and row.data_offset == entry.data_offset
        and entry.stored_size in (row.stored_size, row.stored_size + 1)
        and row.locator == entry.tag
    )


def _new_message(entry: MboxEntry, mtime: float) -> NewMessage:
    return NewMessage(
        flags=0,
        keywords="",
        internal_date=entry.date if entry.date is not None else mtime,
        locator=entry.tag,
        size=entry.stored_size - entry.quoted,
        offset=entry.offset,
        data_offset=entry.data_offset,
        stored_size=entry.stored_size,
        quoted=entry.quoted,
    )
