"""QRESYNC's grammar (RFC 7162 §3.2, §7): SELECT/EXAMINE (QRESYNC (...)) with known
UIDs and seq-match-data, UID FETCH ... (CHANGEDSINCE m VANISHED), the VANISHED
response. Each form is parsed whole, fed to the connection whole and octet by
octet, with text after it (refused) and cut short; each reader alone and with
trailing data."""

from __future__ import annotations

import pytest

from postoffice.protocol.imap.commands import Command, Fetch, Select, qresync_refused
from postoffice.protocol.imap.errors import ImapSyntaxError
from postoffice.protocol.imap.fetch_items import FetchItem
from postoffice.protocol.imap.modifiers import (
    Qresync,
    SelectParams,
    read_fetch_modifiers,
    read_select_params,
)
from postoffice.protocol.imap.reader import GrammarReader
from postoffice.protocol.imap.responses import vanished
from tests.protocol.imap_parsing import (
    assert_cut_short_refused_or_different,
    assert_trailing_text_refused,
    parse,
    refused,
    seq,
)
from tests.protocol.imap_transcripts import Session

FLAGS = FetchItem("FLAGS")
BIG = 20050715194045000

FORMS: list[tuple[str, bytes, Command]] = [
    (
        "RFC 7162 §3.2.5.1 example: SELECT (QRESYNC (v m known-uids))",
        b"A03 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n",
        Select("A03", "INBOX", False, qresync=Qresync(67890007, BIG, seq("41,43:211,214:541"))),
    ),
    (
        "RFC 7162 §3.2.5.2 example: with seq-match-data",
        b"B04 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 "
        b"(5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976,29979,29982,"
        b"29985,29988,29991,29994,29997)))\r\n",
        Select(
            "B04",
            "INBOX",
            False,
            qresync=Qresync(
                67890007,
                90060115194045000,
                seq("1:29997"),
                (
                    seq("5000,7500,9000,9990:9999"),
                    seq(
                        "15000,22500,27000,29970,29973,29976,29979,29982,"
                        "29985,29988,29991,29994,29997"
                    ),
                ),
            ),
        ),
    ),
    (
        "EXAMINE (QRESYNC (v m)), any case, with CONDSTORE",
        b"a examine Drafts (condstore qresync (1 2))\r\n",
        Select("a", "Drafts", True, condstore=True, qresync=Qresync(1, 2)),
    ),
    (
        "seq-match-data without known UIDs",
        b"a SELECT INBOX (QRESYNC (9 9 (1:2 4,6)))\r\n",
        Select("a", "INBOX", False, qresync=Qresync(9, 9, None, (seq("1:2"), seq("4,6")))),
    ),
    (
        "RFC 7162 §3.2.6 example: UID FETCH ... (CHANGEDSINCE m VANISHED)",
        b"s100 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n",
        Fetch("s100", seq("300:500"), (FLAGS,), True, 12345, True),
    ),
    (
        "VANISHED first",
        b"a UID FETCH 1:* (FLAGS) (vanished changedsince 7)\r\n",
        Fetch("a", seq("1:*"), (FLAGS,), True, 7, True),
    ),
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
    assert session.feed(b"s SELECT INBOX\r\n") == b"s OK SELECT completed\r\n"
    answer = session.feed(wire + behind)
    assert answer.startswith(expected.tag.encode() + b" OK ")
    commands = session.commands[-2:] if behind else session.commands[-1:]
    assert commands[0] == expected


REFUSED = [
    ("QRESYNC without its list", b"a SELECT INBOX (QRESYNC)\r\n"),
    ("QRESYNC without a mod-sequence", b"a SELECT INBOX (QRESYNC (1))\r\n"),
    ("UIDVALIDITY 0", b"a SELECT INBOX (QRESYNC (0 1))\r\n"),
    ("mod-sequence 0", b"a SELECT INBOX (QRESYNC (1 0))\r\n"),
    ("mod-sequence past 63 bits", b"a SELECT INBOX (QRESYNC (1 9223372036854775808))\r\n"),
    ("known UIDs with *", b"a SELECT INBOX (QRESYNC (1 1 1:*))\r\n"),
    ("seq-match-data with *", b"a SELECT INBOX (QRESYNC (1 1 1:5 (1:* 1:3)))\r\n"),
    ("seq-match-data sizes differ", b"a SELECT INBOX (QRESYNC (1 1 1:5 (1:2 1:3)))\r\n"),
    ("seq-match-data with one set", b"a SELECT INBOX (QRESYNC (1 1 1:5 (1:2)))\r\n"),
    ("QRESYNC twice", b"a SELECT INBOX (QRESYNC (1 1) QRESYNC (1 1))\r\n"),
    ("QRESYNC unclosed", b"a SELECT INBOX (QRESYNC (1 1 1:5)\r\n"),
    ("VANISHED without CHANGEDSINCE", b"a UID FETCH 1 (FLAGS) (VANISHED)\r\n"),
    ("VANISHED in FETCH by number", b"a FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)\r\n"),
    ("VANISHED twice", b"a UID FETCH 1 FLAGS (CHANGEDSINCE 1 VANISHED VANISHED)\r\n"),
    ("VANISHED with a value", b"a UID FETCH 1 FLAGS (CHANGEDSINCE 1 VANISHED 3)\r\n"),
]


@pytest.mark.parametrize("wire", [w for _, w in REFUSED], ids=[n for n, _ in REFUSED])
def test_malformed_forms_are_refused(wire: bytes) -> None:
    error = refused(wire)
    assert (error.tag, error.status) == ("a", "BAD")


@pytest.mark.parametrize("trailing", [b"", b" rest", b")"])
def test_readers_stop_where_their_rule_ends(trailing: bytes) -> None:
    cases: list[tuple[bytes, object]] = [
        (b"(QRESYNC (5 6))", SelectParams(qresync=Qresync(5, 6))),
        (b"(QRESYNC (5 6 1:4))", SelectParams(qresync=Qresync(5, 6, seq("1:4")))),
        (
            b"(CONDSTORE QRESYNC (5 6 (2 3)))",
            SelectParams(True, Qresync(5, 6, None, (seq("2"), seq("3")))),
        ),
    ]
    for token, value in cases:
        cursor = GrammarReader(token + trailing + b"\r\n")
        assert read_select_params(cursor) == value, token
        assert cursor.remaining() == trailing, token
    cursor = GrammarReader(b"(CHANGEDSINCE 4 VANISHED)" + trailing + b"\r\n")
    assert read_fetch_modifiers(cursor, uid=True) == (4, True)
    assert cursor.remaining() == trailing


def test_readers_byte_by_byte_prefixes_are_refused() -> None:
    token = b"(QRESYNC (5 6 1:4 (1:2 3:4)))"
    for end in range(len(token)):
        with pytest.raises(ImapSyntaxError):
            read_select_params(GrammarReader(token[:end] + b"\r\n"))


def test_qresync_forms_are_refused_until_enabled() -> None:
    for wire, uses in [
        (FORMS[0][1], True),
        (FORMS[4][1], True),
        (b"a SELECT INBOX (CONDSTORE)\r\n", False),
        (b"a UID FETCH 1 FLAGS (CHANGEDSINCE 1)\r\n", False),
    ]:
        command = parse(wire)
        assert qresync_refused(command, False) is uses
        assert not qresync_refused(command, True)


def test_the_vanished_response() -> None:
    assert vanished("1:3,5") == b"* VANISHED 1:3,5\r\n"
    assert vanished("41", earlier=True) == b"* VANISHED (EARLIER) 41\r\n"
