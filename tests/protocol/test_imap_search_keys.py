"""SEARCH keys of RFC 9051 §6.4.4 and RFC 3501 §6.4.4, with their bounds."""

from __future__ import annotations

from datetime import date

import pytest

from postoffice.protocol.imap.commands import (
    Fetch,
    Search,
    UidExpunge,
)
from postoffice.protocol.imap.fetch_items import FetchItem
from postoffice.protocol.imap.reader import MAX_NESTING
from postoffice.protocol.imap.search_keys import (
    MAX_DEPTH,
    MAX_KEYS,
    AllKey,
    AndKey,
    DateKey,
    FlagKey,
    HeaderKey,
    NotKey,
    OrKey,
    RecentKey,
    SearchKey,
    SetKey,
    SizeKey,
    TextKey,
)
from postoffice.protocol.imap.sequence import SAVED, STAR, SequenceSet
from tests.protocol.imap_parsing import parse, refused, seq

# --- SEARCH keys -----------------------------------------------------------------------


def search_key(text: str | bytes) -> SearchKey:
    wire = text.encode() if isinstance(text, str) else text
    command = parse(b"A SEARCH " + wire + b"\r\n")
    assert isinstance(command, Search)
    return command.key


SEARCH_KEYS: list[tuple[str, SearchKey]] = [
    ("ALL", AllKey()),
    ("ANSWERED", FlagKey("\\Answered", True)),
    ("BCC fred", HeaderKey("Bcc", "fred")),
    ("BEFORE 1-Feb-1994", DateKey(False, "BEFORE", date(1994, 2, 1))),
    ("BODY hello", TextKey("BODY", "hello")),
    ('CC "Joe Mooch"', HeaderKey("Cc", "Joe Mooch")),
    ("DELETED", FlagKey("\\Deleted", True)),
    ("DRAFT", FlagKey("\\Draft", True)),
    ("FLAGGED", FlagKey("\\Flagged", True)),
    ("FROM Smith", HeaderKey("From", "Smith")),
    ("HEADER X-Mailer mutt", HeaderKey("X-Mailer", "mutt")),
    ('HEADER "Message-ID" ""', HeaderKey("Message-ID", "")),
    ("KEYWORD $Forwarded", FlagKey("$Forwarded", True)),
    ("LARGER 4096", SizeKey(True, 4096)),
    ("NEW", AndKey((RecentKey(True), FlagKey("\\Seen", False)))),
    ("NOT SEEN", NotKey(FlagKey("\\Seen", True))),
    ("OLD", RecentKey(False)),
    ("ON 07-Feb-1994", DateKey(False, "ON", date(1994, 2, 7))),
    ("OR SEEN FLAGGED", OrKey(FlagKey("\\Seen", True), FlagKey("\\Flagged", True))),
    ("RECENT", RecentKey(True)),
    ("SEEN", FlagKey("\\Seen", True)),
    ("SENTBEFORE 1-Jan-2000", DateKey(True, "BEFORE", date(2000, 1, 1))),
    ("SENTON 29-Feb-2024", DateKey(True, "ON", date(2024, 2, 29))),
    ("SENTSINCE 31-Dec-1999", DateKey(True, "SINCE", date(1999, 12, 31))),
    ("SINCE 1-Feb-1994", DateKey(False, "SINCE", date(1994, 2, 1))),
    ("SMALLER 100", SizeKey(False, 100)),
    ("SUBJECT {9}\r\nafternoon", HeaderKey("Subject", "afternoon")),
    ('TEXT "string not in mailbox"', TextKey("TEXT", "string not in mailbox")),
    ("TO mooch@owatagu.siam.edu", HeaderKey("To", "mooch@owatagu.siam.edu")),
    ("UID 4827313:4828442", SetKey(seq("4827313:4828442"), uid=True)),
    ("UNANSWERED", FlagKey("\\Answered", False)),
    ("UNDELETED", FlagKey("\\Deleted", False)),
    ("UNDRAFT", FlagKey("\\Draft", False)),
    ("UNFLAGGED", FlagKey("\\Flagged", False)),
    ("UNKEYWORD $Junk", FlagKey("$Junk", False)),
    ("UNSEEN", FlagKey("\\Seen", False)),
    ("2,4:7,9,12:*", SetKey(seq("2,4:7,9,12:*"), uid=False)),
    ("*", SetKey(SequenceSet(((STAR, STAR),)), uid=False)),
    ('SINCE "1-Feb-1994"', DateKey(False, "SINCE", date(1994, 2, 1))),
    ('BEFORE "01-feb-1994"', DateKey(False, "BEFORE", date(1994, 2, 1))),
    ("(SEEN)", FlagKey("\\Seen", True)),
    ("(SEEN FLAGGED)", AndKey((FlagKey("\\Seen", True), FlagKey("\\Flagged", True)))),
    ("((((ALL))))", AllKey()),
    ("seen", FlagKey("\\Seen", True)),
    ("LARGER 9223372036854775807", SizeKey(True, 2**63 - 1)),
]


