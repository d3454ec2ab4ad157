"""IMAP commands as values that parse themselves (RFC 9051 §6, RFC 3501 §6 and extensions).

What this module owns: one frozen dataclass per command, holding its
arguments already validated, each with a ``parse`` class method that reads
its arguments with ``GrammarReader`` (``parser.CommandParser`` reads the tag
and the name and calls it). Arguments are read the way RFC 9051 §9 spells
them; extension arguments follow their RFCs:
LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819), CREATE-SPECIAL-USE
(RFC 6154), MULTIAPPEND (RFC 3502), BINARY literal8 (RFC 3516), ESEARCH
RETURN options (RFC 4731), SORT (RFC 5256, RFC 5957), SASL-IR (RFC 4959), ID (RFC 2971), UID EXPUNGE
(RFC 4315), MOVE (RFC 6851), CONDSTORE's select parameter, FETCH and STORE
modifiers (RFC 7162, read by ``modifiers``).

Mailbox names come out decoded (``str``): from modified UTF-7 (RFC 3501
§5.1.3), or from UTF-8 once the client enabled IMAP4rev2 or UTF8=ACCEPT
(RFC 9051 §5.1, RFC 6855 §3), then validated (``mutf7.validate_mailbox_name``)
before any layer below sees them.

Invariants: a ``parse`` returns its command or raises ``ImapSyntaxError``;
nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, Final

from postoffice.protocol.imap.dates import parse_date_time
from postoffice.protocol.imap.errors import ImapSyntaxError, UnsupportedCharset
from postoffice.protocol.imap.fetch_items import FetchItem, read_fetch_items
from postoffice.protocol.imap.listing import DELIMITER
from postoffice.protocol.imap.modifiers import (
    Qresync,
    SelectParams,
    read_fetch_modifiers,
    read_select_params,
    read_store_modifiers,
)
from postoffice.protocol.imap.mutf7 import decode_mutf7
from postoffice.protocol.imap.reader import GrammarReader
from postoffice.protocol.imap.search_keys import SearchKey, SearchParser, mentions_modseq
from postoffice.protocol.imap.sequence import SequenceOrSaved

if TYPE_CHECKING:
    from postoffice.protocol.imap.parser import CommandParser

SEARCH_CHARSETS: Final = ("US-ASCII", "UTF-8")
SEQUENCE_TOKEN: Final = re.compile(rb"[0-9*][0-9*:,]*")
_FLAG: Final = re.compile(rb"\\?[^(){ \x00-\x1f\x7f%*\"\\\]\x80-\xff]+")
_BASE64: Final = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
_DATE_TIME: Final = re.compile(rb'"[ 0-9][0-9]-[A-Za-z]{3}-[0-9]{4} [0-9:]{8} [+-][0-9]{4}"')
MAX_APPEND_MESSAGES: Final = 1000  # MULTIAPPEND messages in one command
MAX_ID_FIELDS: Final = 30  # RFC 2971 §3.3


@dataclass(frozen=True, slots=True)
class Command:
    """Base of every command; ``tag`` is the client's tag."""

    name: ClassVar[str] = ""
    tag: str


@dataclass(frozen=True, slots=True)
class NoArguments(Command):
    """CAPABILITY, NOOP, LOGOUT, STARTTLS, CHECK, CLOSE, UNSELECT, EXPUNGE, IDLE, NAMESPACE."""

    word: str = ""

    @property
    def command(self) -> str:
        return self.word


@dataclass(frozen=True, slots=True)
class Authenticate(Command):
    name = "AUTHENTICATE"
    mechanism: str
    initial: str | None  # RFC 4959 SASL-IR: the base64 text as sent ("=" for empty)

    @classmethod
    def parse(
        cls, parser: CommandParser, reader: GrammarReader, tag: str, _w: str, _u: bool
    ) -> Command:
        mechanism = reader.keyword("a SASL mechanism")
        initial: str | None = None
        if not reader.at_end():
            reader.sp()
            initial = reader.run(_BASE64, "an initial response")
        return Authenticate(tag, mechanism, initial)


@dataclass(frozen=True, slots=True)
class Login(Command):
    name = "LOGIN"
    user: bytes
    password: bytes

    @classmethod
    def parse(
        cls, parser: CommandParser, reader: GrammarReader, tag: str, _w: str, _u: bool
    ) -> Command:
        user = reader.astring("a user name")
        reader.sp()
        return Login(tag, user, reader.astring("a password"))


