"""SEARCH criteria: ``search-key`` parsed into a small tree (RFC 9051 §6.4.4, RFC 3501 §6.4.4).

What this module owns: the search-key grammar of both RFCs (every key,
``OR``, ``NOT``, parenthesised groups, sequence sets as keys, dates quoted
or not), CONDSTORE's MODSEQ key (RFC 7162 §3.1.5), and the value types the
server evaluates. Strings are decoded with the command's CHARSET here, so
the evaluator sees ``str`` only.

Invariants: nesting is capped by the reader (``MAX_NESTING``) for
parentheses, by ``MAX_DEPTH`` for NOT and OR inside one another, and by
``MAX_KEYS`` keys per command, so a hostile SEARCH costs bounded time (and
stack) to parse and to evaluate.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Final, Literal

from postoffice.protocol.imap.dates import parse_date
from postoffice.protocol.imap.errors import ImapSyntaxError
from postoffice.protocol.imap.modifiers import read_mod_sequence
from postoffice.protocol.imap.reader import GrammarReader
from postoffice.protocol.imap.sequence import SAVED, SequenceOrSaved, SequenceSet

MAX_KEYS: Final = 1000
MAX_DEPTH: Final = 100  # NOT / OR operands inside one another (each one a stack frame)
_SEQUENCE: Final = re.compile(rb"[0-9*][0-9*:,]*")
_DATE: Final = re.compile(rb"[0-9]{1,2}-[A-Za-z]{3}-[0-9]{4}")
_ENTRY_PREFIX: Final = b"/flags/"
# RFC 7162 §7 attr-flag: a system flag, "\\" atom, or a keyword (atom)
_ENTRY_FLAG: Final = re.compile(rb"\\?[^(){ \x00-\x1f\x7f%*\"\\\]\x80-\xff]+")
_ENTRY_TYPES: Final = frozenset({"PRIV", "SHARED", "ALL"})


@dataclass(frozen=True, slots=True)
class AllKey:
    """ALL (and the empty conjunction)."""


@dataclass(frozen=True, slots=True)
class FlagKey:
    """A system flag or keyword present (``present``) or absent; ``flag`` as stored."""

    flag: str
    present: bool


@dataclass(frozen=True, slots=True)
class RecentKey:
    """RECENT / NEW / OLD (RFC 3501): no message is \\Recent here, so RECENT and NEW
    match nothing and OLD matches everything (IMAP4rev2 dropped \\Recent)."""

    recent: bool


@dataclass(frozen=True, slots=True)
class HeaderKey:
    """Header field ``field`` contains ``value`` (case-insensitive substring, RFC 9051 §6.4.4);
    an empty ``value`` matches every message that has the field."""

    field: str
    value: str


@dataclass(frozen=True, slots=True)
class TextKey:
    """BODY (the body only) or TEXT (header and body) contains ``value``."""

    where: Literal["BODY", "TEXT"]
    value: str


@dataclass(frozen=True, slots=True)
class DateKey:
    """BEFORE/ON/SINCE (internal date) or SENTBEFORE/SENTON/SENTSINCE (Date: header),
    compared by calendar date, disregarding time and zone (RFC 9051 §6.4.4)."""

    sent: bool
    relation: Literal["BEFORE", "ON", "SINCE"]
    day: date


@dataclass(frozen=True, slots=True)
class SizeKey:
    """LARGER n / SMALLER n: RFC822.SIZE strictly greater or smaller."""

    larger: bool
    size: int


@dataclass(frozen=True, slots=True)
class SetKey:
    """A sequence set: message numbers, or UIDs with ``uid``; ``$`` (the saved
    result, RFC 9051 §6.4.4.1) is ``SAVED``."""

    sequence: SequenceOrSaved
    uid: bool


@dataclass(frozen=True, slots=True)
class ModSeqKey:
    """MODSEQ [entry-name entry-type] n (RFC 7162 §3.1.5): a MODSEQ of ``modseq`` or more.

    ``entry`` (the flag of "/flags/<flag>") and ``entry_type`` (PRIV, SHARED or ALL)
    are kept as given; the server keeps one MODSEQ per message, which §3.1.5
    allows it to compare whatever the entry."""

    modseq: int
    entry: str | None = None
    entry_type: str | None = None


@dataclass(frozen=True, slots=True)
class NotKey:
    key: SearchKey


@dataclass(frozen=True, slots=True)
class OrKey:
    left: SearchKey
    right: SearchKey


@dataclass(frozen=True, slots=True)
class AndKey:
    keys: tuple[SearchKey, ...]


SearchKey = (
    AllKey
    | FlagKey
    | RecentKey
    | HeaderKey
    | TextKey
    | DateKey
    | SizeKey
    | SetKey
    | ModSeqKey
    | NotKey
    | OrKey
    | AndKey
)

# RFC 9051 §6.4.4: flag keys and their meaning.
_FLAG_WORDS: Final = {
    "ANSWERED": ("\\Answered", True),
    "DELETED": ("\\Deleted", True),
    "DRAFT": ("\\Draft", True),
    "FLAGGED": ("\\Flagged", True),
    "SEEN": ("\\Seen", True),
    "UNANSWERED": ("\\Answered", False),
    "UNDELETED": ("\\Deleted", False),
    "UNDRAFT": ("\\Draft", False),
    "UNFLAGGED": ("\\Flagged", False),
    "UNSEEN": ("\\Seen", False),
}
_HEADER_WORDS: Final = {"BCC": "Bcc", "CC": "Cc", "FROM": "From", "SUBJECT": "Subject", "TO": "To"}
_DATE_WORDS: Final = {
    "BEFORE": (False, "BEFORE"),
    "ON": (False, "ON"),
    "SINCE": (False, "SINCE"),
    "SENTBEFORE": (True, "BEFORE"),
    "SENTON": (True, "ON"),
    "SENTSINCE": (True, "SINCE"),
}


class SearchParser:
    """Parses search keys with one CHARSET; ``read_keys`` reads the rest of the command."""

    __slots__ = ("_charset", "_count", "_depth", "_reader")

    def __init__(self, reader: GrammarReader, charset: str):
        self._reader = reader
        self._charset = charset
        self._count = 0
        self._depth = 0

    def read_keys(self) -> SearchKey:
        """``search-key *(SP search-key)`` to the end of the command."""
        keys = [self.read_key()]
        while not self._reader.at_end():
            self._reader.sp()
            keys.append(self.read_key())
        return keys[0] if len(keys) == 1 else AndKey(tuple(keys))

    def _text(self) -> str:
        octets = self._reader.astring("a search string")
        try:
            return octets.decode(self._charset)
        except UnicodeDecodeError as exc:
            raise ImapSyntaxError(f"search string is not valid {self._charset}") from exc

    def _operand(self) -> SearchKey:
        """The key under a NOT or an OR, one level deeper."""
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise ImapSyntaxError("search keys nested too deep")
            return self.read_key()
        finally:
            self._depth -= 1

    def _date(self) -> date:
        reader = self._reader
        quoted = reader.accept(b'"')
        day = parse_date(reader.run(_DATE, "a date (dd-Mon-yyyy)"))
        if quoted:
            reader.expect(b'"', "closing quote")
        return day

    def _modseq(self) -> ModSeqKey:
        """RFC 7162 §7 search-modsequence, after "MODSEQ" SP."""
        reader = self._reader
        entry: str | None = None
        entry_type: str | None = None
        if reader.peek(b'"'):
            # entry-flag-name = DQUOTE "/flags/" attr-flag DQUOTE, with quoted-string
            # escapes: "/flags/\\seen" names \Seen.
            name = reader.quoted()
            prefix, flag = name[: len(_ENTRY_PREFIX)], name[len(_ENTRY_PREFIX) :]
            if prefix.lower() != _ENTRY_PREFIX or not _ENTRY_FLAG.fullmatch(flag):
                raise ImapSyntaxError('expected an entry name "/flags/<flag>"')
            reader.sp()
            entry_type = reader.keyword("an entry type (priv, shared or all)")
            if entry_type not in _ENTRY_TYPES:
                raise ImapSyntaxError("expected an entry type (priv, shared or all)")
            entry = flag.decode("ascii")
            reader.sp()
        modseq = read_mod_sequence(reader, zero=True, what="a MODSEQ value")
        return ModSeqKey(modseq, entry, entry_type)

    def read_key(self) -> SearchKey:
        self._count += 1
        if self._count > MAX_KEYS:
            raise ImapSyntaxError("too many search keys")
        reader = self._reader
        if reader.peek(b"("):
            reader.open_list()
            keys = [self.read_key()]
            while reader.list_separator():
                keys.append(self.read_key())
            return keys[0] if len(keys) == 1 else AndKey(tuple(keys))
        if _SEQUENCE.match(reader.remaining()):
            return SetKey(SequenceSet.parse(reader.run(_SEQUENCE, "a sequence set")), uid=False)
        if reader.accept(b"$"):
            return SetKey(SAVED, uid=False)
        word = reader.keyword("a search key")
        if word == "ALL":
            return AllKey()
        if word in _FLAG_WORDS:
            flag, present = _FLAG_WORDS[word]
            return FlagKey(flag, present)
        if word in ("KEYWORD", "UNKEYWORD"):
            reader.sp()
            keyword = reader.atom("a keyword")
            return FlagKey(keyword, word == "KEYWORD")
        if word in ("RECENT", "NEW"):
            return RecentKey(True) if word == "RECENT" else AndKey((RecentKey(True), _UNSEEN))
        if word == "OLD":
            return RecentKey(False)
        if word in _HEADER_WORDS:
            reader.sp()
            return HeaderKey(_HEADER_WORDS[word], self._text())
        if word == "HEADER":
            reader.sp()
            name = reader.astring("a header field name").decode("ascii", "replace")
            reader.sp()
            return HeaderKey(name, self._text())
        if word in ("BODY", "TEXT"):
            reader.sp()
            return TextKey("BODY" if word == "BODY" else "TEXT", self._text())
        if word in _DATE_WORDS:
            sent, relation = _DATE_WORDS[word]
            reader.sp()
            return DateKey(sent, relation, self._date())  # type: ignore[arg-type]
        if word in ("LARGER", "SMALLER"):
            reader.sp()
            return SizeKey(word == "LARGER", reader.number(limit=2**63 - 1, what="a size"))
        if word == "UID":
            reader.sp()
            if reader.accept(b"$"):
                return SetKey(SAVED, uid=True)
            return SetKey(SequenceSet.parse(reader.run(_SEQUENCE, "a UID set")), uid=True)
        if word == "MODSEQ":
            reader.sp()
            return self._modseq()
        if word == "NOT":
            reader.sp()
            return NotKey(self._operand())
        if word == "OR":
            reader.sp()
            left = self._operand()
            reader.sp()
            return OrKey(left, self._operand())
        raise ImapSyntaxError(f"unknown search key {word}")


_UNSEEN: Final = FlagKey("\\Seen", False)


def leaf_keys(key: SearchKey) -> Iterator[SearchKey]:
    """Every key of ``key`` that is not NOT, OR or AND (a list), in order. The
    nesting is bounded by the parser, so the recursion is too."""
    if isinstance(key, NotKey):
        yield from leaf_keys(key.key)
    elif isinstance(key, OrKey):
        yield from leaf_keys(key.left)
        yield from leaf_keys(key.right)
    elif isinstance(key, AndKey):
        for each in key.keys:
            yield from leaf_keys(each)
    else:
        yield key


def mentions_modseq(key: SearchKey) -> bool:
    """Whether a MODSEQ key is anywhere in ``key`` (RFC 7162 §3.1.6: the answer then
    carries the highest MODSEQ of the messages found)."""
    return any(isinstance(leaf, ModSeqKey) for leaf in leaf_keys(key))
