"""Message content as the client puts it on the wire: line ends, dot-stuffing, the end.

What this module owns, for content fed in chunks that may split anywhere:

- ``LineEndNormalizer``: every line ends in CRLF (RFC 5321 §2.3.8): a bare
  LF and a bare CR each become CRLF. A CR at the end of a chunk is held until
  the next chunk shows whether an LF follows. At the end, a message that does
  not end with a line end gets one (RFC 5322 §2.1 lines end in CRLF; DATA's
  end marker must start a line, RFC 5321 §4.1.1.4). An empty message stays
  empty. With ``binary=True`` (BODY=BINARYMIME, RFC 3030 §3) the octets pass
  unchanged: binary content is exact.
- ``DotStuffer`` (DATA): RFC 5321 §4.5.2 transparency: a line that starts
  with "." gets one more "." in front; ``finish`` adds the end of data
  ``.<CRLF>``. Lines are judged on the normalised output, so a dot after a
  bare LF or bare CR, or right after a chunk boundary, is stuffed too.
- BDAT content (RFC 3030 §2) is counted, never stuffed: it uses the
  normaliser alone.

Invariants: at most one octet (a CR) is held between calls; the output of
``feed`` calls followed by ``finish`` is the same whatever the chunking.
"""

from __future__ import annotations

import re
from typing import Final

_ANY_LINE_END: Final = re.compile(rb"\r\n|\r|\n")


class LineEndNormalizer:
    """CRLF line ends across chunk boundaries (see the module doc)."""

    __slots__ = ("_binary", "_cr_held", "_line_ended")

    def __init__(self, *, binary: bool = False) -> None:
        self._binary = binary
        self._cr_held = False
        self._line_ended = True  # nothing written yet: nothing to end

    def feed(self, chunk: bytes) -> bytes:
        if self._binary or not chunk:
            return chunk
        if self._cr_held:
            chunk = b"\r" + chunk
        self._cr_held = chunk.endswith(b"\r")
        if self._cr_held:
            chunk = chunk[:-1]
        crlf = chunk.count(b"\r\n")
        if chunk.count(b"\r") != crlf or chunk.count(b"\n") != crlf:
            chunk = _ANY_LINE_END.sub(b"\r\n", chunk)
        if chunk:
            self._line_ended = chunk.endswith(b"\r\n")
        return chunk

    def finish(self) -> bytes:
        """The held CR as a line end, or the line end the message lacked."""
        if self._binary:
            return b""
        ended, self._line_ended = self._line_ended, True
        if self._cr_held:
            self._cr_held = False
            return b"\r\n"  # a bare CR at the very end
        return b"" if ended else b"\r\n"


class DotStuffer:
    """DATA content: normalised line ends, stuffed dots, and the end marker."""

    __slots__ = ("_at_line_start", "_lines")

    def __init__(self) -> None:
        self._lines = LineEndNormalizer()
        self._at_line_start = True  # the DATA command's CRLF ended the previous line

    def feed(self, chunk: bytes) -> bytes:
        out = self._lines.feed(chunk)
        if not out:
            return out
        if b"." in out:
            # RFC 5321 §4.5.2: "." at the start of a line is doubled.
            out = out.replace(b"\r\n.", b"\r\n..")
            if self._at_line_start and out.startswith(b"."):
                out = b"." + out
        self._at_line_start = out.endswith(b"\r\n")
        return out

    def finish(self) -> bytes:
        """The rest of the content and ``.<CRLF>`` (RFC 5321 §4.1.1.4)."""
        self._at_line_start = True
        return self._lines.finish() + b".\r\n"
