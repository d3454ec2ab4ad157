"""How a stored message travels in a RETR or TOP answer, and how big it is.

What this module owns:
- ``wire_size``: the size a scan listing announces (RFC 1939 §5 LIST, §11:
  "the POP3 server simply counts each occurrence of this character in a
  message as two octets"), i.e. the octets RETR sends before dot-stuffing and
  without the terminating ``.CRLF``;
- ``MessageEncoder``: the streaming transformation into the multi-line
  response body (RFC 1939 §3), chunk by chunk, with the TOP cut (RFC 1939 §7).

The canonical form, shared by both:
- every LF not preceded by CR becomes CRLF; a CR not followed by LF is
  content and stays as it is (a message may hold one, RFC 5322 does not);
- a non-empty message that does not end in CRLF gets one, so the terminator
  always starts a line; an empty message stays empty.

Invariants:
- for any octets and any way of cutting them into chunks, what the encoder
  produces for RETR is the canonical form, dot-stuffed, then ``.CRLF``; with
  the stuffing and the terminator removed it is exactly ``wire_size(data)``
  octets long (the property tests check this);
- a CR at the end of one chunk and an LF at the start of the next are one
  CRLF: the encoder holds back a trailing CR until it sees what follows;
- memory is bounded by the chunk being fed: nothing else is accumulated.
"""

from __future__ import annotations

from collections.abc import Sequence

from postoffice.protocol.errors import ProtocolUsageError

CRLF = b"\r\n"
TERMINATOR = b".\r\n"  # RFC 1939 §3: the end of a multi-line response


def wire_size(data: bytes) -> int:
    """Octets of ``data`` in canonical form (see the module doc), before dot-stuffing."""
    bare_lf = data.count(b"\n") - data.count(b"\r\n")
    size = len(data) + bare_lf
    if data and not data.endswith(b"\n"):
        size += 2  # the CRLF that ends the last line
    return size


def canonical(data: bytes) -> bytes:
    """Bare LF -> CRLF; a lone CR stays (no final CRLF is added here)."""
    if data.count(b"\n") == data.count(b"\r\n"):
        return data  # every LF has its CR already (mail received by SMTP): no copy
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def is_canonical(data: bytes) -> bool:
    """True when ``data`` is its own canonical form and ends its last line (or is
    empty): a whole message that RETR sends as it is, dot-stuffing aside."""
    return data.count(b"\n") == data.count(b"\r\n") and (not data or data.endswith(CRLF))


def dot_lines(data: bytes) -> tuple[int, ...] | None:
    """Where the lines of a whole message that start with "." begin (offsets), when
    ``is_canonical(data)``; else None. With them ``MessageEncoder.whole`` stuffs the
    message without searching it (a search of 10 KB costs more than the copy)."""
    if not is_canonical(data):
        return None
    found = [0] if data.startswith(b".") else []
    position = data.find(b"\n.")
    while position >= 0:
        found.append(position + 1)
        position = data.find(b"\n.", position + 2)
    return tuple(found)


