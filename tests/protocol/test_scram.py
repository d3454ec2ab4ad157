"""SCRAM-SHA-256 (RFC 5802, RFC 7677): keys, SASLprep and the server exchange,
checked against the RFC's example and against an independent client (scramp)."""

from __future__ import annotations

import base64

import pytest
from scramp import ScramClient, ScramException

from postoffice.protocol.sasl import SaslChallenge, SaslError, SaslKeysWanted, SaslProof
from postoffice.protocol.scram import (
    ScramKeys,
    ScramServerExchange,
    derive_scram_keys,
    saslprep,
    server_exchange,
    unknown_user_keys,
)


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def test_rfc7677_example() -> None:
    """RFC 7677 §3: user "user", password "pencil", every message byte for byte."""
    exchange = ScramServerExchange(server_nonce="%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0")
    wanted = exchange.respond(b64("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"))
    assert wanted == SaslKeysWanted("SCRAM-SHA-256", None, "user")
    keys = derive_scram_keys("pencil", salt=base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ=="))
    first = exchange.keys_found(keys)
    assert first == SaslChallenge(
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    )
    final = exchange.respond(
        b64(
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
            "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        )
    )
    assert final == SaslChallenge(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
    assert not exchange.done
    assert exchange.respond(b"") == SaslProof("SCRAM-SHA-256", None, "user", True)
    assert exchange.done
    with pytest.raises(SaslError):
        exchange.respond(b"")


def run_with_scramp(
    client_password: str, keys: ScramKeys, *, username: str = "alice"
) -> tuple[SaslProof, ScramClient]:
    """A whole exchange with scramp as the client; the proof it ends in."""
    client = ScramClient(["SCRAM-SHA-256"], username, client_password)
    exchange = server_exchange("scram-sha-256")
    assert isinstance(exchange, ScramServerExchange)
    wanted = exchange.respond(b64(client.get_client_first()), initial=True)
    assert isinstance(wanted, SaslKeysWanted)
    assert wanted.username == username
    client.set_server_first(exchange.keys_found(keys).data.decode())
    result = exchange.respond(b64(client.get_client_final()))
    if isinstance(result, SaslChallenge):  # the server-final: the client checks it
        client.set_server_final(result.data.decode())
        result = exchange.respond(b"")
    assert isinstance(result, SaslProof)
    return result, client


def test_an_independent_client_proves_the_password() -> None:
    keys = derive_scram_keys("correct horse")
    proof, _ = run_with_scramp("correct horse", keys)
    assert proof == SaslProof("SCRAM-SHA-256", None, "alice", True)
    proof, _ = run_with_scramp("wrong horse", keys)
    assert not proof.proven


def test_non_ascii_password_is_prepared_the_same_on_both_sides() -> None:
    # U+00AA maps to "a" under NFKC (RFC 4013 §3); scramp applies SASLprep too.
    keys = derive_scram_keys("p\u00aass\u00a0word")
    assert run_with_scramp("p\u00aass\u00a0word", keys)[0].proven
    assert run_with_scramp("pass word", keys)[0].proven  # the same after SASLprep
    assert not run_with_scramp("pass\u00a0wort", keys)[0].proven


def test_unknown_users_get_a_stable_salt_and_never_a_proof() -> None:
    one = unknown_user_keys(b"secret", "ghost")
    two = unknown_user_keys(b"secret", "ghost")
    assert one.salt == two.salt and one.iterations == two.iterations == 4096
    assert one.stored_key != two.stored_key  # random: matches no proof
    assert unknown_user_keys(b"secret", "other").salt != one.salt
    assert unknown_user_keys(b"another secret", "ghost").salt != one.salt
    assert not run_with_scramp("anything", one, username="ghost")[0].proven


def test_authzid_and_escaped_names() -> None:
    exchange = ScramServerExchange()
    wanted = exchange.respond(b64("n,a=ad=3Dmin=2C,n=al=2Cice,r=abc"))
    assert wanted == SaslKeysWanted("SCRAM-SHA-256", "ad=min,", "al,ice")


def client_final(exchange: ScramServerExchange, keys: ScramKeys, first: str) -> str:
    """Drive to client-final; the nonce the server made."""
    exchange.respond(b64(first))
    challenge = exchange.keys_found(keys).data.decode()
    return challenge.split(",")[0][2:]


@pytest.mark.parametrize(
    "first",
    [
        "p=tls-unique,,n=alice,r=abc",  # channel binding asked: no -PLUS here
        "n,,m=ext,n=alice,r=abc",  # a mandatory extension (RFC 5802 §5.1)
        "n,,r=abc,n=alice",
        "n,,n=alice",
        "n,,n=al=41ice,r=abc",  # "=" escapes only "," and "="
        "n,,n=,r=abc",
        "n,,n=alice,r=a,bc",
        "n,,n=alice,r=",
        "n,x=1,n=alice,r=abc",
        "n,n=alice,r=abc",
        "\xff",
    ],
)
def test_malformed_client_first_is_refused(first: str) -> None:
    with pytest.raises(SaslError):
        ScramServerExchange().respond(b64(first.encode("latin-1")))


def test_malformed_client_final_is_refused() -> None:
    keys = derive_scram_keys("pw")
    for final in (
        "c=biws,r={nonce}",  # no proof
        "c=eSws,r={nonce},p=AAAA",  # binding data of "y,," against a "n,," header
        "c=biws,r={nonce}x,p=AAAA",  # not the server's nonce
        "c=biws,r={nonce},p=not base64",
        "r={nonce},c=biws,p=AAAA",
    ):
        exchange = ScramServerExchange()
        nonce = client_final(exchange, keys, "n,,n=alice,r=abc")
        with pytest.raises(SaslError):
            exchange.respond(b64(final.format(nonce=nonce)))
    exchange = ScramServerExchange()
    nonce = client_final(exchange, keys, "n,,n=alice,r=abc")
    short = exchange.respond(b64(f"c=biws,r={nonce},p=AAAA"))
    assert short == SaslProof("SCRAM-SHA-256", None, "alice", False)  # a proof too short


def test_out_of_turn() -> None:
    exchange = ScramServerExchange()
    assert exchange.respond(None) == SaslChallenge(b"")  # no initial response: ask for it
    with pytest.raises(SaslError):
        exchange.keys_found(derive_scram_keys("pw"))  # nothing asked for keys yet
    exchange.respond(b64("y,,n=alice,r=abc"))  # "y": the client could bind, we offer no -PLUS
    with pytest.raises(SaslError):
        exchange.respond(b64("c=eSws,r=abc,p=AAAA"))  # keys first
    keys = derive_scram_keys("pw")
    exchange.keys_found(keys)
    with pytest.raises(SaslError):
        exchange.keys_found(keys)


def test_client_that_rejects_a_forged_server_final() -> None:
    """What the server-final proves: a server without the keys cannot make it."""
    keys = derive_scram_keys("pw")
    client = ScramClient(["SCRAM-SHA-256"], "alice", "pw")
    exchange = ScramServerExchange()
    exchange.respond(b64(client.get_client_first()))
    client.set_server_first(exchange.keys_found(keys).data.decode())
    exchange.respond(b64(client.get_client_final()))
    with pytest.raises(ScramException):
        client.set_server_final("v=" + b64(b"\0" * 32))


def test_keys_text_round_trip_and_bad_forms() -> None:
    keys = derive_scram_keys("pw", iterations=5000)
    text = keys.text()
    assert text.startswith("SCRAM-SHA-256$5000:")
    assert ScramKeys.parse(text) == keys
    assert "pw" not in repr(keys) and b64(keys.stored_key) not in repr(keys)
    good_key = b64(b"k" * 32)
    for bad in (
        "",
        "$argon2id$v=19$m=65536,t=3,p=4$abc",
        f"SCRAM-SHA-256$4096:c2FsdA==${good_key}",
        f"SCRAM-SHA-256$40:c2FsdA==${good_key}:{good_key}",  # below RFC 7677's 4096
        f"SCRAM-SHA-256$x:c2FsdA==${good_key}:{good_key}",
        f"SCRAM-SHA-256$4096:!!${good_key}:{good_key}",
        f"SCRAM-SHA-256$4096:c2FsdA==${good_key}:{b64(b'short')}",
    ):
        with pytest.raises(ValueError):
            ScramKeys.parse(bad)


def test_saslprep_rfc4013_examples() -> None:
    # RFC 4013 §3, the examples table.
    assert saslprep("I\u00adX") == "IX"
    assert saslprep("user") == "user"
    assert saslprep("USER") == "USER"
    assert saslprep("\u00aa") == "a"
    assert saslprep("\u2168") == "IX"
    for bad in ("\u0007", "\u0627\u0031"):
        with pytest.raises(ValueError):
            saslprep(bad)
    assert saslprep("\u0627\u0628") == "\u0627\u0628"  # right-to-left only: allowed
