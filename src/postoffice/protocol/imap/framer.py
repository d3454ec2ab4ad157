"""Cutting the client's octet stream into whole IMAP commands, literals included.

What this module owns: ``CommandFramer``, which takes octets as they arrive
and hands out one complete command at a time (its lines and the literals
between them, RFC 9051 §4.3), or tells that a literal was announced and a
decision is needed before its octets may come (the ``+`` continuation of a
synchronising literal, RFC 9051 §7.5).

A complete command is kept as the client sent it, with CRLF line ends: the
literal octets follow their ``{n}CRLF`` (or ``{n+}``, ``~{n}``) marker, so
the grammar reader sees a literal exactly where the grammar puts it.

Invariants (DESIGN.md §5, every input bounded):
- no line of a command grows past ``line_limit`` octets: a longer one is
  reported once (``LineOverflow``) and dropped up to its LF, as it arrives;
- a literal's octets are only read after ``accept_literal`` (or, for a
  non-synchronising literal, after the caller let it through); ``reject_literal``
  forgets the command, as a client that got no ``+`` sends no literal;
- nothing is copied more than once per command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from postoffice.protocol.errors import ProtocolUsageError
from postoffice.protocol.lines import LineReader, LineTooLong

# RFC 9051 §9 literal = "{" number64 ["+"] "}" CRLF; RFC 7888 literal+ "{n+}";
# RFC 3516 §4.3 literal8 = "~{" number64 "}" (APPEND of binary content).
_LITERAL_MARK: Final = re.compile(rb"(~?)\{([0-9]{1,20})([+-]?)\}\Z")
MAX_LITERAL_DIGITS: Final = 20


@dataclass(frozen=True, slots=True)
class CompleteCommand:
    """One whole command: ``data`` as sent (lines end with CRLF, literals inline)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class LiteralAnnounced:
    """The command so far ends in a literal marker; the caller must decide.

    ``head`` is everything of the command up to and including the marker
    line (so the tag and command name can be read). ``synchronizing`` says
    the client waits for ``+`` before sending the octets.
    """

    head: bytes
    size: int
    synchronizing: bool
    binary: bool


@dataclass(frozen=True, slots=True)
class LineOverflow:
    """A line passed the limit; it has been (or is being) dropped whole."""

    head: bytes  # the start of the command's first line, to find a tag to answer


FramerEvent = CompleteCommand | LiteralAnnounced | LineOverflow


class CommandFramer:
    """See the module docstring. ``next(buffer)`` consumes what it uses from ``buffer``."""

    __slots__ = ("_literal", "_octets", "_parts", "_reader", "_waiting")

    def __init__(self, line_limit: int):
        self._reader = LineReader(line_limit)
        self._parts: list[bytes] = []  # the command so far
        self._literal = 0  # octets of literal still to take (after acceptance)
        self._waiting: LiteralAnnounced | None = None  # announced, not yet decided
        self._octets = 0  # of the command so far

    @property
    def line_limit(self) -> int:
        return self._reader.limit

    @line_limit.setter
    def line_limit(self, value: int) -> None:
        self._reader.limit = value

    @property
    def command_octets(self) -> int:
        """Octets of the command so far, literals accepted included (for a whole-command cap)."""
        return self._octets

    @property
    def in_command(self) -> bool:
        """True while a command has begun and is not complete."""
        return bool(self._parts) or self._waiting is not None

    def skip(self, data: bytes) -> bytes:
        """What of newly read ``data`` to buffer (the rest of a too long line is dropped)."""
        if self._literal:
            return data
        return self._reader.skip(data)

    def reset(self) -> None:
        """Forget everything (the buffer was cleared: STARTTLS, a rejected command)."""
        self._forget()
        self._reader.reset()

    def _forget(self) -> None:
        self._parts.clear()
        self._literal = 0
        self._waiting = None
        self._octets = 0

    def accept_literal(self) -> None:
        """The announced literal may come: its octets are part of the command."""
        if self._waiting is None:
            raise ProtocolUsageError("no literal is waiting for a decision")
        self._literal = self._waiting.size
        self._octets += self._waiting.size
        self._waiting = None

    def reject_literal(self) -> None:
        """The command is refused; a synchronising literal's octets will not come."""
        if self._waiting is None:
            raise ProtocolUsageError("no literal is waiting for a decision")
        self._forget()

    def next(self, buffer: bytearray) -> FramerEvent | None:
        """The next event, or None when more octets are needed."""
        if self._waiting is not None:
            raise ProtocolUsageError("a literal is waiting for accept_literal or reject_literal")
        while True:
            if self._literal:
                if not buffer:
                    return None
                taken = min(self._literal, len(buffer))
                self._parts.append(bytes(buffer[:taken]))
                del buffer[:taken]
                self._literal -= taken
                if self._literal:
                    return None
                continue
            head = self._parts[0][:64] if self._parts else bytes(buffer[:64])
            found = self._reader.take(buffer)
            if found is None:
                return None
            if isinstance(found, LineTooLong):
                self._forget()  # the reader goes on dropping the line's rest
                return LineOverflow(head)
            line, _bare_lf = found
            self._parts.append(line + b"\r\n")
            self._octets += len(line) + 2
            mark = _LITERAL_MARK.search(line)
            if mark is None:
                data = b"".join(self._parts)
                self._forget()
                return CompleteCommand(data)
            binary, digits, plus = mark.groups()
            announced = LiteralAnnounced(
                head=b"".join(self._parts),
                size=int(digits),
                synchronizing=plus == b"",
                binary=binary == b"~",
            )
            if plus == b"-":
                # "{n-}" is not IMAP syntax (RFC 7888 defines only "+"); the
                # reader will refuse the command, so nothing more is read.
                data = b"".join(self._parts)
                self._forget()
                return CompleteCommand(data)
            self._waiting = announced
            return announced