@dataclass(frozen=True, slots=True)
class Enable(Command):
    name = "ENABLE"
    capabilities: tuple[str, ...]

    @classmethod
    def parse(
        cls, parser: CommandParser, reader: GrammarReader, tag: str, _w: str, _u: bool
    ) -> Command:
        names = [reader.keyword("a capability")]
        while not reader.at_end():
            reader.sp()
            names.append(reader.keyword("a capability"))
        return Enable(tag, tuple(names))


@dataclass(frozen=True, slots=True)
class Select(Command):
    """SELECT or EXAMINE (``read_only``)."""

    mailbox: str
    read_only: bool
    condstore: bool = False  # RFC 7162 §3.1.8 (CONDSTORE) select parameter
    qresync: Qresync | None = None  # RFC 7162 §3.2.5 (QRESYNC (...)) select parameter

    @classmethod
    def parse(
        cls, parser: CommandParser, reader: GrammarReader, tag: str, word: str, _u: bool
    ) -> Command:
        mailbox = parser.mailbox(reader)
        params = SelectParams()
        if not reader.at_end():
            reader.sp()  # RFC 4466 §2.1 select-params
            params = read_select_params(reader)
        return Select(
            tag,
            mailbox,
            read_only=word == "EXAMINE",
            condstore=params.condstore,
            qresync=params.qresync,
        )


@dataclass(frozen=True, slots=True)
class Create(Command):
    name = "CREATE"
    mailbox: str
    special_use: tuple[str, ...] = ()  # RFC 6154 §3 CREATE ... (USE (...))
    parent: bool = False  # given with a trailing delimiter (RFC 9051 §6.3.4)

    @classmethod
    def parse(
        cls, parser: CommandParser, reader: GrammarReader, tag: str, _w: str, _u: bool
    ) -> Command:
        start = reader.pos
        mailbox = parser.mailbox(reader, create=True)
        parent = reader.consumed_since(start).rstrip(b'"').endswith(DELIMITER.encode())
        uses: list[str] = []
        if not reader.at_end():
            reader.sp()
            reader.open_list()  # RFC 6154 §6 create-param = "USE" SP "(" use-attr ... ")"
            if reader.keyword("a CREATE parameter") != "USE":
                raise ImapSyntaxError("unknown CREATE parameter")
            reader.sp()
            reader.open_list()
            if not reader.close_list():
                uses.append(reader.run(_FLAG, "a special-use attribute"))
                while reader.list_separator():
                    uses.append(reader.run(_FLAG, "a special-use attribute"))
            if not reader.close_list():
                raise ImapSyntaxError("expected )")
        return Create(tag, mailbox, tuple(uses), parent)


@dataclass(frozen=True, slots=True)
class MailboxCommand(Command):
    """DELETE, SUBSCRIBE, UNSUBSCRIBE: a verb and one mailbox."""

    verb: str
    mailbox: str

    @classmethod
    def parse(
        cls, parser: CommandParser, reader: GrammarReader, tag: str, word: str, _u: bool
    ) -> Command:
        return MailboxCommand(tag, word, parser.mailbox(reader))


@dataclass(frozen=True, slots=True)
class Rename(Command):
    name = "RENAME"
    old: str
    new: str

    @classmethod
    def parse(
        cls, parser: CommandParser, reader: GrammarReader, tag: str, _w: str, _u: bool
    ) -> Command:
        old = parser.mailbox(reader)
        reader.sp()
        return Rename(tag, old, parser.mailbox(reader))


