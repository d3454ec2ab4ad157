"""Small, careful file primitives shared by the Maildir and mbox formats.

Owns: writing every octet (``os.write`` may write less than asked), copying a
message source in bounded chunks (a ``BinaryIO`` is never read whole),
positioned reads, the directory fsync that makes a rename durable (a rename
is only on disk once its directory is, see fsync(2)), the file-system sync
that makes everything written before it durable at once (syncfs(2), for
group commits of deliveries), and ``replace_keeping``:
replacing a file by some of its ranges through a new file, fsync'd and
renamed over it, so that a crash leaves the old or the new file, never a mix.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from postoffice.core.errors import StoreError

CHUNK = 1 << 16


class Readable(Protocol):
    """Anything with a binary ``read(size)``, such as an open file or ``io.BytesIO``."""

    def read(self, size: int = -1, /) -> bytes: ...


MessageSource = bytes | bytearray | memoryview | Readable


def write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def source_chunks(source: MessageSource) -> Callable[[], bytes]:
    """A function returning the next chunk of ``source`` (``b""`` at the end)."""
    if isinstance(source, bytes | bytearray | memoryview):
        view = memoryview(source)
        position = 0

        def from_buffer() -> bytes:
            nonlocal position
            chunk = bytes(view[position : position + CHUNK])
            position += len(chunk)
            return chunk

        return from_buffer

    def from_stream() -> bytes:
        chunk = source.read(CHUNK)
        if not isinstance(chunk, bytes | bytearray):
            raise TypeError("message source must be a binary stream")
        return bytes(chunk)

    return from_stream


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _libc_syncfs() -> Callable[[int], int] | None:
    try:
        function: Callable[[int], int] = ctypes.CDLL(None, use_errno=True).syncfs
    except (AttributeError, OSError):  # not Linux: no syncfs(2) in the C library
        return None
    return function


_SYNCFS = _libc_syncfs()


def sync_file_system(fd: int) -> None:
    """Make durable everything written to the file system that holds ``fd``.

    syncfs(2): every file's data and metadata (names in directories
    included) written before the call is on stable storage when it returns,
    and a write-back error since the descriptor was opened is reported
    (Linux 5.8 and later). One call covers any number of files, so
    concurrent deliveries share one (a group commit). Without syncfs(2),
    sync(2) does the same for every file system.
    """
    if _SYNCFS is None:
        os.sync()
        return
    if _SYNCFS(fd) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))


def copy_range(
    src: int, dst: int, start: int, end: int, position: int, tick: Callable[[], None]
) -> int:
    """Copy ``src[start:end]`` to ``dst`` at ``position``; returns the new position.

    ``tick`` runs before each chunk (to keep a lock fresh during a long copy).
    """
    while start < end:
        tick()
        chunk = os.pread(src, min(CHUNK, end - start), start)
        if not chunk:
            raise StoreError("the file shrank while it was being copied")
        pwrite_all(dst, chunk, position)
        start += len(chunk)
        position += len(chunk)
    return position


def replace_keeping(
    path: Path,
    fd: int,
    temporary: Path,
    ranges: Sequence[tuple[int, int]],
    *,
    fsync: bool,
    tick: Callable[[], None],
) -> int:
    """Replace ``path`` (open as ``fd``) by the concatenation of ``ranges`` of it.

    The new file is written at ``temporary`` (a left-over file or link there
    is removed, never written through), given the old file's mode (and owner
    where permitted), fsync'd, renamed over ``path``, and the directory
    fsync'd. Returns a read/write descriptor of the new file; ``fd`` stays open.
    """
    st = os.fstat(fd)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary)
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
    out = os.open(temporary, flags, 0o600)
    try:
        position = 0
        for start, end in ranges:
            position = copy_range(fd, out, start, end, position, tick)
        os.fchmod(out, st.st_mode & 0o7777)
        with contextlib.suppress(PermissionError):
            os.fchown(out, st.st_uid, st.st_gid)
        if fsync:
            os.fsync(out)
        os.rename(temporary, path)
    except BaseException:
        os.close(out)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    if fsync:
        try:
            fsync_dir(path.parent)
        except BaseException:
            os.close(out)
            raise
    return out


def pread_exact(fd: int, offset: int, length: int) -> bytes:
    """Read ``length`` octets at ``offset``; fewer only at end of file."""
    parts: list[bytes] = []
    while length > 0:
        chunk = os.pread(fd, length, offset)
        if not chunk:
            break
        parts.append(chunk)
        offset += len(chunk)
        length -= len(chunk)
    return b"".join(parts)


def open_message_file(path: str | os.PathLike[str], size: int) -> FileReader | None:
    """A reader of the ``size`` octets of the message file at ``path`` (a symbolic
    link is never followed); None when there is no file there (any more)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    return FileReader(fd, size)


class FileReader:
    """Reads ``[base, base + size)`` of an open file by position; owns the descriptor."""

    def __init__(self, fd: int, size: int, base: int = 0):
        self._fd = fd
        self._base = base
        self.size = size

    def read(self, start: int, length: int) -> bytes:
        start = max(0, min(start, self.size))
        length = max(0, min(length, self.size - start))
        return pread_exact(self._fd, self._base + start, length)

    def chunks(self, start: int, end: int, chunk_size: int) -> Iterator[bytes]:
        position = max(0, start)
        end = min(end, self.size)
        while position < end:
            chunk = pread_exact(self._fd, self._base + position, min(chunk_size, end - position))
            if not chunk:
                return
            position += len(chunk)
            yield chunk

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of ``path``, or None when it is missing: tells a replaced file."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino
