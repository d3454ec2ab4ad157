"""The THREAD command (RFC 5256 §3): its arguments as a value that parses itself.

What this module owns: ``Thread`` (THREAD and UID THREAD) and the names of
the threading algorithms this server knows (``THREAD_ALGORITHMS``, also what
the capabilities advertise as ``THREAD=...``). Its ``parse`` reads, after
the command name (RFC 5256 §5):

    thread = ["UID" SP] "THREAD" SP thread-alg SP search-criteria
    search-criteria = charset 1*(SP search-key)

The charset is required, as for SORT; an unknown charset is the tagged NO
with BADCHARSET that ``parser`` makes of ``UnsupportedCharset``; an unknown
algorithm is a BAD (the client should have read the capabilities). The
search keys are SEARCH's own (``search_keys``), ``$`` included.

Invariants: ``parse`` returns a ``Thread`` or raises ``ImapSyntaxError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from postoffice.protocol.imap.commands import Command, read_search_criteria
from postoffice.protocol.imap.errors import ImapSyntaxError
from postoffice.protocol.imap.reader import GrammarReader
from postoffice.protocol.imap.search_keys import SearchKey

if TYPE_CHECKING:
    from postoffice.protocol.imap.parser import CommandParser

THREAD_ALGORITHMS: Final = ("ORDEREDSUBJECT", "REFERENCES")  # RFC 5256 §3


@dataclass(frozen=True, slots=True)
class Thread(Command):
    """THREAD and UID THREAD: an algorithm, a charset and search keys."""

    name = "THREAD"
    algorithm: str  # one of THREAD_ALGORITHMS
    key: SearchKey
    uid: bool
    charset: str = "US-ASCII"

    @classmethod
    def parse(
        cls, parser: CommandParser, reader: GrammarReader, tag: str, _w: str, uid: bool
    ) -> Command:
        algorithm = reader.keyword("a thread algorithm")  # thread-alg, an atom
        if algorithm not in THREAD_ALGORITHMS:
            raise ImapSyntaxError(f"unknown thread algorithm {algorithm}")
        reader.sp()
        charset, key = read_search_criteria(parser, reader)
        return Thread(tag, algorithm, key, uid, charset)
