"""SMTP server transcripts, continued: limits, closing, and the driver contract (sans-IO).

Each transcript runs twice: every client write fed whole, and octet by octet.
"""

from __future__ import annotations

import pytest

from postoffice.core.envelope import ClientInfo
from postoffice.core.reply import Reply
from postoffice.protocol.errors import ProtocolUsageError
from postoffice.protocol.smtp import (
    BareNewlinePolicy,
    Closed,
    MessageAborted,
    Refused,
    SessionState,
    SmtpReplies,
    SmtpServerConnection,
)
from tests.protocol.smtp_harness import (
    HOST,
    SmtpHarness,
    greeted,
    settings,
    transcript,
)

# ----------------------------------------------------------------- limits


def test_too_many_recipients_gets_452_without_counting_as_errors(mode: str) -> None:
    harness = greeted(mode, max_recipients=2, max_errors=3)
    harness.converse(
        """
        C: MAIL FROM:<a@dbc.test>
        C: RCPT TO:<r1@example.test>
        C: RCPT TO:<r2@example.test>
        C: RCPT TO:<r3@example.test>
        C: RCPT TO:<r4@example.test>
        C: RCPT TO:<r5@example.test>
        C: DATA
        S: 250 2.1.0 Ok
        S: 250 2.1.5 Ok
        S: 250 2.1.5 Ok
        S: 452 4.5.3 Too many recipients
        S: 452 4.5.3 Too many recipients
        S: 452 4.5.3 Too many recipients
        S: 354 End data with <CR><LF>.<CR><LF>
        C: .
        S: 250 2.0.0 Ok: queued as Q1
        """
    )
    [(envelope, _)] = harness.messages
    assert len(envelope.recipients) == 2
    assert harness.conn.error_count == 0


def test_recipient_overshoot_past_its_limit_counts_as_errors() -> None:
    harness = greeted(max_recipients=1, recipient_overshoot_limit=1, max_errors=2)
    harness.converse(
        """
        C: MAIL FROM:<a@dbc.test>
        S: 250 2.1.0 Ok
        C: RCPT TO:<r1@example.test>
        S: 250 2.1.5 Ok
        C: RCPT TO:<r2@example.test>
        S: 452 4.5.3 Too many recipients
        C: RCPT TO:<r3@example.test>
        S: 452 4.5.3 Too many recipients
        C: RCPT TO:<r4@example.test>
        S: 452 4.5.3 Too many recipients
        S: 421 4.7.0 mx.example.test Error: too many errors
        """
    )
    assert harness.closed == Closed("too many errors")


def test_error_limit_tarpit_then_421(mode: str) -> None:
    harness = SmtpHarness(
        settings(max_errors=4, tarpit_after_errors=2, tarpit_delay=1.5), mode=mode
    )
    harness.converse(
        """
        C: BOGUS
        S: 500 5.5.2 Syntax error, command unrecognized
        """
    )
    assert harness.conn.delay_replies == 0.0
    harness.converse(
        """
        C: BOGUS
        S: 500 5.5.2 Syntax error, command unrecognized
        """
    )
    assert harness.conn.delay_replies == 1.5
    harness.converse(
        """
        C: RCPT TO:<x@example.test>
        S: 503 5.5.1 Send HELO/EHLO first
        C: VRFY
        S: 501 5.5.4 Syntax: VRFY address
        S: 421 4.7.0 mx.example.test Error: too many errors
        """
    )
    assert harness.closed == Closed("too many errors")
    assert harness.feed(b"NOOP\r\n") == b""


def test_policy_refusals_count_and_a_delivered_message_resets_the_count() -> None:
    harness = greeted(max_errors=3)
    harness.converse(
        """
        C: MAIL FROM:<a@dbc.test>
        S: 250 2.1.0 Ok
        C: RCPT TO:<nobody@example.test>
        S: 550 5.1.1 No such user here
        C: RCPT TO:<x@other.test>
        S: 554 5.7.1 Relay access denied
        C: RCPT TO:<bob@example.test>
        S: 250 2.1.5 Ok
        C: DATA
        S: 354 End data with <CR><LF>.<CR><LF>
        C: .
        S: 250 2.0.0 Ok: queued as Q1
        """
    )
    assert harness.conn.error_count == 0


def test_line_too_long_is_answered_at_once_and_the_rest_dropped(mode: str) -> None:
    harness = SmtpHarness(settings(max_line_length=512), mode=mode)
    out = harness.feed(b"NOOP " + b"x" * 600)
    assert out == b"500 5.5.2 Line too long\r\n"
    assert harness.conn.buffered_octets <= 512
    assert harness.feed(b"y" * 1000 + b"\r\nNOOP\r\n") == b"250 2.0.0 Ok\r\n"


