"""SMTP server transcripts, continued: command syntax, ESMTP parameters, VRFY and EXPN (sans-IO).

Each transcript runs twice: every client write fed whole, and octet by octet.
"""

from __future__ import annotations

from postoffice.core.envelope import BodyType, Notify, OriginalRecipient, Ret
from postoffice.protocol.smtp import (
    MailFrom,
)
from tests.protocol.smtp_harness import (
    greeted,
    settings,
    transcript,
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
