"""Conversation transcripts for every SMTP command, reply and error path (sans-IO).

Each transcript runs twice: every client write fed whole, and octet by octet.
"""

from __future__ import annotations

from postoffice.core.reply import Reply
from postoffice.protocol.smtp import (
    Closed,
    MailFrom,
    SessionState,
)
from tests.protocol.smtp_harness import (
    EHLO,
    HELP,
    HOST,
    ScriptedPolicy,
    SmtpHarness,
    greeted,
    settings,
    transcript,
)

# --------------------------------------------------------------- greeting


def test_greeting_and_ehlo_list_every_extension(mode: str) -> None:
    transcript(
        f"""
        S: 220 mx.example.test ESMTP postoffice
        C: EHLO client.test
        {EHLO}
        """,
        mode=mode,
    )


def test_helo_gets_a_plain_250_without_extensions(mode: str) -> None:
    harness = transcript(
        """
        S: 220 mx.example.test ESMTP postoffice
        C: HELO client.test
        S: 250 mx.example.test
        """,
        mode=mode,
    )
    assert harness.conn.helo_name == "client.test"
    assert harness.conn.state is SessionState.READY


def test_ehlo_refused_by_policy_keeps_the_session_unnamed(mode: str) -> None:
    harness = transcript(
        """
        C: EHLO rejected.test
        S: 550 5.7.1 Access denied
        C: MAIL FROM:<a@example.test>
        S: 503 5.5.1 Send HELO/EHLO first
        """,
        mode=mode,
    )
    assert harness.conn.helo_name is None


def test_ehlo_and_helo_need_exactly_one_argument(mode: str) -> None:
    transcript(
        """
        C: EHLO
        S: 501 5.5.4 Syntax: EHLO hostname
        C: HELO
        S: 501 5.5.4 Syntax: HELO hostname
        C: HELO two words
        S: 501 5.5.4 Syntax: HELO hostname
        C: EHLO [192.0.2.1]
        """
        + EHLO,
        mode=mode,
    )


def test_size_zero_advertises_no_fixed_limit() -> None:
    harness = SmtpHarness(settings(max_message_size=0))
    assert b"250-SIZE\r\n" in harness.feed(b"EHLO c.test\r\n")


def test_starttls_and_auth_are_advertised_only_when_usable() -> None:
    plain = SmtpHarness(settings(starttls_available=True, auth_mechanisms=("PLAIN", "LOGIN")))
    lines = plain.feed(b"EHLO c.test\r\n").decode().split("\r\n")
    assert "250-STARTTLS" in lines
    assert not any("AUTH" in line for line in lines)  # RFC 4954 §4 via smtpd_tls_auth_only
    loopback = SmtpHarness(settings(auth_mechanisms=("PLAIN",), auth_requires_tls=False))
    assert b"250-AUTH PLAIN\r\n" in loopback.feed(b"EHLO c.test\r\n")


# ------------------------------------------------------------ transactions


def test_rfc5321_appendix_d1_transaction(mode: str) -> None:
    harness = transcript(
        """
        S: 220 mx.example.test ESMTP postoffice
        C: EHLO bar.test
        """
        + EHLO
        + """
        C: MAIL FROM:<Smith@bar.test>
        S: 250 2.1.0 Ok
        C: RCPT TO:<Jones@example.test>
        S: 250 2.1.5 Ok
        C: RCPT TO:<Green@other.test>
        S: 554 5.7.1 Relay access denied
        C: RCPT TO:<Brown@example.test>
        S: 250 2.1.5 Ok
        C: DATA
        S: 354 End data with <CR><LF>.<CR><LF>
        C: Blah blah blah...
        C: ...etc. etc. etc.
        C: .
        S: 250 2.0.0 Ok: queued as Q1
        C: QUIT
        S: 221 2.0.0 Bye
        """,
        mode=mode,
    )
    [(envelope, message)] = harness.messages
    assert message == b"Blah blah blah...\r\n..etc. etc. etc.\r\n"  # one dot unstuffed
    assert str(envelope.sender) == "Smith@bar.test"
    assert [str(r.address) for r in envelope.recipients] == [
        "Jones@example.test",
        "Brown@example.test",
    ]
    assert envelope.client.helo == "bar.test"
    assert envelope.client.protocol == "ESMTP"
    assert harness.closed == Closed("quit")