def test_the_command_after_a_line_too_long_is_not_dropped(mode: str) -> None:
    """The over-long line and its CRLF in one read: only that line is dropped."""
    harness = greeted(mode, max_line_length=512)
    out = harness.feed(b"NOOP " + b"x" * 600 + b"\r\n")
    assert out == b"500 5.5.2 Line too long\r\n"
    assert harness.feed(b"NOOP\r\n") == b"250 2.0.0 Ok\r\n"
    out = harness.feed(b"MAIL FROM:<" + b"a" * 2000 + b"@dbc.test>\r\nRSET\r\n")
    assert out == b"500 5.5.2 Line too long\r\n250 2.0.0 Ok\r\n"


def test_a_line_of_exactly_the_limit_is_accepted() -> None:
    harness = SmtpHarness(settings(max_line_length=512))
    line = b"NOOP " + b"x" * (512 - 7) + b"\r\n"
    assert len(line) == 512
    assert harness.feed(line) == b"250 2.0.0 Ok\r\n"
    assert harness.feed(b"NOOP " + b"x" * (512 - 6) + b"\r\n") == b"500 5.5.2 Line too long\r\n"


def test_ten_megabytes_without_crlf_keep_memory_bounded() -> None:
    harness = SmtpHarness()
    replies = bytearray()
    block = b"A" * 65536
    for _ in range(160):  # 10 MiB
        replies += harness.feed(block)
        assert harness.conn.buffered_octets <= 2048
    assert replies == b"500 5.5.2 Line too long\r\n"
    assert harness.feed(b"\r\nQUIT\r\n") == b"221 2.0.0 Bye\r\n"


def test_message_over_the_size_limit(mode: str) -> None:
    harness = greeted(mode, max_message_size=1024)
    harness.converse(
        """
        C: MAIL FROM:<a@dbc.test>
        C: RCPT TO:<bob@example.test>
        C: DATA
        S: 250 2.1.0 Ok
        S: 250 2.1.5 Ok
        S: 354 End data with <CR><LF>.<CR><LF>
        """
    )
    body = b"".join(b"line %04d " % i + b"x" * 40 + b"\r\n" for i in range(100))
    assert harness.feed(body) == b""
    assert harness.aborted == [
        MessageAborted("message size limit exceeded", SmtpReplies.MESSAGE_TOO_BIG)
    ]
    assert harness.conn.buffered_octets < 8
    out = harness.feed(b".\r\n")
    assert out == b"552 5.3.4 Message size exceeds fixed maximum message size\r\n"
    assert harness.messages == []
    harness.converse(
        """
        C: MAIL FROM:<a@dbc.test>
        C: RCPT TO:<bob@example.test>
        C: DATA
        S: 250 2.1.0 Ok
        S: 250 2.1.5 Ok
        S: 354 End data with <CR><LF>.<CR><LF>
        C: small
        C: .
        S: 250 2.0.0 Ok: queued as Q1
        """
    )


