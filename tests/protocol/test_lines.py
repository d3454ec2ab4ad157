"""LineReader: bounded command lines shared by the SMTP and POP3 sessions."""

from __future__ import annotations

from postoffice.protocol.lines import TOO_LONG, LineReader


def test_lines_end_at_lf_and_say_whether_the_cr_was_there() -> None:
    reader, buffer = LineReader(16), bytearray(b"NOOP\r\nQUIT\npartial")
    assert reader.take(buffer) == (b"NOOP", False)
    assert reader.take(buffer) == (b"QUIT", True)
    assert reader.take(buffer) is None
    assert buffer == b"partial"


def test_a_long_line_is_reported_once_and_dropped_as_it_arrives() -> None:
    reader, buffer = LineReader(8), bytearray(b"x" * 20)
    assert reader.take(buffer) is TOO_LONG
    assert buffer == b"" and reader.dropping
    assert reader.skip(b"y" * 1000) == b""  # nothing of it is kept
    buffer += reader.skip(b"yyy\r\nNOOP\r\n")
    assert not reader.dropping
    assert reader.take(buffer) == (b"NOOP", False)


def test_a_long_line_ended_in_the_buffer_leaves_the_next_line_alone() -> None:
    reader, buffer = LineReader(8), bytearray(b"x" * 20 + b"\r\nQUIT\r\n")
    assert reader.take(buffer) is TOO_LONG
    assert not reader.dropping
    assert reader.take(buffer) == (b"QUIT", False)


def test_reset_forgets_a_line_being_dropped() -> None:
    reader, buffer = LineReader(4), bytearray(b"xxxxxx")
    assert reader.take(buffer) is TOO_LONG and reader.dropping
    reader.reset()
    assert reader.skip(b"NOOP\r\n") == b"NOOP\r\n"
