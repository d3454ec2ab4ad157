"""Commands refused: every ``CommandError`` carries its tag (or None), BADCHARSET is a NO,
and arbitrary text raises nothing but ``ImapSyntaxError``."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postoffice.protocol.imap.commands import (
    Search,
)
from postoffice.protocol.imap.errors import ImapSyntaxError
from postoffice.protocol.imap.parser import CommandError
from postoffice.protocol.imap.search_keys import (
    FlagKey,
    HeaderKey,
)
from tests.protocol.imap_parsing import parse, refused

# --- refusals: CommandError with the tag -------------------------------------------

SYNTAX_ERRORS: list[tuple[bytes, str | None]] = [
    # no tag
    (b"\r\n", None),
    (b" NOOP\r\n", None),
    (b"+ NOOP\r\n", None),
    (b"* NOOP\r\n", None),
    (b"(a) NOOP\r\n", None),
    (b'"a" NOOP\r\n', None),
    (b"\xff NOOP\r\n", None),
    # missing arguments
    (b"A1\r\n", "A1"),
    (b"A1 \r\n", "A1"),
    (b"A1 LOGIN\r\n", "A1"),
    (b"A1 LOGIN a\r\n", "A1"),
    (b"A1 SELECT\r\n", "A1"),
    (b"A1 RENAME a\r\n", "A1"),
    (b"A1 FETCH 1\r\n", "A1"),
    (b"A1 FETCH\r\n", "A1"),
    (b"A1 STORE 1 FLAGS\r\n", "A1"),
    (b"A1 STORE 1\r\n", "A1"),
    (b"A1 COPY 1\r\n", "A1"),
    (b"A1 SEARCH\r\n", "A1"),
    (b"A1 UID EXPUNGE\r\n", "A1"),
    (b"A1 UID\r\n", "A1"),
    (b"A1 ENABLE\r\n", "A1"),
    (b"A1 AUTHENTICATE\r\n", "A1"),
    (b"A1 ID\r\n", "A1"),
    (b'A1 ID ("a")\r\n', "A1"),
    # trailing garbage
    (b"A1 NOOP x\r\n", "A1"),
    (b"A1 NOOP \r\n", "A1"),
    (b"A1 LOGIN a b c\r\n", "A1"),
    (b"A1 SELECT INBOX INBOX\r\n", "A1"),
    (b"A1 FETCH 1 FLAGS)\r\n", "A1"),
    (b"A1 FETCH 1 BODY[] FLAGS\r\n", "A1"),
    (b"A1 AUTHENTICATE PLAIN a b\r\n", "A1"),
    (b"A1 AUTHENTICATE PLAIN ab$\r\n", "A1"),
    (b"A1 ID x\r\n", "A1"),
    (b"A1  NOOP\r\n", "A1"),
    # bad sequence sets
    (b"A1 FETCH 0 FLAGS\r\n", "A1"),
    (b"A1 FETCH 1: FLAGS\r\n", "A1"),
    (b"A1 FETCH 1:5, FLAGS\r\n", "A1"),
    (b"A1 FETCH ,1 FLAGS\r\n", "A1"),
    (b"A1 FETCH 01 FLAGS\r\n", "A1"),
    (b"A1 FETCH 4294967296 FLAGS\r\n", "A1"),
    (b"A1 FETCH x FLAGS\r\n", "A1"),
    (b"A1 STORE 1::2 FLAGS ()\r\n", "A1"),
    (b"A1 COPY *:0 x\r\n", "A1"),
    (b"A1 UID EXPUNGE 1,,2\r\n", "A1"),
    # unknown commands
    (b"A442 XPIG-LATIN\r\n", "A442"),
    (b"A1 FOO bar\r\n", "A1"),
    (b"A1 UID FOO 1\r\n", "A1"),
    (b"A1 UID CAPABILITY\r\n", "A1"),
    (b"A1 UID SELECT INBOX\r\n", "A1"),
    # unknown fetch items
    (b"A1 FETCH 1 FOO\r\n", "A1"),
    (b"A1 FETCH 1 (FLAGS FOO)\r\n", "A1"),
    (b"A1 FETCH 1 ()\r\n", "A1"),
    (b"A1 FETCH 1 (ALL)\r\n", "A1"),  # a macro is not a fetch-att
    (b"A1 FETCH 1 ALLX\r\n", "A1"),
    (b"A1 FETCH 1 RFC822.PEEK\r\n", "A1"),
    # bad flags
    (b"A1 STORE 1 +X (\\Seen)\r\n", "A1"),
    (b"A1 STORE 1 FLAGS (\\Seen\r\n", "A1"),
    (b"A1 STORE 1 FLAGS (\\*)\r\n", "A1"),
    # bad CREATE parameters
    (b"A1 CREATE a (FOO (x))\r\n", "A1"),
    (b"A1 CREATE a (USE (\\Drafts)\r\n", "A1"),
    (b"A1 CREATE a (USE \\Drafts)\r\n", "A1"),
    # a literal that announces more than there is
    (b"A1 LOGIN {50}\r\nabc\r\n", "A1"),
]


@pytest.mark.parametrize(("wire", "tag"), SYNTAX_ERRORS)
def test_syntax_errors_carry_the_tag(wire: bytes, tag: str | None) -> None:
    error = refused(wire)
    assert isinstance(error, ImapSyntaxError)
    assert (error.tag, error.status, error.code) == (tag, "BAD", None)
    assert str(error)  # the text of the BAD


def test_unknown_command_is_named() -> None:
    assert str(refused(b"A442 XPIG-LATIN\r\n")) == "unknown command XPIG-LATIN"
    assert str(refused(b"A1 FOO bar\r\n")) == "unknown command FOO"
    assert "FOO" in str(refused(b"A1 UID FOO 1\r\n"))


def test_command_without_crlf_is_a_command_error() -> None:
    error = refused(b"A1 NOOP")
    assert (error.tag, error.status) == (None, "BAD")


def test_unsupported_charset_is_no_badcharset() -> None:
    # RFC 9051 §6.4.4: NO [BADCHARSET (...)], not BAD
    for charset in (b"KOI8-R", b'"ISO-8859-1"', b"{6}\r\nx-\xffyz"):
        error = refused(b"A286 SEARCH CHARSET " + charset + b" TEXT hello\r\n")
        assert (error.tag, error.status) == ("A286", "NO")
        assert error.code == "BADCHARSET (US-ASCII UTF-8)"


@pytest.mark.parametrize("charset", [b"US-ASCII", b"us-ascii", b"UTF-8", b"utf-8", b'"UTF-8"'])
def test_supported_charsets(charset: bytes) -> None:
    command = parse(b"A SEARCH CHARSET " + charset + b" SEEN\r\n")
    assert isinstance(command, Search)
    assert command.charset == charset.strip(b'"').decode().upper()


def test_search_strings_are_decoded_with_the_charset() -> None:
    utf8 = parse(b"A SEARCH CHARSET UTF-8 SUBJECT {5}\r\ncaf\xc3\xa9\r\n")
    assert utf8 == Search("A", HeaderKey("Subject", "café"), uid=False, charset="UTF-8")
    assert refused(b"A SEARCH CHARSET UTF-8 SUBJECT {2}\r\n\xff\xfe\r\n").status == "BAD"
    assert refused(b"A SEARCH SUBJECT {2}\r\n\xc3\xa9\r\n").status == "BAD"  # US-ASCII
    # After ENABLE UTF8=ACCEPT, strings are UTF-8 whatever CHARSET says (RFC 6855 §3).
    enabled = parse('A SEARCH SUBJECT "café"\r\n'.encode(), utf8=True)
    assert enabled == Search("A", HeaderKey("Subject", "café"), uid=False, charset="UTF-8")


def test_search_return_and_charset_together() -> None:
    command = parse(b"A SEARCH RETURN (MIN MAX COUNT ALL) CHARSET UTF-8 SEEN\r\n")
    assert command == Search(
        "A", FlagKey("\\Seen", True), False, "UTF-8", ("MIN", "MAX", "COUNT", "ALL")
    )
    assert refused(b"A SEARCH RETURN SEEN\r\n").status == "BAD"
    assert refused(b"A SEARCH RETURN (MIN\r\n").status == "BAD"
    assert refused(b"A SEARCH CHARSET UTF-8\r\n").status == "BAD"


# --- garbage in: only ImapSyntaxError out ---------------------------------------------

TOKENS = [
    "A1",
    "a",
    "UID",
    "FETCH",
    "SEARCH",
    "STORE",
    "APPEND",
    "LIST",
    "LSUB",
    "LOGIN",
    "SELECT",
    "CREATE",
    "STATUS",
    "ID",
    "AUTHENTICATE",
    "ENABLE",
    "COPY",
    "MOVE",
    "EXPUNGE",
    "RETURN",
    "CHARSET",
    "UTF-8",
    "KOI8-R",
    "NOT",
    "OR",
    "ALL",
    "FULL",
    "HEADER",
    "SINCE",
    "1-Feb-1994",
    '" 1-Jul-2002 22:30:15 -0700"',
    "LARGER",
    "KEYWORD",
    "1:*",
    "*",
    "0",
    "4294967296",
    "99999999999999999999999",
    "(",
    ")",
    "()",
    "[",
    "]",
    "<",
    ">",
    "<0.10>",
    "BODY[",
    "BODY.PEEK[",
    "BINARY[",
    "HEADER.FIELDS",
    "MIME",
    "1.2",
    ".",
    '""',
    '"x\\"y"',
    '"\\',
    "{0}\r\n",
    "{3}\r\nabc",
    "{5+}\r\n",
    "~{2}\r\n\x00\x01",
    "{99}\r\n",
    "\\Seen",
    "+FLAGS",
    "FLAGS.SILENT",
    "NIL",
    "USE",
    "%",
    "&AMQ-",
    "&",
    "\x00",
    "é",
    "\r\n",
]


@settings(max_examples=400, deadline=None)
@given(text=st.text(max_size=200), crlf=st.booleans(), utf8=st.booleans())
def test_arbitrary_text_raises_only_syntax_errors(text: str, crlf: bool, utf8: bool) -> None:
    wire = text.encode("utf-8", "surrogatepass") + (b"\r\n" if crlf else b"")
    try:
        parse(wire, utf8=utf8)
    except CommandError as error:
        assert error.status in ("BAD", "NO")
    except ImapSyntaxError:  # pragma: no cover - parse wraps every refusal
        pytest.fail("parse raised an ImapSyntaxError that is not a CommandError")


@settings(max_examples=600, deadline=None)
@given(
    words=st.lists(st.sampled_from(TOKENS), min_size=1, max_size=25),
    separators=st.lists(st.sampled_from([" ", "", "  "]), min_size=25, max_size=25),
    utf8=st.booleans(),
)
def test_grammar_soup_raises_only_syntax_errors(
    words: list[str], separators: list[str], utf8: bool
) -> None:
    text = "".join(word + sep for word, sep in zip(words, separators, strict=False))
    wire = text.encode("utf-8") + b"\r\n"
    try:
        command = parse(wire, utf8=utf8)
    except CommandError as error:
        assert error.status in ("BAD", "NO")
        assert error.tag is None or wire.startswith(error.tag.encode())
    else:
        assert wire.startswith(command.tag.encode() + b" ")