def test_rfc2920_pipelined_transaction(mode: str) -> None:
    """RFC 2920 §3.2: MAIL, RCPTs and DATA in one write; content, "." and QUIT in another."""
    harness = greeted(mode)
    harness.converse(
        """
        C: MAIL FROM:<mrose@dbc.test>
        C: RCPT TO:<ned@example.test>
        C: RCPT TO:<dan@example.test>
        C: RCPT TO:<kvc@example.test>
        C: DATA
        S: 250 2.1.0 Ok
        S: 250 2.1.5 Ok
        S: 250 2.1.5 Ok
        S: 250 2.1.5 Ok
        S: 354 End data with <CR><LF>.<CR><LF>
        C: Date: Thurs, 21 May 1998 05:33:29 -0700
        C: From: Marshall Rose <mrose@dbc.test>
        C: Subject: Pipelining
        C:
        C: Unstuffed .
        C: ..stuffed
        C: .
        C: QUIT
        S: 250 2.0.0 Ok: queued as Q1
        S: 221 2.0.0 Bye
        """
    )
    [(envelope, message)] = harness.messages
    assert len(envelope.recipients) == 3
    assert message.endswith(b"\r\nUnstuffed .\r\n.stuffed\r\n")


def test_rfc2920_data_after_all_recipients_failed_is_refused(mode: str) -> None:
    harness = greeted(mode)
    harness.converse(
        """
        C: MAIL FROM:<a@dbc.test>
        C: RCPT TO:<nobody@example.test>
        C: RCPT TO:<x@elsewhere.test>
        C: DATA
        S: 250 2.1.0 Ok
        S: 550 5.1.1 No such user here
        S: 554 5.7.1 Relay access denied
        S: 554 5.5.1 No valid recipients
        C: RSET
        S: 250 2.0.0 Ok
        """
    )
    assert harness.messages == []


def test_second_transaction_on_the_same_session(mode: str) -> None:
    harness = greeted(mode)
    for n in (1, 2):
        harness.converse(
            f"""
            C: MAIL FROM:<a@dbc.test>
            C: RCPT TO:<bob@example.test>
            C: DATA
            S: 250 2.1.0 Ok
            S: 250 2.1.5 Ok
            S: 354 End data with <CR><LF>.<CR><LF>
            C: message {n}
            C: .
            S: 250 2.0.0 Ok: queued as Q{n}
            """
        )
    assert [m for _, m in harness.messages] == [b"message 1\r\n", b"message 2\r\n"]


def test_empty_message(mode: str) -> None:
    harness = greeted(mode)
    harness.converse(
        """
        C: MAIL FROM:<>
        C: RCPT TO:<bob@example.test>
        C: DATA
        S: 250 2.1.0 Ok
        S: 250 2.1.5 Ok
        S: 354 End data with <CR><LF>.<CR><LF>
        C: .
        S: 250 2.0.0 Ok: queued as Q1
        """
    )
    [(envelope, message)] = harness.messages
    assert message == b""
    assert envelope.sender is None


def test_message_refused_by_the_driver_ends_the_transaction(mode: str) -> None:
    policy = ScriptedPolicy(refuse_messages=Reply(451, "4.3.0", "Queue file write error"))
    harness = SmtpHarness(settings(), mode=mode, policy=policy)
    harness.converse(
        "C: EHLO c.test\n"
        + EHLO
        + """
        C: MAIL FROM:<a@dbc.test>
        C: RCPT TO:<bob@example.test>
        C: DATA
        S: 250 2.1.0 Ok
        S: 250 2.1.5 Ok
        S: 354 End data with <CR><LF>.<CR><LF>
        C: text
        C: .
        S: 451 4.3.0 Queue file write error
        C: RCPT TO:<bob@example.test>
        S: 503 5.5.1 Need MAIL command
        """
    )


def test_null_sender_source_route_and_postmaster(mode: str) -> None:
    harness = greeted(mode)
    harness.converse(
        """
        C: MAIL FROM:<>
        S: 250 2.1.0 Ok
        C: RCPT TO:<@relay1.test,@relay2.test:bob@example.test>
        S: 250 2.1.5 Ok
        C: RCPT TO:<Postmaster>
        S: 554 5.7.1 Relay access denied
        """
    )
    [mail] = harness.decisions(MailFrom)
    assert isinstance(mail, MailFrom) and mail.sender is None
    rcpts = [str(e.recipient) for e in harness.events if hasattr(e, "recipient")]
    # the route is ignored (RFC 5321 §3.6.1); <Postmaster> gets the postmaster domain
    assert rcpts == ["bob@example.test", f"postmaster@{HOST}"]


def test_postmaster_domain_setting_completes_bare_postmaster() -> None:
    harness = greeted(postmaster_domain="example.test")
    harness.converse(
        """
        C: MAIL FROM:<>
        S: 250 2.1.0 Ok
        C: RCPT TO:<POSTMASTER>
        S: 250 2.1.5 Ok
        """
    )


def test_duplicate_recipients_are_kept_once(mode: str) -> None:
    harness = greeted(mode)
    harness.converse(
        """
        C: MAIL FROM:<a@dbc.test>
        C: RCPT TO:<Bob@example.test>
        C: RCPT TO:<bob@EXAMPLE.test>
        C: DATA
        S: 250 2.1.0 Ok
        S: 250 2.1.5 Ok
        S: 250 2.1.5 Ok
        S: 354 End data with <CR><LF>.<CR><LF>
        C: .
        S: 250 2.0.0 Ok: queued as Q1
        """
    )
    [(envelope, _)] = harness.messages
    assert len(envelope.recipients) == 1


