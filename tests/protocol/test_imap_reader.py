"""``GrammarReader``: each token rule, fed whole and with trailing data (RFC 9051 §9)."""

from __future__ import annotations

import pytest

from postoffice.protocol.imap.errors import ImapSyntaxError
from postoffice.protocol.imap.reader import MAX_NESTING, GrammarReader

# --- GrammarReader: each rule whole and with trailing text --------------------------


def reader(text: bytes) -> GrammarReader:
    return GrammarReader(text + b"\r\n")


@pytest.mark.parametrize("trailing", [b"", b" rest", b")"])
def test_reader_tokens_stop_where_their_rule_ends(trailing: bytes) -> None:
    cases: list[tuple[bytes, str, object]] = [
        (b"a.1", "tag", "a.1"),
        (b"FOO-BAR", "atom", "FOO-BAR"),
        (b"fetch", "keyword", "FETCH"),
        (b"4294967295", "number", 4294967295),
        (b"17", "nz_number", 17),
        (b'"a \\"q\\" \\\\"', "quoted", b'a "q" \\'),
        (b"{3}\r\na b", "literal", b"a b"),
        (b"{3+}\r\n)\r\n", "literal", b")\r\n"),
        (b'"s"', "string", b"s"),
        (b'{1}\r\n"', "string", b'"'),
        (b"IN]BOX", "astring", b"IN]BOX"),
        (b'""', "astring", b""),
        (b"NIL", "nstring", None),
        (b'"NIL"', "nstring", b"NIL"),
        (b"%a*", "list_mailbox", b"%a*"),
        (b'"%"', "list_mailbox", b"%"),
    ]
    for token, method, value in cases:
        cursor = reader(token + trailing)
        assert getattr(cursor, method)() == value, (token, method)
        assert cursor.remaining() == trailing, (token, method)
        assert cursor.at_end() is (trailing == b"")


@pytest.mark.parametrize(
    ("text", "method"),
    [
        (b"+a", "tag"),
        (b"(a", "atom"),
        (b"", "atom"),
        (b"]", "atom"),
        (b"x", "number"),
        (b"4294967296", "number"),
        (b"0", "nz_number"),
        (b"012", "nz_number"),
        (b'"abc', "quoted"),
        (b'"a\r\nb"', "quoted"),
        (b'"a\\b"', "quoted"),
        (b'"\xc3\xa9"', "quoted"),
        (b"{5}\r\nab", "literal"),
        (b"{3}ab", "literal"),
        (b"~{1}\r\nx", "literal"),
        (b"{2}\r\n\x00x", "literal"),
        (b"abc", "string"),
        (b"(", "astring"),
        (b"%", "astring"),
        (b"x", "nstring"),
        (b"(", "list_mailbox"),
    ],
)
def test_reader_refusals(text: bytes, method: str) -> None:
    with pytest.raises(ImapSyntaxError):
        getattr(reader(text), method)()


def test_reader_quoted_utf8_only_when_enabled() -> None:
    assert GrammarReader(b'"\xc3\xa9"\r\n', utf8=True).quoted() == b"\xc3\xa9"
    with pytest.raises(ImapSyntaxError):
        GrammarReader(b'"\xc3\xa9"\r\n').quoted()


def test_reader_literal8_only_when_asked() -> None:
    cursor = reader(b"~{3}\r\n\x00\x01\x02")
    assert cursor.is_literal8() is True
    assert cursor.literal(binary=True) == b"\x00\x01\x02"
    assert cursor.at_end()


def test_reader_literal_may_not_run_past_the_command() -> None:
    with pytest.raises(ImapSyntaxError):
        reader(b"{10}\r\nabc").literal()


def test_reader_sp_peek_accept_expect_end() -> None:
    cursor = reader(b"UID  FETCH")
    assert cursor.peek(b"uid") is True
    assert cursor.accept(b"UID") is True
    assert cursor.accept(b"UID") is False
    cursor.sp()  # one space a call
    with pytest.raises(ImapSyntaxError):
        cursor.expect(b"FETCH")
    with pytest.raises(ImapSyntaxError):
        cursor.end()
    cursor.sp()
    with pytest.raises(ImapSyntaxError):
        cursor.sp()
    cursor.expect(b"fetch")
    cursor.end()
    with pytest.raises(ImapSyntaxError):
        cursor.sp()  # never past the final CRLF
    assert cursor.peek(b"\r\n") is False


def test_reader_text_until_end() -> None:
    cursor = reader(b"abc def")
    cursor.pos = 4
    assert cursor.text_until_end() == b"def"
    cursor.end()


def test_reader_lists_and_nesting_limit() -> None:
    cursor = reader(b"(a b)")
    cursor.open_list()
    assert cursor.atom() == "a"
    assert cursor.list_separator() is True
    assert cursor.atom() == "b"
    assert cursor.list_separator() is False
    cursor.end()
    cursor = reader(b"(" * MAX_NESTING)
    for _ in range(MAX_NESTING):
        cursor.open_list()
    cursor = reader(b"(" * (MAX_NESTING + 1))
    with pytest.raises(ImapSyntaxError):
        for _ in range(MAX_NESTING + 1):
            cursor.open_list()


def test_reader_requires_crlf() -> None:
    with pytest.raises(ImapSyntaxError):
        GrammarReader(b"a NOOP")
