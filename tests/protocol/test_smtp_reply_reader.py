"""ReplyReader: SMTP replies fed whole, octet by octet and with trailing data; every bound."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postoffice.core.reply import Reply
from postoffice.protocol.smtp.replies import SmtpReplies, render_reply
from postoffice.protocol.smtp.reply_reader import (
    MAX_LINE_OCTETS,
    MAX_LINES,
    ReplyReader,
    ReplySyntaxError,
)

NEXT = b"250-next reply, first li"  # the start of another reply, still incomplete


def read_all(data: bytes, mode: str) -> tuple[list[Reply], ReplyReader]:
    """Every reply in ``data``, fed as ``mode`` says."""
    reader = ReplyReader()
    replies: list[Reply] = []
    pieces = [data[i : i + 1] for i in range(len(data))] if mode == "bytewise" else [data]
    for piece in pieces:
        reader.feed(piece)
        while (reply := reader.next_reply()) is not None:
            replies.append(reply)
    return replies, reader


@pytest.fixture(params=["whole", "bytewise"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (b"220 mx.example.test ESMTP\r\n", Reply(220, None, "mx.example.test ESMTP")),
        (b"250 2.1.0 Ok\r\n", Reply(250, "2.1.0", "Ok")),
        (b"550 5.1.1 No such user here\r\n", Reply(550, "5.1.1", "No such user here")),
        (
            b"354 End data with <CR><LF>.<CR><LF>\r\n",
            Reply(354, None, "End data with <CR><LF>.<CR><LF>"),
        ),
        (b"250\r\n", Reply(250, None, "")),  # RFC 5321 §4.2: the text is optional
        (b"250 \r\n", Reply(250, None, "")),
        (b"334 \r\n", Reply(334, None, "")),  # an empty SASL challenge
        (b"250 2.0.0\r\n", Reply(250, "2.0.0", "")),
        (b"452 4.5.3 Too many recipients\r\n", Reply(452, "4.5.3", "Too many recipients")),
    ],
)
def test_single_line_replies(wire: bytes, expected: Reply, mode: str) -> None:
    replies, reader = read_all(wire, mode)
    assert replies == [expected]
    assert reader.buffered == 0


def test_multi_line_reply_is_joined_with_newlines(mode: str) -> None:
    wire = b"250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 CHUNKING\r\n"
    replies, _ = read_all(wire, mode)
    assert replies == [Reply(250, None, "mx.example.test\nPIPELINING\nSIZE 1000\nCHUNKING")]


def test_multi_line_reply_with_enhanced_code_on_every_line(mode: str) -> None:
    wire = b"550-5.7.1 Mail refused\r\n550-5.7.1 see https://example.test\r\n550 5.7.1 bye\r\n"
    replies, _ = read_all(wire, mode)
    assert replies == [Reply(550, "5.7.1", "Mail refused\nsee https://example.test\nbye")]


def test_empty_continuation_lines(mode: str) -> None:
    replies, _ = read_all(b"250-\r\n250-\r\n250 done\r\n", mode)
    assert replies == [Reply(250, None, "\n\ndone")]


def test_the_server_renderer_round_trips(mode: str) -> None:
    for reply in (
        SmtpReplies.queued("Q1"),
        SmtpReplies.ehlo("mx.example.test", ["PIPELINING", "SIZE 10"]),
        SmtpReplies.MESSAGE_TOO_BIG,
        Reply(250, "2.1.5", "first\nsecond"),
    ):
        replies, _ = read_all(render_reply(reply, enhanced=reply.enhanced is not None), mode)
        assert replies == [reply]


def test_trailing_data_stays_for_the_next_reply(mode: str) -> None:
    replies, reader = read_all(b"250 2.1.0 Ok\r\n" + NEXT, mode)
    assert replies == [Reply(250, "2.1.0", "Ok")]
    assert reader.buffered == len(NEXT)
    reader.feed(b"ne\r\n250 last line\r\n")
    assert reader.next_reply() == Reply(250, None, "next reply, first line\nlast line")
    assert reader.next_reply() is None


def test_several_replies_in_one_packet(mode: str) -> None:
    wire = b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 No\r\n354 Go ahead\r\n"
    replies, _ = read_all(wire, mode)
    assert [(r.code, r.enhanced) for r in replies] == [
        (250, "2.1.0"),
        (250, "2.1.5"),
        (550, "5.1.1"),
        (354, None),
    ]


def test_lf_only_line_ends_are_accepted(mode: str) -> None:
    replies, _ = read_all(b"250-mx.example.test\n250 PIPELINING\n221 2.0.0 Bye\n", mode)
    assert replies == [Reply(250, None, "mx.example.test\nPIPELINING"), Reply(221, "2.0.0", "Bye")]


def test_a_cr_alone_does_not_end_a_line() -> None:
    reader = ReplyReader()
    reader.feed(b"250 one\r250 two")
    assert reader.next_reply() is None


def test_text_is_utf8_with_invalid_octets_replaced(mode: str) -> None:
    replies, _ = read_all("250 2.0.0 Grüße\r\n".encode() + b"250 bad \xff octet\r\n", mode)
    assert replies == [Reply(250, "2.0.0", "Grüße"), Reply(250, None, "bad \ufffd octet")]


# ------------------------------------------------------------ enhanced codes


@pytest.mark.parametrize(
    ("wire", "code", "enhanced", "text"),
    [
        (b"250 2.0.0 Ok\r\n", 250, "2.0.0", "Ok"),
        (b"421 4.4.2 Timeout\r\n", 421, "4.4.2", "Timeout"),
        (b"554 5.7.1 Relay denied\r\n", 554, "5.7.1", "Relay denied"),
        (b"552 5.3.4 Too big\r\n", 552, "5.3.4", "Too big"),
        (b"250 2.123.456 long parts\r\n", 250, "2.123.456", "long parts"),
        # the class must be the code's first digit (RFC 3463 §2)
        (b"250 5.0.0 mismatched\r\n", 250, None, "5.0.0 mismatched"),
        (b"550 2.1.0 mismatched\r\n", 550, None, "2.1.0 mismatched"),
        # not an enhanced code: too many digits, or not followed by a space
        (b"250 2.1234.0 nope\r\n", 250, None, "2.1234.0 nope"),
        (b"250 2.0.0.1 nope\r\n", 250, None, "2.0.0.1 nope"),
        (b"250 2.0.0-nope\r\n", 250, None, "2.0.0-nope"),
        (b"250 v2.0.0 nope\r\n", 250, None, "v2.0.0 nope"),
        (b"220 mx.example.test ESMTP\r\n", 220, None, "mx.example.test ESMTP"),
        (b"354 3.0.0 no class 3\r\n", 354, None, "3.0.0 no class 3"),
    ],
)
def test_enhanced_status_code_detection(
    wire: bytes, code: int, enhanced: str | None, text: str
) -> None:
    replies, _ = read_all(wire, "whole")
    assert replies == [Reply(code, enhanced, text)]


def test_enhanced_code_is_stripped_only_where_the_same_code_starts_a_line() -> None:
    wire = b"550-5.1.1 first\r\n550-no code here\r\n550-5.7.1 other code\r\n550 5.1.1\r\n"
    replies, _ = read_all(wire, "whole")
    assert replies == [Reply(550, "5.1.1", "first\nno code here\n5.7.1 other code\n")]


def test_enhanced_code_only_on_later_lines_is_not_the_reply_s() -> None:
    replies, _ = read_all(b"250-mx.example.test\r\n250 2.0.0 Ok\r\n", "whole")
    assert replies == [Reply(250, None, "mx.example.test\n2.0.0 Ok")]


# -------------------------------------------------------------------- bounds


def test_a_line_of_exactly_the_limit_is_accepted(mode: str) -> None:
    text = b"x" * (MAX_LINE_OCTETS - 4)
    replies, _ = read_all(b"250 " + text + b"\r\n", mode)
    assert replies == [Reply(250, None, text.decode())]
    replies, _ = read_all(b"250 " + text + b"\n", mode)  # LF only: the same limit
    assert replies == [Reply(250, None, text.decode())]


def test_a_line_over_the_limit_is_refused_as_soon_as_it_is_seen() -> None:
    reader = ReplyReader()
    reader.feed(b"250 " + b"x" * (MAX_LINE_OCTETS - 3) + b"\n")
    with pytest.raises(ReplySyntaxError, match="longer than"):
        reader.next_reply()
    reader = ReplyReader()
    reader.feed(b"250 " + b"x" * (MAX_LINE_OCTETS + 10))  # no line end yet: already too long
    with pytest.raises(ReplySyntaxError, match="longer than"):
        reader.next_reply()
    assert reader.buffered == 0


def test_memory_is_bounded_while_waiting_for_a_line_end() -> None:
    reader = ReplyReader(max_line_octets=64)
    reader.feed(b"250-")
    for _ in range(10):
        reader.feed(b"y" * 10)
        try:
            assert reader.next_reply() is None
        except ReplySyntaxError:
            break
        assert reader.buffered <= 66
    else:
        raise AssertionError("the over-long line was never refused")
    reader.feed(b"z" * 1000)  # after the error nothing more is kept
    assert reader.buffered == 0


def test_max_lines_in_one_reply() -> None:
    ok = b"250-x\r\n" * (MAX_LINES - 1) + b"250 end\r\n"
    replies, _ = read_all(ok, "whole")
    assert len(replies[0].text.split("\n")) == MAX_LINES
    reader = ReplyReader()
    reader.feed(b"250-x\r\n" * MAX_LINES + b"250 end\r\n")
    with pytest.raises(ReplySyntaxError, match="lines"):
        reader.next_reply()


def test_limits_can_be_set() -> None:
    reader = ReplyReader(max_line_octets=10, max_lines=2)
    reader.feed(b"250-a\r\n250-b\r\n250 c\r\n")
    with pytest.raises(ReplySyntaxError):
        reader.next_reply()


# ------------------------------------------------------------------- garbage


@pytest.mark.parametrize(
    "wire",
    [
        b"hello\r\n",
        b"25\r\n",
        b"2500 too many digits\r\n",
        b"250x no separator\r\n",
        b"250\tTab separator\r\n",
        b"150 a 1xx code\r\n",
        b"199 a 1xx code\r\n",
        b"600 a 6xx code\r\n",
        b"000 zero\r\n",
        b"-250 leading hyphen\r\n",
        b" 250 leading space\r\n",
        b"\r\n",
        b"\n",
        b"2x0 letters\r\n",
        b"\xd9\xa2\xd9\xa5\xd9\xa0 arabic digits\r\n",
        b"250-first\r\n251 mismatched codes\r\n",
        b"250-first\r\n550-mismatched codes\r\n550 end\r\n",
        b"250-first\r\ngarbage\r\n",
    ],
)
def test_garbage_raises_reply_syntax_error(wire: bytes, mode: str) -> None:
    with pytest.raises(ReplySyntaxError):
        read_all(wire, mode)


def test_the_error_sticks() -> None:
    reader = ReplyReader()
    reader.feed(b"nonsense\r\n250 ok\r\n")
    with pytest.raises(ReplySyntaxError):
        reader.next_reply()
    reader.feed(b"250 ok\r\n")
    with pytest.raises(ReplySyntaxError):
        reader.next_reply()


def test_discard_drops_buffered_octets_and_a_partial_reply() -> None:
    reader = ReplyReader()
    reader.feed(b"250-partial\r\n250 inj")
    assert reader.next_reply() is None
    assert reader.discard() == len(b"250 inj")
    reader.feed(b"220 fresh\r\n")
    assert reader.next_reply() == Reply(220, None, "fresh")


REPLY_PIECES = [
    b"250 ok\r\n",
    b"250-more\r\n",
    b"550 5.1.1 no\r\n",
    b"354 go\r\n",
    b"2",
    b"-",
    b" ",
    b"\r",
    b"\n",
    b"\x00",
    b"\xff",
    b"421",
    b"x" * 300,
]


@settings(max_examples=200, deadline=None)
@given(
    pieces=st.lists(st.one_of(st.sampled_from(REPLY_PIECES), st.binary(max_size=40)), max_size=25),
    cut=st.integers(min_value=1, max_value=17),
)
def test_garbage_only_ever_raises_reply_syntax_error(pieces: list[bytes], cut: int) -> None:
    reader = ReplyReader(max_line_octets=256, max_lines=5)
    data = b"".join(pieces)
    for start in range(0, len(data), cut):
        reader.feed(data[start : start + cut])
        try:
            while (reply := reader.next_reply()) is not None:
                assert 200 <= reply.code <= 599
                assert len(reply.text.split("\n")) <= 5
        except ReplySyntaxError:
            return
        assert reader.buffered <= 258 + 5 * 256 + cut
