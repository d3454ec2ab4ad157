"""Conversation transcripts for every SMTP command, reply and error path (sans-IO).

Each transcript runs twice: every client write fed whole, and octet by octet.
"""

from __future__ import annotations

import pytest

from postoffice.core.envelope import BodyType, ClientInfo, Notify, OriginalRecipient, Ret
from postoffice.core.reply import Reply
from postoffice.protocol.errors import ProtocolUsageError
from postoffice.protocol.smtp import (
    BareNewlinePolicy,
    Closed,
    MailFrom,
    MessageAborted,
    Refused,
    SessionState,
    SmtpReplies,
    SmtpServerConnection,
    render_reply,
)
from tests.protocol.smtp_harness import (
    EHLO_LINES,
    HOST,
    ScriptedPolicy,
    SmtpHarness,
    settings,
    transcript,
)

MODES = ["whole", "bytewise"]
EHLO = "\n".join(f"S: {line}" for line in EHLO_LINES)
HELP = render_reply(SmtpReplies.HELP).decode().strip()


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def greeted(mode: str = "whole", **changes: object) -> SmtpHarness:
    """A session after EHLO (whose reply is kept in ``harness.greeting``)."""
    harness = SmtpHarness(settings(**changes), mode=mode)
    harness.greeting = harness.feed(b"EHLO client.test\r\n")
    assert harness.greeting.startswith(b"250-mx.example.test\r\n")
    return harness


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


# ----------------------------------------------------------------- syntax


def test_mail_and_rcpt_syntax_errors(mode: str) -> None:
    harness = greeted(mode)
    harness.converse(
        """
        C: MAIL FROM:a@dbc.test
        S: 501 5.5.4 Syntax: MAIL FROM:<address>
        C: MAIL TO:<a@dbc.test>
        S: 501 5.5.4 Syntax: MAIL FROM:<address>
        C: MAIL FROM:<a@dbc.test
        S: 501 5.5.4 Syntax: MAIL FROM:<address>
        C: MAIL FROM:<a@dbc.test>SIZE=1
        S: 501 5.5.4 Syntax: MAIL FROM:<address>
        C: MAIL FROM:<a@@dbc.test>
        S: 501 5.1.7 Bad sender address syntax
        C: MAIL FROM:<postmaster>
        S: 501 5.1.7 Bad sender address syntax
        C: MAIL FROM: <a@dbc.test>
        S: 250 2.1.0 Ok
        C: RCPT TO:<>
        S: 501 5.1.3 Bad recipient address syntax
        C: RCPT TO:<u@r@example.test>
        S: 501 5.1.3 Bad recipient address syntax
        C: RCPT TO:<@:bob@example.test>
        S: 501 5.1.3 Bad recipient address syntax
        C: RCPT TO:bob@example.test
        S: 501 5.5.4 Syntax: RCPT TO:<address>
        C: RCPT TO:<"bob >x"@example.test>
        S: 250 2.1.5 Ok
        """
    )


def test_esmtp_parameter_errors(mode: str) -> None:
    harness = greeted(mode)
    harness.converse(
        """
        C: MAIL FROM:<a@dbc.test> SIZE=99999999999
        S: 552 5.3.4 Message size exceeds fixed maximum message size
        C: MAIL FROM:<a@dbc.test> SIZE=ten
        S: 501 5.5.4 Invalid SIZE parameter
        C: MAIL FROM:<a@dbc.test> FOO=bar
        S: 555 5.5.4 Unsupported parameter: FOO
        C: MAIL FROM:<a@dbc.test> BODY=BINARYMIME
        S: 555 5.5.4 Unsupported parameter: BODY=BINARYMIME
        C: MAIL FROM:<a@dbc.test> RET=FULL RET=HDRS
        S: 501 5.5.4 Duplicate parameter
        C: MAIL FROM:<a@dbc.test> RET=ALL
        S: 501 5.5.4 Invalid RET parameter
        C: MAIL FROM:<a@dbc.test> SMTPUTF8=yes
        S: 501 5.5.4 SMTPUTF8 takes no value
        C: MAIL FROM:<a@dbc.test> =x
        S: 501 5.5.4 Invalid parameter syntax
        C: MAIL FROM:<a@dbc.test> ENVID=bad+zz
        S: 501 5.5.4 Invalid ENVID parameter
        C: MAIL FROM:<a@dbc.test> ENVID=a+0D+0Ab
        S: 501 5.5.4 Invalid ENVID parameter
        C: MAIL FROM:<a@dbc.test> AUTH=<>
        S: 555 5.5.4 Unsupported parameter: AUTH
        C: MAIL FROM:<a@dbc.test> BODY=8BITMIME
        S: 250 2.1.0 Ok
        C: RCPT TO:<bob@example.test> NOTIFY=NEVER,SUCCESS
        S: 501 5.5.4 Invalid NOTIFY parameter
        C: RCPT TO:<bob@example.test> NOTIFY=SOMETIMES
        S: 501 5.5.4 Invalid NOTIFY parameter
        C: RCPT TO:<bob@example.test> ORCPT=rfc822
        S: 501 5.5.4 Invalid ORCPT parameter
        C: RCPT TO:<bob@example.test> XFOO
        S: 555 5.5.4 Unsupported parameter: XFOO
        C: RCPT TO:<bob@example.test> SIZE=10
        S: 555 5.5.4 Unsupported parameter: SIZE
        """
    )


