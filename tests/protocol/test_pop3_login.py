"""AUTHORIZATION state transcripts: greeting, CAPA, USER/PASS, APOP, AUTH, STLS, UTF8.

Each transcript that takes ``mode`` runs twice: every client write fed whole,
and octet by octet.
"""

from __future__ import annotations

import base64

import pytest

from postoffice.protocol.errors import ProtocolUsageError
from postoffice.protocol.pop3 import (
    Authenticate,
    NeedData,
    Pop3ServerConnection,
    Pop3Settings,
    Pop3State,
    StartTls,
)
from tests.protocol.test_pop3_harness import (
    RFC_TIMESTAMP,
    FakeDriver,
    Pop3Harness,
    settings,
    transcript,
)

MODES = ["whole", "bytewise"]
COMMON_CAPA = """
    S: +OK Capability list follows
    S: TOP
    S: UIDL
    S: RESP-CODES
    S: AUTH-RESP-CODE
    S: PIPELINING
    S: UTF8
    S: IMPLEMENTATION postoffice
"""
DISALLOWED = "-ERR [AUTH] plaintext logins are not allowed without TLS; use STLS or pop3s"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


PLAIN_ALICE = b64(b"\0alice\0secret")
PLAIN_AS_ALICE = b64(b"alice\0alice\0secret")
PLAIN_JOERG = b64("\0jörg\0geheim".encode())


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# --------------------------------------------------------------- greeting


def test_greeting_texts() -> None:
    assert Pop3ServerConnection().start() == b"+OK POP3 server ready\r\n"
    assert Pop3ServerConnection().start("postoffice ready.") == b"+OK postoffice ready.\r\n"
    apop = Pop3ServerConnection(Pop3Settings(apop_timestamp=RFC_TIMESTAMP))
    assert apop.start() == f"+OK POP3 server ready {RFC_TIMESTAMP}\r\n".encode()


def test_start_and_next_event_order_is_enforced() -> None:
    conn = Pop3ServerConnection()
    with pytest.raises(ProtocolUsageError):
        conn.next_event()
    conn.start()
    with pytest.raises(ProtocolUsageError):
        conn.start()
    assert isinstance(conn.next_event(), NeedData)


def test_settings_are_validated() -> None:
    for bad in (
        {"hostname": "two words"},
        {"max_line_length": 100},
        {"max_errors": 0},
        {"apop_timestamp": "no-brackets"},
        {"sasl_mechanisms": ("CRAM-MD5",)},
        {"expire": ""},
        {"login_delay": -1},
    ):
        with pytest.raises(ValueError):
            Pop3Settings(**bad)  # type: ignore[arg-type]


# ------------------------------------------------------------------- CAPA


def test_capa_without_tls_and_without_plaintext_offers_stls_only(mode: str) -> None:
    transcript(
        f"""
        C: CAPA
        {COMMON_CAPA}
        S: STLS
        S: .
        """,
        settings(tls_available=True, plaintext_auth=False),
        mode=mode,
    )


def test_capa_with_plaintext_allowed_offers_user_and_sasl(mode: str) -> None:
    transcript(
        f"""
        C: CAPA
        {COMMON_CAPA}
        S: USER
        S: SASL PLAIN LOGIN SCRAM-SHA-256
        S: .
        """,
        mode=mode,
    )


def test_capa_on_tls_lists_logins_and_no_stls_plus_expire_and_login_delay() -> None:
    transcript(
        f"""
        C: CAPA
        {COMMON_CAPA}
        S: EXPIRE NEVER
        S: LOGIN-DELAY 60
        S: USER
        S: SASL PLAIN
        S: .
        """,
        settings(
            is_tls=True,
            tls_available=True,
            plaintext_auth=False,
            expire="NEVER",
            login_delay=60,
            sasl_mechanisms=("plain",),
        ),
    )


