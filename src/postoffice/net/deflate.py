"""Raw DEFLATE in both directions of one connection (IMAP COMPRESS=DEFLATE, RFC 4978).

What this module owns: the compressor and decompressor pair that ``Pipe``
puts between the transport (plain TCP, or TLS: RFC 4978 §3 has compression
applied before encryption on the way out) and the session's octets, and the
bound on what one piece of compressed input may expand to.

- The format is raw DEFLATE (RFC 1951) without the zlib or gzip wrapper:
  zlib's window bits are negative (RFC 4978 §4 asks for -8 to -15; -15, the
  largest window, is what both sides use here).
- Every ``compress`` ends with a sync flush: all of it reaches the peer as
  decodable octets at once, so a response never sits in the compressor
  while the client waits for it (RFC 4978 §4: Z_SYNC_FLUSH or Z_FULL_FLUSH;
  the full flush would also reset the dictionary, which costs ratio for
  nothing here).
- ``inflate`` returns at most ``limit`` octets per call and keeps the rest
  of its input (still compressed) for the next call: a few kilobytes that
  inflate to gigabytes (a compression bomb) never sit in memory
  uncompressed; the reader takes what it can handle, the rest waits.
- Input that is not a valid DEFLATE stream, or that goes on after the
  stream's final block (RFC 4978 gives no way to end compression), raises
  ``DeflateError``; the connection cannot be resynchronised after it.
"""

from __future__ import annotations

import zlib
from typing import Final

WINDOW_BITS: Final = -15  # raw DEFLATE, 32 KiB window (RFC 4978 §4)
LEVEL: Final = 6  # zlib's default: the trade of speed for ratio is the sender's (RFC 4978 §3)


class DeflateError(ValueError):
    """The peer's compressed input cannot be decompressed."""


class DeflateCodec:
    """One connection's compressor (outgoing) and decompressor (incoming)."""

    __slots__ = ("_compressor", "_decompressor", "_held")

    def __init__(self, level: int = LEVEL) -> None:
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, WINDOW_BITS)
        self._decompressor = zlib.decompressobj(WINDOW_BITS)
        self._held = b""  # compressed input whose output did not fit under the last limit

    def compress(self, data: bytes) -> bytes:
        """``data`` compressed and sync-flushed: the peer can decode all of it now."""
        return self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)

    @property
    def held(self) -> int:
        """Octets of compressed input kept back because their output would pass the limit."""
        return len(self._held)

    def hold(self, data: bytes) -> None:
        """Keep ``data`` for a later ``inflate`` without decompressing any of it now."""
        if data:
            self._held += data

    def inflate(self, data: bytes, limit: int) -> bytes:
        """Decompress what is held and then ``data``: at most ``limit`` octets (>= 1).

        What would go past ``limit`` stays held (compressed) for the next call.
        ``DeflateError`` when the input is not raw DEFLATE.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1 (zlib reads 0 as no limit)")
        source = self._held + data if self._held else data
        if not source:
            return b""
        decompressor = self._decompressor
        if decompressor.eof:
            raise DeflateError("compressed input continues after the end of its stream")
        try:
            out = decompressor.decompress(source, limit)
        except zlib.error as exc:
            raise DeflateError(str(exc)) from exc
        self._held = decompressor.unconsumed_tail
        if decompressor.unused_data:
            raise DeflateError("compressed input continues after the end of its stream")
        return out
