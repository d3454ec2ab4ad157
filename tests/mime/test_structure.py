"""The part tree: offsets, defaults, boundaries, bounds, and the cached form."""

from __future__ import annotations

import json
import time
import zlib

import pytest

from postoffice.mime.bodystructure import body_structure
from postoffice.mime.envelope import envelope
from postoffice.mime.sections import section_bytes
from postoffice.mime.structure import (
    MAX_DEPTH,
    MAX_PARTS,
    Part,
    decode_structure,
    encode_structure,
    find_part,
    iter_parts,
    parse_structure,
)


def test_offsets_of_a_simple_message() -> None:
    data = b"Subject: x\r\n\r\nbody\r\n"
    root = parse_structure(data)
    assert (root.start, root.body_start, root.end) == (0, 14, len(data))
    assert (root.type, root.subtype, root.params) == ("text", "plain", (("charset", "us-ascii"),))
    assert root.encoding == "7BIT"
    assert root.lines == 1
    assert root.size == 6


def test_multipart_child_ends_before_the_delimiter_line_break() -> None:
    # RFC 2046 §5.1.1: the CRLF preceding the delimiter belongs to the delimiter
    data = b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\nabc\r\n\r\n--x--\r\n"
    root = parse_structure(data)
    (child,) = root.children
    assert data[child.start : child.end] == b"\r\nabc\r\n"
    assert data[child.body_start : child.end] == b"abc\r\n"
    assert child.lines == 1


def test_digest_children_default_to_message_rfc822() -> None:
    data = (
        b"Content-Type: multipart/digest; boundary=d\r\n\r\n"
        b"--d\r\n\r\nSubject: in\r\n\r\nx\r\n"
        b"--d\r\nContent-Type: multipart/mixed; boundary=e\r\n\r\n--e\r\n\r\ny\r\n--e--\r\n"
        b"--d--\r\n"
    )
    root = parse_structure(data)
    first, second = root.children
    assert (first.type, first.subtype) == ("message", "rfc822")
    assert first.message is not None
    assert first.message.body_start - first.message.start == len(b"Subject: in\r\n\r\n")
    # RFC 2046 §5.1.5: the digest default applies to the digest's own parts only
    (grandchild,) = second.children
    assert (grandchild.type, grandchild.subtype) == ("text", "plain")


def test_content_fields_are_read() -> None:
    data = (
        b'Content-Type: Text/HTML; Charset="ISO-8859-1"; format=flowed (comment)\r\n'
        b"Content-Transfer-Encoding:  Quoted-Printable  (because)\r\n"
        b"Content-ID: <x@y>\r\n"
        b"Content-Description: =?utf-8?q?d=C3=A9j=C3=A0?=\r\n"
        b'Content-Disposition: Attachment; FileName="r\\"q.html"\r\n'
        b"Content-Language: en-GB (British), fr\r\n"
        b"Content-Location: http://x.example/\r\n a/b\r\n"
        b"Content-MD5: abc=\r\n"
        b"\r\nx"
    )
    part = parse_structure(data)
    assert (part.type, part.subtype) == ("text", "html")
    assert part.params == (("charset", "ISO-8859-1"), ("format", "flowed"))
    assert part.param("CHARSET") == "ISO-8859-1"
    assert part.encoding == "Quoted-Printable"
    assert part.id == "<x@y>"
    assert part.description == "=?utf-8?q?d=C3=A9j=C3=A0?="
    assert part.disposition == ("attachment", (("filename", 'r"q.html'),))
    assert part.language == ("en-GB", "fr")
    assert part.location == "http://x.example/a/b"
    assert part.md5 == "abc="


def test_rfc2231_parameters_are_joined_and_decoded() -> None:
    data = (
        b"Content-Type: application/x-stuff;\r\n"
        b" title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*0*=us-ascii'en'This%20is%20;\r\n"
        b' title*2="isn\'t it!"; title="plain loses";\r\n'
        b" name*=iso-8859-1''caf%E9; other*=nocharset%41\r\n\r\n"
    )
    part = parse_structure(data)
    assert part.params == (
        ("title", "This is ***fun*** isn't it!"),
        ("name", "café"),
        ("other", "nocharsetA"),
    )


