"""The IMAP grammar's basic readers, over one complete command (RFC 9051 §9, RFC 3501 §9).

What this module owns: ``GrammarReader``, a cursor over the octets of one
command as ``framer`` assembled it (lines with CRLF, literals inline), with
one method per grammar rule the commands are built from: SP, atom, number,
quoted, literal, string, astring, nstring, list-mailbox, tag, and
parenthesised lists with a nesting cap.

Invariants: every reader either consumes exactly its token and returns it,
or raises ``ImapSyntaxError`` naming what was expected; it never reads past
the command's final CRLF. Literals are taken by their announced length,
whatever octets they hold (RFC 9051 §4.3), except that a NUL is refused
outside ``literal8`` (RFC 3516 §4.2).
"""

from __future__ import annotations

import re
from typing import Final

from postoffice.protocol.imap.errors import ImapSyntaxError

# RFC 9051 §9: ATOM-CHAR is any CHAR except atom-specials
#   atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards / quoted-specials / resp-specials
_ATOM: Final = re.compile(rb"[^(){ \x00-\x1f\x7f%*\"\\\]\x80-\xff]+")
# ASTRING-CHAR = ATOM-CHAR / resp-specials
_ASTRING: Final = re.compile(rb"[^(){ \x00-\x1f\x7f%*\"\\\x80-\xff]+")
# list-char = ATOM-CHAR / list-wildcards / resp-specials
_LIST_CHARS: Final = re.compile(rb"[^(){ \x00-\x1f\x7f\"\\\x80-\xff]+")
# tag = 1*<any ASTRING-CHAR except "+">
_TAG: Final = re.compile(rb"[^(){ \x00-\x1f\x7f%*\"\\+\x80-\xff]+")
_NUMBER: Final = re.compile(rb"[0-9]+")
_LITERAL: Final = re.compile(rb"(~?)\{([0-9]{1,20})(\+?)\}\r\n")
_QUOTED_ASCII: Final = re.compile(rb'"((?:[^"\\\r\n\x00\x80-\xff]|\\["\\])*)"')
_QUOTED_UTF8: Final = re.compile(rb'"((?:[^"\\\r\n\x00]|\\["\\])*)"')
_UNQUOTE: Final = re.compile(rb'\\(["\\])')

NUMBER_MAX: Final = 4_294_967_295  # RFC 9051 §9 number: 32-bit unsigned
NUMBER64_MAX: Final = 9_223_372_036_854_775_807  # RFC 9051 §9 number64: 63-bit
MAX_NESTING: Final = 32  # parenthesised lists inside one another (DESIGN.md §5)