@dataclass(frozen=True, slots=True)
class ListMailboxes(Command):
    """LIST (RFC 9051 §6.3.9 with RFC 5258 LIST-EXTENDED) and LSUB (``lsub``)."""

    reference: str
    patterns: tuple[str, ...]
    select_options: frozenset[str] = frozenset()
    return_options: frozenset[str] = frozenset()
    status_items: tuple[str, ...] = ()  # RFC 5819 RETURN (STATUS (...))
    lsub: bool = False
    extended: bool = False  # the client used LIST-EXTENDED syntax (RFC 5258 §3)

    @classmethod
    def parse(
        cls, parser: CommandParser, reader: GrammarReader, tag: str, word: str, _u: bool
    ) -> Command:
        select: set[str] = set()
        extended = False
        if word == "LIST" and reader.peek(b"("):
            extended = True  # RFC 5258 §3 list-select-opts
            select = set(parser.options(reader))
            reader.sp()
        reference_octets = reader.astring("a reference name")
        try:
            reference = (
                reference_octets.decode("utf-8")
                if parser.utf8
                else decode_mutf7(reference_octets.decode("ascii"))
            )
        except UnicodeDecodeError as exc:
            raise ImapSyntaxError("reference is not valid") from exc
        reader.sp()
        if word == "LIST" and reader.peek(b"("):
            extended = True
            reader.open_list()
            patterns = [parser.pattern(reader)]
            while reader.list_separator():
                patterns.append(parser.pattern(reader))
        else:
            patterns = [parser.pattern(reader)]
        returns: set[str] = set()
        status_items: tuple[str, ...] = ()
        if word == "LIST" and not reader.at_end():
            extended = True
            reader.sp()
            reader.expect(b"RETURN", "RETURN")
            reader.sp()
            reader.open_list()
            if not reader.close_list():
                while True:
                    option = reader.keyword("a return option")
                    if option == "STATUS":  # RFC 5819 §2
                        reader.sp()
                        status_items = parser.status_items(reader)
                    returns.add(option)
                    if not reader.list_separator():
                        break
        return ListMailboxes(
            tag,
            reference,
            tuple(patterns),
            frozenset(select),
            frozenset(returns),
            status_items,
            lsub=word == "LSUB",
            extended=extended,
        )


@dataclass(frozen=True, slots=True)
class Status(Command):
    name = "STATUS"
    mailbox: str
    items: tuple[str, ...]

    @classmethod
    def parse(
        cls, parser: CommandParser, reader: GrammarReader, tag: str, _w: str, _u: bool
    ) -> Command:
        mailbox = parser.mailbox(reader)
        reader.sp()
        return Status(tag, mailbox, parser.status_items(reader))


@dataclass(frozen=True, slots=True)
class AppendMessage:
    flags: tuple[str, ...]
    internal_date: datetime | None
    data: bytes
    binary: bool  # sent as literal8 (RFC 3516 §4.4)


@dataclass(frozen=True, slots=True)
class Append(Command):
    name = "APPEND"
    mailbox: str
    messages: tuple[AppendMessage, ...]

    @classmethod
    def parse(
        cls, parser: CommandParser, reader: GrammarReader, tag: str, _w: str, _u: bool
    ) -> Command:
        mailbox = parser.mailbox(reader)
        messages: list[AppendMessage] = []
        while not reader.at_end():
            if len(messages) >= MAX_APPEND_MESSAGES:
                raise ImapSyntaxError("too many messages in one APPEND")
            reader.sp()
            flags: tuple[str, ...] = ()
            if reader.peek(b"("):
                flags = read_flag_list(reader)
                reader.sp()
            when: datetime | None = None
            if reader.peek(b'"'):
                when = parse_date_time(reader.run(_DATE_TIME, "a date-time")[1:-1])
                reader.sp()
            binary = reader.is_literal8()
            messages.append(AppendMessage(flags, when, reader.literal(binary=binary), binary))
        if not messages:
            raise ImapSyntaxError("APPEND needs a message")
        return Append(tag, mailbox, tuple(messages))


@dataclass(frozen=True, slots=True)
class Search(Command):
    name = "SEARCH"
    key: SearchKey
    uid: bool
    charset: str = "US-ASCII"
    return_options: tuple[str, ...] | None = None  # RFC 4731 ESEARCH: None = plain SEARCH

    @classmethod
    def parse(
        cls, parser: CommandParser, reader: GrammarReader, tag: str, _w: str, uid: bool
    ) -> Command:
        returns: tuple[str, ...] | None = None
        if reader.accept(b"RETURN "):  # RFC 4731 §3 search-return-opts
            returns = tuple(parser.options(reader))
            reader.sp()
        charset = "US-ASCII"
        if reader.accept(b"CHARSET "):
            charset = reader.astring("a charset").decode("ascii", "replace").upper()
            if charset not in SEARCH_CHARSETS:
                raise UnsupportedCharset(charset)
            reader.sp()
        if parser.utf8:
            charset = "UTF-8"  # RFC 6855 §3: after ENABLE UTF8=ACCEPT strings are UTF-8
        key = SearchParser(reader, "utf-8" if charset == "UTF-8" else "ascii").read_keys()
        return Search(tag, key, uid, charset, returns)


# RFC 5256 §3 sort-key, with RFC 5957 §4 DISPLAYFROM and DISPLAYTO
SORT_KEYS: Final = frozenset(
    {"ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO"}
)
MAX_SORT_CRITERIA: Final = 32  # more would only repeat a key


@dataclass(frozen=True, slots=True)
class SortCriterion:
    key: str  # one of SORT_KEYS
    reverse: bool = False