def test_malformed_content_type_takes_the_default() -> None:
    for value in (b"text", b"/plain", b"text/", b";charset=x", b"text plain", b""):
        part = parse_structure(b"Content-Type: " + value + b"\r\n\r\nx")
        assert (part.type, part.subtype) == ("text", "plain"), value
        assert part.params == (("charset", "us-ascii"),)


def test_boundary_prefix_lines_are_delimiters() -> None:
    # RFC 2046 §5.1.1: the delimiter must not appear as the prefix of any line
    # inside the parts, so a line that starts with it is a delimiter
    data = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\n\r\none\r\n--bogus\r\n\r\ntwo\r\n--b--"
    )
    root = parse_structure(data)
    assert [data[c.body_start : c.end] for c in root.children] == [b"one", b"two"]


def test_outer_boundary_closes_inner_multipart() -> None:
    data = (
        b"Content-Type: multipart/mixed; boundary=out\r\n\r\n"
        b"--out\r\nContent-Type: multipart/alternative; boundary=in\r\n\r\n"
        b"--in\r\n\r\nunclosed inner\r\n"
        b"--out\r\n\r\nsecond outer\r\n--out--\r\n"
    )
    root = parse_structure(data)
    inner, second = root.children
    assert [data[c.body_start : c.end] for c in inner.children] == [b"unclosed inner"]
    assert data[second.body_start : second.end] == b"second outer"


def test_multipart_without_parts_gets_one_empty_part() -> None:
    data = b"Content-Type: multipart/mixed; boundary=z\r\n\r\n--z--\r\n"
    root = parse_structure(data)
    (empty,) = root.children
    assert (empty.start, empty.end, empty.type) == (len(data), len(data), "text")
    assert section_bytes(data, root, (1,)) == b""


def test_message_rfc822_with_base64_is_still_parsed_raw() -> None:
    data = (
        b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nU3ViamVjdA==\r\n"
    )
    root = parse_structure(data)
    assert root.message is not None
    assert root.message.start == root.body_start
    assert root.message.size == 0  # the base64 line is read as a header line


def nested_multipart(depth: int) -> bytes:
    opening = [
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (level, level)
        for level in reversed(range(depth))
    ]
    closing = [b"\r\n--b%d--\r\n" % level for level in range(depth)]
    return b"".join(opening) + b"deepest\r\n" + b"".join(closing)


def depth_of(root: Part) -> int:
    depth, part = 0, root
    while part.children or part.message is not None:
        part = part.children[0] if part.children else part.message  # type: ignore[assignment]
        depth += 1
    return depth


def test_ten_thousand_deep_multipart_is_capped() -> None:
    data = nested_multipart(10_000)
    started = time.perf_counter()
    root = parse_structure(data)
    assert time.perf_counter() - started < 5
    assert depth_of(root) == MAX_DEPTH
    leaf = find_part(root, (1,) * MAX_DEPTH)
    assert leaf is not None
    assert (leaf.type, leaf.subtype) == ("text", "plain")  # an opaque leaf
    assert leaf.end <= len(data)
    assert body_structure(data, root, extensible=True)[-5] == "MIXED"
    assert decode_structure(encode_structure(root)) == root


def test_ten_thousand_deep_message_rfc822_is_capped() -> None:
    data = b"body\r\n"
    for level in range(10_000):
        data = b"Subject: %d\r\nContent-Type: message/rfc822\r\n\r\n" % level + data
    root = parse_structure(data)
    assert depth_of(root) == MAX_DEPTH
    structure = body_structure(data, root, extensible=False)
    assert structure[:2] == ["MESSAGE", "RFC822"]
    assert envelope(data, root)[1] == "9999"


