"""Command modifiers and mod-sequences: the CONDSTORE grammar (RFC 7162 §7, RFC 4466 §2).

What this module owns: reading a mod-sequence (RFC 7162 §7: a 63-bit
unsigned number, 1..2**63-1, and 0 too where the grammar says
``mod-sequence-valzer``), and the parenthesised modifier lists that RFC 4466
lets extensions add to commands, with the only modifiers known here:

    select-params   SELECT/EXAMINE name (CONDSTORE)                 RFC 7162 §3.1.8
                    SELECT/EXAMINE name (QRESYNC (uidvalidity mod-sequence
                        [known-uids] [(known-sequence-set known-uid-set)]))
                                                                     RFC 7162 §3.2.5
    fetch-modifiers FETCH set items (CHANGEDSINCE mod-sequence)      RFC 7162 §3.1.4.1
                    UID FETCH set items (CHANGEDSINCE mod-sequence VANISHED)
                                                                     RFC 7162 §3.2.6
    store-modifiers STORE set (UNCHANGEDSINCE mod-sequence-valzer) flags
                                                                     RFC 7162 §3.1.3

Invariants: each reader consumes its production and returns its value, or
raises ``ImapSyntaxError`` (a tagged BAD): for an unknown modifier, one given
twice (RFC 7162 §7: a single UNCHANGEDSINCE), an empty list of FETCH or
STORE modifiers (RFC 4466 §2 lists hold at least one), and a mod-sequence
past 2**63-1; for a QRESYNC parameter whose UID or number sets hold ``*`` or
whose ``seq-match-data`` sets differ in size (RFC 7162 §3.2.5); for VANISHED
without CHANGEDSINCE or on a FETCH by number (RFC 7162 §3.2.6).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from postoffice.protocol.imap.errors import ImapSyntaxError
from postoffice.protocol.imap.reader import NUMBER64_MAX, GrammarReader
from postoffice.protocol.imap.sequence import MAX_NUMBER, SequenceSet

MOD_SEQUENCE_MAX: Final = NUMBER64_MAX  # RFC 7162 §7 mod-sequence-value: 63-bit unsigned


def read_mod_sequence(
    reader: GrammarReader, *, zero: bool = False, what: str = "a mod-sequence"
) -> int:
    """``mod-sequence-value`` (1..2**63-1), or ``mod-sequence-valzer`` with ``zero``."""
    value = reader.number(limit=MOD_SEQUENCE_MAX, what=what)
    if value == 0 and not zero:
        raise ImapSyntaxError(f"{what} must be at least 1")
    return value


def _modifier_list(
    reader: GrammarReader, what: str, known: dict[str, bool], *, empty: bool = False
) -> dict[str, int | None]:
    """``"(" name [SP value] *(SP name [SP value]) ")"``; ``known`` says which names
    there are and whether a mod-sequence (0 allowed) follows each; ``empty`` lets
    ``()`` pass."""
    found: dict[str, int | None] = {}
    reader.open_list()
    if empty and reader.close_list():
        return found
    while True:
        name = reader.keyword(f"a {what}")
        if name not in known:
            raise ImapSyntaxError(f"unknown {what} {name}")
        if name in found:
            raise ImapSyntaxError(f"{name} given twice")
        value: int | None = None
        if known[name]:
            reader.sp()
            value = read_mod_sequence(reader, zero=True, what=f"the {name} value")
        found[name] = value
        if not reader.list_separator():
            return found


_SET_TOKEN: Final = re.compile(rb"[0-9*][0-9*:,]*")


@dataclass(frozen=True, slots=True)
class Qresync:
    """The QRESYNC select parameter (RFC 7162 §3.2.5): what the client last knew.
    ``seq_match`` is ``seq-match-data``: message numbers and the UIDs they had."""

    uidvalidity: int
    modseq: int
    known_uids: SequenceSet | None = None
    seq_match: tuple[SequenceSet, SequenceSet] | None = None


@dataclass(frozen=True, slots=True)
class SelectParams:
    """RFC 4466 §2.1 select-params: CONDSTORE (RFC 7162 §3.1.8) and QRESYNC."""

    condstore: bool = False
    qresync: Qresync | None = None


def _plain_set(reader: GrammarReader, what: str) -> SequenceSet:
    """A ``sequence-set`` without ``*`` (RFC 7162 §7: known-uids, known-sequence-set
    and known-uid-set do not allow it)."""
    found = SequenceSet.parse(reader.run(_SET_TOKEN, what))
    if found.has_star:
        raise ImapSyntaxError(f"{what} cannot hold *")
    return found


def _set_size(values: SequenceSet) -> int:
    return sum(high - low + 1 for low, high in values.resolve(MAX_NUMBER))


def _close(reader: GrammarReader) -> None:
    if not reader.close_list():
        raise ImapSyntaxError("expected )")


def _read_qresync(reader: GrammarReader) -> Qresync:
    """``"(" uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data] ")"``."""
    reader.open_list()
    uidvalidity = reader.nz_number("the UIDVALIDITY")
    reader.sp()
    modseq = read_mod_sequence(reader, what="the QRESYNC mod-sequence")
    known: SequenceSet | None = None
    match: tuple[SequenceSet, SequenceSet] | None = None
    if reader.close_list():
        return Qresync(uidvalidity, modseq)
    reader.sp()
    if not reader.peek(b"("):
        known = _plain_set(reader, "the known UIDs")
        if reader.close_list():
            return Qresync(uidvalidity, modseq, known)
        reader.sp()
    reader.open_list()  # seq-match-data = "(" known-sequence-set SP known-uid-set ")"
    numbers = _plain_set(reader, "the known sequence set")
    reader.sp()
    uids = _plain_set(reader, "the known UID set")
    _close(reader)
    _close(reader)
    # RFC 7162 §3.2.5.2: each number goes with the UID at the same place.
    if _set_size(numbers) != _set_size(uids):
        raise ImapSyntaxError("the known sequence set and UID set differ in size")
    match = (numbers, uids)
    return Qresync(uidvalidity, modseq, known, match)


def read_select_params(reader: GrammarReader) -> SelectParams:
    """RFC 4466 §2.1 select-params after the mailbox name: CONDSTORE, QRESYNC, each
    once. An empty list, which the grammar has not, was always taken: it still is."""
    condstore = False
    qresync: Qresync | None = None
    seen: set[str] = set()
    reader.open_list()
    if reader.close_list():
        return SelectParams()
    while True:
        name = reader.keyword("a SELECT parameter")
        if name in seen:
            raise ImapSyntaxError(f"{name} given twice")
        seen.add(name)
        if name == "CONDSTORE":
            condstore = True
        elif name == "QRESYNC":
            reader.sp()
            qresync = _read_qresync(reader)
        else:
            raise ImapSyntaxError(f"unknown SELECT parameter {name}")
        if not reader.list_separator():
            return SelectParams(condstore, qresync)


def read_fetch_modifiers(reader: GrammarReader, *, uid: bool) -> tuple[int, bool]:
    """RFC 4466 §2.4 fetch-modifiers after the items: the CHANGEDSINCE value, and
    whether VANISHED is there (RFC 7162 §3.2.6: only in UID FETCH, only with
    CHANGEDSINCE; both BAD otherwise).

    RFC 7162 §7 spells CHANGEDSINCE with a mod-sequence-value (at least 1); 0 is
    taken too, meaning every message, since iOS Mail sends it for a mailbox it
    has no MODSEQ of yet and it can mean nothing else."""
    found = _modifier_list(reader, "FETCH modifier", {"CHANGEDSINCE": True, "VANISHED": False})
    vanished = "VANISHED" in found
    if vanished and not uid:
        raise ImapSyntaxError("VANISHED is a UID FETCH modifier")
    value = found.get("CHANGEDSINCE")
    if value is None:
        raise ImapSyntaxError("VANISHED needs CHANGEDSINCE")
    return value, vanished


def read_store_modifiers(reader: GrammarReader) -> int:
    """RFC 4466 §2.5 store-modifiers after the set: the UNCHANGEDSINCE value (0 allowed:
    RFC 7162 §3.1.3, a STORE that fails for every message)."""
    found = _modifier_list(reader, "STORE modifier", {"UNCHANGEDSINCE": True})
    value = found["UNCHANGEDSINCE"]
    assert value is not None
    return value
