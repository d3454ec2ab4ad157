"""SEARCH support: decoded header values, the sent date, body text, and the
transfer / RFC 2047 / charset decoders beneath them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from postoffice.mime.decoding import decode_charset, decode_words
from postoffice.mime.headers import (
    decode_transfer,
    decoded_text,
    header_date,
    header_values,
    header_values_of,
)
from postoffice.mime.structure import parse_structure


def test_header_values_are_unfolded_and_decoded() -> None:
    data = (
        b"Subject: =?ISO-8859-1?Q?caf=E9?=\r\n  =?utf-8?B?w6k=?= tail\r\n"
        b"X-Dup: one\r\nx-dup: two\r\n"
        b"X-Raw: Gr\xc3\xbc\xc3\x9fe \xff\r\n"
        b"\r\nbody"
    )
    root = parse_structure(data)
    # the white space between the two encoded words goes (RFC 2047 §6.2)
    assert header_values(data, root, "subject") == ["caféé tail"]
    assert header_values(data, root, "X-DUP") == ["one", "two"]
    assert header_values(data, root, "x-raw") == ["Grüße \ufffd"]
    assert header_values(data, root, "missing") == []


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"=?utf-8?q?a?= =?utf-8?q?b?=", "ab"),  # RFC 2047 §6.2: white space between words
        (b"=?utf-8?q?a?= x =?utf-8?q?b?=", "a x b"),
        (b"=?utf-8?q?a_b?=", "a b"),
        (b"=?UTF-8?B?4oK=?= =?UTF-8?B?rA==?=", "€"),  # a character split across words
        (b"=?utf-8*en?q?x?=", "x"),  # RFC 2231 §5 language
        (b"=?unknown-charset?q?caf=C3=A9?=", "café"),
        (b"=?utf-8?x?nope?=", "=?utf-8?x?nope?="),
        (b"plain text", "plain text"),
        (b"=?utf-8?b?!!!?=", ""),
    ],
)
def test_decode_words(raw: bytes, text: str) -> None:
    assert decode_words(raw) == text


@pytest.mark.parametrize(
    ("charset", "text"),
    [
        ("iso-8859-1", "café"),
        ("base64", "caf\ufffd"),
        ("no-such", "caf\ufffd"),
        (None, "caf\ufffd"),
    ],
)
def test_decode_charset_falls_back_to_utf8(charset: str | None, text: str) -> None:
    assert decode_charset(b"caf\xe9", charset) == text


def test_header_date() -> None:
    data = b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n\r\n"
    when = header_date(data, parse_structure(data))
    assert when == datetime(1994, 2, 7, 21, 52, 25, tzinfo=timezone(timedelta(hours=-8)))


def test_header_date_without_zone_is_utc_and_garbage_is_none() -> None:
    data = b"Date: 7 Feb 1994 21:52 -0000\r\n\r\n"
    assert header_date(data, parse_structure(data)) == datetime(1994, 2, 7, 21, 52, tzinfo=UTC)
    for value in (b"yesterday", b"", b"Mon, 99 Foo 12345 99:99:99"):
        data = b"Date: " + value + b"\r\n\r\n"
        assert header_date(data, parse_structure(data)) is None
    assert header_date(b"Subject: x\r\n\r\n", parse_structure(b"Subject: x\r\n\r\n")) is None


@pytest.mark.parametrize(
    ("body", "encoding", "decoded"),
    [
        (b"abc\r\n", "7bit", b"abc\r\n"),
        (b"\xff\x00", "BINARY", b"\xff\x00"),
        (b"\xff", "8Bit", b"\xff"),
        (b"SGVsbG8=\r\n", "base64", b"Hello"),
        (b"SGVs\r\nbG8", "Base64", b"Hello"),  # missing padding
        (b"S*G-V sbG8=", "base64", b"Hello"),  # characters outside the alphabet
        (b"caf=E9 =\r\nsoft  \r\n=3D=4a", "quoted-printable", b"caf\xe9 soft\r\n=J"),
        (b"bad =ZZ escape=", "QUOTED-PRINTABLE", b"bad =ZZ escape="),
        (b"begin 644", "x-uuencode", None),
    ],
)
def test_decode_transfer(body: bytes, encoding: str, decoded: bytes | None) -> None:
    assert decode_transfer(body, encoding) == decoded


MIXED = (
    b"Subject: top\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n"
    b"--x\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9\r\n"
    b"--x\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0=\r\n"
    b"--x\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"PGI+R3LDvMOfZTwvYj4=\r\n"
    b"--x\r\nContent-Type: message/rfc822\r\n\r\n"
    b"Subject: =?utf-8?q?inn=C3=A9r?=\r\n\r\nforwarded text\r\n"
    b"--x--\r\n"
)


def test_decoded_text_walks_text_parts_in_order() -> None:
    root = parse_structure(MIXED)
    assert decoded_text(MIXED, root, 10_000) == (
        "café\n<b>Grüße</b>\nsubject: innér\nforwarded text"
    )


def test_decoded_text_is_capped() -> None:
    root = parse_structure(MIXED)
    assert decoded_text(MIXED, root, 6) == "café\n<"
    assert decoded_text(MIXED, root, 0) == ""


def test_decoded_text_of_single_part_message() -> None:
    data = b"Content-Type: text/plain; charset=utf-8\r\n\r\nGr\xc3\xbc\xc3\x9fe \xff"
    assert decoded_text(data, parse_structure(data), 100) == "Grüße \ufffd"


def test_values_of_several_fields_from_one_scan() -> None:
    """``header_values_of`` gives each name what ``header_values`` gives it, an empty
    list for a field that is not there, and nothing from the body."""
    data = (
        b"Subject: =?UTF-8?Q?caf=C3=A9?=\r\nTo: a@x.test,\r\n b@x.test\r\n"
        b"Received: one\r\nreceived: two\r\nX-Empty:\r\n\r\nSubject: in the body\r\n"
    )
    root = parse_structure(data)
    names = ["subject", "to", "received", "x-empty", "cc"]
    found = header_values_of(data, root.start, root.body_start, names)
    assert found == {name: header_values(data, root, name) for name in names}
    assert found["subject"] == ["café"]
    assert found["received"] == ["one", "two"]
    assert found["cc"] == []
