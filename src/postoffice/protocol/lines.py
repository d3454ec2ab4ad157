"""Bounded command lines, for every line-based protocol (SMTP, POP3, and IMAP to come).

Owns ``LineReader``: taking the next line out of a session's input buffer
without ever holding more than ``limit`` octets of one line. A line longer
than the limit is reported once (``TOO_LONG``) and then dropped up to its
LF, even when that LF comes in later reads: the octets in between are
thrown away as they arrive (``skip``), so a client sending megabytes
without a line end costs no memory.

A line ends at LF; the CR before it, if any, is removed, and whether it was
there is reported (SMTP refuses or repairs a bare LF, RFC 5321 §2.3.8;
POP3 accepts it).
"""

from __future__ import annotations

from typing import Final


class LineTooLong:
    """Marker: the line being read passed the limit and is being dropped."""


TOO_LONG: Final = LineTooLong()


class LineReader:
    """The next line of a bytearray, bounded (see the module docstring)."""

    __slots__ = ("dropping", "limit")

    def __init__(self, limit: int):
        self.limit = limit
        self.dropping = False  # the rest of a too long line is still to come

    def reset(self) -> None:
        """Forget a line being dropped (the buffer was cleared, e.g. at STARTTLS)."""
        self.dropping = False

    def skip(self, data: bytes) -> bytes:
        """What of newly read ``data`` to keep: while dropping, only what follows the LF."""
        if not self.dropping:
            return data
        newline = data.find(b"\n")
        if newline < 0:
            return b""
        self.dropping = False
        return data[newline + 1 :]

    def take(self, buffer: bytearray) -> tuple[bytes, bool] | LineTooLong | None:
        """The next line without its terminator and whether it ended in a bare LF;
        ``TOO_LONG``; or None when the buffer holds no whole line yet."""
        if self.dropping:
            newline = buffer.find(b"\n")
            if newline < 0:
                buffer.clear()
                return None
            del buffer[: newline + 1]
            self.dropping = False
        newline = buffer.find(b"\n", 0, self.limit)
        if newline < 0:
            if len(buffer) < self.limit:
                return None
            end = buffer.find(b"\n", self.limit)
            if end < 0:
                buffer.clear()
                self.dropping = True
            else:  # the line ended in what was read: what follows it is the next line
                del buffer[: end + 1]
            return TOO_LONG
        line = bytes(buffer[:newline])
        del buffer[: newline + 1]
        if line.endswith(b"\r"):
            return line[:-1], False
        return line, True