class GrammarReader:
    """A cursor over one command; see the module docstring."""

    __slots__ = ("_data", "_depth", "_end", "pos", "utf8")

    def __init__(self, data: bytes, *, utf8: bool = False):
        if not data.endswith(b"\r\n"):
            raise ImapSyntaxError("command does not end with CRLF")
        self._data = data
        self._end = len(data) - 2
        self.pos = 0
        self._depth = 0
        self.utf8 = utf8  # RFC 9051 / RFC 6855: 8-bit UTF-8 allowed in quoted strings

    # -- position ----------------------------------------------------------

    def peek(self, octets: bytes) -> bool:
        """True when the input continues with ``octets`` (case-insensitive for letters)."""
        chunk = self._data[self.pos : self.pos + len(octets)]
        return chunk.upper() == octets.upper() and self.pos + len(octets) <= self._end

    def at_end(self) -> bool:
        return self.pos >= self._end

    def remaining(self) -> bytes:
        return self._data[self.pos : self._end]

    def consumed_since(self, start: int) -> bytes:
        """The octets read since ``start`` (an earlier ``pos``)."""
        return self._data[start : self.pos]

    def end(self) -> None:
        """The command must end here (RFC 9051 §2.2.1: trailing text is an error)."""
        if self.pos != self._end:
            raise ImapSyntaxError("unexpected text at the end of the command")

    def expect(self, octets: bytes, what: str | None = None) -> None:
        if not self.peek(octets):
            raise ImapSyntaxError(f"expected {what or octets.decode('ascii')}")
        self.pos += len(octets)

    def accept(self, octets: bytes) -> bool:
        """Consume ``octets`` if they come next (case-insensitive); say whether they did."""
        if self.peek(octets):
            self.pos += len(octets)
            return True
        return False

    def sp(self) -> None:
        """Exactly one space (RFC 9051 §9 SP)."""
        if self.pos >= self._end or self._data[self.pos] != 0x20:
            raise ImapSyntaxError("expected a space")
        self.pos += 1

    # -- lists -------------------------------------------------------------

    def open_list(self) -> None:
        self.expect(b"(", "(")
        self._depth += 1
        if self._depth > MAX_NESTING:
            raise ImapSyntaxError("too many nested parentheses")

    def close_list(self) -> bool:
        """Consume ")" if it comes next; say whether it did."""
        if self.pos < self._end and self._data[self.pos] == 0x29:
            self.pos += 1
            self._depth -= 1
            return True
        return False

    def list_separator(self) -> bool:
        """Inside a list: True when another element follows (after its SP), False at ")"."""
        if self.close_list():
            return False
        self.sp()
        return True

    # -- tokens ------------------------------------------------------------

    def _match(self, pattern: re.Pattern[bytes], what: str) -> bytes:
        found = pattern.match(self._data, self.pos, self._end)
        if found is None:
            raise ImapSyntaxError(f"expected {what}")
        self.pos = found.end()
        return found.group()

    def tag(self) -> str:
        return self._match(_TAG, "a tag").decode("ascii")

    def atom(self, what: str = "an atom") -> str:
        return self._match(_ATOM, what).decode("ascii")

    def keyword(self, what: str = "a keyword") -> str:
        """An atom, upper-cased: command names and fixed words are case-insensitive."""
        return self.atom(what).upper()

    def number(self, *, limit: int = NUMBER_MAX, what: str = "a number") -> int:
        digits = self._match(_NUMBER, what)
        significant = digits.lstrip(b"0") or b"0"
        if len(significant) > 20:  # past number64 (and int() refuses over 4300 digits)
            raise ImapSyntaxError(f"{what} is out of range")
        value = int(significant)
        if value > limit:
            raise ImapSyntaxError(f"{what} is out of range")
        return value

    def nz_number(self, what: str = "a non-zero number") -> int:
        start = self.pos
        value = self.number(what=what)
        if value == 0 or self._data[start] == 0x30:  # RFC 9051 §9 nz-number = digit-nz *DIGIT
            raise ImapSyntaxError(f"expected {what}")
        return value

    def quoted(self) -> bytes:
        pattern = _QUOTED_UTF8 if self.utf8 else _QUOTED_ASCII
        found = pattern.match(self._data, self.pos, self._end)
        if found is None:
            raise ImapSyntaxError("expected a quoted string")
        self.pos = found.end()
        return _UNQUOTE.sub(rb"\1", found.group(1))

    def literal(self, *, binary: bool = False) -> bytes:
        """``{n}CRLF`` or ``{n+}CRLF`` then n octets; ``~{n}`` only when ``binary``."""
        found = _LITERAL.match(self._data, self.pos)
        if found is None or (found.group(1) and not binary):
            raise ImapSyntaxError("expected a literal")
        size = int(found.group(2))
        start = found.end()
        if start + size > self._end + 2 or size > NUMBER64_MAX:
            raise ImapSyntaxError("literal longer than the command")
        value = self._data[start : start + size]
        if not found.group(1) and b"\x00" in value:
            raise ImapSyntaxError("NUL in a literal")  # RFC 9051 §4.3 CHAR8 excludes NUL
        self.pos = start + size
        return value

    def is_literal8(self) -> bool:
        return self.peek(b"~{")

    def string(self) -> bytes:
        if self.peek(b'"'):
            return self.quoted()
        if self.peek(b"{"):
            return self.literal()
        raise ImapSyntaxError("expected a string")

    def astring(self, what: str = "an astring") -> bytes:
        if self.peek(b'"') or self.peek(b"{"):
            return self.string()
        return self._match(_ASTRING, what)

    def nstring(self) -> bytes | None:
        if self.accept(b"NIL"):
            return None
        return self.string()

    def list_mailbox(self) -> bytes:
        """RFC 9051 §9 list-mailbox: list-chars (wildcards allowed) or a string."""
        if self.peek(b'"') or self.peek(b"{"):
            return self.string()
        return self._match(_LIST_CHARS, "a mailbox pattern")

    def text_until_end(self) -> bytes:
        """The rest of the line (``text`` of RFC 9051 §9), e.g. an AUTHENTICATE response."""
        value = self._data[self.pos : self._end]
        self.pos = self._end
        return value

    def run(self, pattern: re.Pattern[bytes], what: str) -> str:
        """A token matched by ``pattern`` (ASCII), for the grammars built on top."""
        return self._match(pattern, what).decode("ascii")
