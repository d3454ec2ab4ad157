"""Transcripts for the extensions: PIPELINING, CHUNKING/BDAT, STARTTLS, AUTH."""

from __future__ import annotations

import base64

import pytest

from postoffice.protocol.smtp import (
    AuthCredentials,
    Closed,
    MailFrom,
    MessageAborted,
    SessionState,
    SmtpReplies,
)
from tests.protocol.smtp_harness import (
    TLS_CIPHER,
    TLS_VERSION,
    SmtpHarness,
    greeted,
    settings,
)

ENVELOPE = """
    C: MAIL FROM:<a@dbc.test>
    C: RCPT TO:<bob@example.test>
    S: 250 2.1.0 Ok
    S: 250 2.1.5 Ok
"""


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


PLAIN_ALICE = b64("\0alice\0secret")
PLAIN_ALICE_AS_ALICE = b64("alice\0alice\0secret")


# ------------------------------------------------------------- PIPELINING


def test_commands_sent_before_the_greeting_are_refused_like_postfix() -> None:
    harness = SmtpHarness(start=False)
    harness.conn.receive_data(b"EHLO early.test\r\n")
    assert harness.conn.early_talker
    out = harness.conn.start()
    assert out == b"554 5.5.0 Error: SMTP protocol synchronization\r\n"
    assert harness.run() == b""
    assert harness.closed == Closed("client spoke before the greeting")


def test_early_talker_tolerated_when_pipelining_checks_are_off() -> None:
    harness = SmtpHarness(settings(forbid_unauth_pipelining=False), start=False)
    harness.conn.receive_data(b"NOOP\r\n")
    assert harness.conn.start().startswith(b"220 ")
    assert harness.run() == b"250 2.0.0 Ok\r\n"
    assert harness.conn.early_talker


@pytest.mark.parametrize(
    "write",
    [
        b"EHLO c.test\r\nMAIL FROM:<a@dbc.test>\r\n",  # EHLO must end a group
        b"HELO c.test\r\nMAIL FROM:<a@dbc.test>\r\n",
        b"NOOP\r\nNOOP\r\n",  # NOOP is a synchronisation point (RFC 2920 §3.1)
        b"BOGUS\r\nNOOP\r\n",  # unknown commands must end a group too
        b"VRFY bob\r\nNOOP\r\n",
    ],
)
def test_commands_pipelined_behind_a_group_ender_are_refused(write: bytes) -> None:
    harness = SmtpHarness()
    assert harness.feed(write) == b"554 5.5.0 Error: SMTP protocol synchronization\r\n"
    assert harness.closed is not None
    assert "improper command pipelining" in harness.closed.reason


def test_pipelining_without_ehlo_is_refused() -> None:
    harness = SmtpHarness()
    assert harness.feed(b"HELO c.test\r\n") == b"250 mx.example.test\r\n"
    out = harness.feed(b"MAIL FROM:<a@dbc.test>\r\nRCPT TO:<bob@example.test>\r\n")
    assert out == b"554 5.5.0 Error: SMTP protocol synchronization\r\n"


def test_message_content_sent_without_waiting_for_354_is_refused() -> None:
    harness = greeted()
    out = harness.feed(
        b"MAIL FROM:<a@dbc.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
        b"Subject: x\r\n\r\nhi\r\n.\r\n"
    )
    assert out == (
        b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n554 5.5.0 Error: SMTP protocol synchronization\r\n"
    )
    assert harness.messages == []


def test_pipelining_checks_can_be_switched_off() -> None:
    harness = SmtpHarness(settings(forbid_unauth_pipelining=False))
    out = harness.feed(b"EHLO c.test\r\nNOOP\r\nQUIT\r\n")
    assert out.endswith(b"250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n")


# ------------------------------------------------------------------- BDAT


def test_rfc3030_single_chunk(mode: str) -> None:
    harness = greeted(mode)
    body = b"Subject: hi\r\n\r\nfirst line\r\n.leading dot kept\r\n"
    harness.converse(ENVELOPE)
    out = harness.feed(b"BDAT %d LAST\r\n" % len(body) + body)
    assert out == b"250 2.0.0 Ok: queued as Q1\r\n"
    [(_, message)] = harness.messages
    assert message == body  # no dot-unstuffing with BDAT (RFC 3030 §2)


