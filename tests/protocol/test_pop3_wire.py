"""RETR/TOP encoding: line ends, dot-stuffing, the TOP cut, chunk boundaries, sizes.

The property tests feed random octets in random chunks and check the output
against a reference written here from RFC 1939 §3, §7 and §11 (one pass over
whole lines, nothing clever), and that RETR's octets match ``wire_size``.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postoffice.protocol.errors import ProtocolUsageError
from postoffice.protocol.pop3 import MessageEncoder, dot_lines, wire_size

# ------------------------------------------------------------- reference


def split_lines(data: bytes) -> list[bytes]:
    """Lines without their end: LF or CRLF ends a line, a lone CR is content."""
    lines = data.split(b"\n")
    ended = lines[-1] == b""
    if ended:
        lines.pop()
    out = []
    for index, line in enumerate(lines):
        last_unended = index == len(lines) - 1 and not ended
        out.append(line if last_unended else line.removesuffix(b"\r"))
    return out


def reference(data: bytes, body_lines: int | None = None) -> bytes:
    lines = split_lines(data) if data else []
    if body_lines is not None and b"" in lines:
        blank = lines.index(b"")  # RFC 1939 §7: header, empty line, n body lines
        lines = lines[: blank + 1 + body_lines]
    stuffed = [b"." + line if line.startswith(b".") else line for line in lines]
    return b"".join(line + b"\r\n" for line in stuffed) + b".\r\n"


def unstuff(output: bytes) -> bytes:
    """What a client keeps: lines un-stuffed, the terminator removed."""
    assert output.endswith(b".\r\n")
    body = output[:-3]
    assert body == b"" or body.endswith(b"\r\n")
    lines = body.split(b"\r\n")[:-1] if body else []
    for line in lines:
        assert line != b".", "a body line may never look like the terminator"
    return b"".join((line[1:] if line.startswith(b".") else line) + b"\r\n" for line in lines)


def encode(data: bytes, cuts: list[int], body_lines: int | None = None) -> bytes:
    encoder = MessageEncoder(body_lines)
    out = bytearray()
    position = 0
    for cut in sorted(set(cuts)):
        if 0 <= cut <= len(data):
            out += encoder.feed(data[position:cut])
            position = cut
    out += encoder.feed(data[position:])
    out += encoder.finish()
    assert encoder.done
    return bytes(out)


PIECES = st.sampled_from([b"\r", b"\n", b"\r\n", b".", b"..", b"a", b"Subject: x", b" ", b"\x00"])
MESSAGES = st.one_of(st.binary(max_size=300), st.lists(PIECES, max_size=80).map(b"".join))
CUTS = st.lists(st.integers(min_value=0, max_value=400), max_size=20)

# ------------------------------------------------------------- wire_size


@pytest.mark.parametrize(
    ("data", "size"),
    [
        (b"", 0),
        (b"a", 3),  # a final CRLF is added
        (b"a\r\n", 3),
        (b"a\n", 3),  # bare LF -> CRLF
        (b"a\nb\n", 6),
        (b"a\r", 4),  # the lone CR is content, then CRLF
        (b"a\rb\r\n", 5),
        (b"\r\r\n", 3),
        (b"\n\n", 4),
        (b".\r\n", 3),  # dot-stuffing is not counted (RFC 1939 §11)
    ],
)
def test_wire_size(data: bytes, size: int) -> None:
    assert wire_size(data) == size


# ------------------------------------------------------------- RETR


@pytest.mark.parametrize(
    ("data", "wire"),
    [
        (b"", b".\r\n"),
        (b"a", b"a\r\n.\r\n"),
        (b"a\nb", b"a\r\nb\r\n.\r\n"),
        (b".", b"..\r\n.\r\n"),
        (b".\r\n.\r\n", b"..\r\n..\r\n.\r\n"),
        (b"a\r\n.b\r\n..c\n", b"a\r\n..b\r\n...c\r\n.\r\n"),
        (b"a\rb", b"a\rb\r\n.\r\n"),
        (b"x\r", b"x\r\r\n.\r\n"),
        (b"\n.\n", b"\r\n..\r\n.\r\n"),
    ],
)
def test_retr_encoding(data: bytes, wire: bytes) -> None:
    assert encode(data, []) == wire
    assert encode(data, list(range(len(data) + 1))) == wire  # one octet at a time


def test_cr_at_the_end_of_a_chunk_and_lf_at_the_start_of_the_next_are_one_crlf() -> None:
    encoder = MessageEncoder()
    assert encoder.feed(b"Subject: a\r") == b"Subject: a"
    assert encoder.feed(b"\n.dot\r") == b"\r\n..dot"
    assert encoder.feed(b"x") == b"\rx"
    assert encoder.finish() == b"\r\n.\r\n"
    assert encoder.wire_octets == wire_size(b"Subject: a\r\n.dot\rx")


def test_a_dot_at_the_start_of_a_chunk_after_a_line_end_is_stuffed() -> None:
    encoder = MessageEncoder()
    assert encoder.feed(b"a\r\n") == b"a\r\n"
    assert encoder.feed(b".") == b".."
    assert encoder.feed(b".") == b"."  # the second dot is not at a line start
    assert encoder.finish() == b"\r\n.\r\n"


def test_encoder_misuse_raises() -> None:
    encoder = MessageEncoder()
    encoder.finish()
    with pytest.raises(ProtocolUsageError):
        encoder.feed(b"x")
    with pytest.raises(ProtocolUsageError):
        encoder.finish()
    with pytest.raises(ValueError):
        MessageEncoder(-1)


@settings(max_examples=400, deadline=None)
@given(data=MESSAGES, cuts=CUTS)
def test_retr_output_unstuffs_to_exactly_wire_size_octets(data: bytes, cuts: list[int]) -> None:
    output = encode(data, cuts)
    assert output == reference(data)
    assert output == encode(data, [])  # the chunking never changes the octets
    kept = unstuff(output)
    assert len(kept) == wire_size(data)
    assert kept == b"".join(line + b"\r\n" for line in (split_lines(data) if data else []))


@settings(max_examples=200, deadline=None)
@given(data=MESSAGES, cuts=CUTS)
def test_encoder_counts_its_wire_octets(data: bytes, cuts: list[int]) -> None:
    encoder = MessageEncoder()
    position = 0
    for cut in sorted(set(cuts)):
        if cut <= len(data):
            encoder.feed(data[position:cut])
            position = cut
    encoder.feed(data[position:])
    encoder.finish()
    assert encoder.wire_octets == wire_size(data)


# ------------------------------------------------------------- TOP


MAIL = b"From: a@example.test\r\nSubject: s\r\n\r\nline 1\r\n.line 2\r\nline 3\r\n"


@pytest.mark.parametrize(
    ("lines", "wire"),
    [
        (0, b"From: a@example.test\r\nSubject: s\r\n\r\n.\r\n"),
        (1, b"From: a@example.test\r\nSubject: s\r\n\r\nline 1\r\n.\r\n"),
        (2, b"From: a@example.test\r\nSubject: s\r\n\r\nline 1\r\n..line 2\r\n.\r\n"),
        (3, b"From: a@example.test\r\nSubject: s\r\n\r\nline 1\r\n..line 2\r\nline 3\r\n.\r\n"),
        (99, b"From: a@example.test\r\nSubject: s\r\n\r\nline 1\r\n..line 2\r\nline 3\r\n.\r\n"),
    ],
)
def test_top_passes_the_header_the_blank_line_and_n_body_lines(lines: int, wire: bytes) -> None:
    assert encode(MAIL, [], lines) == wire
    assert encode(MAIL, list(range(len(MAIL))), lines) == wire


def test_top_on_a_message_without_a_body_sends_it_all() -> None:
    headers_only = b"From: a@example.test\nSubject: no body"
    expected = b"From: a@example.test\r\nSubject: no body\r\n.\r\n"
    assert encode(headers_only, [], 0) == expected
    assert encode(headers_only, [], 5) == expected
    assert encode(b"From: a\r\n\r\n", [], 3) == b"From: a\r\n\r\n.\r\n"  # empty body


def test_top_sets_done_and_ignores_the_rest() -> None:
    encoder = MessageEncoder(body_lines=1)
    assert encoder.feed(b"A: b\r\n\r\nfirst\r\nsec") == b"A: b\r\n\r\nfirst\r\n"
    assert encoder.done
    assert encoder.feed(b"ond\r\nthird\r\n") == b""
    assert encoder.finish() == b".\r\n"


def test_top_line_split_across_chunks_counts_once() -> None:
    encoder = MessageEncoder(body_lines=1)
    out = encoder.feed(b"A: b\r")
    out += encoder.feed(b"\n\r")
    out += encoder.feed(b"\nbo")
    assert not encoder.done
    out += encoder.feed(b"dy\r")
    out += encoder.feed(b"\nmore\r\n")
    assert encoder.done
    assert out + encoder.finish() == b"A: b\r\n\r\nbody\r\n.\r\n"


@settings(max_examples=400, deadline=None)
@given(data=MESSAGES, cuts=CUTS, lines=st.integers(min_value=0, max_value=6))
def test_top_matches_the_reference_for_any_chunking(
    data: bytes, cuts: list[int], lines: int
) -> None:
    output = encode(data, cuts, lines)
    assert output == reference(data, lines)
    unstuff(output)


# ------------------------------------------------------------- a whole message at once


@settings(max_examples=400, deadline=None)
@given(data=MESSAGES)
def test_a_whole_message_with_its_dot_lines_encodes_as_the_reference(data: bytes) -> None:
    dots = dot_lines(data)
    canonical = unstuff(reference(data)) == data  # already CRLF, ends its lines
    assert (dots is not None) == canonical
    if dots is None:
        return
    assert dots == tuple(
        i
        for i in range(len(data))
        if data[i : i + 1] == b"." and (i == 0 or data[i - 1 : i] == b"\n")
    )
    encoder = MessageEncoder()
    assert encoder.whole(data, dots) == reference(data)
    assert encoder.done and encoder.wire_octets == len(data)


@pytest.mark.parametrize(
    ("data", "dots"),
    [
        (b"", ()),
        (b".\r\n", (0,)),
        (b"a\r\n.b\r\n..\r\n", (3, 7)),
        (b"a\n", None),  # a bare LF: not in wire form
        (b"a\r\nb", None),  # the last line is not ended
    ],
)
def test_dot_lines(data: bytes, dots: tuple[int, ...] | None) -> None:
    assert dot_lines(data) == dots


def test_whole_is_only_for_a_retr_that_has_not_started() -> None:
    with pytest.raises(ProtocolUsageError):
        MessageEncoder(body_lines=1).whole(b"a\r\n", ())
    started = MessageEncoder()
    started.feed(b"a\r\n")
    with pytest.raises(ProtocolUsageError):
        started.whole(b"b\r\n", ())
