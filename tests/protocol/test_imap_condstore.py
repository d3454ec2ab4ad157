"""CONDSTORE's grammar (RFC 7162 §3.1, §7; RFC 4466 §2 modifiers): SELECT/EXAMINE
(CONDSTORE), the FETCH item MODSEQ and modifier CHANGEDSINCE, the STORE modifier
UNCHANGEDSINCE, the SEARCH key MODSEQ, STATUS HIGHESTMODSEQ, ENABLE CONDSTORE.

Every form is parsed whole; fed to ``ImapServerConnection`` whole and octet by
octet, alone and with the next command behind it; with text after it (refused);
cut short (refused). Each reader is fed its production alone and with trailing
data, and stops where its rule ends.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postoffice.protocol.imap.commands import (
    Command,
    Enable,
    Fetch,
    Search,
    Select,
    Status,
    StoreFlags,
    enables_condstore,
)
from postoffice.protocol.imap.errors import ImapSyntaxError
from postoffice.protocol.imap.fetch_items import MACROS, FetchItem
from postoffice.protocol.imap.modifiers import (
    MOD_SEQUENCE_MAX,
    SelectParams,
    read_fetch_modifiers,
    read_mod_sequence,
    read_select_params,
    read_store_modifiers,
)
from postoffice.protocol.imap.parser import CommandError
from postoffice.protocol.imap.reader import GrammarReader
from postoffice.protocol.imap.responses import fetch_flags, search
from postoffice.protocol.imap.search_keys import (
    AllKey,
    AndKey,
    ModSeqKey,
    NotKey,
    OrKey,
    SearchParser,
    SetKey,
    SizeKey,
    mentions_modseq,
)
from postoffice.protocol.imap.sequence import SAVED
from tests.protocol.imap_parsing import (
    assert_cut_short_refused_or_different,
    assert_trailing_text_refused,
    parse,
    refused,
    seq,
)
from tests.protocol.imap_transcripts import Session

FLAGS = FetchItem("FLAGS")
MODSEQ = FetchItem("MODSEQ")
TOP = 9_223_372_036_854_775_807  # RFC 7162 §7: 2**63 - 1

# (name, wire, command): RFC 7162's own examples first, then the edges of each rule.
FORMS: list[tuple[str, bytes, Command]] = [
    (
        "RFC 7162 example 18: SELECT (CONDSTORE)",
        b"A142 SELECT INBOX (CONDSTORE)\r\n",
        Select("A142", "INBOX", False, condstore=True),
    ),
    (
        "EXAMINE (condstore), any case",
        b"a EXAMINE Drafts (condstore)\r\n",
        Select("a", "Drafts", True, condstore=True),
    ),
    (
        "RFC 7162 §3.1.4.1: FETCH ... (CHANGEDSINCE 12345)",
        b"a FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)\r\n",
        Fetch("a", seq("1:*"), (FLAGS,), False, 12345),
    ),
    (
        "RFC 7162 example 12: UID FETCH ... (CHANGEDSINCE)",
        b"s100 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)\r\n",
        Fetch("s100", seq("1:*"), (FLAGS,), True, 12345),
    ),
    (
        "RFC 7162 example 13: FETCH (MODSEQ)",
        b"a FETCH 1:3 (MODSEQ)\r\n",
        Fetch("a", seq("1:3"), (MODSEQ,), False),
    ),
    (
        "MODSEQ alone, lower case, with other items",
        b"a UID FETCH 7 (uid modseq FLAGS)\r\n",
        Fetch("a", seq("7"), (FetchItem("UID"), MODSEQ, FLAGS), True),
    ),
    (
        "a macro with a modifier",
        b"a FETCH 1 FAST (changedsince 1)\r\n",
        Fetch("a", seq("1"), tuple(FetchItem(n) for n in MACROS["FAST"]), False, 1),
    ),
    (
        "one item with a modifier",
        b"a FETCH 2 MODSEQ (CHANGEDSINCE 00042)\r\n",
        Fetch("a", seq("2"), (MODSEQ,), False, 42),
    ),
    (
        "CHANGEDSINCE 0, as iOS Mail sends it",
        b"a FETCH 1:* (FLAGS) (CHANGEDSINCE 0)\r\n",
        Fetch("a", seq("1:*"), (FLAGS,), False, 0),
    ),
    (
        "CHANGEDSINCE at the 63-bit top",
        b"a FETCH $ (FLAGS) (CHANGEDSINCE 9223372036854775807)\r\n",
        Fetch("a", SAVED, (FLAGS,), False, TOP),
    ),
    (
        "RFC 7162 example 3: UID STORE (UNCHANGEDSINCE) +FLAGS.SILENT",
        b"a103 UID STORE 6,4,8 (UNCHANGEDSINCE 12121230045) +FLAGS.SILENT (\\Deleted)\r\n",
        StoreFlags("a103", seq("6,4,8"), "+", True, ("\\Deleted",), True, 12121230045),
    ),
    (
        "RFC 7162 example 4: STORE * (UNCHANGEDSINCE)",
        b"a104 STORE * (UNCHANGEDSINCE 12121230045) +FLAGS.SILENT (\\Deleted $Processed)\r\n",
        StoreFlags("a104", seq("*"), "+", True, ("\\Deleted", "$Processed"), False, 12121230045),
    ),
    (
        "RFC 7162 example 6: STORE 7,5,9 (UNCHANGEDSINCE 320162338)",
        b"d105 STORE 7,5,9 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)\r\n",
        StoreFlags("d105", seq("7,5,9"), "+", True, ("\\Deleted",), False, 320162338),
    ),
    (
        "UNCHANGEDSINCE 0, FLAGS without a list",
        b"a STORE 1:3 (unchangedsince 0) FLAGS \\Seen\r\n",
        StoreFlags("a", seq("1:3"), "", False, ("\\Seen",), False, 0),
    ),
    (
        "UNCHANGEDSINCE at the 63-bit top, -FLAGS",
        b"a STORE 1 (UNCHANGEDSINCE 9223372036854775807) -FLAGS ()\r\n",
        StoreFlags("a", seq("1"), "-", False, (), False, TOP),
    ),
    (
        "RFC 7162 example 15: SEARCH MODSEQ with an entry",
        b'a SEARCH MODSEQ "/flags/\\\\draft" all 620162338\r\n',
        Search("a", ModSeqKey(620162338, "\\draft", "ALL"), False),
    ),
    (
        "RFC 7162 example 16: SEARCH OR NOT MODSEQ ... LARGER ...",
        b"t SEARCH OR NOT MODSEQ 720162338 LARGER 50000\r\n",
        Search("t", OrKey(NotKey(ModSeqKey(720162338)), SizeKey(True, 50000)), False),
    ),
    (
        "UID SEARCH MODSEQ 0 with another key",
        b"a UID SEARCH MODSEQ 0 1:5\r\n",
        Search("a", AndKey((ModSeqKey(0), SetKey(seq("1:5"), uid=False))), True),
    ),
    (
        "MODSEQ of a keyword entry, private",
        b'a SEARCH modseq "/FLAGS/$MDNSent" PRIV 5\r\n',
        Search("a", ModSeqKey(5, "$MDNSent", "PRIV"), False),
    ),
    (
        "MODSEQ in parentheses, shared entry, top value",
        b'a SEARCH (MODSEQ "/flags/\\\\Seen" shared 9223372036854775807 ALL)\r\n',
        Search("a", AndKey((ModSeqKey(TOP, "\\Seen", "SHARED"), AllKey())), False),
    ),
    (
        "RFC 7162 example 17: STATUS (... HIGHESTMODSEQ)",
        b"A042 STATUS blurdybloop (UIDNEXT MESSAGES HIGHESTMODSEQ)\r\n",
        Status("A042", "blurdybloop", ("UIDNEXT", "MESSAGES", "HIGHESTMODSEQ")),
    ),
    ("ENABLE CONDSTORE", b"a ENABLE CONDSTORE\r\n", Enable("a", ("CONDSTORE",))),
]
IDS = [name for name, _, _ in FORMS]


@pytest.mark.parametrize(("wire", "expected"), [(w, c) for _, w, c in FORMS], ids=IDS)
def test_forms_parse(wire: bytes, expected: Command) -> None:
    assert parse(wire) == expected


@pytest.mark.parametrize("wire", [w for _, w, _ in FORMS], ids=IDS)
def test_forms_with_text_after_them_are_refused(wire: bytes) -> None:
    assert_trailing_text_refused(wire)


@pytest.mark.parametrize("wire", [w for _, w, _ in FORMS], ids=IDS)
def test_forms_cut_short_are_refused_or_differ(wire: bytes) -> None:
    assert_cut_short_refused_or_different(wire)


@pytest.mark.parametrize("mode", ["whole", "bytewise"])
@pytest.mark.parametrize("behind", [b"", b"z NOOP\r\n"], ids=["alone", "next-command-behind"])
@pytest.mark.parametrize(("wire", "expected"), [(w, c) for _, w, c in FORMS], ids=IDS)
def test_forms_through_the_connection(
    mode: str, behind: bytes, wire: bytes, expected: Command
) -> None:
    session = Session(mode=mode)
    session.login()
    if not isinstance(expected, Enable):  # ENABLE comes before any SELECT
        assert session.feed(b"s SELECT INBOX\r\n") == b"s OK SELECT completed\r\n"
    answer = session.feed(wire + behind)
    assert answer.startswith(expected.tag.encode() + b" OK ")
    assert answer.endswith(b"z OK NOOP completed\r\n" if behind else b" completed\r\n")
    commands = session.commands[-2:] if behind else session.commands[-1:]
    assert commands[0] == expected


REFUSED: list[tuple[str, bytes]] = [
    ("CHANGEDSINCE past 63 bits", b"a FETCH 1 (FLAGS) (CHANGEDSINCE 9223372036854775808)\r\n"),
    ("CHANGEDSINCE at 64 bits", b"a FETCH 1 (FLAGS) (CHANGEDSINCE 18446744073709551615)\r\n"),
    ("CHANGEDSINCE without a value", b"a FETCH 1 (FLAGS) (CHANGEDSINCE)\r\n"),
    ("CHANGEDSINCE not a number", b"a FETCH 1 (FLAGS) (CHANGEDSINCE x1)\r\n"),
    ("CHANGEDSINCE negative", b"a FETCH 1 (FLAGS) (CHANGEDSINCE -1)\r\n"),
    ("CHANGEDSINCE twice", b"a FETCH 1 (FLAGS) (CHANGEDSINCE 1 CHANGEDSINCE 2)\r\n"),
    ("empty fetch modifiers", b"a FETCH 1 (FLAGS) ()\r\n"),
    ("fetch modifiers unclosed", b"a FETCH 1 (FLAGS) (CHANGEDSINCE 1\r\n"),
    ("modifier without SP", b"a FETCH 1 (FLAGS)(CHANGEDSINCE 1)\r\n"),
    ("MODSEQ with an argument", b"a FETCH 1 (MODSEQ (5))\r\n"),
    ("UNCHANGEDSINCE past 63 bits", b"a STORE 1 (UNCHANGEDSINCE 9223372036854775808) FLAGS ()\r\n"),
    ("UNCHANGEDSINCE twice", b"a STORE 1 (UNCHANGEDSINCE 1 UNCHANGEDSINCE 2) FLAGS ()\r\n"),
    ("UNCHANGEDSINCE without a value", b"a STORE 1 (UNCHANGEDSINCE) FLAGS ()\r\n"),
    ("unknown store modifier", b"a STORE 1 (UNCHANGED 5) FLAGS ()\r\n"),
    ("empty store modifiers", b"a STORE 1 () FLAGS ()\r\n"),
    ("store modifiers without SP", b"a STORE 1 (UNCHANGEDSINCE 5)FLAGS ()\r\n"),
    ("store modifiers after the flags", b"a STORE 1 FLAGS () (UNCHANGEDSINCE 5)\r\n"),
    ("SEARCH MODSEQ past 63 bits", b"a SEARCH MODSEQ 9223372036854775808\r\n"),
    ("SEARCH MODSEQ without a value", b"a SEARCH MODSEQ\r\n"),
    ("SEARCH MODSEQ entry without type", b'a SEARCH MODSEQ "/flags/\\\\seen" 5\r\n'),
    ("SEARCH MODSEQ unknown entry type", b'a SEARCH MODSEQ "/flags/\\\\seen" both 5\r\n'),
    ("SEARCH MODSEQ entry not a flag", b'a SEARCH MODSEQ "/vendor/x" all 5\r\n'),
    ("SEARCH MODSEQ entry empty flag", b'a SEARCH MODSEQ "/flags/" all 5\r\n'),
    ("SEARCH MODSEQ entry two flags", b'a SEARCH MODSEQ "/flags/a b" all 5\r\n'),
    ("SEARCH MODSEQ entry as an atom", b"a SEARCH MODSEQ /flags/x all 5\r\n"),
    ("SEARCH MODSEQ entry as a literal", b"a SEARCH MODSEQ {8}\r\n/flags/x all 5\r\n"),
    ("SELECT CONDSTORE twice", b"a SELECT INBOX (CONDSTORE CONDSTORE)\r\n"),
    ("SELECT CONDSTORE with a value", b"a SELECT INBOX (CONDSTORE 1)\r\n"),
    ("SELECT params without SP", b"a SELECT INBOX(CONDSTORE)\r\n"),
]


@pytest.mark.parametrize("wire", [w for _, w in REFUSED], ids=[n for n, _ in REFUSED])
def test_malformed_forms_are_refused(wire: bytes) -> None:
    error = refused(wire)
    assert (error.tag, error.status) == ("a", "BAD")


# --- each reader, alone and with trailing data ------------------------------------------


def reader(text: bytes) -> GrammarReader:
    return GrammarReader(text + b"\r\n")


def fetch_modifiers(cursor: GrammarReader) -> tuple[int, bool]:
    return read_fetch_modifiers(cursor, uid=False)


@pytest.mark.parametrize("trailing", [b"", b" rest", b")"])
def test_readers_stop_where_their_rule_ends(trailing: bytes) -> None:
    cases: list[tuple[bytes, object, object]] = [
        (b"1", read_mod_sequence, 1),
        (b"9223372036854775807", read_mod_sequence, TOP),
        (b"(CHANGEDSINCE 5)", fetch_modifiers, (5, False)),
        (b"(changedsince 0)", fetch_modifiers, (0, False)),
        (b"(UNCHANGEDSINCE 0)", read_store_modifiers, 0),
        (b"(UNCHANGEDSINCE 77)", read_store_modifiers, 77),
        (b"(CONDSTORE)", read_select_params, SelectParams(condstore=True)),
        (b"()", read_select_params, SelectParams()),
    ]
    for token, read, value in cases:
        cursor = reader(token + trailing)
        assert read(cursor) == value, token  # type: ignore[operator]
        assert cursor.remaining() == trailing, token
        assert cursor.at_end() is (trailing == b"")


@pytest.mark.parametrize("trailing", [b"", b" rest", b")"])
def test_modseq_search_key_stops_where_its_rule_ends(trailing: bytes) -> None:
    for token, key in [
        (b"MODSEQ 5", ModSeqKey(5)),
        (b'MODSEQ "/flags/\\\\answered" all 0', ModSeqKey(0, "\\answered", "ALL")),
        (b'MODSEQ "/flags/$x" priv 12', ModSeqKey(12, "$x", "PRIV")),
    ]:
        cursor = reader(token + trailing)
        assert SearchParser(cursor, "ascii").read_key() == key
        assert cursor.remaining() == trailing


def test_mod_sequence_bounds() -> None:
    assert MOD_SEQUENCE_MAX == 2**63 - 1
    assert read_mod_sequence(reader(b"0"), zero=True) == 0
    for text, zero in [(b"0", False), (b"9223372036854775808", True), (b"x", True)]:
        with pytest.raises(ImapSyntaxError):
            read_mod_sequence(reader(text), zero=zero)


# --- what enables CONDSTORE (RFC 7162 §3.1) ----------------------------------------------


@pytest.mark.parametrize(
    ("wire", "enables"),
    [
        (b"a SELECT INBOX (CONDSTORE)\r\n", True),
        (b"a EXAMINE INBOX (CONDSTORE)\r\n", True),
        (b"a SELECT INBOX\r\n", False),
        (b"a STATUS INBOX (MESSAGES HIGHESTMODSEQ)\r\n", True),
        (b"a STATUS INBOX (MESSAGES)\r\n", False),
        (b"a FETCH 1 (FLAGS MODSEQ)\r\n", True),
        (b"a FETCH 1 (FLAGS) (CHANGEDSINCE 4)\r\n", True),
        (b"a UID FETCH 1 FLAGS\r\n", False),
        (b"a STORE 1 (UNCHANGEDSINCE 4) +FLAGS (\\Seen)\r\n", True),
        (b"a STORE 1 +FLAGS (\\Seen)\r\n", False),
        (b"a SEARCH NOT (SEEN OR DRAFT MODSEQ 5)\r\n", True),
        (b"a SEARCH RETURN (COUNT) UNSEEN\r\n", False),
        (b"a ENABLE CONDSTORE\r\n", False),  # the explicit way: ENABLE's own handling
        (b"a NOOP\r\n", False),
    ],
)
def test_condstore_enabling_commands(wire: bytes, enables: bool) -> None:
    assert enables_condstore(parse(wire)) is enables


def test_mentions_modseq_looks_everywhere() -> None:
    assert not mentions_modseq(AndKey((AllKey(), NotKey(SizeKey(True, 1)))))
    assert mentions_modseq(OrKey(AllKey(), AndKey((NotKey(ModSeqKey(1)),))))


# --- the responses ------------------------------------------------------------------------


def test_responses_carry_modseq() -> None:
    assert (
        fetch_flags(4, ["\\Seen"], 8, 29738)
        == b"* 4 FETCH (UID 8 MODSEQ (29738) FLAGS (\\Seen))\r\n"
    )
    assert fetch_flags(4, [], None, 5) == b"* 4 FETCH (MODSEQ (5) FLAGS ())\r\n"
    assert fetch_flags(4, []) == b"* 4 FETCH (FLAGS ())\r\n"
    assert search([2, 5], 917162500) == b"* SEARCH 2 5 (MODSEQ 917162500)\r\n"
    assert search([]) == b"* SEARCH\r\n"


# --- garbage in the new places only ever makes a BAD --------------------------------------

HEADS = [
    "a SELECT INBOX ",
    "a EXAMINE INBOX ",
    "a FETCH 1:* ",
    "a UID FETCH 1 (FLAGS) ",
    "a STORE 1 ",
    "a UID STORE 1:3 ",
    "a SEARCH ",
    "a UID SEARCH RETURN (MIN) ",
    "a STATUS INBOX ",
    "a ENABLE ",
]
SOUP = [
    "(",
    ")",
    "()",
    "CONDSTORE",
    "MODSEQ",
    "CHANGEDSINCE",
    "UNCHANGEDSINCE",
    "HIGHESTMODSEQ",
    "VANISHED",
    "FLAGS",
    "+FLAGS.SILENT",
    "(\\Seen)",
    '"/flags/\\\\seen"',
    '"/flags/"',
    '"/flags/$x y"',
    "priv",
    "shared",
    "all",
    "0",
    "1",
    "9223372036854775807",
    "9223372036854775808",
    "99999999999999999999999",
    "-1",
    "{3}\r\nabc",
    "NOT",
    "OR",
]


@settings(max_examples=600, deadline=None)
@given(
    head=st.sampled_from(HEADS),
    words=st.lists(st.sampled_from(SOUP), min_size=1, max_size=12),
    separators=st.lists(st.sampled_from([" ", ""]), min_size=12, max_size=12),
)
def test_condstore_soup_raises_only_bad(head: str, words: list[str], separators: list[str]) -> None:
    text = head + "".join(w + sep for w, sep in zip(words, separators, strict=False))
    try:
        command = parse(text.encode() + b"\r\n")
    except CommandError as error:
        assert (error.tag, error.status) == ("a", "BAD")
    else:
        assert command.tag == "a"
