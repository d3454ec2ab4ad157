"""``CommandFramer``: octets in, whole IMAP commands out (RFC 9051 §4.3, §7.5; RFC 7888; RFC 3516).

Every case is fed whole, octet by octet, and with more octets behind it
(the start of a next command), and must give the same events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest

from postoffice.protocol.errors import ProtocolUsageError
from postoffice.protocol.imap.framer import (
    CommandFramer,
    CompleteCommand,
    FramerEvent,
    LineOverflow,
    LiteralAnnounced,
)

LIMIT = 200
Decide = Callable[[CommandFramer, LiteralAnnounced], None]


def accept(framer: CommandFramer, _announced: LiteralAnnounced) -> None:
    framer.accept_literal()


def reject(framer: CommandFramer, _announced: LiteralAnnounced) -> None:
    framer.reject_literal()


class Feeder:
    """Plays the connection's part: buffers what ``skip`` keeps, drains ``next``."""

    def __init__(self, limit: int = LIMIT, decide: Decide = accept):
        self.framer = CommandFramer(limit)
        self.buffer = bytearray()
        self.decide = decide
        self.events: list[FramerEvent] = []

    def feed(self, data: bytes) -> list[FramerEvent]:
        start = len(self.events)
        self.buffer += self.framer.skip(data)
        while True:
            event = self.framer.next(self.buffer)
            if event is None:
                break
            self.events.append(event)
            if isinstance(event, LiteralAnnounced):
                self.decide(self.framer, event)
        return self.events[start:]

    def feed_pieces(self, pieces: Iterable[bytes]) -> list[FramerEvent]:
        start = len(self.events)
        for piece in pieces:
            self.feed(piece)
        return self.events[start:]


