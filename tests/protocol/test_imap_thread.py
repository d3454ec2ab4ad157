"""The THREAD command's grammar (RFC 5256 §5) and the ``* THREAD`` response (RFC 5256
§4): whole, cut short byte by byte, with trailing data, and its refusals."""

from __future__ import annotations

import pytest

from postoffice.protocol.imap.commands import Command, command_word
from postoffice.protocol.imap.responses import thread
from postoffice.protocol.imap.search_keys import AllKey, AndKey, FlagKey, HeaderKey, SetKey
from postoffice.protocol.imap.sequence import SAVED
from postoffice.protocol.imap.states import TRANSITIONS, ImapState
from postoffice.protocol.imap.thread_command import Thread
from tests.protocol.imap_parsing import assert_cut_short_refused_or_different, parse, refused

EXAMPLES: list[tuple[str, bytes, Command]] = [
    (
        # RFC 5256 §4's example command
        "rfc5256-orderedsubject",
        b"A283 THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000\r\n",
        Thread(
            "A283",
            "ORDEREDSUBJECT",
            parse(b"x SEARCH SINCE 5-MAR-2000\r\n").key,  # type: ignore[attr-defined]
            uid=False,
            charset="UTF-8",
        ),
    ),
    (
        "rfc5256-references",
        b"A284 THREAD REFERENCES US-ASCII ALL\r\n",
        Thread("A284", "REFERENCES", AllKey(), uid=False, charset="US-ASCII"),
    ),
    (
        "uid-lower-case",
        b"t uid thread references utf-8 seen\r\n",
        Thread("t", "REFERENCES", FlagKey("\\Seen", present=True), uid=True, charset="UTF-8"),
    ),
    (
        "saved-and-header",
        b'u THREAD OrderedSubject us-ascii $ FROM "bob"\r\n',
        Thread(
            "u",
            "ORDEREDSUBJECT",
            AndKey((SetKey(SAVED, uid=False), HeaderKey("From", "bob"))),
            uid=False,
            charset="US-ASCII",
        ),
    ),
]


@pytest.mark.parametrize(("wire", "expected"), [pytest.param(w, e, id=n) for n, w, e in EXAMPLES])
def test_thread_parses(wire: bytes, expected: Command) -> None:
    assert parse(wire) == expected
    assert command_word(expected) == "THREAD"


@pytest.mark.parametrize("wire", [pytest.param(w, id=n) for n, w, _ in EXAMPLES])
def test_thread_with_trailing_data_is_refused(wire: bytes) -> None:
    for tail in (b" )", b")", b" ", b" x", b" ("):
        error = refused(wire[:-2] + tail + b"\r\n")
        assert error.status == "BAD"
        assert error.tag == parse(wire).tag


@pytest.mark.parametrize("wire", [pytest.param(w, id=n) for n, w, _ in EXAMPLES])
def test_thread_cut_short_byte_by_byte(wire: bytes) -> None:
    """Every proper prefix is refused (a cut charset is an unknown charset: NO), or
    is a different command."""
    assert_cut_short_refused_or_different(wire, ("BAD", "NO"))


@pytest.mark.parametrize(
    "wire",
    [
        b"a THREAD\r\n",
        b"a THREAD REFERENCES\r\n",
        b"a THREAD REFERENCES UTF-8\r\n",  # at least one search key
        b"a THREAD UTF-8 ALL\r\n",  # the algorithm is missing
        b"a THREAD SUBJECT UTF-8 ALL\r\n",  # unknown algorithm
        b"a THREAD REFS UTF-8 ALL\r\n",
        b"a THREAD (REFERENCES) UTF-8 ALL\r\n",
        b'a THREAD "REFERENCES" UTF-8 ALL\r\n',
        b"a THREAD REFERENCES  UTF-8 ALL\r\n",
        b"a THREAD REFERENCES UTF-8 BOGUS\r\n",
        b"a UID THREAD ORDEREDSUBJECT UTF-8 ALL)\r\n",
        b"a THREAD=REFERENCES UTF-8 ALL\r\n",
    ],
)
def test_malformed_thread_is_bad(wire: bytes) -> None:
    error = refused(wire)
    assert (error.tag, error.status) == ("a", "BAD")


def test_unknown_charset_is_no_badcharset() -> None:
    """RFC 5256 §3: an unsupported charset is a tagged NO with BADCHARSET; without a
    charset the first search key is read as one (RFC 5256 §5)."""
    for wire in (b"a THREAD REFERENCES KOI8-R ALL\r\n", b"a UID THREAD ORDEREDSUBJECT ALL\r\n"):
        error = refused(wire)
        assert (error.tag, error.status) == ("a", "NO")
        assert error.code == "BADCHARSET (US-ASCII UTF-8)"


def test_utf8_search_strings() -> None:
    command = parse("a THREAD REFERENCES UTF-8 SUBJECT {5}\r\nCafé\r\n".encode())
    assert isinstance(command, Thread)
    assert command.key == HeaderKey("Subject", "Café")
    # RFC 6855 §3: after ENABLE UTF8=ACCEPT, quoted UTF-8 and the charset is UTF-8
    command = parse('a THREAD REFERENCES US-ASCII SUBJECT "Café"\r\n'.encode(), utf8=True)
    assert isinstance(command, Thread)
    assert (command.key, command.charset) == (HeaderKey("Subject", "Café"), "UTF-8")


def test_thread_is_a_selected_state_command() -> None:
    assert "THREAD" in TRANSITIONS[ImapState.SELECTED]
    assert "THREAD" not in TRANSITIONS[ImapState.AUTHENTICATED]


# -- the response ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("threads", "wire"),
    [
        ([], b"* THREAD\r\n"),  # RFC 5256 §4: nothing found
        ([(2, ())], b"* THREAD (2)\r\n"),
        # RFC 5256 §4's example: (2)(3 6 (4 23)(44 7 96))
        (
            [
                (2, ()),
                (3, [(6, [(4, [(23, ())]), (44, [(7, [(96, ())])])])]),
            ],
            b"* THREAD (2)(3 6 (4 23)(44 7 96))\r\n",
        ),
        # a dummy at the top shows its children only: thread-list = "(" thread-nested ")"
        ([(None, [(3, ()), (5, [(6, ())])])], b"* THREAD ((3)(5 6))\r\n"),
        # ORDEREDSUBJECT's shape: one root, its children siblings
        ([(1, [(2, ()), (3, ()), (4, ())])], b"* THREAD (1 (2)(3)(4))\r\n"),
        ([(None, ())], b"* THREAD\r\n"),  # a dummy with nothing under it stands for nothing
    ],
)
def test_thread_response(threads: list[tuple[int | None, list[object]]], wire: bytes) -> None:
    assert thread(threads) == wire  # type: ignore[arg-type]


def test_deep_thread_response_has_no_recursion_limit() -> None:
    """A chain of 5000 replies renders, each one after its parent."""
    tree: tuple[int | None, tuple[object, ...]] = (5000, ())
    for number in range(4999, 0, -1):
        tree = (number, (tree,))
    wire = thread([tree])  # type: ignore[list-item]
    assert wire == b"* THREAD (" + b" ".join(b"%d" % n for n in range(1, 5001)) + b")\r\n"
