"""Command-line grammar and MAIL/RCPT parameters (pure functions, no session)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postoffice.core.address import Address
from postoffice.core.envelope import BodyType, Notify, OriginalRecipient, Ret
from postoffice.protocol.smtp.grammar import (
    CommandLine,
    GrammarError,
    decode_xtext,
    encode_xtext,
    parse_auth_argument,
    parse_bdat_argument,
    parse_command_line,
    parse_esmtp_parameters,
    parse_hello_argument,
    parse_mail_argument,
    parse_rcpt_argument,
    recipient_address,
    sender_address,
)
from postoffice.protocol.smtp.params import (
    MailParameters,
    parse_notify,
    parse_orcpt,
    validate_mail_parameters,
    validate_rcpt_parameters,
)
from postoffice.protocol.smtp.replies import SmtpReplies


def code(error: pytest.ExceptionInfo[GrammarError]) -> str:
    reply = error.value.reply
    return f"{reply.code} {reply.enhanced}"


def test_command_line_split() -> None:
    assert parse_command_line(b"mail FROM:<a@b.test>  ") == CommandLine("MAIL", "FROM:<a@b.test>")
    assert parse_command_line(b"NOOP") == CommandLine("NOOP", "")
    assert parse_command_line(b"EHLO   x.test") == CommandLine("EHLO", "x.test")
    for bad in (b"NO\tOP", b"A\x00", b"\x7f", b"\xc3\x28"):
        with pytest.raises(GrammarError):
            parse_command_line(bad)


@pytest.mark.parametrize(
    ("argument", "mailbox", "parameters"),
    [
        ("FROM:<a@b.test>", "a@b.test", ()),
        ("from:<a@b.test>", "a@b.test", ()),
        ("FROM: <a@b.test>", "a@b.test", ()),
        ("FROM:<>", None, ()),
        ("FROM:<> SIZE=10", None, (("SIZE", "10"),)),
        (
            "FROM:<a@b.test>  BODY=8BITMIME   SMTPUTF8",
            "a@b.test",
            (("BODY", "8BITMIME"), ("SMTPUTF8", None)),
        ),
        ("FROM:<@x.test,@y.test:a@b.test>", "a@b.test", ()),
        ('FROM:<"a >b"@b.test>', '"a >b"@b.test', ()),
        ('FROM:<"a\\"> b"@b.test> size=1', '"a\\"> b"@b.test', (("SIZE", "1"),)),
    ],
)
def test_mail_argument(argument: str, mailbox: str | None, parameters: tuple[object, ...]) -> None:
    parsed = parse_mail_argument(argument)
    assert (parsed.mailbox, parsed.parameters) == (mailbox, parameters)


@pytest.mark.parametrize(
    "argument",
    [
        "FROM:a@b.test",
        "FROM <a@b.test>",
        "FROM:<a@b.test",
        "FROM:<a<b@c.test>",
        "FROM:<a@b.test>x",
        'FROM:<"unterminated@b.test>',
        "TO:<a@b.test>",
        "",
    ],
)
def test_mail_argument_syntax_errors(argument: str) -> None:
    with pytest.raises(GrammarError) as error:
        parse_mail_argument(argument)
    assert code(error).startswith("501 5.5.4")


@pytest.mark.parametrize(
    "route",
    [
        "@:a@b.test",
        "@bad_domain:a@b.test",
        "x.test:a@b.test",
        "@a.test,b.test:a@b.test",
        "@a.test:",
    ],
)
def test_bad_source_routes(route: str) -> None:
    with pytest.raises(GrammarError) as error:
        mailbox = parse_rcpt_argument(f"TO:<{route}>").mailbox
        recipient_address(mailbox or "", "example.test")
    assert code(error) == "501 5.1.3"


def test_rcpt_argument_and_postmaster() -> None:
    assert parse_rcpt_argument("TO:<b@c.test> NOTIFY=NEVER").parameters == (("NOTIFY", "NEVER"),)
    assert recipient_address("Postmaster", "example.test") == Address("postmaster", "example.test")
    assert recipient_address("postmaster@Example.TEST", "x.test") == Address(
        "postmaster", "example.test"
    )
    with pytest.raises(GrammarError) as error:
        parse_rcpt_argument("TO:<>")
    assert code(error) == "501 5.1.3"


@pytest.mark.parametrize(
    "mailbox",
    ["u@r@local.test", "u", "@local.test", "u@", "u@[300.0.0.1]", "u@-bad.test", "a..b@c.test"],
)
def test_bad_mailboxes(mailbox: str) -> None:
    with pytest.raises(GrammarError) as sender:
        sender_address(mailbox)
    assert code(sender) == "501 5.1.7"
    with pytest.raises(GrammarError) as recipient:
        recipient_address(mailbox, "example.test")
    assert code(recipient) == "501 5.1.3"


@pytest.mark.parametrize(
    ("mailbox", "parsed"),
    [
        ("u%r@local.test", Address("u%r", "local.test")),
        ('"u@r"@local.test', Address("u@r", "local.test")),
        ("r!u@local.test", Address("r!u", "local.test")),
        ("u@LOCAL.test.", Address("u", "local.test")),
        ("u@[127.0.0.1]", Address("u", "[127.0.0.1]")),
    ],
)
def test_relay_tricks_parse_to_one_canonical_address(mailbox: str, parsed: Address) -> None:
    """The relay matrix's addresses: the server hands the router the same parse."""
    assert recipient_address(mailbox, "example.test") == parsed