@dataclass(frozen=True, slots=True)
class Sort(Command):
    """SORT and UID SORT (RFC 5256 §3, §5): [RETURN options (ESORT, RFC 5267 §3)],
    criteria, then a charset (required) and search keys as SEARCH reads them."""

    name = "SORT"
    criteria: tuple[SortCriterion, ...]
    key: SearchKey
    uid: bool
    charset: str = "US-ASCII"
    return_options: tuple[str, ...] | None = None  # None: a plain SORT

    @classmethod
    def parse(
        cls, parser: CommandParser, reader: GrammarReader, tag: str, _w: str, uid: bool
    ) -> Command:
        returns = None
        if reader.accept(b"RETURN "):  # RFC 5267 §5: search-return-opts, as ESEARCH's
            returns = tuple(parser.options(reader))
            reader.sp()
        # RFC 5256 §5: sort-criteria = "(" sort-criterion *(SP sort-criterion) ")"
        reader.open_list()
        criteria = [_sort_criterion(reader)]
        while reader.list_separator():
            if len(criteria) >= MAX_SORT_CRITERIA:
                raise ImapSyntaxError("too many sort criteria")
            criteria.append(_sort_criterion(reader))
        reader.sp()
        charset, key = read_search_criteria(parser, reader)
        return Sort(tag, tuple(criteria), key, uid, charset, returns)


def read_search_criteria(parser: CommandParser, reader: GrammarReader) -> tuple[str, SearchKey]:
    """SORT's and THREAD's ``search-criteria = charset 1*(SP search-key)`` (RFC 5256
    §5; the charset is not optional there): the charset in force and the keys."""
    charset = reader.astring("a charset").decode("ascii", "replace").upper()
    if charset not in SEARCH_CHARSETS:
        raise UnsupportedCharset(charset)  # RFC 5256 §3: a tagged NO, not BAD
    reader.sp()
    if parser.utf8:
        charset = "UTF-8"  # RFC 6855 §3, as for SEARCH
    return charset, SearchParser(reader, "utf-8" if charset == "UTF-8" else "ascii").read_keys()


def _sort_criterion(reader: GrammarReader) -> SortCriterion:
    """``["REVERSE" SP] sort-key`` (RFC 5256 §5)."""
    word = reader.keyword("a sort key")
    reverse = word == "REVERSE"
    if reverse:
        reader.sp()
        word = reader.keyword("a sort key")
    if word not in SORT_KEYS:
        raise ImapSyntaxError(f"unknown sort key {word}")
    return SortCriterion(word, reverse)


@dataclass(frozen=True, slots=True)
class Fetch(Command):
    name = "FETCH"
    sequence: SequenceOrSaved
    items: tuple[FetchItem, ...]
    uid: bool
    changed_since: int | None = None  # RFC 7162 §3.1.4.1 (CHANGEDSINCE n)
    vanished: bool = False  # RFC 7162 §3.2.6 (CHANGEDSINCE n VANISHED), UID FETCH only

    @classmethod
    def parse(
        cls, parser: CommandParser, reader: GrammarReader, tag: str, _w: str, uid: bool
    ) -> Command:
        sequence = parser.sequence(reader)
        reader.sp()
        items = read_fetch_items(reader)
        changed_since: int | None = None
        vanished = False
        if not reader.at_end():
            reader.sp()  # RFC 4466 §2.4 fetch-modifiers
            changed_since, vanished = read_fetch_modifiers(reader, uid=uid)
        return Fetch(tag, sequence, items, uid, changed_since, vanished)


@dataclass(frozen=True, slots=True)
class StoreFlags(Command):
    name = "STORE"
    sequence: SequenceOrSaved
    mode: str  # "+", "-" or "" (replace), RFC 9051 §6.4.6
    silent: bool
    flags: tuple[str, ...]
    uid: bool
    unchanged_since: int | None = None  # RFC 7162 §3.1.3 (UNCHANGEDSINCE n)

    @classmethod
    def parse(
        cls, parser: CommandParser, reader: GrammarReader, tag: str, _w: str, uid: bool
    ) -> Command:
        sequence = parser.sequence(reader)
        reader.sp()
        unchanged_since: int | None = None
        if reader.peek(b"("):  # RFC 4466 §2.5 store-modifiers
            unchanged_since = read_store_modifiers(reader)
            reader.sp()
        mode = "+" if reader.accept(b"+") else "-" if reader.accept(b"-") else ""
        reader.expect(b"FLAGS", "FLAGS")
        silent = reader.accept(b".SILENT")
        reader.sp()
        if reader.peek(b"("):
            flags = read_flag_list(reader)
        else:
            names = [reader.run(_FLAG, "a flag")]
            while not reader.at_end():
                reader.sp()
                names.append(reader.run(_FLAG, "a flag"))
            flags = tuple(names)
        return StoreFlags(tag, sequence, mode, silent, flags, uid, unchanged_since)