def test_capa_in_transaction_has_no_login_capabilities() -> None:
    harness = Pop3Harness(settings(tls_available=True, expire="30"))
    harness.login()
    harness.converse(
        f"""
        C: CAPA
        {COMMON_CAPA}
        S: EXPIRE 30
        S: .
        C: CAPA now
        S: -ERR CAPA takes no arguments
        """
    )


# -------------------------------------------------------------- USER/PASS


def test_user_pass_login(mode: str) -> None:
    harness = transcript(
        """
        S: +OK POP3 server ready
        C: user alice
        S: +OK send PASS
        C: pass secret
        S: +OK alice's maildrop has 3 messages (146 octets)
        """,
        mode=mode,
    )
    assert harness.conn.state is Pop3State.TRANSACTION
    assert harness.conn.user == "alice"
    [event] = harness.of_type(Authenticate)
    assert event == Authenticate("USER", "alice", "secret")
    assert "secret" not in repr(event)


def test_failed_pass_forgets_the_user_and_counts(mode: str) -> None:
    harness = transcript(
        """
        C: USER alice
        S: +OK send PASS
        C: PASS wrong
        S: -ERR [AUTH] invalid user name or password
        C: PASS secret
        S: -ERR USER first
        C: USER alice
        C: PASS my secret with spaces
        S: +OK send PASS
        S: -ERR [AUTH] invalid user name or password
        """,
        mode=mode,
    )
    assert harness.conn.error_count == 3
    assert harness.conn.user is None
    assert harness.driver.logins[-1].password == "my secret with spaces"  # RFC 1939 §7


def test_user_and_pass_arguments() -> None:
    transcript(
        """
        C: PASS secret
        S: -ERR USER first
        C: USER
        S: -ERR USER needs one user name
        C: USER two names
        S: -ERR USER needs one user name
        C: USER alice
        S: +OK send PASS
        C: PASS
        S: -ERR PASS needs a password
        """
    )


def test_plaintext_logins_are_refused_without_tls(mode: str) -> None:
    harness = transcript(
        f"""
        C: USER alice
        S: {DISALLOWED}
        C: PASS secret
        S: {DISALLOWED}
        C: AUTH PLAIN {PLAIN_ALICE}
        S: {DISALLOWED}
        C: AUTH
        S: {DISALLOWED}
        """,
        settings(plaintext_auth=False),
        mode=mode,
    )
    assert harness.of_type(Authenticate) == []
    assert harness.conn.error_count == 4


def test_plaintext_logins_are_allowed_on_tls() -> None:
    harness = Pop3Harness(settings(plaintext_auth=False, is_tls=True))
    harness.login()
    assert harness.conn.is_tls and harness.conn.user == "alice"


def test_login_refusals_carry_response_codes() -> None:
    driver = FakeDriver(in_use={"alice"})
    harness = transcript(
        """
        C: USER alice
        C: PASS secret
        S: +OK send PASS
        S: -ERR [IN-USE] maildrop already locked
        """,
        driver=driver,
    )
    assert harness.conn.error_count == 0  # the client did nothing wrong
    for code in ("LOGIN-DELAY", "SYS/TEMP", "SYS/PERM", None):
        conn = Pop3ServerConnection(settings())
        conn.start()
        conn.receive_data(b"USER alice\r\nPASS secret\r\n")
        assert isinstance(conn.next_event(), Authenticate)
        assert conn.data_to_send() == b"+OK send PASS\r\n"
        prefix = f"-ERR [{code}] " if code else "-ERR "
        conn.login_refused("not now", code)
        assert conn.data_to_send() == f"{prefix}not now\r\n".encode()


def test_utf8_user_names_need_utf8_first(mode: str) -> None:
    harness = transcript(
        """
        C: USER jörg
        S: -ERR a non-ASCII user name needs UTF8 first
        C: UTF8
        S: +OK UTF8 enabled
        C: USER jörg
        S: +OK send PASS
        C: PASS geheim
        S: +OK jörg's maildrop has 1 message (49 octets)
        C: UTF8
        S: -ERR command not valid after login
        """,
        mode=mode,
    )
    assert harness.conn.utf8 and harness.conn.user == "jörg"


