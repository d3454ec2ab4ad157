"""SORT and UID SORT (RFC 5256 §3) with the DISPLAYFROM and DISPLAYTO keys of
SORT=DISPLAY (RFC 5957), and ESORT's RETURN options (RFC 5267 §3).

What this module owns: the sort value of each criterion for one message and
the order of the messages SEARCH's matching (``imap_selected.search_matches``,
so ``$`` and every search key mean what they mean for SEARCH) selected.

Rules:
- ARRIVAL is the internal date; DATE the sent date, the Date: field, or the
  internal date when it is missing or unreadable (RFC 5256 §2.2); dates
  compare as instants, their zones considered;
- SIZE is RFC822.SIZE; SUBJECT the base subject (``mime.base_subject``) of
  the first Subject field, RFC 2047 words decoded;
- FROM, TO, CC are the addr-mailbox of the first address structure of the
  field (RFC 5256 §3); DISPLAYFROM, DISPLAYTO its display name, decoded, or
  its addr-spec when it has none (RFC 5957 §3); for a group that structure is
  the start marker, whose mailbox is the group name (RFC 3501 §7.4.2), as
  Dovecot sorts; a missing field or address sorts as the empty string;
- strings compare by the i;unicode-casemap collation of RFC 5051
  (``mime.collation``: "Jörg" sorts before "Judy"), as Dovecot's SORT does;
- REVERSE reverses one criterion; a tie on every criterion goes by sequence
  number, ascending, also under REVERSE (RFC 5256 §3);
- with RETURN (ESORT) the answer is an ESEARCH response: MIN, MAX, ALL, COUNT
  (``RETURN ()`` means ALL, as for ESEARCH); others are refused with BAD
  (SAVE and PARTIAL are not offered for SORT).

Invariants: only the header fields the criteria name are read, for all the
messages at once (``imap_fields.fields_for``: kept in the index, so a second
SORT reads no message file), never a message body; the sort value of each
message is kept in the process and in the index once worked out
(``imap_fields.keys_for``), so a second SORT of the mailbox reads not even
the header values; a message gone meanwhile sorts with empty values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Final

from postoffice.mime.base_subject import base_subject
from postoffice.mime.collation import collation_key
from postoffice.mime.envelope import MISSING_DOMAIN, MISSING_MAILBOX, parse_addresses
from postoffice.mime.headers import first_timestamp
from postoffice.protocol.imap.commands import Sort
from postoffice.protocol.imap.responses import esearch
from postoffice.protocol.imap.responses import sort as sort_response
from postoffice.protocol.imap.search_keys import mentions_modseq
from postoffice.protocol.imap.sequence import format_ordered_sequence
from postoffice.server.imap_context import Reply, SessionState
from postoffice.server.imap_fields import KeyKind, column_of, keys_for, one_column
from postoffice.server.imap_selected import search_matches
from postoffice.server.imap_view import MailboxView

SortValue = int | float | str
ESORT_OPTIONS: Final = frozenset({"MIN", "MAX", "ALL", "COUNT"})  # RFC 5267 §3.1 (no SAVE)

# the header field each criterion reads (ARRIVAL and SIZE read none)
_FIELDS: Final = {
    "CC": "cc",
    "DATE": "date",
    "FROM": "from",
    "SUBJECT": "subject",
    "TO": "to",
    "DISPLAYFROM": "from",
    "DISPLAYTO": "to",
}


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else ""


def first_address(values: list[str]) -> tuple[str, str, str] | None:
    """(display name, local part, domain) of the first address structure in the
    first of ``values`` (decoded From/To/Cc values). A group's start marker
    counts (RFC 3501 §7.4.2: no name, the group name as mailbox, no host): RFC
    5256 §3 and RFC 5957 §3 name the [IMAP] addr-mailbox and addr-name of the
    first address, and Dovecot sorts "undisclosed-recipients:;" so."""
    if not values:
        return None
    for address in parse_addresses(values[0]):
        if not isinstance(address, list) or len(address) != 4:
            continue
        name, _adl, mailbox, host = address
        local = _text(mailbox)
        domain = _text(host)
        return (
            _text(name),
            "" if local == MISSING_MAILBOX else local,
            "" if domain == MISSING_DOMAIN else domain,
        )
    return None


def mailbox_value(values: list[str]) -> str:
    """RFC 5256 §3 FROM/TO/CC: the addr-mailbox of the first address."""
    first = first_address(values)
    return "" if first is None else collation_key(first[1])


def display_value(values: list[str]) -> str:
    """RFC 5957 §3: the display name of the first address, else its addr-spec
    (a group's: its name)."""
    first = first_address(values)
    if first is None:
        return ""
    name, local, domain = first
    if name.strip():
        return collation_key(name.strip())
    return collation_key(f"{local}@{domain}" if domain else local)


def sort_value(criterion: str, values: list[str], internal_date: datetime, size: int) -> SortValue:
    """The value ``criterion`` compares for one message, from the values of the
    field it reads (``_FIELDS``); instants as POSIX timestamps, which compare
    as the instants do and faster than zoned datetimes."""
    if criterion == "ARRIVAL":
        return internal_date.timestamp()
    if criterion == "SIZE":
        return size
    if criterion == "DATE":
        sent = first_timestamp(values)  # RFC 5256 §2.2: else the internal date
        return internal_date.timestamp() if sent is None else sent
    if criterion == "SUBJECT":
        return collation_key(base_subject(values[0])) if values else ""
    if criterion in ("DISPLAYFROM", "DISPLAYTO"):
        return display_value(values)
    return mailbox_value(values)


def sorted_messages(
    found: Sequence[tuple[int, int]],
    columns: Sequence[Mapping[int, SortValue]],
    reverse: list[bool],
) -> list[tuple[int, int]]:
    """``found`` (number, UID) in SORT order, given each criterion's value of each
    UID (``columns``, one per criterion): each criterion in turn, reversed where
    asked, then the number.

    One sort per criterion, the last criterion first: Python's sort is stable,
    also with ``reverse`` (equal values keep their order), so each pass leaves
    its ties in the order of the passes before it, and under all of them in
    number order, ascending even under REVERSE (RFC 5256 §3). The keys are
    looked up per pass, with no row built per message.
    """
    ordered = sorted(found)
    for column, backwards in reversed(list(zip(columns, reverse, strict=True))):
        ordered.sort(key=lambda pair: column[pair[1]], reverse=backwards)
    return ordered


def _sort_key_kind(view: MailboxView, criterion: str, field: str) -> KeyKind[SortValue]:
    """The sort value of ``criterion``, made from ``field`` (``sort_value``) and
    written in the index as its text (a date: the timestamp's exact ``repr``)."""
    infos = view.infos

    def derive(uid: int, values: dict[str, list[str]]) -> SortValue:
        info = infos[uid]
        # a message gone meanwhile has no values: it sorts with empty ones
        return sort_value(criterion, values.get(field, []), info.internal_date, info.size)

    if criterion == "DATE":
        return KeyKind(
            criterion,
            (field,),
            derive,
            lambda v: [repr(v)],
            lambda s: float(s[0]),
            one_column,
            column_of(float),
        )
    return KeyKind(
        criterion, (field,), derive, lambda v: [str(v)], lambda s: s[0], one_column, column_of(str)
    )


async def do_sort(state: SessionState, command: Sort) -> Reply:
    view = state.view
    assert view is not None
    if command.return_options is not None and not set(command.return_options) <= ESORT_OPTIONS:
        return Reply("BAD", "Unknown RETURN option")
    found = await search_matches(state, view, command.key)
    uids = [uid for _, uid in found]
    infos = view.infos
    columns: list[dict[int, SortValue]] = []
    for criterion in command.criteria:
        key = criterion.key
        name = _FIELDS.get(key)
        if name is None:  # ARRIVAL, SIZE: from the index entry
            columns.append(
                {
                    uid: sort_value(key, [], infos[uid].internal_date, infos[uid].size)
                    for uid in uids
                }
            )
        else:
            columns.append(await keys_for(state, view, uids, _sort_key_kind(view, key, name)))
    ordered = sorted_messages(found, columns, [criterion.reverse for criterion in command.criteria])
    answer = [uid if command.uid else number for number, uid in ordered]
    modseqs = [view.infos[uid].modseq for _, uid in ordered]
    state.count("sort")
    if command.return_options is not None:
        shown = modseqs if mentions_modseq(command.key) else None
        data = esort_data(answer, command.return_options or ("ALL",), shown)
        state.conn.send(esearch(command.tag, uid=command.uid, data=data))
        return Reply("OK", f"{'UID ' if command.uid else ''}SORT completed")
    # RFC 7162 §3.1.6 (sort-data, §7): with a MODSEQ key, the highest MODSEQ found
    modseq = max(modseqs) if mentions_modseq(command.key) and found else None
    state.conn.send(sort_response(answer, modseq))
    return Reply("OK", f"{'UID ' if command.uid else ''}SORT completed")


def esort_data(
    answer: list[int], options: Sequence[str], modseqs: list[int] | None
) -> list[tuple[str, bytes]]:
    """ESORT (RFC 5267 §3.1): the ESEARCH items of a sorted answer. MIN and MAX are
    the first and the last message in sort order, ALL the answer in sort order;
    with ``modseqs`` (one per answer, given when a MODSEQ key was used) the
    highest MODSEQ of the messages returned (RFC 7162 §3.1.5, as for ESEARCH)."""
    data: list[tuple[str, bytes]] = []
    returned: set[int] = set()
    if answer:
        if "MIN" in options:
            data.append(("MIN", b"%d" % answer[0]))
            returned.add(0)
        if "MAX" in options:
            data.append(("MAX", b"%d" % answer[-1]))
            returned.add(len(answer) - 1)
        if "ALL" in options:
            data.append(("ALL", format_ordered_sequence(answer).encode("ascii")))
    if "COUNT" in options:
        data.append(("COUNT", b"%d" % len(answer)))
    if answer and modseqs is not None:
        if "ALL" in options or "COUNT" in options:
            returned = set(range(len(answer)))
        data.append(("MODSEQ", b"%d" % max(modseqs[index] for index in returned)))
    return data
