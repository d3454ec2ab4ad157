"""BODY[section] on the RFC 3501 §6.4.5 example layout, and the section rules:
HEADER / TEXT / MIME / HEADER.FIELDS(.NOT), nonexistent parts, line ends."""

from __future__ import annotations

import pytest

from postoffice.mime.sections import is_crlf_clean, section_bytes, section_range, to_crlf
from postoffice.mime.structure import find_part, parse_structure

# The layout of RFC 3501 §6.4.5's example (HEADER, TEXT, 1, 2, 3, 3.HEADER,
# 3.TEXT, 3.1, 3.2, 4, 4.1, 4.1.MIME, 4.2, 4.2.HEADER, 4.2.TEXT, 4.2.1, 4.2.2,
# 4.2.2.1, 4.2.2.2), written out piece by piece so each answer is a literal.
TOP_HEADER = (
    b"From: Example <ex@example.com>\r\n"
    b"Subject: complex\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: MULTIPART/MIXED; boundary=outer\r\n"
    b"\r\n"
)
P1_MIME = b"Content-Type: TEXT/PLAIN; charset=us-ascii\r\n\r\n"
P1_BODY = b"part one text"
P2_MIME = b"Content-Type: APPLICATION/OCTET-STREAM\r\nContent-Transfer-Encoding: base64\r\n\r\n"
P2_BODY = b"AAECAw=="
P3_MIME = b"Content-Type: MESSAGE/RFC822\r\n\r\n"
P3_HEADER = b"Subject: part three\r\nContent-Type: MULTIPART/MIXED; boundary=m3\r\n\r\n"
P31_MIME = b"Content-Type: text/plain\r\n\r\n"
P31_BODY = b"three dot one"
P32_MIME = b"Content-Type: application/octet-stream\r\n\r\n"
P32_BODY = b"three dot two"
P3_TEXT = (
    b"--m3\r\n" + P31_MIME + P31_BODY + b"\r\n--m3\r\n" + P32_MIME + P32_BODY + b"\r\n--m3--\r\n"
)
P41_MIME = b"Content-Type: IMAGE/GIF\r\nContent-Transfer-Encoding: base64\r\n\r\n"
P41_BODY = b"R0lGODlhAQABAAAAACw="
P42_MIME = b"Content-Type: MESSAGE/RFC822\r\n\r\n"
P42_HEADER = b"Subject: four dot two\r\nContent-Type: MULTIPART/MIXED; boundary=m42\r\n\r\n"
P421_MIME = b"Content-Type: TEXT/PLAIN\r\n\r\n"
P421_BODY = b"four two one"
P422_MIME = b"Content-Type: MULTIPART/ALTERNATIVE; boundary=alt\r\n\r\n"
P4221_MIME = b"Content-Type: TEXT/PLAIN\r\n\r\n"
P4221_BODY = b"plain alternative"
P4222_MIME = b"Content-Type: TEXT/RICHTEXT\r\n\r\n"
P4222_BODY = b"<bold>rich</bold>"
P422_BODY = (
    b"--alt\r\n"
    + P4221_MIME
    + P4221_BODY
    + b"\r\n--alt\r\n"
    + P4222_MIME
    + P4222_BODY
    + b"\r\n--alt--"
)
P42_TEXT = (
    b"--m42\r\n" + P421_MIME + P421_BODY + b"\r\n--m42\r\n" + P422_MIME + P422_BODY + b"\r\n--m42--"
)
P4_MIME = b"Content-Type: MULTIPART/MIXED; boundary=p4\r\n\r\n"
P4_BODY = (
    b"--p4\r\n"
    + P41_MIME
    + P41_BODY
    + b"\r\n--p4\r\n"
    + P42_MIME
    + P42_HEADER
    + P42_TEXT
    + b"\r\n--p4--"
)
TOP_TEXT = (
    b"--outer\r\n" + P1_MIME + P1_BODY
    + b"\r\n--outer\r\n" + P2_MIME + P2_BODY
    + b"\r\n--outer\r\n" + P3_MIME + P3_HEADER + P3_TEXT
    + b"\r\n--outer\r\n" + P4_MIME + P4_BODY
    + b"\r\n--outer--\r\n"
)  # fmt: skip
MESSAGE = TOP_HEADER + TOP_TEXT
ROOT = parse_structure(MESSAGE)

