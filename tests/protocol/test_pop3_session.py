"""TRANSACTION and UPDATE transcripts: listings, retrieval, marks, QUIT, and the
session's limits (pipelining, line length, errors, close, driver misuse)."""

from __future__ import annotations

import pytest

from postoffice.protocol.pop3 import (
    Authenticate,
    Closed,
    Pop3ServerConnection,
    Pop3State,
    Retrieve,
    Update,
    wire_size,
)
from tests.protocol.test_pop3_harness import FakeDriver, Pop3Harness, message, settings

MODES = ["whole", "bytewise"]
ONE, TWO, THREE = message("one"), message("two"), message("three")
S1, S2, S3 = wire_size(ONE), wire_size(TWO), wire_size(THREE)
ODD = b"Subject: odd\n\n.starts with a dot\nbare LF\r\nlone\rCR\n..\n.\nno final line end"
NO_BODY = b"Subject: headers only\r\nX-A: b"


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def logged_in(
    mode: str = "whole", driver: FakeDriver | None = None, **changes: object
) -> Pop3Harness:
    harness = Pop3Harness(settings(**changes), driver=driver, mode=mode)
    harness.login()
    return harness


def lines(*messages: bytes) -> str:
    """The S: lines of messages as RETR sends them (dot-stuffed)."""
    out = []
    for data in messages:
        canonical = data.replace(b"\r\n", b"\n").decode().split("\n")
        if canonical[-1] == "":
            canonical.pop()
        out += ["S: ." + line if line.startswith(".") else "S: " + line for line in canonical]
    return "\n".join(out)


# ---------------------------------------------------------------- listings


def test_stat_list_uidl_noop(mode: str) -> None:
    logged_in(mode).converse(
        f"""
        C: STAT
        S: +OK 3 {S1 + S2 + S3}
        C: LIST
        S: +OK 3 messages ({S1 + S2 + S3} octets)
        S: 1 {S1}
        S: 2 {S2}
        S: 3 {S3}
        S: .
        C: LIST 3
        S: +OK 3 {S3}
        C: LIST 0
        S: -ERR no such message, only 3 messages in maildrop
        C: LIST x
        S: -ERR invalid message number
        C: LIST 1 2
        S: -ERR LIST takes at most one message number
        C: UIDL
        S: +OK unique-id listing follows
        S: 1 uid-0
        S: 2 uid-1
        S: 3 uid-2
        S: .
        C: UIDL 1
        S: +OK 1 uid-0
        C: UIDL 1 2
        S: -ERR UIDL takes at most one message number
        C: NOOP
        S: +OK
        C: NOOP x
        S: -ERR NOOP takes no arguments
        C: stat
        S: +OK 3 {S1 + S2 + S3}
        """
    )


def test_empty_maildrop() -> None:
    logged_in(driver=FakeDriver(maildrops={"alice": []})).converse(
        """
        C: STAT
        S: +OK 0 0
        C: LIST
        S: +OK 0 messages (0 octets)
        S: .
        C: UIDL
        S: +OK unique-id listing follows
        S: .
        C: RETR 1
        S: -ERR no such message
        C: QUIT
        S: +OK pop.example.test POP3 server signing off (maildrop empty)
        """
    )


def test_dele_then_rset(mode: str) -> None:
    harness = logged_in(mode)
    harness.converse(
        f"""
        C: DELE 2
        S: +OK message 2 deleted
        C: DELE 2
        S: -ERR message 2 already deleted
        C: STAT
        S: +OK 2 {S1 + S3}
        C: LIST
        S: +OK 2 messages ({S1 + S3} octets)
        S: 1 {S1}
        S: 3 {S3}
        S: .
        C: LIST 2
        S: -ERR message 2 already deleted
        C: UIDL 2
        S: -ERR message 2 already deleted
        C: RETR 2
        S: -ERR message 2 already deleted
        C: TOP 2 0
        S: -ERR message 2 already deleted
        C: DELE 4
        S: -ERR no such message
        C: DELE
        S: -ERR DELE needs one message number
        """
    )
    assert harness.conn.deleted_count == 1
    harness.converse(
        f"""
        C: RSET
        S: +OK maildrop has 3 messages ({S1 + S2 + S3} octets)
        C: LIST 2
        S: +OK 2 {S2}
        """
    )
    assert harness.conn.deleted_count == 0
    assert harness.conn.error_count == 1  # bad arguments count; "no such message" does not


# --------------------------------------------------------------- retrieval


