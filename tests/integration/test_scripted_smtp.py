"""The scripted far-side SMTP server itself, driven by smtplib and by raw sockets."""

from __future__ import annotations

import asyncio
import smtplib
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.scripted_smtp import Script, ScriptedSmtpServer, self_signed_context

HOST = "127.0.0.3"
MESSAGE = b"Subject: hi\r\n\r\nline one\r\n.dotted line\r\n..two dots\r\n"


@pytest.fixture
def far() -> Iterator[ScriptedSmtpServer]:
    with ScriptedSmtpServer(host=HOST, port=0) as server:
        yield server


def unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class Raw:
    """A line-level client on a plain socket, for what smtplib cannot do."""

    def __init__(self, port: int):
        self.sock = socket.create_connection((HOST, port), timeout=5)
        self.buf = b""

    def reply(self) -> str:
        """Read one complete (possibly multi-line) reply."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(4096)
                assert chunk, "connection closed"
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode())
            if line[3:4] != b"-":
                return "\n".join(lines)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()


def test_a_plain_session_is_recorded(far: ScriptedSmtpServer) -> None:
    with smtplib.SMTP(HOST, far.port, local_hostname="client.test") as client:
        client.ehlo()
        assert client.has_extn("pipelining") and client.has_extn("smtputf8")
        assert not client.has_extn("starttls") and not client.has_extn("chunking")
        refused = client.sendmail(
            "sender@client.test",
            ["a@far.test", "b@far.test"],
            MESSAGE,
            mail_options=["BODY=8BITMIME"],
            rcpt_options=["NOTIFY=NEVER"],
        )
        assert refused == {}
    far.wait_for(lambda: far.sessions[0].done, timeout=5)
    [session] = far.sessions
    assert session.ehlo == "client.test"
    assert not session.tls and session.auth is None
    assert session.lines[0] == "ehlo client.test"
    assert session.lines[-1] == "QUIT"
    [message] = far.messages
    assert message.mail_from == "sender@client.test"
    assert message.mail_params == [f"size={len(MESSAGE)}", "BODY=8BITMIME"]
    assert message.rcpts == [("a@far.test", ["NOTIFY=NEVER"]), ("b@far.test", ["NOTIFY=NEVER"])]
    assert message.data == MESSAGE  # smtplib stuffs the dots, the server unstuffs them
    assert message.reply == "250 2.0.0 Ok: queued as SCRIPTED1"


def test_pipelined_commands_in_one_packet(far: ScriptedSmtpServer) -> None:
    raw = Raw(far.port)
    try:
        assert raw.reply().startswith("220 far.test")
        raw.send(b"EHLO raw.test\r\n")
        assert raw.reply().startswith("250-far.test")
        raw.send(
            b"MAIL FROM:<>\r\nRCPT TO:<x@far.test>\r\nNOOP\r\nBOGUS\r\nRCPT TO:<y@far.test>\r\n"
            b"DATA\r\n"
        )
        assert [raw.reply()[:3] for _ in range(6)] == ["250", "250", "250", "500", "250", "354"]
        raw.send(b"a\n.\r\nstill body\r\n.\r\nRSET\r\nQUIT\r\n")
        assert [raw.reply()[:3] for _ in range(3)] == ["250", "250", "221"]
    finally:
        raw.close()
    [message] = far.messages
    assert message.mail_from == ""
    assert [r for r, _ in message.rcpts] == ["x@far.test", "y@far.test"]
    assert message.data == b"a\n.\r\nstill body\r\n"  # only CRLF . CRLF ends the data


def test_rcpt_script_defers_first_then_accepts(far: ScriptedSmtpServer) -> None:
    far.script = Script(rcpt=lambda addr, seen: "450 4.2.0 try later" if seen == 0 else "250 Ok")
    with smtplib.SMTP(HOST, far.port) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.sendmail("s@client.test", ["r@far.test"], MESSAGE)
        assert refused.value.recipients["r@far.test"][0] == 450
        client.rset()
        assert client.sendmail("s@client.test", ["r@far.test"], MESSAGE) == {}
    first, second = far.sessions[0].transactions
    assert first.rcpts == [] and first.data is None and not first.accepted
    assert second.accepted and far.messages == [second]


def test_helo_fallback_when_ehlo_is_refused(far: ScriptedSmtpServer) -> None:
    far.script = Script(ehlo_reply="502 5.5.2 no EHLO here")
    with smtplib.SMTP(HOST, far.port, local_hostname="old.test") as client:
        client.sendmail("s@client.test", ["r@far.test"], MESSAGE)
        assert not client.does_esmtp
    session = far.sessions[0]
    assert [line.split()[0] for line in session.lines[:2]] == ["ehlo", "helo"]
    assert session.ehlo == "old.test"
    assert len(far.messages) == 1


def test_starttls_with_a_self_signed_certificate(far: ScriptedSmtpServer, tmp_path: Path) -> None:
    far.script = Script(tls_context=self_signed_context(tmp_path))
    with smtplib.SMTP(HOST, far.port) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        assert client.starttls(context=unverified())[0] == 220
        client.ehlo()
        assert not client.has_extn("starttls")  # RFC 3207: not offered again
        client.sendmail("s@client.test", ["r@far.test"], MESSAGE)
    far.wait_for(lambda: far.sessions[0].done, timeout=5)
    assert far.sessions[0].tls
    assert far.messages[0].data == MESSAGE


@pytest.mark.parametrize("initial_response", [True, False])
@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth(far: ScriptedSmtpServer, mechanism: str, initial_response: bool) -> None:
    far.script = Script(auth=("user", "s3cret"))
    with smtplib.SMTP(HOST, far.port) as client:
        client.ehlo()
        client.user, client.password = "user", "wrong"
        method = client.auth_plain if mechanism == "PLAIN" else client.auth_login
        with pytest.raises(smtplib.SMTPAuthenticationError) as failed:
            client.auth(mechanism, method, initial_response_ok=initial_response)
        assert failed.value.smtp_code == 535
        client.password = "s3cret"
        code, _ = client.auth(mechanism, method, initial_response_ok=initial_response)
        assert code == 235
    session = far.sessions[0]
    assert session.auth == ("user", "s3cret") and session.authenticated
    assert session.lines[1].upper().startswith(f"AUTH {mechanism}")


def test_drop_after_data_disconnects_the_client(far: ScriptedSmtpServer) -> None:
    far.script = Script(drop_after_data=True)
    with (
        smtplib.SMTP(HOST, far.port) as client,
        pytest.raises(smtplib.SMTPServerDisconnected),
    ):
        client.sendmail("s@client.test", ["r@far.test"], MESSAGE)
    far.wait_for(lambda: far.sessions[0].done, timeout=5)
    [received] = far.sessions[0].transactions
    assert received.data == MESSAGE and not received.accepted and received.reply is None
    assert far.messages == []


def test_chunking_with_bdat(far: ScriptedSmtpServer) -> None:
    far.script = Script(chunking=True)
    raw = Raw(far.port)
    try:
        raw.reply()
        raw.send(b"EHLO raw.test\r\n")
        assert "CHUNKING" in raw.reply().splitlines()[-1]
        raw.send(b"MAIL FROM:<s@client.test>\r\nRCPT TO:<r@far.test>\r\nBDAT 7\r\nhello\r\n")
        assert [raw.reply()[:3] for _ in range(3)] == ["250", "250", "250"]
        raw.send(b"BDAT 10 LAST\r\n.world\r\n\r\n")  # no dot-stuffing in BDAT
        assert raw.reply() == "250 2.0.0 Ok: queued as SCRIPTED1"
        raw.send(b"QUIT\r\n")
        assert raw.reply().startswith("221")
    finally:
        raw.close()
    assert far.messages[0].data == b"hello\r\n.world\r\n\r\n"


def test_starttls_injection_sends_both_lines_in_one_packet(
    far: ScriptedSmtpServer, tmp_path: Path
) -> None:
    far.script = Script(tls_context=self_signed_context(tmp_path), starttls_injection=True)
    raw = Raw(far.port)
    try:
        raw.reply()
        raw.send(b"EHLO raw.test\r\n")
        raw.reply()
        raw.send(b"STARTTLS\r\n")
        packet = raw.sock.recv(4096)
        assert packet == b"220 2.0.0 Ready to start TLS\r\n250 2.0.0 injected\r\n"
        verifying = ssl.create_default_context(cafile=tmp_path / "far.test.pem")
        with verifying.wrap_socket(raw.sock, server_hostname="far.test") as tls:
            tls.sendall(b"QUIT\r\n")
            assert tls.recv(4096).startswith(b"221")
    finally:
        raw.close()
    far.wait_for(lambda: far.sessions[0].done, timeout=5)
    assert far.sessions[0].tls


def test_failed_handshake_is_recorded(far: ScriptedSmtpServer, tmp_path: Path) -> None:
    far.script = Script(tls_context=self_signed_context(tmp_path))
    raw = Raw(far.port)
    try:
        raw.reply()
        raw.send(b"EHLO raw.test\r\nSTARTTLS\r\n")
        raw.reply()
        assert raw.reply().startswith("220")
        raw.send(b"this is not a TLS hello\r\n")
        far.wait_for(lambda: far.sessions[0].done, timeout=5)
    finally:
        raw.close()
    assert not far.sessions[0].tls and far.sessions[0].tls_error


def test_refusing_greeting_and_live_script_change(far: ScriptedSmtpServer) -> None:
    far.script = Script(greeting="554 5.7.1 go away")
    with pytest.raises(smtplib.SMTPConnectError):
        smtplib.SMTP(HOST, far.port)
    far.script = Script(final_reply=lambda before: "451 4.3.0 later" if before == 0 else "250 ok")
    with smtplib.SMTP(HOST, far.port) as client:
        with pytest.raises(smtplib.SMTPDataError):
            client.sendmail("s@client.test", ["r@far.test"], MESSAGE)
        client.sendmail("s@client.test", ["r@far.test"], MESSAGE)
    far.wait_for(lambda: len(far.messages) == 1, timeout=5)
    assert [t.reply for t in far.sessions[1].transactions] == ["451 4.3.0 later", "250 ok"]


def test_max_size_is_advertised_and_enforced(far: ScriptedSmtpServer) -> None:
    far.script = Script(max_size=40)
    with smtplib.SMTP(HOST, far.port) as client:
        client.ehlo()
        assert client.esmtp_features["size"] == "40"
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail("s@client.test", ["r@far.test"], MESSAGE)
        assert refused.value.smtp_code == 552
    assert far.messages == []


def test_exit_closes_an_idle_connection_quickly() -> None:
    with pytest.raises(ValueError, match="loopback"):
        ScriptedSmtpServer(host="192.0.2.1")
    started = time.monotonic()
    with ScriptedSmtpServer(host=HOST) as far:
        raw = Raw(far.port)
        far.wait_for(lambda: len(far.sessions) == 1, timeout=5)
    try:
        assert raw.reply().startswith("220")
        assert raw.sock.recv(10) == b""  # the server side was shut down
    finally:
        raw.close()
    assert far.sessions[0].done
    assert time.monotonic() - started < 2


async def test_usable_from_a_test_running_its_own_loop(far: ScriptedSmtpServer) -> None:
    reader, writer = await asyncio.open_connection(HOST, far.port)
    try:
        assert (await reader.readline()).startswith(b"220")
        writer.write(b"HELO async.test\r\nQUIT\r\n")
        assert (await reader.readline()).startswith(b"250 far.test")
        assert (await reader.readline()).startswith(b"221")
        await far.wait_for_async(lambda: far.sessions[0].done, timeout=5)
    finally:
        writer.close()
        await writer.wait_closed()
    assert far.sessions[0].ehlo == "async.test"
