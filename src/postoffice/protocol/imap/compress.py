"""The COMPRESS command (RFC 4978): its syntax and the mechanisms this server offers.

What this module owns: ``Compress``, the command as a value that parses
itself (RFC 4978 §5: ``compress = "COMPRESS" SP algorithm``, ``algorithm =
atom``), and ``MECHANISMS``, the names it can be given and the server
advertises as ``COMPRESS=<name>`` (RFC 4978 §1). Whether the answer is OK,
NO [COMPRESSIONACTIVE] or BAD is the driver's (it knows whether the
connection compresses already); the state table allows COMPRESS in the
authenticated and selected states (RFC 4978 §3); the connection drops input
pipelined behind it when the OK goes out (``connection.ImapServerConnection``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from postoffice.protocol.imap.commands import Command
from postoffice.protocol.imap.reader import GrammarReader

if TYPE_CHECKING:
    from postoffice.protocol.imap.parser import CommandParser

MECHANISMS: Final = ("DEFLATE",)  # RFC 4978 §3: raw DEFLATE, RFC 1951


@dataclass(frozen=True, slots=True)
class Compress(Command):
    name = "COMPRESS"
    mechanism: str  # upper-cased: the names are atoms, compared case-insensitively

    @classmethod
    def parse(
        cls, parser: CommandParser, reader: GrammarReader, tag: str, _w: str, _u: bool
    ) -> Command:
        return Compress(tag, reader.keyword("a compression mechanism"))