def test_rfc3030_pipelined_chunks(mode: str) -> None:
    harness = greeted(mode)
    one, two = b"Subject: big\r\n\r\nfirst part ", b"second part\r\n"
    write = (
        b"MAIL FROM:<a@dbc.test>\r\nRCPT TO:<bob@example.test>\r\n"
        + b"BDAT %d\r\n" % len(one)
        + one
        + b"BDAT %d LAST\r\n" % len(two)
        + two
        + b"QUIT\r\n"
    )
    assert harness.feed(write) == (
        b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
        + b"250 2.0.0 Ok: %d octets received\r\n" % len(one)
        + b"250 2.0.0 Ok: queued as Q1\r\n221 2.0.0 Bye\r\n"
    )
    assert harness.messages[0][1] == one + two


def test_bdat_zero_last_ends_the_message(mode: str) -> None:
    harness = greeted(mode)
    harness.converse(
        ENVELOPE
        + """
        C: BDAT 5
        C: abc
        S: 250 2.0.0 Ok: 5 octets received
        C: BDAT 0 LAST
        S: 250 2.0.0 Ok: queued as Q1
        """
    )
    assert harness.messages[0][1] == b"abc\r\n"


def test_bdat_errors_still_consume_their_octets(mode: str) -> None:
    harness = greeted(mode)
    # RFC 3030 §2: the 10 octets after a refused BDAT are data, not commands.
    assert harness.feed(b"BDAT 10\r\nQUIT\r\nQUIT") == b"503 5.5.1 Need MAIL command\r\n"
    harness.converse(
        """
        C: MAIL FROM:<a@dbc.test>
        S: 250 2.1.0 Ok
        """
    )
    assert harness.feed(b"BDAT 6 LAST\r\nNOOP\r\n") == b"554 5.5.1 No valid recipients\r\n"
    assert not harness.conn.closed


def test_bdat_syntax_errors(mode: str) -> None:
    harness = greeted(mode)
    harness.converse(
        ENVELOPE
        + """
        C: BDAT
        S: 501 5.5.4 Syntax: BDAT count [LAST]
        C: BDAT ten LAST
        S: 501 5.5.4 Syntax: BDAT count [LAST]
        C: BDAT 5 FIRST
        S: 501 5.5.4 Syntax: BDAT count [LAST]
        C: BDAT -1
        S: 501 5.5.4 Syntax: BDAT count [LAST]
        """
    )


def test_data_after_bdat_is_refused(mode: str) -> None:
    harness = greeted(mode)
    harness.converse(
        ENVELOPE
        + """
        C: BDAT 3
        C: a
        S: 250 2.0.0 Ok: 3 octets received
        C: DATA
        S: 503 5.5.1 DATA not allowed after BDAT
        C: MAIL FROM:<a@dbc.test>
        S: 503 5.5.1 Nested MAIL command
        C: RSET
        S: 250 2.0.0 Ok
        """
    )
    assert harness.messages == []


def test_bdat_over_the_size_limit_fails_the_transaction(mode: str) -> None:
    harness = greeted(mode, max_message_size=1000)
    harness.converse(ENVELOPE)
    chunk = b"x" * 998 + b"\r\n"
    out = harness.feed(b"BDAT 1000\r\n" + chunk)
    assert out == b"250 2.0.0 Ok: 1000 octets received\r\n"
    out = harness.feed(b"BDAT 8\r\nmore\r\n\r\nBDAT 3 LAST\r\nend")
    assert out == (
        b"552 5.3.4 Message size exceeds fixed maximum message size\r\n"
        b"503 5.5.1 Need MAIL command\r\n"
    )
    assert [a.reason for a in harness.aborted] == ["message size limit exceeded"]
    assert harness.messages == []
    assert harness.conn.state is SessionState.READY


def test_bdat_line_ends_normalised_across_chunks() -> None:
    harness = greeted()
    harness.converse(ENVELOPE)
    harness.feed(b"BDAT 3\r\nab\r")  # the CR waits for the next chunk
    harness.feed(b"BDAT 5 LAST\r\n\ncd\ne")
    [(_, message)] = harness.messages
    assert message == b"ab\r\ncd\r\ne"


# --------------------------------------------------------------- STARTTLS


