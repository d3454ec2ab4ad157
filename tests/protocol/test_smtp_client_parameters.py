"""SMTP client values: what EHLO offers, which ESMTP parameters MAIL and RCPT carry
(SIZE, BODY, SMTPUTF8, DSN with xtext), and the checks that keep bad values off the wire."""

from __future__ import annotations

import pytest

from postoffice.core.reply import Reply
from postoffice.protocol.smtp import client_events as ev
from postoffice.protocol.smtp.client import (
    ClientSettings,
    ClientState,
    ServerExtensions,
    Transaction,
    TransactionRecipient,
    needs_smtputf8,
)
from tests.protocol.smtp_client_harness import (
    MODES,
    ehlo_with,
    greeted,
    transaction,
)

PIPELINED = ehlo_with(
    "PIPELINING", "SIZE 1000", "8BITMIME", "DSN", "SMTPUTF8", "ENHANCEDSTATUSCODES"
)


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# ---------------------------------------------------------------- extensions


def test_ehlo_reply_parsing_edge_cases() -> None:
    ext = ServerExtensions.from_ehlo(
        Reply(
            250,
            None,
            "mx.example.test\nsize\nAUTH=LOGIN\nauth plain cram-md5\n-BAD\n\n8bitmime extra\n"
            "X-CUSTOM a b",
        )
    )
    assert ext.keywords == {"SIZE", "AUTH", "8BITMIME", "X-CUSTOM"}
    assert ext.size == 0 and ext.size_limit is None  # RFC 1870 §4: no limit declared
    assert ext.auth == {"LOGIN", "PLAIN", "CRAM-MD5"}
    assert ext.offers("x-custom") and not ext.offers("PIPELINING")
    assert ServerExtensions.from_lines(["SIZE nope"]).size == 0
    assert ServerExtensions.from_lines(["SIZE 0"]).size_limit is None
    assert ServerExtensions.from_lines(["SIZE 100", "SIZE 5"]).size == 100


def test_server_extensions_helpers() -> None:
    ext = ServerExtensions.from_lines(["SIZE 1000", "8BITMIME", "SMTPUTF8"])
    assert ext.accepts_size(None) and ext.accepts_size(1000) and not ext.accepts_size(1001)
    assert ext.accepts_8bit() and ext.accepts_utf8_addresses()
    assert ext.accepts_body(None) and ext.accepts_body("7BIT") and ext.accepts_body("8bitmime")
    assert not ext.accepts_body("BINARYMIME") and not ext.accepts_binary()
    assert not ext.accepts_body("UNKNOWN")
    binary = ServerExtensions.from_lines(["BINARYMIME", "CHUNKING", "PIPELINING"])
    assert binary.accepts_binary() and binary.accepts_body("BINARYMIME")
    none = ServerExtensions.none()
    assert none.keywords == frozenset() and none.size is None and none.auth == frozenset()
    assert none.accepts_size(10**9) and not none.accepts_8bit()
    assert not none.accepts_utf8_addresses() and not none.pipelining


# --------------------------------------------------------------- parameters


def test_size_over_the_server_limit_is_refused_without_a_word(mode: str) -> None:
    h = greeted(PIPELINED, mode=mode)
    h.conn.begin(transaction(size=1001))
    h.converse("""
        C: (none)
        E: TransactionRefused size 552 5.3.4
        E: Ready
    """)
    refused = h.events[-2]
    assert isinstance(refused, ev.TransactionRefused)
    assert refused.reply.text == (
        "Message size exceeds fixed maximum message size (server limit 1000)"
    )
    assert h.conn.state is ClientState.READY
    h.conn.begin(transaction(size=1000))  # at the limit: fine
    h.converse("""
        C: MAIL FROM:<alice@a.test> SIZE=1000
        C: RCPT TO:<bob@b.test>
        C: DATA
    """)


def test_size_without_a_limit(mode: str) -> None:
    h = greeted(ehlo_with("SIZE"), mode=mode)
    h.conn.begin(transaction(size=10**12))
    h.converse("C: MAIL FROM:<alice@a.test> SIZE=1000000000000")


def test_dsn_parameters_are_xtext_encoded() -> None:
    h = greeted(PIPELINED)
    t = Transaction(
        sender="",
        recipients=(
            TransactionRecipient(
                "bob@b.test", notify=("success", "FAILURE"), orcpt="rfc822;Bob+Smith@b.test"
            ),
            TransactionRecipient("carol@b.test", notify=("NEVER",)),
            TransactionRecipient("dave@b.test", orcpt="rfc822;dave=x@b.test"),
        ),
        ret="HDRS",
        envid="QQ314159 id=1+2",
    )
    h.conn.begin(t)
    # RFC 3461 §4: "+" and "=" and SP are not xchars.
    h.converse("""
        C: MAIL FROM:<> RET=HDRS ENVID=QQ314159+20id+3D1+2B2
        C: RCPT TO:<bob@b.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bob+2BSmith@b.test
        C: RCPT TO:<carol@b.test> NOTIFY=NEVER
        C: RCPT TO:<dave@b.test> ORCPT=rfc822;dave+3Dx@b.test
        C: DATA
    """)


