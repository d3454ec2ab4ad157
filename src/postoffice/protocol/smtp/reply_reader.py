"""SMTP replies as a client reads them: octets in, ``Reply`` values out.

What this module owns: cutting a server's output into replies (RFC 5321
§4.2) and refusing, with ``ReplySyntaxError``, whatever is not one.

    reply      = *( code "-" [ textstring ] CRLF ) code [ SP [ textstring ] ] CRLF
    code       = %x32-35 DIGIT DIGIT        ; 2xx to 5xx, the same on every line

Leniencies, each deliberate (a client acts on the code alone, RFC 5321 §4.2,
so what surrounds it need not be perfect): a line may end in a bare LF; a
last line may be the bare code with nothing after it; text is decoded as
UTF-8 with undecodable octets replaced (servers with SMTPUTF8, RFC 6531, do
send UTF-8 text).

Enhanced status codes (RFC 3463, announced by RFC 2034): when the first
line's text starts with ``class.subject.detail`` whose class is the reply
code's first digit, that code becomes ``Reply.enhanced`` and is removed from
every line that starts with it. The lines of a multi-line reply are joined
with ``\\n``, as ``replies.render_reply`` expects them.

Invariants (every input has a bound, DESIGN.md §5): a line longer than
``max_line_octets`` (line end excluded), a reply of more than ``max_lines``
lines, a malformed code, or codes that differ between the lines of one reply
raise ``ReplySyntaxError``; the reader holds at most one line being read plus
the lines of one reply. After an error the reader stays failed: the stream
cannot be trusted to be in step any more.
"""

from __future__ import annotations

import re
from typing import Final

from postoffice.core.errors import PostofficeError
from postoffice.core.reply import Reply
from postoffice.protocol.lines import TOO_LONG, LineReader

MAX_LINE_OCTETS: Final = 4096  # RFC 5321 §4.5.3.1.5 allows 512; servers overshoot
MAX_LINES: Final = 200

# RFC 3463 §2: class "." subject "." detail; class is 2, 4 or 5.
_ENHANCED: Final = re.compile(r"([245])\.([0-9]{1,3})\.([0-9]{1,3})(?= |$)")


class ReplySyntaxError(PostofficeError):
    """The server's output is not an SMTP reply (see the module doc for the rules)."""


class ReplyReader:
    """Reads replies from the octets fed to it; see the module doc."""

    __slots__ = ("_buffer", "_code", "_error", "_lines", "_max_line", "_max_lines", "_reader")

    def __init__(self, *, max_line_octets: int = MAX_LINE_OCTETS, max_lines: int = MAX_LINES):
        self._max_line = max_line_octets
        self._max_lines = max_lines
        # The LF may come right after max_line_octets of text and a CR.
        self._reader = LineReader(max_line_octets + 2)
        self._buffer = bytearray()
        self._code: int | None = None  # the code of the reply being read
        self._lines: list[str] = []
        self._error: ReplySyntaxError | None = None

    @property
    def buffered(self) -> int:
        """Octets held that are not part of a reply returned yet."""
        return len(self._buffer) + sum(len(line) for line in self._lines)

    def feed(self, data: bytes) -> None:
        if self._error is None:
            self._buffer += data

    def discard(self) -> int:
        """Drop every octet held, a partial reply included; returns how many octets
        of unread input were dropped (RFC 3207 §4.2, STARTTLS)."""
        dropped = len(self._buffer)
        self._buffer.clear()
        self._reader.reset()
        self._code, self._lines = None, []
        return dropped

    def next_reply(self) -> Reply | None:
        """The next whole reply, or None until more octets arrive."""
        if self._error is not None:
            raise self._error
        try:
            while True:
                line = self._reader.take(self._buffer)
                if line is None:
                    return None
                if line is TOO_LONG:
                    raise ReplySyntaxError(f"reply line longer than {self._max_line} octets")
                assert isinstance(line, tuple)
                reply = self._line(line[0])
                if reply is not None:
                    return reply
        except ReplySyntaxError as error:
            self._error = error
            self._buffer.clear()
            self._lines = []
            raise

    def _line(self, line: bytes) -> Reply | None:
        if len(line) > self._max_line:
            raise ReplySyntaxError(f"reply line longer than {self._max_line} octets")
        head = line[:3]
        if len(head) < 3 or not head.isdigit() or not b"2" <= head[:1] <= b"5":
            raise ReplySyntaxError(f"reply line does not start with a 2xx-5xx code: {line[:16]!r}")
        code = int(head)
        if self._code is not None and code != self._code:
            raise ReplySyntaxError(f"code {code} in a reply that started with {self._code}")
        separator = line[3:4]
        if separator not in (b"", b" ", b"-"):
            raise ReplySyntaxError(f"no space or hyphen after the code: {line[:16]!r}")
        if len(self._lines) >= self._max_lines:
            raise ReplySyntaxError(f"reply longer than {self._max_lines} lines")
        self._lines.append(line[4:].decode("utf-8", "replace"))
        if separator == b"-":
            self._code = code
            return None
        lines, self._code, self._lines = self._lines, None, []
        return _build(code, lines)


def _build(code: int, lines: list[str]) -> Reply:
    """RFC 2034 §3: the enhanced code, when the first line has one, leaves every line."""
    found = _ENHANCED.match(lines[0])
    if found is None or int(found.group(1)) != code // 100:
        return Reply(code, None, "\n".join(lines))
    enhanced = found.group(0)
    prefix = enhanced + " "
    text = ["" if line == enhanced else line.removeprefix(prefix) for line in lines]
    return Reply(code, enhanced, "\n".join(text))