def test_starttls_restarts_the_session(mode: str) -> None:
    harness = SmtpHarness(settings(starttls_available=True, auth_mechanisms=("PLAIN",)), mode=mode)
    harness.converse(
        """
        C: EHLO c.test
        S: 250-mx.example.test
        S: 250-PIPELINING
        S: 250-SIZE 10485760
        S: 250-STARTTLS
        S: 250-ENHANCEDSTATUSCODES
        S: 250-8BITMIME
        S: 250-DSN
        S: 250-SMTPUTF8
        S: 250 CHUNKING
        C: STARTTLS
        S: 220 2.0.0 Ready to start TLS
        C: MAIL FROM:<a@dbc.test>
        S: 503 5.5.1 Send HELO/EHLO first
        C: EHLO c.test
        S: 250-mx.example.test
        S: 250-PIPELINING
        S: 250-SIZE 10485760
        S: 250-AUTH PLAIN
        S: 250-ENHANCEDSTATUSCODES
        S: 250-8BITMIME
        S: 250-DSN
        S: 250-SMTPUTF8
        S: 250 CHUNKING
        C: STARTTLS
        S: 503 5.5.1 TLS already active
        C: MAIL FROM:<a@dbc.test>
        C: RCPT TO:<bob@example.test>
        C: DATA
        S: 250 2.1.0 Ok
        S: 250 2.1.5 Ok
        S: 354 End data with <CR><LF>.<CR><LF>
        C: .
        S: 250 2.0.0 Ok: queued as Q1
        """
    )
    client = harness.messages[0][0].client
    assert (client.protocol, client.tls_version, client.tls_cipher) == (
        "ESMTPS",
        TLS_VERSION,
        TLS_CIPHER,
    )


def test_commands_pipelined_behind_starttls_are_discarded() -> None:
    """The STARTTLS command injection (CVE-2011-0411 and the 2021 findings)."""
    harness = greeted(starttls_available=True)
    injected = b"MAIL FROM:<attacker@evil.test>\r\nRCPT TO:<bob@example.test>\r\n"
    out = harness.feed(b"STARTTLS\r\n" + injected)
    assert out == b"220 2.0.0 Ready to start TLS\r\n"
    assert harness.conn.discarded_plaintext_octets == len(injected)
    # after the handshake the session starts over: nothing injected survived
    assert harness.conn.state is SessionState.CONNECTED
    assert harness.feed(b"RCPT TO:<bob@example.test>\r\n").startswith(b"503 ")
    assert not harness.decisions(MailFrom)  # the policy was never even asked


def test_plaintext_fed_during_the_handshake_is_discarded() -> None:
    harness = greeted(starttls_available=True)
    harness.conn.receive_data(b"STARTTLS\r\n")
    harness.conn.next_event()  # StartTls
    harness.conn.send(SmtpReplies.READY_TO_START_TLS)
    harness.conn.receive_data(b"MAIL FROM:<x@evil.test>\r\n")
    assert harness.conn.next_event().__class__.__name__ == "NeedData"
    harness.conn.tls_started(TLS_VERSION, TLS_CIPHER)
    assert harness.conn.buffered_octets == 0
    assert harness.conn.discarded_plaintext_octets == 25


def test_starttls_refusals(mode: str) -> None:
    harness = greeted(mode)
    harness.converse(
        """
        C: STARTTLS
        S: 502 5.5.1 STARTTLS not available
        """
    )
    harness = greeted(mode, starttls_available=True)
    harness.converse(
        """
        C: STARTTLS now
        S: 501 5.5.4 Syntax: STARTTLS
        C: MAIL FROM:<a@dbc.test>
        S: 250 2.1.0 Ok
        C: STARTTLS
        S: 503 5.5.1 Mail transaction in progress
        """
    )


def test_starttls_refused_by_the_driver_keeps_plaintext() -> None:
    harness = greeted(starttls_available=True)
    harness.conn.receive_data(b"STARTTLS\r\n")
    harness.conn.next_event()
    out = harness.conn.send(SmtpReplies.TLS_NOT_AVAILABLE)
    assert out == b"454 4.7.0 TLS not available due to temporary reason\r\n"
    assert harness.conn.state is SessionState.READY
    assert not harness.conn.is_tls


# ------------------------------------------------------------------- AUTH

AUTH_SETTINGS = {"auth_mechanisms": ("PLAIN", "LOGIN"), "is_tls": True}


def test_rfc4954_plain_with_initial_response(mode: str) -> None:
    harness = greeted(mode, **AUTH_SETTINGS)
    assert b"250-AUTH PLAIN LOGIN\r\n" in harness.greeting
    harness.converse(
        f"""
        C: AUTH PLAIN {PLAIN_ALICE}
        S: 235 2.7.0 Authentication successful
        C: AUTH PLAIN {PLAIN_ALICE}
        S: 503 5.5.1 Already authenticated
        """
    )
    assert harness.conn.authenticated_as == "alice"
    harness.converse(ENVELOPE)
    harness.feed(b"DATA\r\n")
    harness.feed(b".\r\n")
    client = harness.messages[0][0].client
    assert (client.protocol, client.authenticated_as) == ("ESMTPSA", "alice")
    [event] = harness.decisions(AuthCredentials)
    assert isinstance(event, AuthCredentials)
    assert (event.mechanism, event.authzid, event.username) == ("PLAIN", None, "alice")
    assert "secret" not in repr(event)


