"""Garbage in, a well-formed tree out: random bytes and random mutations of
the corpus never raise, and every tree keeps its offset invariants."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postoffice.mime.bodystructure import body_structure
from postoffice.mime.envelope import envelope
from postoffice.mime.headers import decoded_text, header_date, header_values
from postoffice.mime.sections import section_bytes
from postoffice.mime.structure import (
    Part,
    decode_structure,
    encode_structure,
    find_part,
    iter_parts,
    parse_structure,
)

CORPUS = [path.read_bytes() for path in sorted((Path(__file__).parent / "corpus").glob("*.eml"))]
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Bytes that matter to the scanner, so random data reaches its branches.
ALPHABET = [
    b"\r\n",
    b"\n",
    b"\r",
    b" ",
    b"\t",
    b":",
    b"--",
    b"--b",
    b"--b--",
    b"Content-Type: multipart/mixed; boundary=b",
    b"Content-Type: message/rfc822",
    b"Content-Type: multipart/digest; boundary=b",
    b"Content-Transfer-Encoding: base64",
    b"From: A <a@b>, (c) d@e; g: h@i;",
    b'"',
    b"(",
    b")",
    b"<",
    b">",
    b"@",
    b"=?utf-8?q?x?=",
    b"\xff",
    b"x",
]


def check_tree(data: bytes, root: Part) -> None:
    assert root.start == 0
    assert root.end == len(data)
    for part in iter_parts(root):
        assert 0 <= part.start <= part.body_start <= part.end <= len(data)
        floor = part.body_start
        for child in part.children:
            assert floor <= child.start <= child.end <= part.end
            floor = child.end
        if part.message is not None:
            assert part.body_start == part.message.start
            assert part.message.end == part.end
        if part.is_multipart:
            assert part.children


def exercise(data: bytes) -> None:
    root = parse_structure(data)
    check_tree(data, root)
    assert decode_structure(encode_structure(root)) == root
    assert isinstance(body_structure(data, root, extensible=True), list)
    assert len(envelope(data, root)) == 10
    header_values(data, root, "subject")
    header_date(data, root)
    assert len(decoded_text(data, root, 500)) <= 500
    for path in ((), (1,), (1, 1), (2,), (1, 2, 1)):
        part = find_part(root, path)
        for text in (None, "HEADER", "TEXT", "MIME", "HEADER.FIELDS"):
            got = section_bytes(data, root, path, text, ("from", "to"))
            if part is None and path:
                assert got is None
            assert got is None or isinstance(got, bytes)


@FUZZ
@given(st.binary(max_size=2000))
def test_random_bytes(data: bytes) -> None:
    exercise(data)


@FUZZ
@given(st.lists(st.sampled_from(ALPHABET), max_size=120).map(b"".join))
def test_random_mail_like_tokens(data: bytes) -> None:
    exercise(data)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(CORPUS)))
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace", "truncate"]))
        piece = draw(st.sampled_from([*ALPHABET, b"\x00", b"\r\n\r\n"]))
        if action == "insert":
            data[at:at] = piece
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 40))]
        elif action == "replace" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        else:
            del data[at:]
    return bytes(data)


@FUZZ
@given(mutated())
def test_mutated_corpus(data: bytes) -> None:
    exercise(data)


@FUZZ
@given(mutated(), st.integers(0, 64))
def test_corrupted_blobs_only_raise_value_error(data: bytes, cut: int) -> None:
    blob = encode_structure(parse_structure(data))
    for broken in (blob[: len(blob) - cut], blob[:cut] + b"\x00" + blob[cut + 1 :]):
        try:
            decoded = decode_structure(broken)
        except ValueError:
            continue
        for part in iter_parts(decoded):  # whatever decodes passed the offset checks
            assert part.start <= part.body_start <= part.end
