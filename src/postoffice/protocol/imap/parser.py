"""Reading one whole IMAP command: tag, name, then the command's own arguments.

What this module owns: ``CommandParser`` (the tag and command name of RFC
9051 §9 ``command``, the UID prefix, the readers every command shares:
mailbox names decoded and validated, LIST patterns, option lists, sequence
sets with ``$``), the table from command name to the command class that
parses the rest (``commands``), and ``CommandError``, the refusal with the
tag it belongs to.

Invariants: ``CommandParser.parse`` returns a command or raises
``CommandError`` (with the tag when one was read, so the BAD can be tagged);
nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from postoffice.protocol.imap.commands import (
    SEARCH_CHARSETS,
    SEQUENCE_TOKEN,
    Append,
    Authenticate,
    Command,
    Create,
    Enable,
    Fetch,
    Id,
    ListMailboxes,
    Login,
    MailboxCommand,
    NoArguments,
    Rename,
    Search,
    Select,
    Sort,
    Status,
    StoreFlags,
    Transfer,
    UidExpunge,
)
from postoffice.protocol.imap.compress import Compress
from postoffice.protocol.imap.errors import ImapSyntaxError, UnsupportedCharset
from postoffice.protocol.imap.listing import DELIMITER
from postoffice.protocol.imap.mutf7 import decode_mutf7, validate_mailbox_name
from postoffice.protocol.imap.quota_commands import GetQuota, GetQuotaRoot, SetQuota
from postoffice.protocol.imap.reader import GrammarReader
from postoffice.protocol.imap.sequence import SAVED, SequenceOrSaved, SequenceSet
from postoffice.protocol.imap.thread_command import Thread


class CommandError(ImapSyntaxError):
    """A command refused while parsing, with the tag it belongs to (None when no tag
    could be read): BAD for syntax, or NO with a response code (BADCHARSET)."""

    def __init__(self, tag: str | None, message: str, status: str = "BAD", code: str | None = None):
        super().__init__(message)
        self.tag = tag
        self.status = status
        self.code = code


SIMPLE_COMMANDS: Final = frozenset(
    {
        "CAPABILITY",
        "NOOP",
        "LOGOUT",
        "STARTTLS",
        "CHECK",
        "CLOSE",
        "UNSELECT",
        "EXPUNGE",
        "IDLE",
        "NAMESPACE",
    }
)


# the commands UID prefixes (RFC 9051 §6.4.9; SORT and THREAD: RFC 5256 §3)
_UID_COMMANDS: Final = frozenset({"FETCH", "SEARCH", "SORT", "THREAD", "STORE", "COPY", "MOVE"})


class CommandParser:
    """Reads commands; ``utf8`` says mailbox names and quoted strings are UTF-8."""

    __slots__ = ("utf8",)

    def __init__(self) -> None:
        self.utf8 = False

    def parse(self, data: bytes) -> Command:
        try:
            reader = GrammarReader(data, utf8=self.utf8)
            tag = reader.tag()
        except ImapSyntaxError as exc:
            raise CommandError(None, "missing or invalid tag") from exc
        try:
            reader.sp()
            word = reader.keyword("a command name")
            command = self._arguments(reader, tag, word)
            reader.end()
        except UnsupportedCharset as exc:
            # RFC 9051 §6.4.4: NO [BADCHARSET (supported charsets)]
            code = "BADCHARSET (" + " ".join(SEARCH_CHARSETS) + ")"
            raise CommandError(tag, f"charset {exc} is not supported", "NO", code) from exc
        except ImapSyntaxError as exc:
            raise CommandError(tag, str(exc)) from exc
        return command

    def mailbox(self, reader: GrammarReader, *, create: bool = False) -> str:
        octets = reader.astring("a mailbox name")
        try:
            if self.utf8:
                name = octets.decode("utf-8")
            else:
                name = decode_mutf7(octets.decode("ascii"))
        except UnicodeDecodeError as exc:
            raise ImapSyntaxError("mailbox name is not valid UTF-8 / modified UTF-7") from exc
        if create and name.endswith(DELIMITER):
            # RFC 9051 §6.3.4: a trailing delimiter declares that names will be
            # created under this one; a server that needs no such declaration
            # MUST ignore it.
            name = name[: -len(DELIMITER)]
        return validate_mailbox_name(name)

    def pattern(self, reader: GrammarReader) -> str:
        octets = reader.list_mailbox()
        try:
            return octets.decode("utf-8") if self.utf8 else decode_mutf7(octets.decode("ascii"))
        except UnicodeDecodeError as exc:
            raise ImapSyntaxError("pattern is not valid UTF-8 / modified UTF-7") from exc

    def _arguments(self, reader: GrammarReader, tag: str, word: str) -> Command:
        if word in SIMPLE_COMMANDS:
            return NoArguments(tag, word)
        if word == "UID":
            reader.sp()
            sub = reader.keyword("a UID command")
            if sub not in _UID_COMMANDS and sub != "EXPUNGE":
                raise ImapSyntaxError(f"UID {sub} is not a command")
            return self._arguments_of(reader, tag, sub, uid=True)
        return self._arguments_of(reader, tag, word, uid=False)

    def _arguments_of(self, reader: GrammarReader, tag: str, word: str, *, uid: bool) -> Command:
        if word == "EXPUNGE" and uid:
            reader.sp()
            return UidExpunge(tag, self.sequence(reader))
        handler = _HANDLERS.get(word)
        if handler is None or (uid and word not in _UID_COMMANDS):
            raise ImapSyntaxError(f"unknown command {word}")
        reader.sp()
        return handler(self, reader, tag, word, uid)

    @staticmethod
    def sequence(reader: GrammarReader) -> SequenceOrSaved:
        """A sequence set, or ``$`` (RFC 9051 §6.4.4.1: the saved search result)."""
        if reader.peek(b"$") and not SEQUENCE_TOKEN.match(reader.remaining()[1:2]):
            reader.expect(b"$")
            return SAVED
        return SequenceSet.parse(reader.run(SEQUENCE_TOKEN, "a sequence set"))

    @staticmethod
    def options(reader: GrammarReader) -> list[str]:
        reader.open_list()
        if reader.close_list():
            return []
        options = [reader.keyword("an option")]
        while reader.list_separator():
            options.append(reader.keyword("an option"))
        return options

    @staticmethod
    def status_items(reader: GrammarReader) -> tuple[str, ...]:
        reader.open_list()
        items = [reader.keyword("a status item")]
        while reader.list_separator():
            items.append(reader.keyword("a status item"))
        return tuple(items)


_HANDLERS: Final[dict[str, Callable[[CommandParser, GrammarReader, str, str, bool], Command]]] = {
    "AUTHENTICATE": Authenticate.parse,
    "LOGIN": Login.parse,
    "ENABLE": Enable.parse,
    "SELECT": Select.parse,
    "EXAMINE": Select.parse,
    "CREATE": Create.parse,
    "DELETE": MailboxCommand.parse,
    "SUBSCRIBE": MailboxCommand.parse,
    "UNSUBSCRIBE": MailboxCommand.parse,
    "RENAME": Rename.parse,
    "LIST": ListMailboxes.parse,
    "LSUB": ListMailboxes.parse,
    "STATUS": Status.parse,
    "APPEND": Append.parse,
    "SEARCH": Search.parse,
    "SORT": Sort.parse,  # RFC 5256 §3
    "THREAD": Thread.parse,  # RFC 5256 §3
    "FETCH": Fetch.parse,
    "STORE": StoreFlags.parse,
    "COPY": Transfer.parse,
    "MOVE": Transfer.parse,
    "ID": Id.parse,
    "GETQUOTA": GetQuota.parse,  # RFC 9208 §4.1
    "GETQUOTAROOT": GetQuotaRoot.parse,
    "SETQUOTA": SetQuota.parse,
    "COMPRESS": Compress.parse,  # RFC 4978 §3
}