def test_dsn_parameters_only_when_dsn_is_offered() -> None:
    h = greeted(ehlo_with("PIPELINING"))
    t = Transaction(
        sender="alice@a.test",
        recipients=(TransactionRecipient("bob@b.test", ("DELAY",), "rfc822;bob@b.test"),),
        ret="FULL",
        envid="id",
    )
    h.conn.begin(t)
    h.converse("""
        C: MAIL FROM:<alice@a.test>
        C: RCPT TO:<bob@b.test>
        C: DATA
    """)


def test_orcpt_of_a_utf8_address_is_xtext() -> None:
    h = greeted(PIPELINED)
    h.conn.begin(
        Transaction("a@a.test", (TransactionRecipient("j@b.test", orcpt="rfc822;jörg@b.test"),))
    )
    h.converse("""
        C: MAIL FROM:<a@a.test>
        C: RCPT TO:<j@b.test> ORCPT=rfc822;j+C3+B6rg@b.test
        C: DATA
    """)


@pytest.mark.parametrize(
    ("offered", "mail"),
    [
        (("PIPELINING", "8BITMIME", "SMTPUTF8"), "MAIL FROM:<alice@a.test> BODY=8BITMIME SMTPUTF8"),
        (("PIPELINING", "8BITMIME"), "MAIL FROM:<alice@a.test> BODY=8BITMIME"),
        (("PIPELINING", "SMTPUTF8"), "MAIL FROM:<alice@a.test> SMTPUTF8"),
        (("PIPELINING",), "MAIL FROM:<alice@a.test>"),
    ],
)
def test_body_and_smtputf8_only_when_offered(offered: tuple[str, ...], mail: str) -> None:
    h = greeted(ehlo_with(*offered))
    h.conn.begin(transaction(body="8BITMIME", smtputf8=True))
    h.converse(f"""
        C: {mail}
        C: RCPT TO:<bob@b.test>
        C: DATA
    """)


def test_body_7bit_is_declared_to_an_8bitmime_server() -> None:
    h = greeted(ehlo_with("PIPELINING", "8BITMIME"))
    h.conn.begin(transaction(body="7BIT"))
    h.converse("""
        C: MAIL FROM:<alice@a.test> BODY=7BIT
        C: RCPT TO:<bob@b.test>
        C: DATA
    """)


def test_utf8_addresses_ask_for_smtputf8_by_themselves() -> None:
    t = Transaction("jörg@a.test", (TransactionRecipient("bob@b.test"),))
    assert needs_smtputf8(t)
    assert needs_smtputf8(transaction("bøb@b.test"))
    assert not needs_smtputf8(transaction("bob@b.test"))
    h = greeted(ehlo_with("PIPELINING", "SMTPUTF8"))
    h.conn.begin(t)
    h.converse("""
        C: MAIL FROM:<jörg@a.test> SMTPUTF8
        C: RCPT TO:<bob@b.test>
        C: DATA
    """)
    # Whether to send it to a server without SMTPUTF8 is the driver's call.
    h = greeted(ehlo_with("PIPELINING"))
    h.conn.begin(t)
    h.converse("""
        C: MAIL FROM:<jörg@a.test>
        C: RCPT TO:<bob@b.test>
        C: DATA
    """)


@pytest.mark.parametrize(
    "bad",
    [
        {"recipients": ()},
        {"size": -1},
        {"body": "9BIT"},
        {"ret": "ALL"},
    ],
)
def test_transaction_values_are_checked(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        transaction(**bad)


@pytest.mark.parametrize(
    ("notify", "orcpt"),
    [
        ((), None),
        (("NEVER", "SUCCESS"), None),
        (("SOMETIMES",), None),
        (None, "bob@b.test"),
        (None, "rfc822;"),
        (None, ";bob@b.test"),
        (None, "rfc 822;bob@b.test"),
    ],
)
def test_recipient_dsn_values_are_checked(
    notify: tuple[str, ...] | None, orcpt: str | None
) -> None:
    with pytest.raises(ValueError):
        TransactionRecipient("bob@b.test", notify, orcpt)


def test_an_empty_recipient_is_refused() -> None:
    with pytest.raises(ValueError):
        TransactionRecipient("")


# ------------------------------------------------------- control characters


@pytest.mark.parametrize(
    "bad", ["a\r\nRSET@x.test", "a\n@x.test", "a\r@x.test", "a\x00@x", "a\x7f@x"]
)
def test_control_characters_never_reach_the_wire(bad: str) -> None:
    h = greeted()
    with pytest.raises(ValueError, match="control character"):
        h.conn.begin(transaction(sender=bad))
    with pytest.raises(ValueError, match="control character"):
        transaction(bad)
    with pytest.raises(ValueError, match="control character"):
        TransactionRecipient("bob@b.test", orcpt=f"rfc822;{bad}")
    with pytest.raises(ValueError, match="control character"):
        transaction(envid=bad)
    with pytest.raises(ValueError, match="control character"):
        ClientSettings(helo_name=bad)
    h.converse("C: (none)")
    assert h.conn.state is ClientState.READY


@pytest.mark.parametrize("name", ["", "two words", "x" * 256])
def test_helo_name_must_be_one_token(name: str) -> None:
    with pytest.raises(ValueError):
        ClientSettings(helo_name=name)