def pieces(data: bytes, mode: str) -> list[bytes]:
    if mode == "whole":
        return [data]
    if mode == "bytewise":
        return [data[i : i + 1] for i in range(len(data))]
    assert mode == "halves"
    return [data[: len(data) // 2], data[len(data) // 2 :]]


MODES = ["whole", "bytewise", "halves"]
NEXT = b"z9 NOOP"  # the start of a following command, not yet complete


def commands(events: list[FramerEvent]) -> list[bytes]:
    return [event.data for event in events if isinstance(event, CompleteCommand)]


# --- plain commands ---------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("trailing", [b"", NEXT])
def test_one_command(mode: str, trailing: bytes) -> None:
    feeder = Feeder()
    events = feeder.feed_pieces(pieces(b"a1 NOOP\r\n" + trailing, mode))
    assert events == [CompleteCommand(b"a1 NOOP\r\n")]
    assert bytes(feeder.buffer) == trailing  # the next command waits for its CRLF
    assert feeder.framer.in_command is False


@pytest.mark.parametrize("mode", MODES)
def test_pipelined_commands_in_one_read(mode: str) -> None:
    data = b"a1 NOOP\r\na2 CAPABILITY\r\na3 LOGIN alice secret\r\n"
    events = Feeder().feed_pieces(pieces(data, mode))
    assert commands(events) == [b"a1 NOOP\r\n", b"a2 CAPABILITY\r\n", b"a3 LOGIN alice secret\r\n"]


def test_nothing_until_the_line_ends() -> None:
    feeder = Feeder()
    assert feeder.feed(b"a1 NO") == []
    assert feeder.feed(b"OP\r") == []
    assert feeder.feed(b"\n") == [CompleteCommand(b"a1 NOOP\r\n")]


def test_a_bare_lf_ends_a_line_and_is_given_as_crlf() -> None:
    assert Feeder().feed(b"a1 NOOP\na2 NOOP\r\n") == [
        CompleteCommand(b"a1 NOOP\r\n"),
        CompleteCommand(b"a2 NOOP\r\n"),
    ]


def test_an_empty_line_is_a_command_for_the_parser_to_refuse() -> None:
    assert Feeder().feed(b"\r\n") == [CompleteCommand(b"\r\n")]


# --- literals -----------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("trailing", [b"", NEXT])
def test_synchronising_literal_is_announced_then_read(mode: str, trailing: bytes) -> None:
    data = b"a1 LOGIN {5}\r\nalice secret\r\n" + trailing
    feeder = Feeder()
    events = feeder.feed_pieces(pieces(data, mode))
    assert events == [
        LiteralAnnounced(b"a1 LOGIN {5}\r\n", 5, synchronizing=True, binary=False),
        CompleteCommand(b"a1 LOGIN {5}\r\nalice secret\r\n"),
    ]
    assert bytes(feeder.buffer) == trailing


@pytest.mark.parametrize(
    ("marker", "synchronizing", "binary"),
    [
        (b"{3}", True, False),
        (b"{3+}", False, False),
        (b"~{3}", True, True),
        (b"~{3+}", False, True),
    ],
)
def test_literal_markers(marker: bytes, synchronizing: bool, binary: bool) -> None:
    # RFC 9051 §4.3 {n}, RFC 7888 {n+}, RFC 3516 §4.3 ~{n}
    head = b"a1 APPEND INBOX " + marker + b"\r\n"
    events = Feeder().feed(head + b"abc\r\n")
    assert events == [
        LiteralAnnounced(head, 3, synchronizing=synchronizing, binary=binary),
        CompleteCommand(head + b"abc\r\n"),
    ]


def test_two_literals_in_one_command() -> None:
    data = b"a1 LOGIN {5}\r\nalice {6}\r\nsecret\r\n"
    events = Feeder().feed(data)
    announced = [event for event in events if isinstance(event, LiteralAnnounced)]
    assert [event.size for event in announced] == [5, 6]
    assert announced[1].head == b"a1 LOGIN {5}\r\nalice {6}\r\n"  # the command so far
    assert commands(events) == [data]


@pytest.mark.parametrize("mode", MODES)
def test_literal_holding_crlf_and_a_command_is_not_a_command(mode: str) -> None:
    body = b"x\r\na2 LOGOUT\r\n"
    data = b"a1 APPEND INBOX {%d}\r\n%b\r\na3 NOOP\r\n" % (len(body), body)
    events = Feeder().feed_pieces(pieces(data, mode))
    assert commands(events) == [b"a1 APPEND INBOX {14}\r\nx\r\na2 LOGOUT\r\n\r\n", b"a3 NOOP\r\n"]


def test_literal_octets_are_not_held_to_the_line_limit() -> None:
    body = b"y" * (LIMIT * 3)
    events = Feeder().feed(b"a1 APPEND INBOX {%d}\r\n%b\r\n" % (len(body), body))
    assert len(commands(events)) == 1
    assert not any(isinstance(event, LineOverflow) for event in events)


def test_minus_marker_is_no_literal() -> None:
    # RFC 7888 defines only "+"; "{3-}" goes to the parser, which refuses it.
    events = Feeder().feed(b"a1 LOGIN {3-}\r\nabc\r\n")
    assert events == [CompleteCommand(b"a1 LOGIN {3-}\r\n"), CompleteCommand(b"abc\r\n")]


def test_marker_not_at_the_end_of_the_line_is_no_literal() -> None:
    assert Feeder().feed(b"a1 LOGIN {5} x\r\n") == [CompleteCommand(b"a1 LOGIN {5} x\r\n")]


def test_a_marker_of_more_than_twenty_digits_is_no_literal() -> None:
    line = b"a1 LOGIN {" + b"9" * 21 + b"}\r\n"
    assert Feeder().feed(line) == [CompleteCommand(line)]


def test_twenty_digit_size_is_announced_for_the_caller_to_refuse() -> None:
    events = Feeder(decide=reject).feed(b"a1 LOGIN {" + b"9" * 20 + b"}\r\n")
    assert isinstance(events[0], LiteralAnnounced)
    assert events[0].size == 10**20 - 1


def test_next_refuses_while_a_literal_waits_for_a_decision() -> None:
    framer = CommandFramer(LIMIT)
    buffer = bytearray(b"a1 LOGIN {5}\r\nalice secret\r\n")
    assert isinstance(framer.next(buffer), LiteralAnnounced)
    assert framer.in_command is True
    with pytest.raises(ProtocolUsageError):
        framer.next(buffer)
    framer.accept_literal()
    assert framer.next(buffer) == CompleteCommand(b"a1 LOGIN {5}\r\nalice secret\r\n")


@pytest.mark.parametrize("decision", [CommandFramer.accept_literal, CommandFramer.reject_literal])
def test_no_decision_without_an_announced_literal(
    decision: Callable[[CommandFramer], None],
) -> None:
    with pytest.raises(ProtocolUsageError):
        decision(CommandFramer(LIMIT))


def test_rejected_literal_forgets_the_command() -> None:
    # A client given no "+" sends no octets: what follows is a new command.
    feeder = Feeder(decide=reject)
    events = feeder.feed(b"a1 LOGIN {5}\r\na2 NOOP\r\n")
    assert events == [
        LiteralAnnounced(b"a1 LOGIN {5}\r\n", 5, synchronizing=True, binary=False),
        CompleteCommand(b"a2 NOOP\r\n"),
    ]
    assert feeder.framer.command_octets == 0


def test_command_octets_count_lines_and_accepted_literals() -> None:
    framer = CommandFramer(LIMIT)
    buffer = bytearray(b"a1 LOGIN {5}\r\n")
    assert isinstance(framer.next(buffer), LiteralAnnounced)
    assert framer.command_octets == len(b"a1 LOGIN {5}\r\n")
    framer.accept_literal()
    assert framer.command_octets == len(b"a1 LOGIN {5}\r\n") + 5
    buffer += b"alice x\r\n"
    assert isinstance(framer.next(buffer), CompleteCommand)
    assert framer.command_octets == 0
    assert framer.in_command is False


# --- lines over the limit ------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_too_long_line_is_reported_once_and_dropped(mode: str) -> None:
    data = b"a1 NOOP " + b"x" * (LIMIT * 2) + b"\r\na2 NOOP\r\n"
    feeder = Feeder()
    events = feeder.feed_pieces(pieces(data, mode))
    assert len(events) == 2
    assert isinstance(events[0], LineOverflow)
    assert events[0].head.startswith(b"a1 NOOP x")
    assert len(events[0].head) <= 64
    assert events[1] == CompleteCommand(b"a2 NOOP\r\n")


def test_rest_of_a_too_long_line_is_dropped_across_reads() -> None:
    feeder = Feeder()
    events = feeder.feed(b"a1 NOOP " + b"x" * LIMIT)
    assert [type(event) for event in events] == [LineOverflow]
    assert feeder.buffer == bytearray()  # nothing of the line is kept
    for _ in range(5):
        assert feeder.feed(b"a2 NOOP\r" + b"y" * LIMIT) == []
        assert feeder.buffer == bytearray()
    assert feeder.feed(b"still the same line\na3 NOOP\r\n") == [CompleteCommand(b"a3 NOOP\r\n")]


def test_line_of_exactly_the_limit_is_refused_shorter_is_not() -> None:
    # The limit counts the octets before the LF (LineReader): a line needs LF within it.
    short = b"a1 NOOP " + b"x" * (LIMIT - len(b"a1 NOOP ") - 1) + b"\n"
    assert Feeder().feed(short) == [CompleteCommand(short[:-1] + b"\r\n")]
    long = b"a1 NOOP " + b"x" * (LIMIT - len(b"a1 NOOP ")) + b"\n"
    assert [type(event) for event in Feeder().feed(long)] == [LineOverflow]


def test_overflow_after_a_literal_names_the_command_start_and_forgets_it() -> None:
    feeder = Feeder()
    events = feeder.feed(b"a1 LOGIN {3}\r\nabc " + b"x" * LIMIT + b"\r\na2 NOOP\r\n")
    assert isinstance(events[0], LiteralAnnounced)
    assert events[1] == LineOverflow(b"a1 LOGIN {3}\r\n")
    assert events[2] == CompleteCommand(b"a2 NOOP\r\n")


def test_line_limit_can_be_raised_for_an_authenticated_session() -> None:
    feeder = Feeder(limit=20)
    line = b"a1 SEARCH TEXT " + b"x" * 30 + b"\r\n"
    assert [type(event) for event in feeder.feed(line)] == [LineOverflow]
    feeder.framer.line_limit = 100
    assert feeder.framer.line_limit == 100
    assert feeder.feed(line) == [CompleteCommand(line)]


def test_reset_forgets_a_half_command_and_a_line_being_dropped() -> None:
    feeder = Feeder()
    feeder.feed(b"a1 NOOP " + b"x" * LIMIT)  # dropping until LF
    feeder.framer.reset()
    feeder.buffer.clear()
    assert feeder.feed(b"a2 NOOP\r\n") == [CompleteCommand(b"a2 NOOP\r\n")]

    framer = CommandFramer(LIMIT)
    assert isinstance(framer.next(bytearray(b"a1 LOGIN {5}\r\n")), LiteralAnnounced)
    assert framer.in_command is True
    framer.reset()  # the literal is no longer waiting
    assert framer.in_command is False
    assert framer.command_octets == 0
    assert framer.next(bytearray(b"a2 NOOP\r\n")) == CompleteCommand(b"a2 NOOP\r\n")