def test_ehlo_in_a_transaction_resets_it(mode: str) -> None:
    harness = greeted(mode)
    harness.converse(
        """
        C: MAIL FROM:<a@dbc.test>
        S: 250 2.1.0 Ok
        C: EHLO again.test
        """
        + EHLO
        + """
        C: RCPT TO:<bob@example.test>
        S: 503 5.5.1 Need MAIL command
        """
    )


# ------------------------------------------------------------------ sequence


def test_sequence_errors(mode: str) -> None:
    transcript(
        """
        C: MAIL FROM:<a@dbc.test>
        S: 503 5.5.1 Send HELO/EHLO first
        C: RCPT TO:<bob@example.test>
        S: 503 5.5.1 Send HELO/EHLO first
        C: DATA
        S: 503 5.5.1 Send HELO/EHLO first
        C: STARTTLS
        S: 503 5.5.1 Send EHLO first
        C: EHLO c.test
        """
        + EHLO
        + """
        C: RCPT TO:<bob@example.test>
        S: 503 5.5.1 Need MAIL command
        C: DATA
        S: 503 5.5.1 Need MAIL command
        C: MAIL FROM:<a@dbc.test>
        S: 250 2.1.0 Ok
        C: MAIL FROM:<a@dbc.test>
        S: 503 5.5.1 Nested MAIL command
        C: DATA
        S: 554 5.5.1 No valid recipients
        """,
        mode=mode,
    )


def test_mail_before_helo_is_allowed_when_configured() -> None:
    # RFC 5321 §4.1.4 lets a server require HELO (default here); Postfix's
    # smtpd_helo_required=no behaviour is one setting away.
    harness = SmtpHarness(settings(require_helo=False))
    harness.converse(
        """
        C: MAIL FROM:<a@dbc.test>
        S: 250 2.1.0 Ok
        C: RCPT TO:<bob@example.test>
        S: 250 2.1.5 Ok
        C: DATA
        S: 354 End data with <CR><LF>.<CR><LF>
        C: .
        S: 250 2.0.0 Ok: queued as Q1
        """
    )
    assert harness.messages[0][0].client.protocol == "SMTP"


def test_rset_noop_help_anytime(mode: str) -> None:
    transcript(
        f"""
        C: RSET
        S: 250 2.0.0 Ok
        C: NOOP
        S: 250 2.0.0 Ok
        C: NOOP with an argument
        S: 250 2.0.0 Ok
        C: HELP
        S: {HELP}
        C: RSET now
        S: 501 5.5.4 Syntax: RSET
        C: DATA now
        S: 503 5.5.1 Send HELO/EHLO first
        """,
        mode=mode,
    )


def test_rset_ends_the_transaction(mode: str) -> None:
    harness = greeted(mode)
    harness.converse(
        """
        C: MAIL FROM:<a@dbc.test>
        C: RCPT TO:<bob@example.test>
        C: RSET
        C: RCPT TO:<bob@example.test>
        S: 250 2.1.0 Ok
        S: 250 2.1.5 Ok
        S: 250 2.0.0 Ok
        S: 503 5.5.1 Need MAIL command
        """
    )


def test_data_with_an_argument(mode: str) -> None:
    harness = greeted(mode)
    harness.converse(
        """
        C: MAIL FROM:<a@dbc.test>
        C: RCPT TO:<bob@example.test>
        S: 250 2.1.0 Ok
        S: 250 2.1.5 Ok
        C: DATA please
        S: 501 5.5.4 Syntax: DATA
        """
    )


def test_unknown_and_malformed_commands(mode: str) -> None:
    transcript(
        """
        C: XYZZY
        S: 500 5.5.2 Syntax error, command unrecognized
        C: ETRN example.test
        S: 500 5.5.2 Syntax error, command unrecognized
        C: MAIL
        S: 503 5.5.1 Send HELO/EHLO first
        """,
        mode=mode,
    )
    harness = SmtpHarness(mode=mode)
    assert harness.feed(b"NO\x00OP\r\n") == b"500 5.5.2 Command contains control characters\r\n"
    assert harness.feed(b"EHLO \xff\xfe\r\n") == b"500 5.5.2 Command is not valid UTF-8\r\n"
    assert harness.feed(b"\r\n") == b"500 5.5.2 Syntax error, command unrecognized\r\n"


def test_verbs_are_case_insensitive(mode: str) -> None:
    harness = transcript("C: ehlo c.test\n" + EHLO, mode=mode)
    harness.converse(
        """
        C: mail from:<a@dbc.test>
        S: 250 2.1.0 Ok
        C: rcpt to:<bob@example.test>
        S: 250 2.1.5 Ok
        """
    )
