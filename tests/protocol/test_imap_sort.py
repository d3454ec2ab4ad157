"""The SORT command's grammar (RFC 5256 §5, RFC 5957 §5): whole, cut short byte
by byte, with trailing data, and its refusals."""

from __future__ import annotations

import pytest

from postoffice.protocol.imap.commands import (
    Command,
    Sort,
    SortCriterion,
    command_word,
    enables_condstore,
)
from postoffice.protocol.imap.search_keys import AllKey, AndKey, FlagKey, HeaderKey, SetKey
from postoffice.protocol.imap.sequence import SAVED
from tests.protocol.imap_parsing import assert_cut_short_refused_or_different, parse, refused

EXAMPLES: list[tuple[str, bytes, Command]] = [
    (
        # RFC 5256 §4's first example
        "rfc5256-subject",
        b"A282 SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994\r\n",
        Sort(
            "A282",
            (SortCriterion("SUBJECT"),),
            parse(b"x SEARCH SINCE 1-Feb-1994\r\n").key,  # type: ignore[attr-defined]
            uid=False,
            charset="UTF-8",
        ),
    ),
    (
        # RFC 5256 §4's second example
        "rfc5256-reverse-date",
        b"A283 SORT (SUBJECT REVERSE DATE) UTF-8 ALL\r\n",
        Sort(
            "A283",
            (SortCriterion("SUBJECT"), SortCriterion("DATE", reverse=True)),
            AllKey(),
            uid=False,
            charset="UTF-8",
        ),
    ),
    (
        "rfc5256-us-ascii-text",
        b'A284 SORT (SUBJECT) US-ASCII TEXT "not in mailbox"\r\n',
        Sort(
            "A284",
            (SortCriterion("SUBJECT"),),
            parse(b'x SEARCH TEXT "not in mailbox"\r\n').key,  # type: ignore[attr-defined]
            uid=False,
            charset="US-ASCII",
        ),
    ),
    (
        "uid-display",
        b"a UID SORT (DISPLAYFROM reverse displayto) utf-8 SEEN\r\n",
        Sort(
            "a",
            (SortCriterion("DISPLAYFROM"), SortCriterion("DISPLAYTO", reverse=True)),
            FlagKey("\\Seen", present=True),
            uid=True,
            charset="UTF-8",
        ),
    ),
    (
        "every-key-and-saved",
        b"b SORT (ARRIVAL CC DATE FROM SIZE SUBJECT TO) US-ASCII $ FROM bob\r\n",
        Sort(
            "b",
            tuple(
                SortCriterion(k) for k in ("ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO")
            ),
            AndKey((SetKey(SAVED, uid=False), HeaderKey("From", "bob"))),
            uid=False,
            charset="US-ASCII",
        ),
    ),
]


@pytest.mark.parametrize(("wire", "expected"), [pytest.param(w, e, id=n) for n, w, e in EXAMPLES])
def test_sort_parses(wire: bytes, expected: Command) -> None:
    assert parse(wire) == expected
    assert command_word(expected) == "SORT"


@pytest.mark.parametrize("wire", [pytest.param(w, id=n) for n, w, _ in EXAMPLES])
def test_sort_with_trailing_data_is_refused(wire: bytes) -> None:
    for tail in (b" )", b")", b" ", b" x"):
        error = refused(wire[:-2] + tail + b"\r\n")
        assert error.status == "BAD"
        assert error.tag == parse(wire).tag


@pytest.mark.parametrize("wire", [pytest.param(w, id=n) for n, w, _ in EXAMPLES])
def test_sort_cut_short_byte_by_byte(wire: bytes) -> None:
    """Every proper prefix is refused, or is a different command."""
    assert_cut_short_refused_or_different(wire, ("BAD", "NO"))


@pytest.mark.parametrize(
    "wire",
    [
        b"a SORT\r\n",
        b"a SORT UTF-8 ALL\r\n",  # criteria missing
        b"a SORT () UTF-8 ALL\r\n",  # at least one criterion
        b"a SORT (SUBJECT) UTF-8\r\n",  # and at least one search key
        b"a SORT (SUBJECT)\r\n",
        b"a SORT (NAME) UTF-8 ALL\r\n",  # unknown criterion
        b"a SORT (REVERSE) UTF-8 ALL\r\n",
        b"a SORT (REVERSE REVERSE DATE) UTF-8 ALL\r\n",
        b"a SORT (DATE  SIZE) UTF-8 ALL\r\n",
        b"a SORT (DATE SIZE UTF-8 ALL\r\n",
        b"a SORT DATE UTF-8 ALL\r\n",
        b"a UID SORT (DATE) UTF-8 BOGUS\r\n",
        b"a SORT (" + b"SIZE " * 40 + b"DATE) UTF-8 ALL\r\n",  # MAX_SORT_CRITERIA
    ],
)
def test_malformed_sort_is_bad(wire: bytes) -> None:
    error = refused(wire)
    assert (error.tag, error.status) == ("a", "BAD")


def test_unknown_charset_is_no_badcharset() -> None:
    """RFC 5256 §3: an unsupported charset is a tagged NO (with RFC 9051's BADCHARSET)."""
    for wire in (b"a SORT (DATE) KOI8-R ALL\r\n", b"a SORT (SUBJECT) ALL\r\n"):
        # without a charset, the first search key is read as one (RFC 5256 §5)
        error = refused(wire)
        assert (error.tag, error.status) == ("a", "NO")
        assert error.code == "BADCHARSET (US-ASCII UTF-8)"


def test_utf8_search_strings() -> None:
    command = parse("a SORT (FROM) UTF-8 SUBJECT {5}\r\nCafé\r\n".encode())
    assert isinstance(command, Sort)
    assert command.key == HeaderKey("Subject", "Café")
    # RFC 6855 §3: after ENABLE UTF8=ACCEPT, quoted UTF-8 and the charset is UTF-8
    command = parse('a SORT (FROM) US-ASCII SUBJECT "Café"\r\n'.encode(), utf8=True)
    assert isinstance(command, Sort)
    assert (command.key, command.charset) == (HeaderKey("Subject", "Café"), "UTF-8")


def test_sort_with_modseq_enables_condstore() -> None:
    """RFC 7162 §3.1: SORT with the MODSEQ search key is a CONDSTORE enabling command."""
    assert enables_condstore(parse(b"a SORT (DATE) UTF-8 MODSEQ 5\r\n"))
    assert not enables_condstore(parse(b"a SORT (DATE) UTF-8 ALL\r\n"))