EXAMPLE = [
    ((), "HEADER", TOP_HEADER),
    ((), "TEXT", TOP_TEXT),
    ((), None, MESSAGE),
    ((1,), None, P1_BODY),
    ((1,), "MIME", P1_MIME),
    ((2,), None, P2_BODY),
    ((2,), "MIME", P2_MIME),
    ((3,), None, P3_HEADER + P3_TEXT),
    ((3,), "MIME", P3_MIME),
    ((3,), "HEADER", P3_HEADER),
    ((3,), "TEXT", P3_TEXT),
    ((3, 1), None, P31_BODY),
    ((3, 1), "MIME", P31_MIME),
    ((3, 2), None, P32_BODY),
    ((3, 2), "MIME", P32_MIME),
    ((4,), None, P4_BODY),
    ((4,), "MIME", P4_MIME),
    ((4, 1), None, P41_BODY),
    ((4, 1), "MIME", P41_MIME),
    ((4, 2), None, P42_HEADER + P42_TEXT),
    ((4, 2), "MIME", P42_MIME),
    ((4, 2), "HEADER", P42_HEADER),
    ((4, 2), "TEXT", P42_TEXT),
    ((4, 2, 1), None, P421_BODY),
    ((4, 2, 1), "MIME", P421_MIME),
    ((4, 2, 2), None, P422_BODY),
    ((4, 2, 2), "MIME", P422_MIME),
    ((4, 2, 2, 1), None, P4221_BODY),
    ((4, 2, 2, 1), "MIME", P4221_MIME),
    ((4, 2, 2, 2), None, P4222_BODY),
    ((4, 2, 2, 2), "MIME", P4222_MIME),
]


@pytest.mark.parametrize(("path", "text", "expected"), EXAMPLE)
def test_rfc3501_example_sections(path: tuple[int, ...], text: str | None, expected: bytes) -> None:
    assert section_bytes(MESSAGE, ROOT, path, text) == expected
    span = section_range(ROOT, path, text)
    assert span is not None
    assert MESSAGE[span[0] : span[1]] == expected


@pytest.mark.parametrize(
    ("path", "kind", "subtype"),
    [
        ((1,), "text", "plain"),
        ((2,), "application", "octet-stream"),
        ((3,), "message", "rfc822"),
        ((3, 1), "text", "plain"),
        ((3, 2), "application", "octet-stream"),
        ((4,), "multipart", "mixed"),
        ((4, 1), "image", "gif"),
        ((4, 2), "message", "rfc822"),
        ((4, 2, 1), "text", "plain"),
        ((4, 2, 2), "multipart", "alternative"),
        ((4, 2, 2, 1), "text", "plain"),
        ((4, 2, 2, 2), "text", "richtext"),
    ],
)
def test_rfc3501_example_numbering(path: tuple[int, ...], kind: str, subtype: str) -> None:
    part = find_part(ROOT, path)
    assert part is not None
    assert (part.type, part.subtype) == (kind, subtype)


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((5,), None),  # no part 5
        ((0,), None),  # parts count from 1
        ((1, 1), None),  # a text part has no subparts
        ((3, 3), None),
        ((4, 3), None),
        ((4, 2, 3), None),
        ((4, 2, 2, 3), None),
        ((4, 1, 1), None),
        ((1,), "HEADER"),  # HEADER/TEXT need a message/rfc822 part (RFC 3501 §6.4.5)
        ((1,), "TEXT"),
        ((4,), "HEADER"),
        ((4, 2, 1), "HEADER.FIELDS"),
        ((), "MIME"),  # MIME needs a part number
    ],
)
def test_nonexistent_sections_are_none(path: tuple[int, ...], text: str | None) -> None:
    assert section_bytes(MESSAGE, ROOT, path, text, ("subject",)) is None
    if text != "HEADER.FIELDS":
        assert section_range(ROOT, path, text) is None


def test_section_text_is_case_insensitive_and_checked() -> None:
    assert section_bytes(MESSAGE, ROOT, (3,), "header") == P3_HEADER
    with pytest.raises(ValueError, match="unknown section"):
        section_bytes(MESSAGE, ROOT, (), "BODY")
    with pytest.raises(ValueError, match="single slice"):
        section_range(ROOT, (), "HEADER.FIELDS")


FIELDS_MESSAGE = (
    b"Received: from a\r\n"
    b"\tby b; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    b"Subject: first\r\n"
    b"To: x@example.com,\r\n"
    b"  y@example.com\r\n"
    b"SUBJECT: second\r\n"
    b"garbage line without colon\r\n"
    b"X-Other: o\r\n"
    b"\r\n"
    b"body\r\n"
)


def test_header_fields_keeps_folded_lines_in_order() -> None:
    root = parse_structure(FIELDS_MESSAGE)
    got = section_bytes(FIELDS_MESSAGE, root, (), "HEADER.FIELDS", ("to", "Subject"))
    assert got == (
        b"Subject: first\r\nTo: x@example.com,\r\n  y@example.com\r\nSUBJECT: second\r\n\r\n"
    )