def test_a_sasl_login_may_be_utf8_but_is_not_echoed_without_utf8() -> None:
    harness = transcript(
        f"""
        C: AUTH PLAIN {PLAIN_JOERG}
        S: +OK maildrop has 1 message (49 octets)
        """
    )
    assert harness.conn.user == "jörg" and not harness.conn.utf8


# ------------------------------------------------------------------- APOP


def test_apop_is_refused_without_a_timestamp_and_no_event_is_made() -> None:
    harness = transcript(
        """
        S: +OK POP3 server ready
        C: APOP mrose c4c9334bac560ecc979e58001b3e22fb
        S: -ERR [AUTH] APOP is not available here
        """
    )
    assert harness.of_type(Authenticate) == []


def test_apop_arguments_are_checked() -> None:
    harness = transcript(
        """
        C: APOP mrose
        S: -ERR APOP needs a user name and a 32-digit hex digest
        C: APOP mrose c4c9334bac560ecc979e58001b3e22fz
        S: -ERR APOP needs a user name and a 32-digit hex digest
        C: APOP mröse c4c9334bac560ecc979e58001b3e22fb
        S: -ERR a non-ASCII user name needs UTF8 first
        C: APOP mrose C4C9334BAC560ECC979E58001B3E22FB
        S: +OK mrose's maildrop has 2 messages (101 octets)
        """,
        settings(apop_timestamp=RFC_TIMESTAMP, plaintext_auth=False),
    )
    assert harness.driver.logins[0].apop_digest == "c4c9334bac560ecc979e58001b3e22fb"


# ------------------------------------------------------------------- AUTH


def test_auth_without_argument_lists_the_mechanisms() -> None:
    transcript(
        """
        C: AUTH
        S: +OK
        S: PLAIN
        S: LOGIN
        S: SCRAM-SHA-256
        S: .
        """
    )


def test_auth_plain_with_initial_response(mode: str) -> None:
    harness = transcript(
        f"""
        C: AUTH PLAIN {PLAIN_ALICE}
        S: +OK alice's maildrop has 3 messages (146 octets)
        """,
        mode=mode,
    )
    [event] = harness.of_type(Authenticate)
    assert isinstance(event, Authenticate)
    assert (event.mechanism, event.user, event.password, event.authzid) == (
        "PLAIN",
        "alice",
        "secret",
        None,
    )
    assert "secret" not in repr(event)


def test_auth_plain_after_an_empty_challenge_with_authzid(mode: str) -> None:
    harness = transcript(
        f"""
        C: auth plain
        S: +
        C: {PLAIN_AS_ALICE}
        S: +OK alice's maildrop has 3 messages (146 octets)
        """,
        mode=mode,
    )
    assert harness.driver.logins[0].authzid == "alice"
    assert harness.conn.user == "alice"


def test_auth_login_dialogue(mode: str) -> None:
    transcript(
        f"""
        C: AUTH LOGIN
        S: + VXNlcm5hbWU6
        C: {b64(b"alice")}
        S: + UGFzc3dvcmQ6
        C: {b64(b"secret")}
        S: +OK alice's maildrop has 3 messages (146 octets)
        """,
        mode=mode,
    )


def test_auth_login_with_the_user_name_as_initial_response() -> None:
    transcript(
        f"""
        C: AUTH LOGIN {b64(b"alice")}
        S: + UGFzc3dvcmQ6
        C: {b64(b"wrong")}
        S: -ERR [AUTH] invalid user name or password
        """
    )


