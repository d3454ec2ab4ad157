"""The SASL server exchanges shared by SMTP, POP3 and IMAP (RFC 4616, LOGIN, RFC 4954 §4)."""

from __future__ import annotations

import base64

import pytest

from postoffice.protocol.sasl import (
    SaslCancelled,
    SaslChallenge,
    SaslCredentials,
    SaslError,
    SaslServerExchange,
    decode_response,
    encode_challenge,
    parse_plain_message,
)


def test_decode_response() -> None:
    assert decode_response(base64.b64encode(b"abc").decode()) == b"abc"
    assert decode_response(b"") == b""
    assert decode_response("=", initial=True) == b""
    with pytest.raises(SaslCancelled):
        decode_response("*")
    for bad in ("=", "abc", "a b=", "!!!!", "é"):
        with pytest.raises(SaslError):
            decode_response(bad)
    assert encode_challenge(b"Username:") == "VXNlcm5hbWU6"
    assert encode_challenge(b"") == ""


def test_plain_message() -> None:
    assert parse_plain_message(b"\0alice\0secret") == (None, "alice", "secret")
    assert parse_plain_message(b"admin\0alice\0p\xc3\xa4ss") == ("admin", "alice", "päss")
    for bad in (
        b"alice\0secret",
        b"\0\0secret",
        b"\0alice\0",
        b"a\0b\0c\0d",
        b"\0\xff\0x",
        b"\0" + b"a" * 1025 + b"\0x",
    ):
        with pytest.raises(SaslError):
            parse_plain_message(bad)


def test_plain_exchange() -> None:
    exchange = SaslServerExchange("plain")
    assert exchange.step(None) == SaslChallenge(b"")
    credentials = exchange.step(b"\0alice\0secret")
    assert credentials == SaslCredentials("PLAIN", None, "alice", "secret")
    assert exchange.done
    with pytest.raises(SaslError):
        exchange.step(b"again")
    assert "secret" not in repr(credentials)


def test_plain_with_initial_response() -> None:
    assert SaslServerExchange("PLAIN").step(b"\0bob\0pw") == SaslCredentials(
        "PLAIN", None, "bob", "pw"
    )


def test_login_exchange() -> None:
    exchange = SaslServerExchange("LOGIN")
    assert exchange.step(None) == SaslChallenge(b"Username:")
    assert exchange.step(b"alice") == SaslChallenge(b"Password:")
    assert exchange.step(b"secret") == SaslCredentials("LOGIN", None, "alice", "secret")
    initial = SaslServerExchange("LOGIN")
    assert initial.step(b"alice") == SaslChallenge(b"Password:")  # initial response = user name
    for bad_user, bad_password in ((b"", b"x"), (b"a", b""), (b"\xff", b"x"), (b"a\0b", b"x")):
        exchange = SaslServerExchange("LOGIN")
        with pytest.raises(SaslError):
            exchange.step(bad_user)
            exchange.step(bad_password)


def test_unknown_mechanism_and_misuse() -> None:
    with pytest.raises(SaslError):
        SaslServerExchange("CRAM-MD5")
    exchange = SaslServerExchange("PLAIN")
    exchange.step(None)
    with pytest.raises(SaslError):
        exchange.step(None)


def test_respond_decodes_then_steps_and_names_each_failure() -> None:
    from postoffice.protocol.sasl import (
        SaslCancelled,
        SaslChallenge,
        SaslCredentials,
        SaslEncodingError,
        SaslError,
        SaslServerExchange,
    )

    exchange = SaslServerExchange("PLAIN")
    assert exchange.respond(None, initial=True) == SaslChallenge(b"")
    result = exchange.respond("AHVzZXIAcHc=")  # "\0user\0pw"
    assert isinstance(result, SaslCredentials)
    assert (result.username, result.password) == ("user", "pw")
    with pytest.raises(SaslCancelled):
        SaslServerExchange("LOGIN").respond(b"*")
    with pytest.raises(SaslEncodingError):
        SaslServerExchange("PLAIN").respond("not base64!", initial=True)
    with pytest.raises(SaslError) as malformed:
        SaslServerExchange("PLAIN").respond("dXNlcg==", initial=True)  # "user": no NULs
    assert not isinstance(malformed.value, SaslEncodingError | SaslCancelled)