@pytest.mark.parametrize(("text", "key"), [pytest.param(*case, id=case[0]) for case in SEARCH_KEYS])
def test_search_key(text: str, key: SearchKey) -> None:
    assert search_key(text) == key


def test_every_search_key_in_one_command() -> None:
    text = " ".join(case[0] for case in SEARCH_KEYS)
    assert search_key(text) == AndKey(tuple(case[1] for case in SEARCH_KEYS))


def test_search_or_with_groups() -> None:
    # RFC 4731 style: OR of two parenthesised conjunctions
    assert search_key('OR (FROM "a" SUBJECT "b") (TO c HEADER "X-Foo" "")') == OrKey(
        AndKey((HeaderKey("From", "a"), HeaderKey("Subject", "b"))),
        AndKey((HeaderKey("To", "c"), HeaderKey("X-Foo", ""))),
    )
    assert search_key("OR OR SEEN DRAFT NOT 1:5") == OrKey(
        OrKey(FlagKey("\\Seen", True), FlagKey("\\Draft", True)),
        NotKey(SetKey(seq("1:5"), uid=False)),
    )


@pytest.mark.parametrize(
    "text",
    [
        "FOO",
        "MODSEQ",  # RFC 7162 §3.1.5: MODSEQ needs its value
        "$5",  # $ stands alone (RFC 5182 §3: seq-set or "$")
        "UID $1",
        "()",
        "(SEEN",
        "SEEN)",
        "SEEN  FLAGGED",
        "OR SEEN",
        "NOT",
        "HEADER X",
        "KEYWORD",
        "KEYWORD \\Seen",  # a system flag is no keyword
        "LARGER",
        "LARGER x",
        "LARGER -1",
        "LARGER 9223372036854775808",
        "LARGER " + "9" * 5000,  # longer than int() reads
        "SINCE 31-Feb-2000",
        "SINCE 1-Feb-94",
        "SINCE 1-Fbr-1994",
        'SINCE "1-Feb-1994',
        "SINCE",
        "UID",
        "UID x",
        "0",
        "1:0",
        "1,",
        "FROM",
    ],
)
def test_search_key_errors(text: str) -> None:
    error = refused(f"A SEARCH {text}\r\n")
    assert (error.tag, error.status) == ("A", "BAD")


def test_search_nesting_is_bounded() -> None:
    deep = "(" * MAX_NESTING + "ALL" + ")" * MAX_NESTING
    assert search_key(deep) == AllKey()
    deeper = "(" * (MAX_NESTING + 1) + "ALL" + ")" * (MAX_NESTING + 1)
    assert "nested" in str(refused(f"A SEARCH {deeper}\r\n"))


def test_search_not_and_or_depth_is_bounded() -> None:
    key = search_key("NOT " * MAX_DEPTH + "ALL")
    for _ in range(MAX_DEPTH):
        assert isinstance(key, NotKey)
        key = key.key
    assert key == AllKey()
    for text in (
        "NOT " * (MAX_DEPTH + 1) + "ALL",
        "OR " * (MAX_DEPTH + 1) + "ALL " * (MAX_DEPTH + 2),
    ):
        error = refused(f"A SEARCH {text.strip()}\r\n")
        assert (error.tag, error.status) == ("A", "BAD")
    # Far past the interpreter's recursion limit: still a BAD, not a RecursionError.
    error = refused("A SEARCH " + "NOT " * 5000 + "ALL\r\n")
    assert (error.tag, error.status) == ("A", "BAD")


def test_numbers_may_have_leading_zeros() -> None:
    # RFC 9051 §9 number = 1*DIGIT: the zeros do not count against the range.
    assert search_key("SMALLER " + "0" * 5000 + "1") == SizeKey(False, 1)


def test_search_key_count_is_bounded() -> None:
    assert isinstance(search_key(" ".join(["SEEN"] * MAX_KEYS)), AndKey)
    error = refused("A SEARCH " + " ".join(["SEEN"] * (MAX_KEYS + 1)) + "\r\n")
    assert "too many search keys" in str(error)
    # NOT and OR count their operands
    error = refused("A SEARCH " + " ".join(["NOT SEEN"] * (MAX_KEYS // 2 + 1)) + "\r\n")
    assert "too many search keys" in str(error)


def test_saved_result_stands_where_a_sequence_set_may() -> None:
    # RFC 5182 §3 / RFC 9051 §6.4.4.1: "$" in FETCH, STORE, COPY, MOVE, UID EXPUNGE
    # and as a search key, with and without UID.
    assert parse(b"a FETCH $ (FLAGS)\r\n") == Fetch("a", SAVED, (FetchItem("FLAGS"),), uid=False)
    assert search_key("$") == SetKey(SAVED, uid=False)
    assert search_key("UID $") == SetKey(SAVED, uid=True)
    assert parse(b"a UID EXPUNGE $\r\n") == UidExpunge("a", SAVED)
    assert refused(b"a FETCH $1 (FLAGS)\r\n").status == "BAD"
