"""AUTH SCRAM-SHA-256 in the POP3 connection (RFC 5034 §4, RFC 5802 §5), with
scramp as the client: ``KeysWanted`` mid-exchange, the server-final as a last
``+`` challenge, then the maildrop."""

from __future__ import annotations

import pytest
from scramp import ScramClient

from postoffice.protocol.errors import ProtocolUsageError
from postoffice.protocol.pop3 import Authenticate, KeysWanted, Pop3ServerConnection, Pop3State
from postoffice.protocol.scram import derive_scram_keys
from tests.protocol.scram_dialogue import b64, challenge_text, scram_dialogue
from tests.protocol.test_pop3_harness import Pop3Harness, settings

MODES = ["whole", "bytewise"]


def challenge(out: bytes) -> str:
    return challenge_text(out, b"+ ")


def scram_login(harness: Pop3Harness, user: str, password: str, *, initial: bool) -> bytes:
    """AUTH SCRAM-SHA-256 to the end; the server's last line(s)."""
    return scram_dialogue(harness.feed, b"+ ", user, password, initial=initial)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("initial", [True, False])
def test_scram_login_opens_the_maildrop(mode: str, initial: bool) -> None:
    harness = Pop3Harness(settings(), mode=mode)
    out = scram_login(harness, "alice", "secret", initial=initial)
    assert out == b"+OK alice's maildrop has 3 messages (146 octets)\r\n"
    assert harness.conn.state is Pop3State.TRANSACTION and harness.conn.user == "alice"
    [wanted] = harness.of_type(KeysWanted)
    [login] = harness.of_type(Authenticate)
    assert isinstance(wanted, KeysWanted) and isinstance(login, Authenticate)
    assert (wanted.mechanism, wanted.user) == ("SCRAM-SHA-256", "alice")
    assert (login.mechanism, login.user, login.password, login.proven) == (
        "SCRAM-SHA-256",
        "alice",
        None,
        True,
    )


@pytest.mark.parametrize("mode", MODES)
def test_wrong_password_and_unknown_user_are_refused_alike(mode: str) -> None:
    harness = Pop3Harness(settings(), mode=mode)
    for user, password in (("alice", "wrong"), ("nobody", "secret")):
        out = scram_login(harness, user, password, initial=True)
        assert out == b"-ERR [AUTH] invalid user name or password\r\n"
    assert harness.conn.state is Pop3State.AUTHORIZATION
    assert [e.proven for e in harness.of_type(Authenticate)] == [False, False]  # type: ignore[attr-defined]


def test_scram_is_refused_in_plaintext_like_every_mechanism() -> None:
    harness = Pop3Harness(settings(plaintext_auth=False, tls_available=True))
    out = harness.feed(f"AUTH SCRAM-SHA-256 {b64('n,,n=alice,r=abc')}\r\n".encode())
    assert out.startswith(b"-ERR [AUTH] plaintext logins are not allowed")
    assert harness.of_type(KeysWanted) == []


def test_keys_are_answered_with_scram_keys_only() -> None:
    conn = Pop3ServerConnection(settings())
    conn.start()
    client = ScramClient(["SCRAM-SHA-256"], "alice", "secret")
    conn.receive_data(f"AUTH SCRAM-SHA-256 {b64(client.get_client_first())}\r\n".encode())
    assert isinstance(conn.next_event(), KeysWanted)
    with pytest.raises(ProtocolUsageError):
        conn.login_refused("no")
    with pytest.raises(ProtocolUsageError):
        conn.next_event()
    conn.scram_keys(derive_scram_keys("secret"))
    assert challenge(conn.data_to_send()).startswith("r=")
    with pytest.raises(ProtocolUsageError):
        conn.scram_keys(derive_scram_keys("secret"))
