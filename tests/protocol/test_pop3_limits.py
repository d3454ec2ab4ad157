"""The session's limits and edges: pipelining, line length, errors, closing, and
the driver's misuse of the contract (``ProtocolUsageError``)."""

from __future__ import annotations

import pytest

from postoffice.protocol.errors import ProtocolUsageError
from postoffice.protocol.pop3 import (
    PIPELINE_LIMIT,
    Authenticate,
    Closed,
    NeedData,
    Pop3ServerConnection,
    Pop3State,
    Retrieve,
    Update,
    wire_size,
)
from tests.protocol.test_pop3_harness import FakeDriver, Pop3Harness, message, settings

S1, S2 = wire_size(message("one")), wire_size(message("two"))


def logged_in_connection(listing: list[tuple[str, int]] | None = None) -> Pop3ServerConnection:
    conn = Pop3ServerConnection(settings())
    conn.start()
    conn.receive_data(b"USER alice\r\nPASS secret\r\n")
    assert isinstance(conn.next_event(), Authenticate)
    conn.login_accepted(listing if listing is not None else [("a", 5), ("b", 7)])
    conn.data_to_send()
    return conn


# -------------------------------------------------------------- pipelining


def test_pipelined_commands_in_one_write_are_answered_in_order() -> None:
    harness = Pop3Harness()
    out = harness.feed(
        b"CAPA\r\nUSER alice\r\nPASS secret\r\nSTAT\r\nLIST 2\r\n"
        b"RETR 1\r\nDELE 1\r\nNOOP\r\nQUIT\r\n"
    )
    text = out.decode()
    order = [
        "+OK Capability list follows",
        "+OK send PASS",
        "+OK alice's maildrop has 3 messages",
        "+OK 3 ",
        f"+OK 2 {S2}",
        f"+OK {S1} octets",
        "+OK message 1 deleted",
        "+OK\r\n",
        "+OK pop.example.test POP3 server signing off (2 messages left)",
    ]
    positions = [text.index(piece) for piece in order]
    assert positions == sorted(positions)
    assert harness.closed == Closed("quit")


def test_nothing_is_read_while_a_decision_is_pending() -> None:
    conn = logged_in_connection()
    conn.receive_data(b"RETR 1\r\nNOOP\r\nLAST\r\n")
    event = conn.next_event()
    assert event == Retrieve(1, 0, None)
    assert conn.buffered_octets == len(b"NOOP\r\nLAST\r\n")
    with pytest.raises(ProtocolUsageError):
        conn.next_event()
    conn.receive_data(b"STAT\r\n")  # a driver that keeps reading just buffers
    conn.message_data(b"hello")
    assert conn.data_to_send() == b"+OK 5 octets\r\nhello"
    conn.message_end()
    assert conn.data_to_send() == b"\r\n.\r\n"
    assert isinstance(conn.next_event(), NeedData)
    assert conn.data_to_send() == b"+OK\r\n+OK 1\r\n+OK 2 12\r\n"


def test_pipelined_input_is_bounded_while_a_decision_is_pending() -> None:
    conn = logged_in_connection()
    conn.receive_data(b"RETR 1\r\n")
    assert isinstance(conn.next_event(), Retrieve)
    chunk = b"NOOP\r\n" * 1000
    while conn.buffered_octets < PIPELINE_LIMIT:
        conn.receive_data(chunk)
    assert conn.buffered_octets < PIPELINE_LIMIT + len(chunk)
    with pytest.raises(ProtocolUsageError):
        conn.receive_data(b"NOOP\r\n")  # the driver must stop reading now


def test_a_bare_lf_ends_a_command_line() -> None:
    harness = Pop3Harness()
    assert harness.feed(b"USER alice\nPASS secret\n").startswith(b"+OK send PASS\r\n+OK alice's")


# ------------------------------------------------------------- line length