def test_plain_without_initial_response_gets_an_empty_challenge(mode: str) -> None:
    harness = greeted(mode, **AUTH_SETTINGS)
    harness.converse(
        f"""
        C: AUTH PLAIN
        S: 334
        C: {PLAIN_ALICE_AS_ALICE}
        S: 235 2.7.0 Authentication successful
        """
    )


def test_login_mechanism(mode: str) -> None:
    harness = greeted(mode, **AUTH_SETTINGS)
    harness.converse(
        f"""
        C: AUTH LOGIN
        S: 334 VXNlcm5hbWU6
        C: {b64("alice")}
        S: 334 UGFzc3dvcmQ6
        C: {b64("wrong")}
        S: 535 5.7.8 Authentication credentials invalid
        C: AUTH LOGIN {b64("alice")}
        S: 334 UGFzc3dvcmQ6
        C: {b64("secret")}
        S: 235 2.7.0 Authentication successful
        """
    )


def test_auth_cancel_bad_base64_and_malformed(mode: str) -> None:
    harness = greeted(mode, **AUTH_SETTINGS)
    harness.converse(
        f"""
        C: AUTH LOGIN
        S: 334 VXNlcm5hbWU6
        C: *
        S: 501 5.7.0 Authentication aborted
        C: AUTH PLAIN
        S: 334
        C: not base64!
        S: 501 5.5.2 Cannot decode authentication response
        C: AUTH PLAIN {b64("no separators")}
        S: 501 5.5.2 Malformed authentication response
        C: AUTH PLAIN =
        S: 501 5.5.2 Malformed authentication response
        C: AUTH PLAIN *
        S: 501 5.7.0 Authentication aborted
        C: AUTH CRAM-MD5
        S: 504 5.5.4 Unrecognized authentication type
        C: AUTH
        S: 501 5.5.4 Syntax: AUTH mechanism [initial-response]
        C: NOOP
        S: 250 2.0.0 Ok
        """
    )
    assert harness.conn.authenticated_as is None


def test_auth_line_too_long(mode: str) -> None:
    harness = greeted(mode, max_line_length=512, **AUTH_SETTINGS)
    harness.converse("C: AUTH PLAIN\nS: 334")
    out = harness.feed(b"A" * 600 + b"\r\n")
    assert out == b"500 5.5.6 Authentication exchange line is too long\r\n"
    assert harness.conn.state is SessionState.READY


def test_auth_is_refused_where_not_allowed(mode: str) -> None:
    harness = greeted(mode)
    harness.converse("C: AUTH PLAIN\nS: 503 5.5.1 Authentication not enabled")
    harness = greeted(mode, auth_mechanisms=("PLAIN",))
    harness.converse(
        f"""
        C: AUTH PLAIN {PLAIN_ALICE}
        S: 538 5.7.11 Encryption required for requested authentication mechanism
        """
    )
    harness = greeted(mode, **AUTH_SETTINGS)
    harness.converse(
        f"""
        C: MAIL FROM:<a@dbc.test>
        S: 250 2.1.0 Ok
        C: AUTH PLAIN {PLAIN_ALICE}
        S: 503 5.5.1 AUTH not permitted during a transaction
        """
    )
    harness = SmtpHarness(settings(**AUTH_SETTINGS))
    harness.converse("C: AUTH PLAIN\nS: 503 5.5.1 Send EHLO first")


def test_authzid_must_be_allowed_by_the_driver() -> None:
    harness = greeted(**AUTH_SETTINGS)
    out = harness.feed(b"AUTH PLAIN " + b64("root\0alice\0secret").encode() + b"\r\n")
    assert out == b"535 5.7.8 Authentication credentials invalid\r\n"


def test_connection_lost_mid_message_with_bdat() -> None:
    harness = greeted()
    harness.converse(ENVELOPE)
    harness.feed(b"BDAT 100\r\nonly part")
    harness.conn.receive_data(b"")
    harness.run()
    assert harness.aborted == [
        MessageAborted("client closed the connection during the message", None)
    ]