def test_header_fields_not() -> None:
    root = parse_structure(FIELDS_MESSAGE)
    got = section_bytes(FIELDS_MESSAGE, root, (), "HEADER.FIELDS.NOT", ("subject", "to"))
    assert (
        got == b"Received: from a\r\n\tby b; Mon, 1 Jan 2024 00:00:00 +0000\r\nX-Other: o\r\n\r\n"
    )


def test_header_fields_match_exact_names_only() -> None:
    root = parse_structure(FIELDS_MESSAGE)
    assert section_bytes(FIELDS_MESSAGE, root, (), "HEADER.FIELDS", ("subj",)) == b"\r\n"


def test_header_fields_of_encapsulated_message() -> None:
    got = section_bytes(MESSAGE, ROOT, (4, 2), "HEADER.FIELDS", ("SUBJECT",))
    assert got == b"Subject: four dot two\r\n\r\n"
    got = section_bytes(MESSAGE, ROOT, (3,), "HEADER.FIELDS.NOT", ("subject",))
    assert got == b"Content-Type: MULTIPART/MIXED; boundary=m3\r\n\r\n"


def test_header_without_blank_line_gets_none_added() -> None:
    # RFC 3501 §6.4.5: no blank line "in the case of a message which has no
    # body and no blank line"; the last line is completed with CRLF
    data = b"To: a@example.com\r\nSubject: no blank"
    root = parse_structure(data)
    assert section_bytes(data, root, (), "HEADER") == data
    assert section_bytes(data, root, (), "TEXT") == b""
    assert section_bytes(data, root, (), "HEADER.FIELDS", ("subject",)) == b"Subject: no blank\r\n"
    assert section_bytes(data, root, (1,)) == b""


def test_message_starting_with_blank_line() -> None:
    data = b"\r\nbody only\r\n"
    root = parse_structure(data)
    assert section_bytes(data, root, (), "HEADER") == b"\r\n"
    assert section_bytes(data, root, (), "HEADER.FIELDS", ("to",)) == b"\r\n"
    assert section_bytes(data, root, (1,)) == b"body only\r\n"


def test_part_one_of_single_part_message_is_its_body() -> None:
    data = b"Subject: s\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
    root = parse_structure(data)
    assert find_part(root, (1,)) is root
    assert section_bytes(data, root, (1,)) == b"hello\r\n"
    assert (
        section_bytes(data, root, (1,), "MIME") == b"Subject: s\r\nContent-Type: text/plain\r\n\r\n"
    )
    assert find_part(root, (2,)) is None
    assert find_part(root, (1, 1)) is None


def test_toplevel_message_rfc822_numbers_into_encapsulated_message() -> None:
    data = (
        b"Subject: outer\r\nContent-Type: message/rfc822\r\n\r\n"
        b"Subject: inner\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n"
        b"--x\r\n\r\nfirst\r\n--x\r\n\r\nsecond\r\n--x--\r\n"
    )
    root = parse_structure(data)
    assert section_bytes(data, root, (1,), "HEADER") == (
        b"Subject: inner\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n"
    )
    assert section_bytes(data, root, (1, 1)) == b"first"
    assert section_bytes(data, root, (1, 2)) == b"second"
    assert section_bytes(data, root, (1, 3)) is None


def test_encapsulated_single_part_message_is_its_own_part_one() -> None:
    data = (
        b"Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n"
        b"Content-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\ninner text\r\n--o--\r\n"
    )
    root = parse_structure(data)
    assert section_bytes(data, root, (1, 1)) == b"inner text"
    assert section_bytes(data, root, (1, 1), "MIME") == b"Subject: in\r\n\r\n"
    assert section_bytes(data, root, (1,), "TEXT") == b"inner text"
    assert section_bytes(data, root, (1, 2)) is None


def test_lf_input_is_sliced_consistently() -> None:
    data = MESSAGE.replace(b"\r\n", b"\n")
    root = parse_structure(data)
    assert section_bytes(data, root, (4, 2, 2, 2)) == P4222_BODY
    assert section_bytes(data, root, (3,), "HEADER") == P3_HEADER.replace(b"\r\n", b"\n")
    assert section_bytes(data, root, (1,), "MIME") == P1_MIME.replace(b"\r\n", b"\n")


@pytest.mark.parametrize(
    ("raw", "converted"),
    [
        (b"a\nb\n", b"a\r\nb\r\n"),
        (b"a\rb\r", b"a\r\nb\r\n"),
        (b"a\r\nb", b"a\r\nb"),
        (b"a\r\r\nb\n\r", b"a\r\n\r\nb\r\n\r\n"),
        (b"", b""),
    ],
)
def test_to_crlf(raw: bytes, converted: bytes) -> None:
    assert to_crlf(raw) == converted
    assert is_crlf_clean(converted)
    assert is_crlf_clean(raw) == (raw == converted)
