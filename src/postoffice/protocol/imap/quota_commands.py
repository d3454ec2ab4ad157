"""The QUOTA extension's grammar (RFC 9208): its three commands and two untagged responses.

What this module owns: ``GetQuota``, ``GetQuotaRoot`` and ``SetQuota``,
frozen command values that parse their arguments as RFC 9208 §7 spells
them (``parser.CommandParser`` reads the tag and the name, then calls
``parse``), and the rendering of ``* QUOTA`` (§4.1.1 / §7 quota-response)
and ``* QUOTAROOT`` (§4.1.2 / §7 quotaroot-response).

    getquota      = "GETQUOTA" SP quota-root-name
    getquotaroot  = "GETQUOTAROOT" SP mailbox
    setquota      = "SETQUOTA" SP quota-root-name SP setquota-list
    setquota-list = "(" [setquota-resource *(SP setquota-resource)] ")"
    setquota-resource = resource-name SP resource-limit   ; limit: number64
    quota-root-name = astring

Invariants: a ``parse`` returns its command or raises ``ImapSyntaxError``;
a ``* QUOTA`` line always lists at least one resource (the grammar's
``quota-list`` is never empty), so the caller decides what to say for a
root with no limits at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from postoffice.protocol.imap.commands import Command
from postoffice.protocol.imap.errors import ImapSyntaxError
from postoffice.protocol.imap.reader import NUMBER64_MAX, GrammarReader
from postoffice.protocol.imap.responses import CRLF, encode_string

if TYPE_CHECKING:
    from postoffice.protocol.imap.parser import CommandParser

MAX_SETQUOTA_RESOURCES: Final = 32  # bound on one SETQUOTA's list (DESIGN.md §5)


def _root_name(reader: GrammarReader) -> str:
    octets = reader.astring("a quota root name")
    try:
        return octets.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ImapSyntaxError("the quota root name is not valid UTF-8") from exc


@dataclass(frozen=True, slots=True)
class GetQuota(Command):
    """RFC 9208 §4.1.1: the usage and limits of one quota root."""

    name = "GETQUOTA"
    root: str

    @classmethod
    def parse(
        cls, parser: CommandParser, reader: GrammarReader, tag: str, _w: str, _u: bool
    ) -> Command:
        return GetQuota(tag, _root_name(reader))


@dataclass(frozen=True, slots=True)
class GetQuotaRoot(Command):
    """RFC 9208 §4.1.2: the quota roots of a mailbox, and each root's quota."""

    name = "GETQUOTAROOT"
    mailbox: str

    @classmethod
    def parse(
        cls, parser: CommandParser, reader: GrammarReader, tag: str, _w: str, _u: bool
    ) -> Command:
        return GetQuotaRoot(tag, parser.mailbox(reader))


@dataclass(frozen=True, slots=True)
class SetQuota(Command):
    """RFC 9208 §4.1.3: change a root's limits (read whole, so it can be refused cleanly)."""

    name = "SETQUOTA"
    root: str
    limits: tuple[tuple[str, int], ...]

    @classmethod
    def parse(
        cls, parser: CommandParser, reader: GrammarReader, tag: str, _w: str, _u: bool
    ) -> Command:
        root = _root_name(reader)
        reader.sp()
        reader.open_list()
        limits: list[tuple[str, int]] = []
        if not reader.close_list():
            while True:
                if len(limits) >= MAX_SETQUOTA_RESOURCES:
                    raise ImapSyntaxError("too many resources in one SETQUOTA")
                resource = reader.keyword("a resource name")
                reader.sp()
                limits.append((resource, reader.number(limit=NUMBER64_MAX, what="a limit")))
                if not reader.list_separator():
                    break
        return SetQuota(tag, root, tuple(limits))


def quota_response(root: str, resources: Sequence[tuple[str, int, int]]) -> bytes:
    """``* QUOTA root (NAME usage limit ...)`` (RFC 9208 §7 quota-response)."""
    if not resources:
        raise ValueError("a QUOTA response lists at least one resource")
    listed = b" ".join(
        b"%s %d %d" % (name.encode("ascii"), used, limit) for name, used, limit in resources
    )
    return b"* QUOTA " + encode_string(root, utf8=True) + b" (" + listed + b")" + CRLF


def quotaroot_response(mailbox: bytes, roots: Sequence[str]) -> bytes:
    """``* QUOTAROOT mailbox root ...`` (RFC 9208 §7 quotaroot-response); ``mailbox``
    already in its wire form (modified UTF-7 or UTF-8, as the session speaks)."""
    parts = [b"* QUOTAROOT", mailbox, *(encode_string(root, utf8=True) for root in roots)]
    return b" ".join(parts) + CRLF