def test_dsn_parameters_are_kept_with_the_envelope(mode: str) -> None:
    harness = greeted(mode)
    harness.converse(
        """
        C: MAIL FROM:<a@dbc.test> RET=HDRS ENVID=QQ314159+2Bx SIZE=12 BODY=8bitmime
        C: RCPT TO:<bob@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bob+40example.test
        C: RCPT TO:<carol@example.test> NOTIFY=NEVER
        C: DATA
        S: 250 2.1.0 Ok
        S: 250 2.1.5 Ok
        S: 250 2.1.5 Ok
        S: 354 End data with <CR><LF>.<CR><LF>
        C: hi
        C: .
        S: 250 2.0.0 Ok: queued as Q1
        """
    )
    [(envelope, _)] = harness.messages
    assert envelope.ret is Ret.HDRS
    assert envelope.envid == "QQ314159+x"
    assert envelope.declared_size == 12
    assert envelope.body is BodyType.EIGHT_BIT_MIME
    bob, carol = envelope.recipients
    assert bob.notify == frozenset({Notify.SUCCESS, Notify.FAILURE})
    assert bob.orcpt == OriginalRecipient("rfc822", "Bob@example.test")
    assert carol.notify == frozenset({Notify.NEVER})
    assert carol.orcpt is None


def test_dsn_and_smtputf8_parameters_refused_when_not_offered() -> None:
    harness = greeted(dsn=False, smtputf8=False)
    assert b"DSN" not in harness.greeting
    harness.converse(
        """
        C: MAIL FROM:<a@dbc.test> RET=FULL
        S: 555 5.5.4 Unsupported parameter: RET
        C: MAIL FROM:<a@dbc.test> SMTPUTF8
        S: 555 5.5.4 Unsupported parameter: SMTPUTF8
        """
    )


def test_smtputf8(mode: str) -> None:
    harness = greeted(mode)
    harness.converse(
        """
        C: MAIL FROM:<jörg@dbc.test>
        S: 553 5.6.7 Non-ASCII address requires the SMTPUTF8 parameter
        C: MAIL FROM:<a@dbc.test>
        S: 250 2.1.0 Ok
        C: RCPT TO:<bøb@example.test>
        S: 553 5.6.7 Non-ASCII address requires the SMTPUTF8 parameter
        C: RSET
        S: 250 2.0.0 Ok
        C: MAIL FROM:<jörg@dbc.test> SMTPUTF8
        S: 250 2.1.0 Ok
        C: RCPT TO:<bøb@example.test>
        S: 250 2.1.5 Ok
        C: RCPT TO:<bob@exämple.test>
        S: 554 5.7.1 Relay access denied
        """
    )
    [mail] = harness.decisions(MailFrom)[-1:]
    assert isinstance(mail, MailFrom) and mail.smtputf8


def test_smtputf8_transaction_uses_the_utf8smtp_protocol_name(mode: str) -> None:
    """RFC 6531 §3.7.3: the Received "with" keyword is UTF8SMTP (not ESMTP) under SMTPUTF8."""
    harness = greeted(mode)
    harness.converse(
        """
        C: MAIL FROM:<jörg@dbc.test> SMTPUTF8
        C: RCPT TO:<bob@example.test>
        C: DATA
        S: 250 2.1.0 Ok
        S: 250 2.1.5 Ok
        S: 354 End data with <CR><LF>.<CR><LF>
        C: hi
        C: .
        S: 250 2.0.0 Ok: queued as Q1
        C: MAIL FROM:<a@dbc.test>
        C: RCPT TO:<bob@example.test>
        C: DATA
        S: 250 2.1.0 Ok
        S: 250 2.1.5 Ok
        S: 354 End data with <CR><LF>.<CR><LF>
        C: hi
        C: .
        S: 250 2.0.0 Ok: queued as Q2
        """
    )
    [(first, _), (second, _)] = harness.messages
    assert (first.client.protocol, second.client.protocol) == ("UTF8SMTP", "ESMTP")


# ------------------------------------------------------------ VRFY / EXPN


def test_vrfy_and_expn(mode: str) -> None:
    transcript(
        """
        C: VRFY bob
        S: 252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery
        C: VRFY
        S: 501 5.5.4 Syntax: VRFY address
        C: EXPN staff
        S: 502 5.5.1 EXPN command is disabled
        """,
        mode=mode,
    )
    transcript(
        """
        C: VRFY bob
        S: 502 5.5.1 VRFY command is disabled
        C: EXPN staff
        S: 250-2.1.5 <alice@example.test>
        S: 250 2.1.5 <bob@example.test>
        C: EXPN strangers
        S: 550 5.1.1 No such user here
        C: EXPN
        S: 501 5.5.4 Syntax: EXPN list
        """,
        settings(vrfy_enabled=False, expn_enabled=True),
        mode=mode,
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
