"""Command modifiers and mod-sequences: the CONDSTORE grammar (RFC 7162 §7, RFC 4466 §2).

What this module owns: reading a mod-sequence (RFC 7162 §7: a 63-bit
unsigned number, 1..2**63-1, and 0 too where the grammar says
``mod-sequence-valzer``), and the parenthesised modifier lists that RFC 4466
lets extensions add to commands, with the only modifiers known here:

    select-params   SELECT/EXAMINE name (CONDSTORE)                 RFC 7162 §3.1.8
    fetch-modifiers FETCH set items (CHANGEDSINCE mod-sequence)      RFC 7162 §3.1.4.1
    store-modifiers STORE set (UNCHANGEDSINCE mod-sequence-valzer) flags
                                                                     RFC 7162 §3.1.3

Invariants: each reader consumes its production and returns its value, or
raises ``ImapSyntaxError`` (a tagged BAD): for an unknown modifier, one given
twice (RFC 7162 §7: a single UNCHANGEDSINCE), an empty list of FETCH or
STORE modifiers (RFC 4466 §2 lists hold at least one), and a mod-sequence
past 2**63-1.
"""

from __future__ import annotations

from typing import Final

from postoffice.protocol.imap.errors import ImapSyntaxError
from postoffice.protocol.imap.reader import NUMBER64_MAX, GrammarReader

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


def read_select_params(reader: GrammarReader) -> bool:
    """RFC 4466 §2.1 select-params after the mailbox name; True when CONDSTORE is one.
    An empty list, which the grammar has not, was always taken: it still is."""
    found = _modifier_list(reader, "SELECT parameter", {"CONDSTORE": False}, empty=True)
    return "CONDSTORE" in found


def read_fetch_modifiers(reader: GrammarReader) -> int:
    """RFC 4466 §2.4 fetch-modifiers after the items: the CHANGEDSINCE value.

    RFC 7162 §7 spells CHANGEDSINCE with a mod-sequence-value (at least 1); 0 is
    taken too, meaning every message, since iOS Mail sends it for a mailbox it
    has no MODSEQ of yet and it can mean nothing else."""
    found = _modifier_list(reader, "FETCH modifier", {"CHANGEDSINCE": True})
    value = found["CHANGEDSINCE"]
    assert value is not None
    return value


def read_store_modifiers(reader: GrammarReader) -> int:
    """RFC 4466 §2.5 store-modifiers after the set: the UNCHANGEDSINCE value (0 allowed:
    RFC 7162 §3.1.3, a STORE that fails for every message)."""
    found = _modifier_list(reader, "STORE modifier", {"UNCHANGEDSINCE": True})
    value = found["UNCHANGEDSINCE"]
    assert value is not None
    return value