class MessageEncoder:
    """Turns a message, fed in chunks, into the body of a RETR or TOP answer.

    ``body_lines=None`` (RETR) passes everything. ``body_lines=n`` (TOP,
    RFC 1939 §7) passes the header, the empty line that ends it and then at
    most ``n`` lines of the body; once that is out, ``done`` is True and
    further input is ignored, so the driver may stop reading. A message
    without an empty line is all header. ``finish()`` ends the last line if
    needed and adds the terminator; ``done`` is True after it as well.
    """

    __slots__ = (
        "_at_line_start",
        "_body_lines",
        "_done",
        "_finished",
        "_in_body",
        "_left",
        "_line_open",
        "_pending_cr",
        "_wire_octets",
    )

    def __init__(self, body_lines: int | None = None) -> None:
        if body_lines is not None and body_lines < 0:
            raise ValueError("body_lines must not be negative")
        self._body_lines = body_lines
        self._left = body_lines or 0
        self._pending_cr = False  # a CR ended the last chunk: its fate depends on the next
        self._at_line_start = True  # the output so far ends a line (or is empty)
        self._line_open = False  # TOP: the current line has content from earlier chunks
        self._in_body = False
        self._done = False
        self._finished = False
        self._wire_octets = 0

    @property
    def done(self) -> bool:
        """True when no more input is wanted (TOP's lines are out, or after ``finish``)."""
        return self._done

    @property
    def wire_octets(self) -> int:
        """Canonical octets produced so far (no stuffing, no terminator): ``wire_size``."""
        return self._wire_octets

    def feed(self, chunk: bytes) -> bytes:
        """The wire octets for ``chunk`` (possibly fewer: a trailing CR waits)."""
        if self._finished:
            raise ProtocolUsageError("feed() after finish()")
        if self._done or not chunk:
            return b""
        data = bytes(chunk)
        if self._pending_cr:
            data = b"\r" + data
            self._pending_cr = False
        if data.endswith(b"\r"):
            data = data[:-1]
            self._pending_cr = True
        return self._emit(canonical(data))

    def whole(self, data: bytes, dots: Sequence[int]) -> bytes:
        """RETR of a whole message at once: ``feed(data)`` then ``finish()``, for
        a message in canonical form whose "." lines start at ``dots``
        (``dot_lines(data)``, found when the message was first read)."""
        if self._body_lines is not None or self._wire_octets or self._finished:
            raise ProtocolUsageError("whole() is for a RETR that has not started")
        self._finished = self._done = True
        self._wire_octets = len(data)
        if not dots:
            return data + TERMINATOR
        view = memoryview(data)
        pieces = [
            view[start:end] for start, end in zip((0, *dots), (*dots, len(data)), strict=True)
        ]
        # RFC 1939 §3: each piece but the first starts a "." line, which gets one more.
        return b".".join(pieces) + TERMINATOR

    def finish(self) -> bytes:
        """The rest of the message, its final CRLF when missing, and the terminator."""
        if self._finished:
            raise ProtocolUsageError("finish() was already called")
        out = b""
        if not self._done:
            if self._pending_cr:
                out += self._emit(b"\r")  # a CR that ends the message is content
            if not self._at_line_start:
                out += self._emit(CRLF)
        self._pending_cr = False
        self._finished = self._done = True
        return out + TERMINATOR

    # ------------------------------------------------------------ machinery

    def _emit(self, data: bytes) -> bytes:
        """Cut (TOP), count and dot-stuff canonical octets."""
        if self._body_lines is not None:
            data = self._cut(data)
        if not data:
            return b""
        self._wire_octets += len(data)
        # RFC 1939 §3: a line that starts with "." gets one more "." in front.
        stuffed = data.replace(b"\r\n.", b"\r\n..")
        if self._at_line_start and data.startswith(b"."):
            stuffed = b"." + stuffed
        self._at_line_start = data.endswith(b"\n")
        return stuffed

    def _cut(self, data: bytes) -> bytes:
        """TOP: keep the header, the empty line and ``body_lines`` lines of the body.

        In canonical octets every LF has its CR right before it in the same
        piece (a trailing CR is held back), so a line is empty exactly when
        it is a bare CRLF and no earlier piece opened it.
        """
        position, end = 0, len(data)
        while position < end:
            newline = data.find(b"\n", position)
            if newline < 0:
                self._line_open = True
                return data
            empty = newline - position == 1 and not self._line_open
            self._line_open = False
            position = newline + 1
            if not self._in_body:
                if empty:  # RFC 5322 §2.1: the empty line ends the header
                    self._in_body = True
                    if self._left == 0:
                        self._done = True
                        return data[:position]
            else:
                self._left -= 1
                if self._left == 0:
                    self._done = True
                    return data[:position]
        return data
