"""ENVELOPE and the RFC 5322 §3.4 address reader, edge cases one by one."""

from __future__ import annotations

import pytest

from postoffice.mime.envelope import envelope, parse_addresses
from postoffice.mime.structure import parse_structure

M, D = "MISSING_MAILBOX", "MISSING_DOMAIN"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a@example.com", [[None, None, "a", "example.com"]]),
        ("A B <a@example.com>", [["A B", None, "a", "example.com"]]),
        ('"B, A" <a@example.com>', [["B, A", None, "a", "example.com"]]),
        ('"a\\\\b\\"c" <x@y>', [['a\\b"c', None, "x", "y"]]),
        ("a@example.com (Name here)", [["Name here", None, "a", "example.com"]]),
        ("(lead) a@example.com", [["lead", None, "a", "example.com"]]),
        ("Phrase (c) <a@b>", [["Phrase", None, "a", "b"]]),
        ("John Q. Public <q@x>", [["John Q. Public", None, "q", "x"]]),
        ("a . b @ example . com", [[None, None, "a.b", "example.com"]]),
        ('"a b"@x', [[None, None, "a b", "x"]]),
        ("a@[192.0.2.1]", [[None, None, "a", "[192.0.2.1]"]]),
        ("<@r1,@r2:u@h>", [[None, "@r1,@r2", "u", "h"]]),
        ("R <@r1:u@h>", [["R", "@r1", "u", "h"]]),
        (
            "a@b, c@d,, ,e@f",
            [[None, None, "a", "b"], [None, None, "c", "d"], [None, None, "e", "f"]],
        ),
        (
            "G: a@b, C <c@d>;",
            [[None, None, "G", None], [None, None, "a", "b"], ["C", None, "c", "d"], [None] * 4],
        ),
        ("G:;", [[None, None, "G", None], [None] * 4]),
        ("G: a@b", [[None, None, "G", None], [None, None, "a", "b"], [None] * 4]),
        ("=?utf-8?q?J=C3=B6?= <j@x>", [["=?utf-8?q?J=C3=B6?=", None, "j", "x"]]),
        ("root", [[None, None, "root", D]]),
        ("<>", [[None, None, M, D]]),
        ("<local>", [[None, None, "local", D]]),
        ("@example.com", [[None, None, M, "example.com"]]),
        ("two words", [["two words", None, M, D]]),
        ("<a@b", [[None, None, "a", "b"]]),
        ('"unterminated <a@b>', [[None, None, "unterminated <a@b>", D]]),  # one word
        ("(unterminated comment a@b", []),
        ("", []),
        (" , ; > :", []),
        ("Zoë <zoë@example.fr>", [["Zoë".encode(), None, "zoë".encode(), "example.fr"]]),
    ],
)
def test_parse_addresses(text: str, expected: list[object]) -> None:
    assert parse_addresses(text) == expected


def test_raw_invalid_utf8_is_kept_as_octets() -> None:
    data = b"From: \xe9t\xe9 <a@b>\r\nSubject: caf\xe9\r\n\r\n"
    value = envelope(data, parse_structure(data))
    assert value[1] == b"caf\xe9"
    assert value[2] == [[b"\xe9t\xe9", None, "a", "b"]]


def test_envelope_of_encapsulated_message() -> None:
    data = (
        b"Subject: outer\r\nContent-Type: message/rfc822\r\n\r\n"
        b"Subject: inner\r\nFrom: i@example.com\r\n\r\nbody"
    )
    root = parse_structure(data)
    assert root.message is not None
    assert envelope(data, root)[1] == "outer"
    inner = envelope(data, root.message)
    assert inner[1] == "inner"
    assert inner[2] == [[None, None, "i", "example.com"]]


def test_fields_are_case_insensitive_and_stripped() -> None:
    data = b"SUBJECT:   padded   \r\nfRoM: a@b\r\nMESSAGE-id: <m@x>\r\n\r\n"
    value = envelope(data, parse_structure(data))
    assert value[1] == "padded"
    assert value[2] == [[None, None, "a", "b"]]
    assert value[9] == "<m@x>"


def test_many_addresses_with_comments_in_linear_time() -> None:
    text = ", ".join(f"u{i}@example.com (User {i})" for i in range(20_000))
    parsed = parse_addresses(text)
    assert len(parsed) == 20_000
    assert parsed[-1] == ["User 19999", None, "u19999", "example.com"]
