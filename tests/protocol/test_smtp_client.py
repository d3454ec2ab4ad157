"""SMTP client sessions as transcripts: greeting, EHLO/HELO, STARTTLS, AUTH, 421, EOF, QUIT.

Every transcript runs twice: each server packet fed whole, and octet by octet.
Transactions are in test_smtp_client_transactions.py, their parameters and value
checks in test_smtp_client_parameters.py, content in test_smtp_client_data.py.
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postoffice.protocol.errors import ProtocolUsageError
from postoffice.protocol.smtp import client_events as ev
from postoffice.protocol.smtp.client import (
    ClientSettings,
    ClientState,
    ClientStateError,
    ServerExtensions,
    SmtpClientConnection,
)
from tests.protocol.smtp_client_harness import (
    EHLO_ALL,
    HELO,
    MODES,
    ClientHarness,
    ehlo_with,
    greeted,
    transaction,
)

PLAIN = base64.b64encode(b"\x00alice\x00s3cret").decode()


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# --------------------------------------------------------------- greeting


def test_greeting_then_ehlo_with_every_extension(mode: str) -> None:
    h = greeted(EHLO_ALL, mode=mode)
    ext = h.conn.extensions
    assert ext is not None
    assert ext.keywords == {
        "PIPELINING",
        "SIZE",
        "ENHANCEDSTATUSCODES",
        "8BITMIME",
        "DSN",
        "SMTPUTF8",
        "STARTTLS",
        "AUTH",
        "BINARYMIME",
        "CHUNKING",
    }
    assert ext.size == 10485760
    assert ext.pipelining and ext.eight_bit_mime and ext.smtputf8 and ext.chunking
    assert ext.dsn and ext.starttls and ext.enhanced_status_codes and ext.binarymime
    assert ext.auth == {"PLAIN", "LOGIN"}
    hello = h.events[-1]
    assert isinstance(hello, ev.HelloDone) and hello.extensions == ext
    assert hello.reply.text.startswith("mx.example.test greets client.test\nPIPELINING")
    assert h.conn.state is ClientState.READY
    assert h.conn.last_reply == hello.reply


def test_greeting_spread_over_several_lines(mode: str) -> None:
    h = ClientHarness(mode=mode)
    h.converse("""
        S: 220-mx.example.test ESMTP
        S: 220 no UCE
        E: Greeting 220
    """)
    greeting = h.events[0]
    assert isinstance(greeting, ev.Greeting)
    assert greeting.reply.text == "mx.example.test ESMTP\nno UCE"
    assert h.conn.state is ClientState.CONNECTED


def test_nothing_is_written_before_the_greeting() -> None:
    h = ClientHarness()
    h.converse("C: (none)")
    with pytest.raises(ClientStateError):
        h.conn.hello()
    with pytest.raises(ClientStateError):
        h.conn.quit()


def test_a_refused_greeting_allows_only_quit(mode: str) -> None:
    h = ClientHarness(mode=mode)
    h.converse("""
        S: 554 5.7.1 mx.example.test no service for you
        E: Greeting 554 5.7.1
    """)
    assert h.conn.state is ClientState.REJECTED
    with pytest.raises(ClientStateError):
        h.conn.hello()
    h.conn.quit()  # RFC 5321 §3.1
    h.converse("""
        C: QUIT
        S: 221 2.0.0 Bye
        E: Closing 221 2.0.0
        S: <EOF>
        E: ConnectionClosed expected
    """)


# ------------------------------------------------------------- EHLO / HELO


@pytest.mark.parametrize("code", ["500 5.5.2", "501 5.5.4", "502 5.5.1", "504 5.5.4", "550"])
def test_ehlo_not_recognised_falls_back_to_helo(code: str, mode: str) -> None:
    h = ClientHarness(mode=mode)
    h.converse("""
        S: 220 old.example.test SMTP
        E: Greeting 220
    """)
    h.conn.hello()
    h.converse(f"""
        C: EHLO {HELO}
        S: {code} Command unrecognized
        C: HELO {HELO}
        S: 250 old.example.test
        E: HelloDone 250 HELO
    """)
    assert h.conn.extensions == ServerExtensions.none()
    assert h.conn.state is ClientState.READY


def test_helo_refused_too(mode: str) -> None:
    h = ClientHarness(mode=mode)
    h.converse("""
        S: 220 old.example.test SMTP
        E: Greeting 220
    """)
    h.conn.hello()
    h.converse(f"""
        C: EHLO {HELO}
        S: 502 5.5.1 no EHLO
        C: HELO {HELO}
        S: 550 5.7.1 go away
        E: HelloRefused 550 5.7.1
    """)
    assert h.conn.state is ClientState.CONNECTED and h.conn.extensions is None
    h.conn.quit()
    h.converse("""
        C: QUIT
        S: 221 Bye
        E: Closing 221
    """)


@pytest.mark.parametrize("code", ["554 5.7.1", "451 4.3.0", "503 5.5.1"])
def test_other_ehlo_failures_are_refusals_without_fallback(code: str, mode: str) -> None:
    h = ClientHarness(mode=mode)
    h.converse("""
        S: 220 mx.example.test ESMTP
        E: Greeting 220
    """)
    h.conn.hello()
    h.converse(f"""
        C: EHLO {HELO}
        S: {code} No
        E: HelloRefused {code}
    """)


def test_ehlo_again_replaces_the_extensions(mode: str) -> None:
    h = greeted(ehlo_with("PIPELINING", "SIZE 5"), mode=mode)
    h.conn.hello()
    h.converse(f"""
        C: EHLO {HELO}
        {ehlo_with("8BITMIME")}
        E: HelloDone 250 EHLO
    """)
    assert h.conn.extensions == ServerExtensions.from_lines(["8BITMIME"])


# ----------------------------------------------------------------- STARTTLS


def test_starttls_discards_a_line_injected_after_the_220(mode: str) -> None:
    h = greeted(mode=mode)
    h.conn.starttls()
    # RFC 3207 §4, CVE-2011-0411: the second line comes from a man in the middle.
    h.converse("""
        C: STARTTLS
        S: 220 2.0.0 Ready to start TLS
        S: 250 injected
        E: TlsReady 220 2.0.0
    """)
    assert h.conn.state is ClientState.TLS_HANDSHAKE
    h.feed(b"554 also injected, before the handshake ended\r\n")
    h.converse("E: (none)")
    h.conn.tls_started()
    assert h.conn.extensions is None and h.conn.is_tls
    assert h.conn.discarded_octets == len(
        b"250 injected\r\n554 also injected, before the handshake ended\r\n"
    )
    assert h.conn.state is ClientState.CONNECTED
    with pytest.raises(ClientStateError):  # RFC 3207 §4.2: EHLO first
        h.conn.begin(transaction())
    h.conn.hello()
    h.converse(f"""
        C: EHLO {HELO}
        S: 250-mx.example.test
        S: 250-AUTH PLAIN
        S: 250 PIPELINING
        E: HelloDone 250 EHLO
    """)
    hello = h.events[-1]
    assert isinstance(hello, ev.HelloDone)
    assert hello.reply.text == "mx.example.test\nAUTH PLAIN\nPIPELINING"
    assert h.conn.extensions is not None and not h.conn.extensions.starttls


def test_starttls_injected_in_a_packet_of_its_own(mode: str) -> None:
    h = greeted(mode=mode)
    h.conn.starttls()
    h.converse("""
        C: STARTTLS
        S: 220 Go ahead
        E: TlsReady 220
    """)
    h.feed(b"250-PIPELINING\r\n250 injected\r\n")
    h.conn.tls_started()
    h.conn.hello()
    h.converse(f"""
        C: EHLO {HELO}
        S: 250 mx.example.test
        E: HelloDone 250 EHLO
    """)


def test_starttls_refused(mode: str) -> None:
    h = greeted(mode=mode)
    h.conn.starttls()
    h.converse("""
        C: STARTTLS
        S: 454 4.7.0 TLS not available due to temporary reason
        E: TlsRefused 454 4.7.0
    """)
    assert h.conn.state is ClientState.READY and not h.conn.is_tls


def test_starttls_only_when_offered_and_only_once() -> None:
    h = greeted(ehlo_with("PIPELINING"))
    with pytest.raises(ClientStateError, match="did not offer STARTTLS"):
        h.conn.starttls()
    h = greeted(EHLO_ALL, ClientSettings(helo_name=HELO, implicit_tls=True))
    with pytest.raises(ClientStateError, match="already"):
        h.conn.starttls()
    h = greeted()
    with pytest.raises(ClientStateError):
        h.conn.tls_started()  # no STARTTLS accepted


# --------------------------------------------------------------------- AUTH


def test_auth_plain_with_an_initial_response(mode: str) -> None:
    h = greeted(mode=mode)
    h.conn.authenticate("plain", "alice", "s3cret")
    h.converse(f"""
        C: AUTH PLAIN {PLAIN}
        S: 235 2.7.0 Authentication successful
        E: AuthDone 235 2.7.0
    """)
    assert h.conn.authenticated
    with pytest.raises(ClientStateError, match="already authenticated"):
        h.conn.authenticate("PLAIN", "alice", "s3cret")


def test_auth_login(mode: str) -> None:
    h = greeted(mode=mode)
    h.conn.authenticate("LOGIN", "alice", "s3cret")
    h.converse("""
        C: AUTH LOGIN
        S: 334 VXNlcm5hbWU6
        C: YWxpY2U=
        S: 334 UGFzc3dvcmQ6
        C: czNjcmV0
        S: 235 2.7.0 Authentication successful
        E: AuthDone 235 2.7.0
    """)


def test_auth_refused(mode: str) -> None:
    h = greeted(mode=mode)
    h.conn.authenticate("LOGIN", "alice", "wrong")
    h.converse("""
        C: AUTH LOGIN
        S: 334 VXNlcm5hbWU6
        C: YWxpY2U=
        S: 334 UGFzc3dvcmQ6
        C: d3Jvbmc=
        S: 535 5.7.8 Authentication credentials invalid
        E: AuthRefused 535 5.7.8
    """)
    assert not h.conn.authenticated and h.conn.state is ClientState.READY


def test_a_challenge_with_no_answer_is_cancelled(mode: str) -> None:
    h = greeted(mode=mode)
    h.conn.authenticate("PLAIN", "alice", "s3cret")
    # RFC 4954 §4: the client answers "*" and the server ends the exchange with 501.
    h.converse(f"""
        C: AUTH PLAIN {PLAIN}
        S: 334
        C: *
        S: 501 5.7.0 Authentication aborted
        E: AuthRefused 501 5.7.0
    """)
    h.conn.authenticate("LOGIN", "alice", "s3cret")
    h.converse("""
        C: AUTH LOGIN
        S: 334 VXNlcm5hbWU6
        C: YWxpY2U=
        S: 334 UGFzc3dvcmQ6
        C: czNjcmV0
        S: 334 TW9yZT8=
        C: *
        S: 501 5.7.0 Authentication aborted
        E: AuthRefused 501 5.7.0
    """)


def test_auth_arguments_are_checked() -> None:
    h = greeted()
    with pytest.raises(ValueError, match="unsupported"):
        h.conn.authenticate("CRAM-MD5", "alice", "x")
    with pytest.raises(ValueError, match="NUL"):
        h.conn.authenticate("PLAIN", "alice", "a\x00b")
    with pytest.raises(ValueError, match="empty"):
        h.conn.authenticate("LOGIN", "", "x")
    h = greeted(ehlo_with("AUTH LOGIN"))
    with pytest.raises(ClientStateError, match="AUTH PLAIN"):
        h.conn.authenticate("PLAIN", "alice", "x")
    h.converse("C: (none)")


# ---------------------------------------------------------- 421, EOF, junk


def test_421_in_answer_to_a_command(mode: str) -> None:
    h = greeted(mode=mode)
    h.conn.begin(transaction("bob@b.test", "carol@b.test"))
    h.converse("""
        C: MAIL FROM:<alice@a.test>
        C: RCPT TO:<bob@b.test>
        C: RCPT TO:<carol@b.test>
        S: 250 2.1.0 Ok
        S: 421 4.3.2 mx.example.test Service shutting down
        S: 250 2.1.5 never read
        E: ServiceClosing 421 4.3.2
        S: <EOF>
        E: ConnectionClosed expected
    """)
    assert h.conn.state is ClientState.CLOSED


def test_421_to_ehlo_is_not_a_reason_to_try_helo(mode: str) -> None:
    h = ClientHarness(mode=mode)
    h.converse("""
        S: 220 mx.example.test
        E: Greeting 220
    """)
    h.conn.hello()
    h.converse(f"""
        C: EHLO {HELO}
        S: 421 4.7.0 Too busy
        E: ServiceClosing 421 4.7.0
    """)
    with pytest.raises(ClientStateError):
        h.conn.quit()


def test_unsolicited_421_when_idle(mode: str) -> None:
    h = greeted(mode=mode)
    h.converse("""
        S: 421 4.4.2 mx.example.test Error: timeout exceeded
        E: ServiceClosing 421 4.4.2
        S: <EOF>
        E: ConnectionClosed expected
    """)


def test_unsolicited_reply_is_a_protocol_violation(mode: str) -> None:
    h = greeted(mode=mode)
    h.converse("""
        S: 250 2.0.0 what?
        E: ProtocolViolation
    """)
    assert h.conn.state is ClientState.CLOSED
    with pytest.raises(ClientStateError):
        h.conn.begin(transaction())
    with pytest.raises(ClientStateError):
        h.conn.quit()
    terminal = h.conn.next_event()
    assert isinstance(terminal, ev.ProtocolViolation) and "none was awaited" in terminal.description
    assert h.conn.next_event() is terminal  # terminal events repeat


def test_a_reply_that_does_not_parse_kills_the_connection(mode: str) -> None:
    h = greeted(mode=mode)
    h.conn.begin(transaction())
    h.converse("""
        C: MAIL FROM:<alice@a.test>
        C: RCPT TO:<bob@b.test>
        S: 250 2.1.0 Ok
        S: hello there
        E: ProtocolViolation
    """)
    with pytest.raises(ClientStateError):
        h.conn.reset()


def test_greeting_that_is_not_a_reply(mode: str) -> None:
    h = ClientHarness(mode=mode)
    h.converse("""
        S: SSH-2.0-OpenSSH_9.6
        E: ProtocolViolation
    """)


@pytest.mark.parametrize("state", ["greeting", "ehlo", "transaction", "idle"])
def test_end_of_file_while_waiting(state: str, mode: str) -> None:
    h = ClientHarness(mode=mode) if state == "greeting" else greeted(mode=mode)
    if state == "ehlo":
        h.conn.hello()
        h.converse(f"C: EHLO {HELO}")
    elif state == "transaction":
        h.conn.begin(transaction())
        h.take_written()
        h.feed(b"250 2.1.0 Ok\r\n250-partial")
    h.converse("""
        S: <EOF>
        E: ConnectionClosed unexpected
    """)
    assert h.conn.state is ClientState.CLOSED


def test_quit(mode: str) -> None:
    h = greeted(mode=mode)
    h.conn.quit()
    h.converse("""
        C: QUIT
        S: 221 2.0.0 Bye
        E: Closing 221 2.0.0
        S: 250 anything after the 221 is ignored
        S: <EOF>
        E: ConnectionClosed expected
    """)


def test_eof_right_after_quit_without_its_reply(mode: str) -> None:
    h = greeted(mode=mode)
    h.conn.quit()
    h.converse("""
        C: QUIT
        S: <EOF>
        E: ConnectionClosed expected
    """)


def test_state_errors_are_protocol_usage_errors() -> None:
    assert issubclass(ClientStateError, ProtocolUsageError)
    assert issubclass(ClientStateError, RuntimeError)
    conn = SmtpClientConnection(ClientSettings(helo_name=HELO))
    for call in (conn.end_message, conn.reset, conn.tls_started, conn.starttls):
        with pytest.raises(ClientStateError):
            call()
    with pytest.raises(ClientStateError):
        conn.send_message_data(b"x")


# -------------------------------------------------------------- garbage in

SERVER_PIECES = [
    b"220 mx ESMTP\r\n",
    b"250-mx\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 AUTH PLAIN LOGIN\r\n",
    b"250 2.1.0 Ok\r\n",
    b"550 5.1.1 No\r\n",
    b"354 go\r\n",
    b"334 VXNlcm5hbWU6\r\n",
    b"235 2.7.0 ok\r\n",
    b"421 4.3.2 bye\r\n",
    b"502 5.5.1 no\r\n",
    b"220 tls\r\n",
    b"221 bye\r\n",
    b"garbage\r\n",
    b"25",
    b"\n",
    b"",
]
CALLS = [
    "hello",
    "starttls",
    "tls_started",
    "authenticate",
    "begin",
    "data",
    "end",
    "reset",
    "quit",
]


@settings(max_examples=150, deadline=None)
@given(
    script=st.lists(st.one_of(st.sampled_from(SERVER_PIECES), st.sampled_from(CALLS)), max_size=30)
)
def test_any_server_output_gives_events_never_exceptions(script: list[bytes | str]) -> None:
    conn = SmtpClientConnection(ClientSettings(helo_name=HELO))
    for step in script:
        if isinstance(step, bytes):
            conn.receive_data(step)
            for _ in range(100):
                event = conn.next_event()
                if isinstance(event, ev.NeedData | ev.ConnectionClosed | ev.ProtocolViolation):
                    break
            else:
                raise AssertionError("next_event never asked for data")
        else:
            try:
                if step == "authenticate":
                    conn.authenticate("LOGIN", "alice", "x")
                elif step == "begin":
                    conn.begin(transaction())
                elif step == "data":
                    conn.send_message_data(b"line\r\n.dot\n")
                elif step == "end":
                    conn.end_message()
                else:
                    getattr(conn, step)()
            except ClientStateError:
                pass
        out = conn.data_to_send()
        assert not out or out.endswith(b"\r\n") or conn.state is ClientState.MESSAGE