def test_ten_megabytes_without_a_line_end_keep_the_buffer_bounded() -> None:
    harness = Pop3Harness()
    chunk = b"X" * 65536
    out = bytearray()
    for _ in range(10 * 1024 * 1024 // len(chunk)):
        out += harness.feed(chunk)
        assert harness.conn.buffered_octets <= harness.conn.settings.max_line_length
    assert out == b"-ERR line too long\r\n"
    assert harness.feed(b"XXX\r\nCAPA x\r\n") == b"-ERR CAPA takes no arguments\r\n"
    assert harness.conn.error_count == 2 and not harness.conn.closed


def test_the_line_limit_counts_the_crlf() -> None:
    harness = Pop3Harness(settings(max_line_length=300))
    fits = b"USER " + b"a" * (300 - len(b"USER \r\n")) + b"\r\n"
    assert len(fits) == 300
    assert harness.feed(fits) == b"+OK send PASS\r\n"
    too_long = b"USER " + b"a" * (301 - len(b"USER \r\n")) + b"\r\n"
    assert harness.feed(too_long + b"QUIT\r\n") == b"-ERR line too long\r\n+OK bye\r\n"


def test_an_over_long_line_split_over_writes_is_dropped_up_to_its_end() -> None:
    harness = Pop3Harness(settings(max_line_length=300))
    assert harness.feed(b"A" * 299) == b""
    assert harness.feed(b"A" * 10) == b"-ERR line too long\r\n"
    assert harness.feed(b"B" * 1000) == b""
    assert harness.feed(b"B\r\nQUIT\r\n") == b"+OK bye\r\n"


# ------------------------------------------------------------------ errors


def test_bad_lines_are_refused() -> None:
    harness = Pop3Harness()
    assert harness.feed(b"\r\n") == b"-ERR unknown command\r\n"
    assert harness.feed(b"XYZZY\r\n") == b"-ERR unknown command\r\n"
    long_s = "\u017ftat\r\n".encode()  # LONG S upper-cases to "S"
    assert harness.feed(long_s) == b"-ERR unknown command\r\n"
    assert harness.feed(b"US\x00ER alice\r\n") == b"-ERR command line holds invalid characters\r\n"
    assert harness.feed(b"USER \xff\r\n") == b"-ERR command line holds invalid characters\r\n"
    assert harness.conn.error_count == 5


def test_too_many_errors_close_the_session() -> None:
    harness = Pop3Harness(settings(max_errors=3))
    out = harness.feed(b"A\r\nB\r\nC\r\nCAPA\r\n")
    assert out == (b"-ERR unknown command\r\n" * 3 + b"-ERR [SYS/PERM] too many errors\r\n")
    assert harness.closed == Closed("too many errors")
    assert harness.conn.state is Pop3State.UPDATE


def test_failed_logins_count_toward_the_error_limit() -> None:
    harness = Pop3Harness(settings(max_errors=2))
    out = harness.feed(b"USER alice\r\nPASS a\r\nUSER alice\r\nPASS b\r\n")
    assert out.endswith(b"-ERR [SYS/PERM] too many errors\r\n")
    assert harness.closed is not None


# ----------------------------------------------------------------- closing


def test_end_of_input_closes_after_what_was_read() -> None:
    harness = Pop3Harness()
    harness.conn.receive_data(b"CAPA\r\n")
    harness.conn.receive_data(b"")
    out = harness.run()
    assert out.startswith(b"+OK Capability list follows\r\n")
    assert harness.closed == Closed("client closed the connection")


def test_eof_in_transaction_does_not_update() -> None:
    harness = Pop3Harness()
    harness.login()
    harness.feed(b"DELE 1\r\n")
    harness.conn.receive_data(b"")
    harness.run()
    assert harness.driver.updates == [] and harness.closed is not None


def test_driver_side_close() -> None:
    conn = Pop3ServerConnection(settings())
    conn.start()
    assert conn.close("idle for too long") == b"-ERR [SYS/TEMP] idle for too long\r\n"
    assert conn.next_event() == Closed("closed by the server")
    conn.receive_data(b"CAPA\r\n")
    assert conn.next_event() == Closed("closed by the server")
    assert conn.close("again") == b""
    silent = Pop3ServerConnection(settings())
    silent.start()
    assert silent.close() == b""
    coded = Pop3ServerConnection(settings())
    coded.start()
    assert coded.close("[SYS/TEMP] Disconnected for inactivity") == (
        b"-ERR [SYS/TEMP] Disconnected for inactivity\r\n"
    )


def test_close_in_the_middle_of_a_message_says_nothing_and_cancels_the_decision() -> None:
    conn = logged_in_connection()
    conn.receive_data(b"RETR 1\r\n")
    assert isinstance(conn.next_event(), Retrieve)
    conn.message_data(b"hel")
    assert conn.close("timeout") == b"+OK 5 octets\r\nhel"  # and no -ERR inside the message
    conn.message_data(b"lo")  # answers after close are ignored
    conn.message_end()
    assert conn.data_to_send() == b""
    assert conn.next_event() == Closed("closed by the server")


def test_close_while_a_login_is_pending_cancels_it() -> None:
    conn = Pop3ServerConnection(settings())
    conn.start()
    conn.receive_data(b"USER alice\r\nPASS secret\r\n")
    assert isinstance(conn.next_event(), Authenticate)
    conn.close()
    conn.login_accepted([])
    assert conn.data_to_send() == b""
    assert conn.user is None and conn.state is Pop3State.UPDATE


# ------------------------------------------------------------------ misuse


def test_answers_without_their_decision_raise() -> None:
    conn = Pop3ServerConnection(settings())
    conn.start()
    for call in (
        lambda: conn.login_accepted([]),
        lambda: conn.login_refused("no"),
        lambda: conn.message_data(b"x"),
        conn.message_end,
        lambda: conn.retrieve_failed("no"),
        lambda: conn.update_done(True),
    ):
        with pytest.raises(ProtocolUsageError):
            call()
    conn.receive_data(b"USER alice\r\nPASS secret\r\n")
    assert isinstance(conn.next_event(), Authenticate)
    with pytest.raises(ProtocolUsageError):
        conn.message_data(b"x")  # a login is pending, not a retrieval
    with pytest.raises(ProtocolUsageError):
        conn.update_done(True)
    with pytest.raises(ProtocolUsageError):
        conn.login_refused("no", "not a code")


@pytest.mark.parametrize(
    "listing",
    [
        [("", 1)],
        [("has space", 1)],
        [("x" * 71, 1)],
        [("a", -1)],
        [("a", 1), ("a", 2)],
    ],
)
def test_a_bad_listing_is_refused_and_the_login_stays_pending(
    listing: list[tuple[str, int]],
) -> None:
    conn = Pop3ServerConnection(settings())
    conn.start()
    conn.receive_data(b"USER alice\r\nPASS secret\r\n")
    conn.next_event()
    with pytest.raises(ProtocolUsageError):
        conn.login_accepted(listing)
    assert conn.state is Pop3State.AUTHORIZATION
    conn.login_accepted([("ok", 1)])
    assert conn.state is Pop3State.TRANSACTION


def test_update_is_answered_once() -> None:
    conn = logged_in_connection()
    conn.receive_data(b"QUIT\r\n")
    assert isinstance(conn.next_event(), Update)
    conn.update_done(True)
    assert conn.data_to_send().startswith(b"+OK pop.example.test POP3 server signing off")
    conn.update_done(True)  # closed: ignored
    assert conn.data_to_send() == b""
    assert conn.closed


def test_the_peer_never_makes_the_connection_raise() -> None:
    harness = Pop3Harness(settings(max_errors=1000), driver=FakeDriver(chunk_size=1))
    garbage = b"RETR\r\nTOP 1\r\nDELE x\r\nAUTH\r\n*\r\n.\r\n..\r\n\xff\xfe\r\nPASS\r\n" * 3
    harness.feed(garbage)
    harness.login()
    harness.feed(garbage + b"RETR 1\r\n")
    assert harness.conn.state is Pop3State.TRANSACTION and not harness.conn.closed
    assert harness.conn.retrieved_count == 1