def test_esmtp_parameters() -> None:
    assert parse_esmtp_parameters(" a=1  B-2 ") == (("A", "1"), ("B-2", None))
    assert parse_esmtp_parameters("X=ü") == (("X", "ü"),)  # RFC 6531 §3.3
    for bad in ("=1", "-A=1", "A=", "A=b=c", "A_B"):
        with pytest.raises(GrammarError):
            parse_esmtp_parameters(bad)


def test_hello_bdat_auth_arguments() -> None:
    assert parse_hello_argument("[192.0.2.1]", extended=True) == "[192.0.2.1]"
    for bad in ("", "two words", "x" * 256):
        with pytest.raises(GrammarError):
            parse_hello_argument(bad, extended=False)
    assert parse_bdat_argument("0 last") == (0, True)
    assert parse_bdat_argument("1024") == (1024, False)
    for bad in ("", "x", "1 LASTER", "-1", "1" * 21, "1  "):
        with pytest.raises(GrammarError):
            parse_bdat_argument(bad)
    assert parse_auth_argument("plain AGEAYg==") == ("PLAIN", "AGEAYg==")
    assert parse_auth_argument("LOGIN") == ("LOGIN", None)
    for bad in ("", "PL AIN X", "X" * 21, "P$"):
        with pytest.raises(GrammarError):
            parse_auth_argument(bad)


def test_xtext() -> None:
    assert decode_xtext("a+2Bb+3Dc") == "a+b=c"
    assert decode_xtext("+c3+a9") == "é"
    assert encode_xtext("a+b=c é") == "a+2Bb+3Dc+20+C3+A9"
    for bad in ("a+", "a+g1", "a=b", "a b", "+FF"):
        with pytest.raises(ValueError):
            decode_xtext(bad)


@given(st.text(max_size=30))
def test_xtext_round_trip(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return
    assert decode_xtext(encode_xtext(text)) == text


def validate_mail(*pairs: tuple[str, str | None], limit: int = 1000) -> MailParameters:
    return validate_mail_parameters(
        pairs, max_message_size=limit, dsn=True, smtputf8=True, auth=True
    )


def test_mail_parameters() -> None:
    params = validate_mail(
        ("SIZE", "1000"),
        ("BODY", "7bit"),
        ("SMTPUTF8", None),
        ("RET", "full"),
        ("ENVID", "x+2By"),
        ("AUTH", "a+40b"),
    )
    assert params == MailParameters(1000, BodyType.SEVEN_BIT, True, Ret.FULL, "x+y", "a@b")
    assert validate_mail(("AUTH", "<>")).auth == "<>"
    assert validate_mail(("SIZE", "5"), limit=0).size == 5  # no fixed limit
    cases = [
        (("SIZE", "1001"), "552 5.3.4"),
        (("SIZE", None), "501 5.5.4"),
        (("SIZE", "1" * 21), "501 5.5.4"),
        (("BODY", None), "501 5.5.4"),
        (("BODY", "BINARYMIME"), "555 5.5.4"),
        (("ENVID", "x" * 101), "501 5.5.4"),
        (("ENVID", None), "501 5.5.4"),
        (("AUTH", "a+zz"), "501 5.5.4"),
        (("RET", None), "501 5.5.4"),
        (("NOTIFY", "NEVER"), "555 5.5.4"),
    ]
    for pair, expected in cases:
        with pytest.raises(GrammarError) as error:
            validate_mail(pair)
        assert code(error) == expected, pair
    assert validate_mail(("ENVID", "x" * 100)).envid == "x" * 100


def test_rcpt_parameters() -> None:
    params = validate_rcpt_parameters(
        [("NOTIFY", "delay,failure"), ("ORCPT", "RFC822;b+40c")], dsn=True
    )
    assert params.notify == frozenset({Notify.DELAY, Notify.FAILURE})
    assert params.orcpt == OriginalRecipient("rfc822", "b@c")
    assert parse_orcpt("utf-8;b\\x{E9}b@c") == OriginalRecipient("utf-8", "béb@c")  # RFC 6533
    for bad in ("NEVER,DELAY", "", "SUCCESS,", "ALWAYS", None):
        with pytest.raises(GrammarError):
            parse_notify(bad)
    for bad in (
        "rfc822",
        "rfc822;",
        ";a@b",
        "rfc 822;a@b",
        "rfc822;a+0Ab",
        "utf-8;\\x{D800}",
        "x;" + "a" * 499,
        None,
    ):
        with pytest.raises(GrammarError):
            parse_orcpt(bad)
    with pytest.raises(GrammarError) as dup:
        validate_rcpt_parameters([("NOTIFY", "NEVER"), ("NOTIFY", "NEVER")], dsn=True)
    assert dup.value.reply == SmtpReplies.DUPLICATE_PARAMETER
    with pytest.raises(GrammarError):
        validate_rcpt_parameters([("NOTIFY", "NEVER")], dsn=False)
