"""Small, careful file primitives shared by the Maildir and mbox formats.

Owns: writing every octet (``os.write`` may write less than asked), copying a
message source in bounded chunks (a ``BinaryIO`` is never read whole),
positioned reads, and the directory fsync that makes a rename durable
(a rename is only on disk once its directory is, see fsync(2)).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

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