def test_retr_sends_the_message_and_its_size(mode: str) -> None:
    harness = logged_in(mode, FakeDriver(chunk_size=5))
    harness.converse(
        f"""
        C: RETR 2
        S: +OK {S2} octets
        {lines(TWO)}
        S: .
        C: RETR
        S: -ERR RETR needs one message number
        C: RETR -1
        S: -ERR invalid message number
        C: RETR 4
        S: -ERR no such message
        """
    )
    assert harness.conn.retrieved_count == 1
    assert harness.conn.retrieved_octets == S2
    [event] = harness.of_type(Retrieve)
    assert event == Retrieve(number=2, index=1, body_lines=None)


@pytest.mark.parametrize("chunk_size", [None, 1, 2, 3, 10])
def test_dot_stuffing_and_bare_lf_on_the_wire(chunk_size: int | None) -> None:
    driver = FakeDriver(maildrops={"alice": [ODD, NO_BODY]}, chunk_size=chunk_size)
    harness = logged_in(driver=driver)
    out = harness.feed(b"RETR 1\r\n")
    size = wire_size(ODD)
    assert out == (
        f"+OK {size} octets\r\n".encode()
        + b"Subject: odd\r\n\r\n..starts with a dot\r\nbare LF\r\nlone\rCR\r\n"
        + b"...\r\n..\r\nno final line end\r\n.\r\n"
    )
    body = out.split(b"\r\n", 1)[1][: -len(b".\r\n")]
    unstuffed = b"".join(
        (line[1:] if line.startswith(b".") else line) + b"\r\n" for line in body.split(b"\r\n")[:-1]
    )
    assert len(unstuffed) == size  # what LIST and STAT announce is what RETR delivers
    assert harness.feed(b"LIST 1\r\n") == f"+OK 1 {size}\r\n".encode()
    assert harness.conn.retrieved_octets == len(body)


@pytest.mark.parametrize("whole", [False, True])
def test_stat_and_list_sizes_equal_the_octets_retr_sends(whole: bool) -> None:
    # With ``whole`` the messages already in wire form go through message_whole.
    messages = [ODD, NO_BODY, b"", b"\n", b"a\r", b".\n.\n.", ONE, b".a\r\n\r\n.\r\n..\r\n"]
    driver = FakeDriver(maildrops={"alice": messages}, chunk_size=2, whole=whole)
    harness = logged_in(driver=driver)
    listing = harness.feed(b"LIST\r\n").decode().split("\r\n")[1:-2]
    total = 0
    for number, entry in enumerate(listing, start=1):
        announced = int(entry.split()[1])
        out = harness.feed(f"RETR {number}\r\n".encode())
        head, _, rest = out.partition(b"\r\n")
        assert head == f"+OK {announced} octets".encode()
        assert rest.endswith(b".\r\n")
        kept = [line[1:] if line.startswith(b".") else line for line in rest.split(b"\r\n")[:-2]]
        assert sum(len(line) + 2 for line in kept) == announced
        total += announced
    assert harness.feed(b"STAT\r\n") == f"+OK {len(messages)} {total}\r\n".encode()
    assert harness.feed(b"RETR 8\r\n") == b"+OK 13 octets\r\n..a\r\n\r\n..\r\n...\r\n.\r\n"


@pytest.mark.parametrize("whole", [False, True])
def test_top_with_zero_and_n_lines(mode: str, whole: bool) -> None:
    body = b"Subject: t\r\n\r\nl1\r\n.l2\r\nl3\r\n"
    driver = FakeDriver(maildrops={"alice": [body, NO_BODY]}, chunk_size=4, whole=whole)
    harness = logged_in(mode, driver)
    harness.converse(
        """
        C: TOP 1 0
        S: +OK
        S: Subject: t
        S:
        S: .
        C: TOP 1 2
        S: +OK
        S: Subject: t
        S:
        S: l1
        S: ..l2
        S: .
        C: TOP 1 10
        S: +OK
        S: Subject: t
        S:
        S: l1
        S: ..l2
        S: l3
        S: .
        C: TOP 2 0
        S: +OK
        S: Subject: headers only
        S: X-A: b
        S: .
        C: TOP 2 3
        S: +OK
        S: Subject: headers only
        S: X-A: b
        S: .
        C: TOP 1
        S: -ERR TOP needs a message number and a line count
        C: TOP 1 -1
        S: -ERR TOP needs a message number and a line count
        C: TOP x 1
        S: -ERR invalid message number
        """
    )
    assert harness.conn.retrieved_count == 0  # TOP is not a whole retrieval
    assert all(
        isinstance(e, Retrieve) and e.body_lines is not None for e in harness.of_type(Retrieve)
    )


