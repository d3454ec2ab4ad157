"""FETCH data items: what a client may ask for and how it is named (RFC 9051 §6.4.5).

What this module owns: the parse of ``fetch-att`` (RFC 9051 §9, RFC 3501 §9,
RFC 3516 BINARY, RFC 7162 MODSEQ) into ``FetchItem`` values, the macros ALL,
FAST and FULL, and the name each item carries in the FETCH response (``response_name``),
which for sections is the request's own form minus ``.PEEK`` and with the
partial reduced to its origin (RFC 9051 §7.5.2 ``BODY[<section>]<<origin octet>>``).

An item says what to send, not how: ``server`` evaluates it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from postoffice.protocol.imap.errors import ImapSyntaxError
from postoffice.protocol.imap.reader import GrammarReader

# Items that are one word (RFC 9051 §9 fetch-att, RFC 3501 §9 for the RFC822 forms).
SIMPLE_ITEMS: Final = frozenset(
    {
        "ENVELOPE",
        "FLAGS",
        "INTERNALDATE",
        "RFC822",
        "RFC822.HEADER",
        "RFC822.SIZE",
        "RFC822.TEXT",
        "BODY",
        "BODYSTRUCTURE",
        "UID",
        "MODSEQ",  # RFC 7162 §3.1.4.2
    }
)
# RFC 9051 §6.4.5 macros.
MACROS: Final = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}
SECTION_TEXTS: Final = ("HEADER.FIELDS.NOT", "HEADER.FIELDS", "HEADER", "TEXT", "MIME")
MAX_PART_DEPTH: Final = 100  # a section-part deeper than any message we index
_ITEM_WORD: Final = re.compile(rb"[A-Za-z0-9.]+")
_DIGIT: Final = re.compile(rb"[0-9]")


@dataclass(frozen=True, slots=True)
class Section:
    """``[part.part.TEXT]``; ``text`` is None (the part itself), HEADER, TEXT, MIME,
    HEADER.FIELDS or HEADER.FIELDS.NOT; ``fields`` upper-cased for the two last."""

    part: tuple[int, ...] = ()
    text: str | None = None
    fields: tuple[str, ...] = ()

    def spec(self) -> bytes:
        """The section as the response names it (RFC 9051 §7.5.2)."""
        pieces = [".".join(str(n) for n in self.part)] if self.part else []
        if self.text is not None:
            text = self.text
            if self.fields:
                text += " (" + " ".join(self.fields) + ")"
            pieces.append(text)
        return ".".join(pieces).encode("ascii")


@dataclass(frozen=True, slots=True)
class FetchItem:
    """One data item. ``name`` is a SIMPLE_ITEMS word, or BODY / BINARY / BINARY.SIZE
    with ``section``; ``peek`` for the .PEEK forms; ``partial`` = (origin, count)."""

    name: str
    section: Section | None = None
    peek: bool = False
    partial: tuple[int, int] | None = field(default=None)

    @property
    def sets_seen(self) -> bool:
        """RFC 9051 §6.4.5: BODY[...] and BINARY[...] (not .PEEK), RFC822 and RFC822.TEXT."""
        if self.name in ("RFC822", "RFC822.TEXT"):
            return True
        return self.name in ("BODY", "BINARY") and self.section is not None and not self.peek

    def response_name(self) -> bytes:
        if self.section is None:
            return self.name.encode("ascii")
        name = self.name.encode("ascii") + b"[" + self.section.spec() + b"]"
        if self.partial is not None:
            name += b"<%d>" % self.partial[0]
        return name


def _section_part(reader: GrammarReader) -> tuple[int, ...]:
    numbers = [reader.nz_number("a part number")]
    while reader.peek(b".") and not _text_follows(reader, 1):
        reader.expect(b".")
        numbers.append(reader.nz_number("a part number"))
        if len(numbers) > MAX_PART_DEPTH:
            raise ImapSyntaxError("section part nested too deep")
    return tuple(numbers)


def _text_follows(reader: GrammarReader, offset: int) -> bool:
    saved = reader.pos
    reader.pos += offset
    try:
        return any(reader.peek(text.encode("ascii")) for text in SECTION_TEXTS)
    finally:
        reader.pos = saved


def _section_text(reader: GrammarReader, *, allow_mime: bool) -> tuple[str, tuple[str, ...]]:
    for text in SECTION_TEXTS:
        if reader.accept(text.encode("ascii")):
            break
    else:
        raise ImapSyntaxError("expected HEADER, HEADER.FIELDS, TEXT or MIME")
    if text == "MIME" and not allow_mime:
        raise ImapSyntaxError("MIME needs a part number")  # RFC 9051 §6.4.5
    if not text.startswith("HEADER.FIELDS"):
        return text, ()
    reader.sp()
    reader.open_list()
    names = [reader.astring("a header field name").decode("ascii", "replace").upper()]
    while reader.list_separator():
        names.append(reader.astring("a header field name").decode("ascii", "replace").upper())
    return text, tuple(names)


def read_section(reader: GrammarReader, *, binary: bool = False) -> Section:
    """``[ section-spec ]`` (RFC 9051 §9 section); BINARY takes part numbers only."""
    reader.expect(b"[", "[")
    if reader.accept(b"]"):
        return Section()
    if binary:
        numbers = _section_part(reader)
        reader.expect(b"]", "]")
        return Section(numbers)
    part: tuple[int, ...] = ()
    text: str | None = None
    fields: tuple[str, ...] = ()
    if _DIGIT.match(reader.remaining()):
        part = _section_part(reader)
        if reader.accept(b"."):
            text, fields = _section_text(reader, allow_mime=True)
    else:
        text, fields = _section_text(reader, allow_mime=False)
    reader.expect(b"]", "]")
    return Section(part, text, fields)


def _partial(reader: GrammarReader) -> tuple[int, int] | None:
    """``<origin.count>`` (RFC 9051 §9 partial: number "." nz-number)."""
    if not reader.accept(b"<"):
        return None
    origin = reader.number(what="a partial origin")
    reader.expect(b".", ".")
    count = reader.nz_number("a partial length")
    reader.expect(b">", ">")
    return origin, count


def read_fetch_item(reader: GrammarReader) -> FetchItem:
    word = reader.run(_ITEM_WORD, "a fetch item").upper()
    if word in ("BODY", "BODY.PEEK") and reader.peek(b"["):
        section = read_section(reader)
        return FetchItem("BODY", section, word == "BODY.PEEK", _partial(reader))
    if word in ("BINARY", "BINARY.PEEK") and reader.peek(b"["):
        section = read_section(reader, binary=True)
        return FetchItem("BINARY", section, word == "BINARY.PEEK", _partial(reader))
    if word == "BINARY.SIZE" and reader.peek(b"["):
        return FetchItem("BINARY.SIZE", read_section(reader, binary=True))
    if word in SIMPLE_ITEMS:
        return FetchItem(word)
    raise ImapSyntaxError(f"unknown fetch item {word}")


def read_fetch_items(reader: GrammarReader) -> tuple[FetchItem, ...]:
    """``ALL`` / ``FAST`` / ``FULL`` / fetch-att / ``(fetch-att *(SP fetch-att))``."""
    if reader.peek(b"("):
        reader.open_list()
        items = [read_fetch_item(reader)]
        while reader.list_separator():
            items.append(read_fetch_item(reader))
        return tuple(items)
    for macro, names in MACROS.items():
        if reader.peek(macro.encode("ascii")) and _word_ends(reader, len(macro)):
            reader.pos += len(macro)
            return tuple(FetchItem(name) for name in names)
    return (read_fetch_item(reader),)


def _word_ends(reader: GrammarReader, length: int) -> bool:
    saved = reader.pos
    reader.pos += length
    try:
        return reader.at_end() or reader.peek(b" ") or reader.peek(b")")
    finally:
        reader.pos = saved
