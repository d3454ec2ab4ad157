"""Rendering of IMAP values and responses (RFC 9051 §4, §7; RFC 3516 literal8)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postoffice.protocol.imap.commands import Login
from postoffice.protocol.imap.parser import CommandParser
from postoffice.protocol.imap.responses import (
    NIL,
    QUOTED_MAX,
    Atom,
    Literal,
    Literal8,
    Value,
    atoms,
    clean_text,
    code_text,
    continuation,
    continuation_data,
    encode,
    encode_astring,
    encode_string,
    fetch_response,
    tagged,
    untagged,
    untagged_status,
)


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (NIL, b"NIL"),
        (0, b"0"),
        (4294967295, b"4294967295"),
        ("abc", b'"abc"'),
        (b"abc", b'"abc"'),
        ("", b'""'),
        ("NIL", b'"NIL"'),  # a string is never taken for NIL
        ('say "hi" \\ bye', b'"say \\"hi\\" \\\\ bye"'),
        ("café", b"{5}\r\ncaf\xc3\xa9"),  # 8-bit: a literal unless UTF-8 is enabled
        (b"a\r\nb", b"{4}\r\na\r\nb"),
        (b"a\rb", b"{3}\r\na\rb"),
        (b"a\nb", b"{3}\r\na\nb"),
        ("x" * QUOTED_MAX, b'"' + b"x" * QUOTED_MAX + b'"'),
        ("x" * (QUOTED_MAX + 1), b"{%d}\r\n" % (QUOTED_MAX + 1) + b"x" * (QUOTED_MAX + 1)),
        (Atom("\\Seen"), b"\\Seen"),
        (Literal(b"hi"), b"{2}\r\nhi"),
        (Literal(b""), b"{0}\r\n"),
        (Literal8(b"\x00\x01"), b"~{2}\r\n\x00\x01"),
        ([], b"()"),
        ((), b"()"),
        ([1, "a", None, [Atom("X"), b"y"]], b'(1 "a" NIL (X "y"))'),
    ],
)
def test_encode(value: Value, wire: bytes) -> None:
    assert encode(value) == wire


def test_utf8_enabled_sends_8bit_quoted() -> None:
    assert encode("café", utf8=True) == b'"caf\xc3\xa9"'
    assert encode(["Grün"], utf8=True) == b'("Gr\xc3\xbcn")'
    assert encode(b"a\r\nb", utf8=True) == b"{4}\r\na\r\nb"  # CRLF still needs a literal


def test_a_boolean_is_no_value() -> None:
    with pytest.raises(TypeError):
        encode(True)


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        ("INBOX", b"INBOX"),
        ("foo/bar", b"foo/bar"),
        ("a]b", b"a]b"),  # resp-specials are ASTRING-CHARs
        ("a b", b'"a b"'),
        ("", b'""'),
        ("a%", b'"a%"'),
        ("a*", b'"a*"'),
        ('a"b', b'"a\\"b"'),
        ("(x)", b'"(x)"'),
        ("café", b"{5}\r\ncaf\xc3\xa9"),
    ],
)
def test_encode_astring(value: str, wire: bytes) -> None:
    assert encode_astring(value) == wire


def test_encode_astring_utf8() -> None:
    assert encode_astring("café", utf8=True) == b'"caf\xc3\xa9"'


@given(st.binary(max_size=64))
def test_encoded_strings_read_back(octets: bytes) -> None:
    # What the server writes, a client (here our own reader) reads back unchanged.
    if b"\x00" in octets:
        return
    parser = CommandParser()
    wire = b"t LOGIN " + encode_string(octets) + b" " + encode_astring(octets or b"x") + b"\r\n"
    assert parser.parse(wire) == Login("t", octets, octets or b"x")


def test_tagged_and_untagged_status() -> None:
    # RFC 9051 §7.1
    assert tagged("A1", "OK", "LOGIN completed") == b"A1 OK LOGIN completed\r\n"
    assert (
        tagged("A1", "NO", "no such mailbox", "TRYCREATE")
        == b"A1 NO [TRYCREATE] no such mailbox\r\n"
    )
    assert untagged_status("BYE", "logging out") == b"* BYE logging out\r\n"
    assert untagged_status("OK", "ready", "CAPABILITY IMAP4rev2") == (
        b"* OK [CAPABILITY IMAP4rev2] ready\r\n"
    )
    assert untagged_status("PREAUTH", "hello") == b"* PREAUTH hello\r\n"


def test_status_text_cannot_carry_a_second_line() -> None:
    wire = tagged("A1", "NO", "bad\r\n* OK [ALERT] injected")
    assert wire.count(b"\r\n") == 1
    assert wire.endswith(b"\r\n")
    assert clean_text("a\tb\x00c\x7fd") == b"a b c d"
    assert clean_text("") == b"."  # resp-text needs text
    assert code_text("ALERT", "") == b"[ALERT] ."
    assert code_text(None, "ok") == b"ok"
    assert clean_text("Grüße") == "Grüße".encode()


def test_untagged_and_continuations() -> None:
    assert untagged(b"3", b"EXISTS") == b"* 3 EXISTS\r\n"
    assert untagged(b"CAPABILITY", b"IMAP4rev2", b"IDLE") == b"* CAPABILITY IMAP4rev2 IDLE\r\n"
    assert continuation() == b"+ Ready\r\n"  # RFC 9051 §7.6
    assert continuation("idling") == b"+ idling\r\n"
    assert continuation("x\r\ny") == b"+ x  y\r\n"
    assert continuation_data(b"") == b"+ \r\n"  # an empty challenge (RFC 9051 §6.2.2)
    assert continuation_data(b"YGgGCSqG") == b"+ YGgGCSqG\r\n"


def test_atoms_and_fetch_response() -> None:
    assert atoms(["\\Seen", "\\Answered", "$Forwarded"]) == b"(\\Seen \\Answered $Forwarded)"
    assert atoms([]) == b"()"
    # RFC 9051 §7.5.2, e.g. "* 23 FETCH (FLAGS (\Seen) UID 4827313)"
    wire = fetch_response(23, [(b"FLAGS", atoms(["\\Seen"])), (b"UID", encode(4827313))])
    assert wire == b"* 23 FETCH (FLAGS (\\Seen) UID 4827313)\r\n"
    body = fetch_response(12, [(b"BODY[HEADER]", encode(Literal(b"Subject: x\r\n\r\n")))])
    assert body == b"* 12 FETCH (BODY[HEADER] {14}\r\nSubject: x\r\n\r\n)\r\n"


def test_named_untagged_responses() -> None:
    """Each untagged response the server sends is built here (RFC 9051 §7)."""
    from postoffice.protocol.imap import responses as r

    assert r.exists(3) == b"* 3 EXISTS\r\n"
    assert r.recent(0) == b"* 0 RECENT\r\n"
    assert r.expunge(2) == b"* 2 EXPUNGE\r\n"
    assert r.flags_list(["\\Seen", "$Work"]) == b"* FLAGS (\\Seen $Work)\r\n"
    assert r.fetch_flags(4, ["\\Seen"], uid=9) == b"* 4 FETCH (UID 9 FLAGS (\\Seen))\r\n"
    assert r.fetch_flags(4, []) == b"* 4 FETCH (FLAGS ())\r\n"
    assert r.search([]) == b"* SEARCH\r\n"
    assert r.search([2, 5]) == b"* SEARCH 2 5\r\n"
    assert (
        r.esearch("A1", uid=True, data=[("MIN", b"2"), ("ALL", b"2:4")])
        == b'* ESEARCH (TAG "A1") UID MIN 2 ALL 2:4\r\n'
    )
    assert r.esearch("t", uid=False, data=[]) == b'* ESEARCH (TAG "t")\r\n'
    assert (
        r.mailbox_list(b"LIST", ["\\HasNoChildren"], "/", b'"Sent"')
        == b'* LIST (\\HasNoChildren) "/" "Sent"\r\n'
    )
    assert (
        r.mailbox_list(b"LIST", [], "/", b'"A"', b'("CHILDINFO" ("SUBSCRIBED"))')
        == b'* LIST () "/" "A" ("CHILDINFO" ("SUBSCRIBED"))\r\n'
    )
    assert (
        r.mailbox_status(b"INBOX", [("MESSAGES", 2), ("UIDNEXT", 7)])
        == b"* STATUS INBOX (MESSAGES 2 UIDNEXT 7)\r\n"
    )
    assert r.namespace_personal("", "/") == b'* NAMESPACE (("" "/")) NIL NIL\r\n'
    assert r.capability(["IMAP4rev1", "IDLE"]) == b"* CAPABILITY IMAP4rev1 IDLE\r\n"
    assert r.enabled([]) == b"* ENABLED\r\n"
    assert r.enabled(["IMAP4rev2"]) == b"* ENABLED IMAP4rev2\r\n"
    assert r.server_id([("name", "x")]) == b'* ID ("name" "x")\r\n'