@dataclass(frozen=True, slots=True)
class Transfer(Command):
    """COPY or MOVE (``move``), by number or by UID."""

    sequence: SequenceOrSaved
    mailbox: str
    uid: bool
    move: bool

    @classmethod
    def parse(
        cls, parser: CommandParser, reader: GrammarReader, tag: str, word: str, uid: bool
    ) -> Command:
        sequence = parser.sequence(reader)
        reader.sp()
        return Transfer(tag, sequence, parser.mailbox(reader), uid, move=word == "MOVE")


@dataclass(frozen=True, slots=True)
class UidExpunge(Command):
    name = "UID EXPUNGE"
    sequence: SequenceOrSaved


@dataclass(frozen=True, slots=True)
class Id(Command):
    name = "ID"
    fields: tuple[tuple[str, str | None], ...] | None = field(default=None)

    @classmethod
    def parse(
        cls, parser: CommandParser, reader: GrammarReader, tag: str, _w: str, _u: bool
    ) -> Command:
        if reader.accept(b"NIL"):
            return Id(tag, None)
        reader.open_list()
        fields: list[tuple[str, str | None]] = []
        if not reader.close_list():
            while True:
                name = reader.string().decode("utf-8", "replace")
                reader.sp()
                value = reader.nstring()
                fields.append((name, None if value is None else value.decode("utf-8", "replace")))
                if len(fields) > MAX_ID_FIELDS:
                    raise ImapSyntaxError("too many ID fields")  # RFC 2971 §3.3: at most 30
                if not reader.list_separator():
                    break
        return Id(tag, tuple(fields))


def command_word(command: Command) -> str:
    """The command's name as the state table knows it (``UID FETCH`` -> ``FETCH``)."""
    if isinstance(command, NoArguments):
        return command.word
    if isinstance(command, Select):
        return "EXAMINE" if command.read_only else "SELECT"
    if isinstance(command, MailboxCommand):
        return command.verb
    if isinstance(command, ListMailboxes):
        return "LSUB" if command.lsub else "LIST"
    if isinstance(command, Transfer):
        return "MOVE" if command.move else "COPY"
    if isinstance(command, UidExpunge):
        return "EXPUNGE"
    return command.name


def qresync_refused(command: Command, enabled: bool) -> bool:
    """Whether ``command`` uses QRESYNC's SELECT parameter or the VANISHED FETCH
    modifier while QRESYNC is not enabled: a tagged BAD (RFC 7162 §3.2.5, §3.2.6)."""
    if enabled:
        return False
    if isinstance(command, Select):
        return command.qresync is not None
    return isinstance(command, Fetch) and command.vanished


def enables_condstore(command: Command) -> bool:
    """Whether ``command`` is a "CONDSTORE enabling command" (RFC 7162 §3.1): SELECT or
    EXAMINE with (CONDSTORE), STATUS asking HIGHESTMODSEQ, FETCH of MODSEQ or with
    CHANGEDSINCE, STORE with UNCHANGEDSINCE, SEARCH with a MODSEQ key (ENABLE
    CONDSTORE is the explicit one: the driver's ENABLE handles it)."""
    if isinstance(command, Select):
        return command.condstore
    if isinstance(command, Status):
        return "HIGHESTMODSEQ" in command.items
    if isinstance(command, Fetch):
        return command.changed_since is not None or any(i.name == "MODSEQ" for i in command.items)
    if isinstance(command, StoreFlags):
        return command.unchanged_since is not None
    if isinstance(command, Search | Sort):
        return mentions_modseq(command.key)  # RFC 7162 §3.1: SEARCH or SORT with MODSEQ
    return False


def read_flag_list(reader: GrammarReader) -> tuple[str, ...]:
    """``"(" [flag *(SP flag)] ")"`` (RFC 9051 §9 flag-list)."""
    reader.open_list()
    if reader.close_list():
        return ()
    flags = [reader.run(_FLAG, "a flag")]
    while reader.list_separator():
        flags.append(reader.run(_FLAG, "a flag"))
    return tuple(flags)