def test_message_of_exactly_the_limit_is_accepted() -> None:
    harness = greeted(max_message_size=1024)
    harness.feed(b"MAIL FROM:<a@dbc.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
    body = b"x" * 1022 + b"\r\n"
    assert harness.feed(body + b".\r\n") == b"250 2.0.0 Ok: queued as Q1\r\n"
    assert harness.messages[0][1] == body


def test_driver_can_fail_a_message_in_progress() -> None:
    harness = greeted()
    harness.feed(b"MAIL FROM:<a@dbc.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
    harness.feed(b"part one\r\n")
    harness.conn.fail_message(Reply(452, "4.3.1", "Insufficient system storage"))
    assert harness.feed(b"part two\r\n.\r\n") == b"452 4.3.1 Insufficient system storage\r\n"
    assert harness.messages == []
    with pytest.raises(ProtocolUsageError):
        harness.conn.fail_message(SmtpReplies.LOCAL_ERROR)


# ------------------------------------------------------------- closing


def test_quit_closes(mode: str) -> None:
    harness = transcript("C: QUIT\nS: 221 2.0.0 Bye", mode=mode)
    assert harness.conn.closed
    assert harness.conn.state is SessionState.CLOSED


def test_quit_with_an_argument_still_closes() -> None:
    harness = transcript("C: QUIT now\nS: 221 2.0.0 Bye")
    assert harness.closed == Closed("quit")


def test_client_eof_mid_message_aborts_it() -> None:
    harness = greeted()
    harness.feed(b"MAIL FROM:<a@dbc.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
    harness.feed(b"half a message\r\n")
    harness.conn.receive_data(b"")
    assert harness.run() == b""
    assert harness.aborted[-1].reason == "client closed the connection during the message"
    assert harness.closed is not None


def test_client_eof_between_commands() -> None:
    harness = greeted()
    harness.conn.receive_data(b"NOOP")  # unterminated
    harness.conn.receive_data(b"")
    harness.run()
    assert harness.closed == Closed("client closed the connection")


def test_driver_close_with_timeout_reply_aborts_the_message() -> None:
    harness = greeted()
    harness.feed(b"MAIL FROM:<a@dbc.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
    harness.feed(b"slow")
    out = harness.conn.close(SmtpReplies.timeout(HOST))
    assert out == b"421 4.4.2 mx.example.test Error: timeout exceeded\r\n"
    harness.run()
    assert [a.reason for a in harness.aborted] == ["closed by the server"]


def test_a_421_from_the_driver_closes_the_session() -> None:
    harness = greeted()
    harness.converse(
        """
        C: MAIL FROM:<a@dbc.test>
        S: 250 2.1.0 Ok
        """
    )
    harness.conn.receive_data(b"RCPT TO:<bob@example.test>\r\n")
    event = harness.conn.next_event()
    out = harness.conn.send(SmtpReplies.shutting_down(HOST))
    assert out.startswith(b"421 4.3.2 ")
    assert harness.conn.next_event() == Closed("closed by the server")
    assert event is not None


def test_rejected_greeting_allows_only_quit(mode: str) -> None:
    harness = SmtpHarness(mode=mode, start=False)
    greeting = harness.conn.start(reject=Reply(554, "5.7.1", "Access denied"))
    assert greeting == b"554 5.7.1 Access denied\r\n"
    harness.converse(
        """
        C: EHLO c.test
        S: 503 5.5.1 Bad sequence of commands, only QUIT is accepted
        C: MAIL FROM:<a@dbc.test>
        S: 503 5.5.1 Bad sequence of commands, only QUIT is accepted
        C: QUIT
        S: 221 2.0.0 Bye
        """
    )


def test_greeting_refused_with_421_closes_at_once() -> None:
    harness = SmtpHarness(start=False)
    out = harness.conn.start(reject=Reply(421, "4.7.0", "mx.example.test Too busy"))
    assert out == b"421 4.7.0 mx.example.test Too busy\r\n"
    assert harness.conn.next_event() == Closed("connection refused")


def test_forbidden_non_smtp_command_closes() -> None:
    harness = SmtpHarness()
    out = harness.feed(b"GET / HTTP/1.1\r\nHost: mx\r\n\r\n")
    assert out == b"221 2.7.0 Error: non-SMTP command, closing connection\r\n"
    assert harness.closed == Closed("non-SMTP command GET")


# ----------------------------------------------------------- driver misuse


def test_driver_contract_is_enforced() -> None:
    conn = SmtpHarness(start=False).conn
    with pytest.raises(ProtocolUsageError):
        conn.next_event()
    conn.start()
    with pytest.raises(ProtocolUsageError):
        conn.start()
    with pytest.raises(ProtocolUsageError):
        conn.send(SmtpReplies.OK)
    conn.receive_data(b"EHLO c.test\r\n")
    conn.next_event()
    with pytest.raises(ProtocolUsageError):
        conn.next_event()  # the Hello decision is unanswered
    with pytest.raises(ProtocolUsageError):
        conn.send(SmtpReplies.START_MAIL_INPUT)  # 3xx answers no decision
    conn.send(SmtpReplies.HELLO_OK)
    with pytest.raises(ProtocolUsageError):
        conn.tls_started("TLSv1.3", "x")


def test_refusals_are_reported_for_the_log() -> None:
    harness = transcript("C: BOGUS\nS: 500 5.5.2 Syntax error, command unrecognized")
    assert Refused("BOGUS", SmtpReplies.COMMAND_UNRECOGNIZED) in harness.events


def test_reply_text_from_the_driver_cannot_inject_lines() -> None:
    harness = greeted(expn_enabled=True)
    harness.conn.receive_data(b"EXPN x\r\n")
    harness.conn.next_event()
    out = harness.conn.send(Reply(550, "5.1.1", "no\r\n250 2.0.0 fake"))
    # each line gets the refusal's own code: no "250" line can be forged
    assert out == b"550-5.1.1 no\r\n550 5.1.1 250 2.0.0 fake\r\n"


def test_bare_lf_command_lines_are_accepted_under_normalize() -> None:
    harness = SmtpHarness()
    assert harness.feed(b"EHLO c.test\n").startswith(b"250-mx.example.test\r\n")
    assert harness.feed(b"NOOP\n") == b"250 2.0.0 Ok\r\n"


def test_bare_lf_command_lines_close_under_reject() -> None:
    harness = SmtpHarness(settings(bare_newline=BareNewlinePolicy.REJECT))
    assert harness.feed(b"EHLO c.test\n") == b"550 5.5.2 Error: bare <LF> received\r\n"
    assert harness.closed == Closed("bare <LF> received")


def test_empty_line_pipelined_is_a_synchronisation_error() -> None:
    harness = SmtpHarness()
    assert harness.feed(b"\r\nNOOP\r\n") == b"554 5.5.0 Error: SMTP protocol synchronization\r\n"
    assert harness.closed == Closed("improper command pipelining after an empty line")


def test_client_info_is_carried_into_the_envelope() -> None:
    conn = SmtpServerConnection(settings(), ClientInfo(address="192.0.2.7", port=4242))
    harness = SmtpHarness()
    harness.conn = conn
    conn.start()
    harness.feed(b"EHLO c.test\r\n")
    harness.feed(b"MAIL FROM:<a@dbc.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
    harness.feed(b".\r\n")
    client = harness.messages[0][0].client
    assert (client.address, client.port, client.helo, client.protocol) == (
        "192.0.2.7",
        4242,
        "c.test",
        "ESMTP",
    )