def test_auth_cancel_bad_base64_and_malformed(mode: str) -> None:
    harness = transcript(
        f"""
        C: AUTH PLAIN
        S: +
        C: *
        S: -ERR authentication cancelled
        C: AUTH PLAIN *
        S: -ERR authentication cancelled
        C: AUTH LOGIN
        S: + VXNlcm5hbWU6
        C: not base64!
        S: -ERR invalid base64 data
        C: AUTH PLAIN %%%
        S: -ERR invalid base64 data
        C: AUTH PLAIN =
        S: -ERR invalid authentication exchange
        C: AUTH PLAIN {b64(b"no separators")}
        S: -ERR invalid authentication exchange
        C: AUTH CRAM-MD5
        S: -ERR unsupported authentication mechanism
        C: AUTH PLAIN a b
        S: -ERR AUTH takes a mechanism and an optional initial response
        C: CAPA x
        S: -ERR CAPA takes no arguments
        """,
        mode=mode,
    )
    assert harness.conn.error_count == 9
    assert harness.conn.state is Pop3State.AUTHORIZATION
    assert harness.of_type(Authenticate) == []


def test_auth_offers_only_the_configured_mechanisms() -> None:
    transcript(
        """
        C: AUTH LOGIN
        S: -ERR unsupported authentication mechanism
        """,
        settings(sasl_mechanisms=("PLAIN",)),
    )


def test_auth_response_longer_than_the_line_limit_ends_the_exchange() -> None:
    harness = Pop3Harness(settings(max_line_length=300))
    assert harness.feed(b"AUTH PLAIN\r\n") == b"+ \r\n"
    assert harness.feed(b"A" * 400 + b"\r\nCAPA x\r\n") == (
        b"-ERR line too long\r\n-ERR CAPA takes no arguments\r\n"
    )


# ------------------------------------------------------------------- STLS


def test_stls_discards_what_was_pipelined_behind_it() -> None:
    # One write only: fed octet by octet, the rest would arrive after the handshake.
    harness = Pop3Harness(settings(tls_available=True, plaintext_auth=False))
    evil = b"USER alice\r\nPASS secret\r\n"
    out = harness.feed(b"STLS\r\n" + evil)
    assert out == b"+OK Begin TLS negotiation\r\n"
    assert harness.tls_started == 1 and harness.conn.is_tls
    assert harness.conn.discarded_plaintext_octets == len(evil)
    assert harness.of_type(Authenticate) == []
    harness.converse(
        f"""
        C: STLS
        S: -ERR command not permitted when TLS active
        C: CAPA
        {COMMON_CAPA}
        S: USER
        S: SASL PLAIN LOGIN SCRAM-SHA-256
        S: .
        """
    )


def test_octets_between_stls_and_the_handshake_are_discarded() -> None:
    conn = Pop3ServerConnection(settings(tls_available=True))
    conn.start()
    conn.receive_data(b"USER alice\r\nSTLS\r\n")
    assert isinstance(conn.next_event(), StartTls)
    assert conn.data_to_send() == b"+OK send PASS\r\n+OK Begin TLS negotiation\r\n"
    with pytest.raises(ProtocolUsageError):
        conn.next_event()  # the handshake comes first
    conn.receive_data(b"PASS secret\r\n")
    assert conn.discarded_plaintext_octets == len(b"PASS secret\r\n")
    conn.tls_started()
    assert conn.buffered_octets == 0
    conn.receive_data(b"PASS secret\r\n")
    assert isinstance(conn.next_event(), NeedData)
    assert conn.data_to_send() == b"-ERR USER first\r\n"  # USER was forgotten with plaintext
    with pytest.raises(ProtocolUsageError):
        conn.tls_started()


def test_stls_refusals() -> None:
    transcript(
        """
        C: STLS
        S: -ERR STLS is not available here
        C: STLS now
        S: -ERR STLS takes no arguments
        """
    )
    transcript(
        """
        C: STLS
        S: -ERR command not permitted when TLS active
        """,
        settings(is_tls=True, tls_available=True),
    )
