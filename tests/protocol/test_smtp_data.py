"""The DATA reader and the BDAT line-end filter, fed whole, octet by octet and split."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postoffice.protocol.smtp.data import (
    BareLineEnd,
    BareLineEndFilter,
    DotDataReader,
    fix_bare_line_ends,
)
from postoffice.protocol.smtp.settings import BareNewlinePolicy

NORMALIZE = BareNewlinePolicy.NORMALIZE
REJECT = BareNewlinePolicy.REJECT


def read_all(
    pieces: list[bytes], policy: BareNewlinePolicy = NORMALIZE
) -> tuple[bytes, bool, bytes]:
    """Feed pieces as a connection would; returns (content, finished, unread rest)."""
    reader = DotDataReader(policy)
    buffer = bytearray()
    content = bytearray()
    for index, piece in enumerate(pieces):
        buffer += piece
        while True:
            step = reader.read(buffer)
            del buffer[: step.consumed]
            content += step.content
            if step.finished:
                return bytes(content), True, bytes(buffer) + b"".join(pieces[index + 1 :])
            if not step.consumed:
                break
    return bytes(content), False, bytes(buffer)


def whole(data: bytes) -> list[bytes]:
    return [data]


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


FEEDS = [whole, bytewise]


@pytest.mark.parametrize("feed", FEEDS)
@pytest.mark.parametrize(
    ("wire", "content"),
    [
        (b".\r\n", b""),
        (b"a\r\n.\r\n", b"a\r\n"),
        (b"..\r\n.\r\n", b".\r\n"),
        (b"..a\r\n...b\r\n.\r\n", b".a\r\n..b\r\n"),
        (b"\r\n.\r\n", b"\r\n"),
        (b"a.\r\n.b\r\n.\r\n", b"a.\r\nb\r\n"),
        (b". \r\n.\r\n", b" \r\n"),
        (b".\r.\r\n.\r\n", b"\r\n.\r\n"),  # ".\r" then "." CRLF: stuffed, bare CR fixed
    ],
)
def test_dot_unstuffing_and_end(feed: object, wire: bytes, content: bytes) -> None:
    assert callable(feed)
    got, finished, rest = read_all(feed(wire + b"MAIL FROM:<x@y>\r\n"))
    assert (got, finished) == (content, True)
    assert rest == b"MAIL FROM:<x@y>\r\n"  # trailing data is left for the commands


@pytest.mark.parametrize("feed", FEEDS)
@pytest.mark.parametrize(
    "wire",
    [
        b"a\n.\nb",
        b"a\r.\rb",
        b"a\r.\nb",
        b"a\n.\rb",
        b"a\n.\r\nb",
        b"a\r\n.\nb",
        b"a\r.\r\nb",
        b"a\r\n.\rb",
        b"a\r\n.",
        b"a\r\n.\r",
        b"a\r\n",
    ],
)
def test_nothing_but_crlf_dot_crlf_ends_the_data(feed: object, wire: bytes) -> None:
    assert callable(feed)
    _, finished, rest = read_all(feed(wire))
    assert not finished
    assert len(rest) <= 2  # at most "." or ".\r" (or one CR) waits for more


def test_bare_line_ends_are_rejected_under_reject() -> None:
    with pytest.raises(BareLineEnd) as lf:
        read_all([b"a\nb\r\n.\r\n"], REJECT)
    assert lf.value.kind == "LF"
    with pytest.raises(BareLineEnd) as cr:
        read_all([b"a\rb\r\n.\r\n"], REJECT)
    assert cr.value.kind == "CR"
    assert read_all([b"a\r\nb\r\n.\r\n"], REJECT)[:2] == (b"a\r\nb\r\n", True)


def test_fix_bare_line_ends() -> None:
    assert fix_bare_line_ends(b"a\r\nb", NORMALIZE) == b"a\r\nb"
    assert fix_bare_line_ends(b"\na\rb\r\r\n\n\r", NORMALIZE) == b"\r\na\r\nb\r\n\r\n\r\n\r\n"


def test_filter_holds_a_cr_across_chunks() -> None:
    chunk_filter = BareLineEndFilter(NORMALIZE)
    assert chunk_filter.feed(b"a\r") == b"a"
    assert chunk_filter.feed(b"\nb\r") == b"\r\nb"
    assert chunk_filter.feed(b"c") == b"\r\nc"
    assert chunk_filter.feed(b"\r") == b""
    assert chunk_filter.finish() == b"\r\n"
    assert chunk_filter.finish() == b""


def stuff(lines: list[bytes]) -> bytes:
    """What a client sends for these lines (RFC 5321 §4.5.2)."""
    return b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines)


line_text = st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(line_text, max_size=12), cuts=st.lists(st.integers(0, 600), max_size=10))
def test_round_trip_in_any_split(lines: list[bytes], cuts: list[int]) -> None:
    wire = stuff(lines) + b".\r\nNEXT"
    points = sorted({c % (len(wire) + 1) for c in cuts})
    pieces = [wire[a:b] for a, b in zip([0, *points], [*points, len(wire)], strict=True)]
    content, finished, rest = read_all(pieces)
    assert finished
    assert content == b"".join(line + b"\r\n" for line in lines)
    assert rest == b"NEXT"


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(0, 300), max_size=10))
def test_any_octets_split_anywhere_read_the_same(data: bytes, cuts: list[int]) -> None:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert read_all(pieces) == read_all([data])
    content, finished, rest = read_all([data])
    assert content.count(b"\r") == content.count(b"\n") == content.count(b"\r\n")
    assert finished == (b"\r\n.\r\n" in b"\r\n" + data)
    if not finished:
        assert len(rest) <= 2
