"""AUTH SCRAM-SHA-256 in the SMTP server connection (RFC 4954 §4, RFC 5802 §5),
with scramp as the client: the keys come from the driver mid-exchange, the
server-final goes out as a 334 before the 235."""

from __future__ import annotations

import pytest
from scramp import ScramClient

from postoffice.protocol.errors import ProtocolUsageError
from postoffice.protocol.scram import derive_scram_keys
from postoffice.protocol.smtp import AuthKeysWanted, AuthProof, SessionState, SmtpReplies
from tests.protocol.scram_dialogue import b64, challenge_text, scram_dialogue
from tests.protocol.smtp_harness import SmtpHarness, greeted

SCRAM_SETTINGS = {"auth_mechanisms": ("PLAIN", "SCRAM-SHA-256"), "is_tls": True}


def challenge(out: bytes) -> str:
    return challenge_text(out, b"334 ")


def scram_login(harness: SmtpHarness, user: str, password: str, *, initial: bool = True) -> bytes:
    """AUTH SCRAM-SHA-256 up to the server's last answer (235 or 535)."""
    return scram_dialogue(harness.feed, b"334 ", user, password, initial=initial)


@pytest.mark.parametrize("initial", [True, False])
def test_scram_login_with_and_without_initial_response(mode: str, initial: bool) -> None:
    harness = greeted(mode, **SCRAM_SETTINGS)
    assert b"250-AUTH PLAIN SCRAM-SHA-256\r\n" in harness.greeting
    out = scram_login(harness, "alice", "secret", initial=initial)
    assert out == b"235 2.7.0 Authentication successful\r\n"
    assert harness.conn.authenticated_as == "alice"
    [wanted] = harness.decisions(AuthKeysWanted)
    [proof] = harness.decisions(AuthProof)
    assert isinstance(wanted, AuthKeysWanted) and isinstance(proof, AuthProof)
    assert (wanted.username, proof.username, proof.mechanism) == ("alice",) * 2 + ("SCRAM-SHA-256",)
    assert proof.proof.proven


def test_wrong_password_and_unknown_user_fail_after_the_whole_exchange(mode: str) -> None:
    harness = greeted(mode, **SCRAM_SETTINGS)
    for user, password in (("alice", "wrong"), ("nobody", "secret")):
        out = scram_login(harness, user, password)
        assert out == b"535 5.7.8 Authentication credentials invalid\r\n"
    assert harness.conn.authenticated_as is None
    assert harness.conn.state is SessionState.READY
    assert all(not p.proof.proven for p in harness.decisions(AuthProof))  # type: ignore[attr-defined]


def test_cancel_and_garbage_mid_exchange(mode: str) -> None:
    harness = greeted(mode, **SCRAM_SETTINGS)
    client = ScramClient(["SCRAM-SHA-256"], "alice", "secret")
    out = harness.feed(f"AUTH SCRAM-SHA-256 {b64(client.get_client_first())}\r\n".encode())
    assert out.startswith(b"334 ")
    assert harness.feed(b"*\r\n") == b"501 5.7.0 Authentication aborted\r\n"
    out = harness.feed(f"AUTH SCRAM-SHA-256 {b64('p=tls-unique,,n=alice,r=x')}\r\n".encode())
    assert out == b"501 5.5.2 Malformed authentication response\r\n"
    assert harness.feed(b"NOOP\r\n") == b"250 2.0.0 Ok\r\n"
    assert harness.conn.authenticated_as is None


def test_keys_are_answered_with_send_keys_only() -> None:
    harness = greeted(**SCRAM_SETTINGS)
    conn = harness.conn
    client = ScramClient(["SCRAM-SHA-256"], "alice", "secret")
    conn.receive_data(f"AUTH SCRAM-SHA-256 {b64(client.get_client_first())}\r\n".encode())
    event = conn.next_event()
    assert isinstance(event, AuthKeysWanted)
    with pytest.raises(ProtocolUsageError):
        conn.send(SmtpReplies.AUTH_FAILED)
    with pytest.raises(ProtocolUsageError):
        conn.next_event()
    out = conn.send_keys(derive_scram_keys("secret"))
    assert challenge(out).startswith("r=")
    with pytest.raises(ProtocolUsageError):
        conn.send_keys(derive_scram_keys("secret"))