def test_last_follows_retr_top_dele_and_rset() -> None:
    harness = logged_in()
    harness.converse(
        """
        C: LAST
        S: +OK 0
        """
    )
    harness.feed(b"TOP 2 0\r\n")
    assert harness.feed(b"LAST\r\n") == b"+OK 2\r\n"
    harness.feed(b"RETR 1\r\n")
    assert harness.feed(b"LAST\r\n") == b"+OK 2\r\n"  # the highest number, not the latest
    harness.feed(b"RETR 3\r\n")
    assert harness.feed(b"LAST\r\n") == b"+OK 3\r\n"
    harness.converse(
        f"""
        C: RSET
        S: +OK maildrop has 3 messages ({S1 + S2 + S3} octets)
        C: LAST
        S: +OK 0
        C: DELE 1
        S: +OK message 1 deleted
        C: LAST
        S: +OK 1
        C: LAST x
        S: -ERR LAST takes no arguments
        """
    )


def test_retrieve_failed_before_data_is_an_error_response() -> None:
    harness = logged_in(driver=FakeDriver(unreadable={0}))
    harness.converse(
        """
        C: RETR 1
        S: -ERR [SYS/TEMP] message unreadable
        C: LAST
        S: +OK 0
        """
    )
    assert harness.conn.error_count == 0 and harness.conn.retrieved_count == 0


def test_retrieve_failed_in_the_middle_of_a_message_closes() -> None:
    conn = Pop3ServerConnection(settings())
    conn.start()
    conn.receive_data(b"USER alice\r\nPASS secret\r\nRETR 1\r\nNOOP\r\n")
    assert isinstance(conn.next_event(), Authenticate)
    conn.login_accepted([("a", 10)])
    conn.data_to_send()
    assert isinstance(conn.next_event(), Retrieve)
    assert conn.wants_message_data
    conn.message_data(b"Subject: x\r\n")
    assert conn.data_to_send() == b"+OK 10 octets\r\nSubject: x\r\n"
    conn.retrieve_failed("disk error")
    assert conn.data_to_send() == b""  # no -ERR inside a message
    assert conn.closed and not conn.wants_message_data
    assert conn.next_event() == Closed("message retrieval failed mid-message")


def test_a_listing_entry_may_be_retrieved_as_an_empty_message() -> None:
    harness = logged_in(driver=FakeDriver(maildrops={"alice": [b""]}))
    assert harness.feed(b"RETR 1\r\n") == b"+OK 0 octets\r\n.\r\n"


# ----------------------------------------------------------- QUIT / UPDATE


def test_quit_in_authorization_ends_without_update(mode: str) -> None:
    harness = Pop3Harness(settings(), mode=mode)
    harness.converse(
        """
        C: QUIT
        S: +OK bye
        """
    )
    assert harness.closed == Closed("quit") and harness.driver.updates == []
    assert harness.conn.state is Pop3State.UPDATE


def test_quit_in_transaction_asks_for_the_update(mode: str) -> None:
    harness = logged_in(mode)
    harness.converse(
        """
        C: TOP 1 0
        C: RETR 2
        C: DELE 3
        C: QUIT
        """
        + "\n".join(
            [
                "S: +OK",
                "S: From: bob@example.test",
                "S: Subject: one",
                "S:",
                "S: .",
                f"S: +OK {S2} octets",
                lines(TWO),
                "S: .",
                "S: +OK message 3 deleted",
                "S: +OK pop.example.test POP3 server signing off (2 messages left)",
            ]
        )
    )
    assert harness.driver.updates == [Update(deleted=(2,), retrieved=(1,))]
    assert harness.closed == Closed("quit")


def test_update_done_texts() -> None:
    harness = logged_in()
    harness.feed(b"DELE 1\r\nDELE 2\r\n")
    assert harness.feed(b"QUIT\r\n") == (
        b"+OK pop.example.test POP3 server signing off (1 message left)\r\n"
    )
    harness = logged_in(driver=FakeDriver(update_ok=False))
    assert harness.feed(b"DELE 1\r\nQUIT\r\n") == (
        b"+OK message 1 deleted\r\n-ERR [SYS/TEMP] disk trouble\r\n"
    )
    assert harness.closed == Closed("quit")
    conn = Pop3ServerConnection(settings())
    conn.start()
    conn.receive_data(b"USER a\r\nPASS b\r\n")
    conn.next_event()
    conn.login_accepted([])
    conn.data_to_send()
    conn.receive_data(b"QUIT\r\n")
    assert conn.next_event() == Update((), ())
    assert conn.state is Pop3State.UPDATE  # RFC 1939 §6: QUIT enters UPDATE
    conn.update_done(False)
    assert conn.data_to_send() == b"-ERR [SYS/TEMP] some deleted messages not removed\r\n"