def test_twenty_thousand_parts_in_linear_time() -> None:
    data = (
        b"Content-Type: multipart/mixed; boundary=p\r\n\r\n"
        + b"".join(
            b'--p\r\nContent-Type: text/plain; name="f%d.txt"\r\n\r\npart %d\r\n' % (i, i)
            for i in range(20_000)
        )
        + b"--p--\r\n"
    )
    started = time.perf_counter()
    root = parse_structure(data)
    elapsed = time.perf_counter() - started
    assert len(root.children) == 20_000
    assert elapsed < 2.0
    last = find_part(root, (20_000,))
    assert last is not None
    assert data[last.body_start : last.end] == b"part 19999"
    assert last.param("name") == "f19999.txt"


def test_part_count_is_bounded() -> None:
    data = b"Content-Type: multipart/mixed; boundary=q\r\n\r\n" + b"--q\r\n" * (MAX_PARTS + 50)
    root = parse_structure(data)
    assert len(iter_parts(root)) <= MAX_PARTS + 1
    assert root.children[-1].end == len(data)  # the rest stays in the last part


def test_huge_header_fields() -> None:
    data = (
        b"Subject: "
        + b"s" * 5_000_000
        + b"\r\nContent-Type: text/plain; name="
        + b"n" * 1_000_000
        + b"\r\n"
        + b"".join(b"X-Field-%d: v\r\n" % i for i in range(100_000))
        + b"\r\nbody"
    )
    started = time.perf_counter()
    root = parse_structure(data)
    subject = envelope(data, root)[1]
    assert time.perf_counter() - started < 5
    assert root.body_start == len(data) - 4
    assert isinstance(subject, str)
    assert len(subject) == 5_000_000


def test_encoding_has_a_version_and_round_trips() -> None:
    data = (
        b"Content-Type: multipart/mixed; boundary=r\r\n\r\n--r\r\n"
        b"Content-Type: message/rfc822\r\n\r\nSubject: \xff\xfe raw\r\n\r\nx\r\n--r--\r\n"
    )
    root = parse_structure(data)
    blob = encode_structure(root)
    assert blob[0] == 1
    back = decode_structure(blob)
    assert back == root
    assert back.children[0].message == root.children[0].message


def _blob(tree: object) -> bytes:
    return b"\x01" + zlib.compress(json.dumps(tree).encode())


GOOD = [0, 2, 5, "text", "plain", [], None, None, "7BIT", None, None, None, None, 0, [], None]


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"\x02" + zlib.compress(b"[]"),
        b"\x01not zlib",
        b"\x01" + zlib.compress(b"{not json"),
        b"\x01" + zlib.compress(b"[1,2,3]"),
        encode_structure(parse_structure(b"x"))[:-3],
        encode_structure(parse_structure(b"x")) + b"junk",
        _blob([5, 2, 1, *GOOD[3:]]),
        _blob([*GOOD[:5], [["a"]], *GOOD[6:]]),
        _blob([*GOOD[:13], -1, *GOOD[14:]]),
        _blob([*GOOD[:13], True, *GOOD[14:]]),
        _blob([*GOOD[:14], [[9, 9, 99, *GOOD[3:]]], None]),
        _blob([*GOOD[:9], ["x"], *GOOD[10:]]),
        _blob([*GOOD[:10], "en", *GOOD[11:]]),
        _blob("[" * 100_000 + "]" * 100_000),
    ],
)
def test_corrupt_blobs_raise_value_error(blob: bytes) -> None:
    with pytest.raises(ValueError, match=r"structure|corrupt|version"):
        decode_structure(blob)


def test_decoding_a_valid_hand_made_blob() -> None:
    part = decode_structure(_blob(GOOD))
    assert part == Part(0, 2, 5, "text", "plain")


def test_deeply_nested_blob_is_refused() -> None:
    empty = [0, 0, 0, *GOOD[3:]]
    node: list[object] = list(empty)
    for _ in range(MAX_DEPTH + 5):
        node = [*empty[:15], node]
    with pytest.raises(ValueError, match="deep"):
        decode_structure(_blob(node))
