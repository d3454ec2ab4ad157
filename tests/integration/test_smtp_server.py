"""The ``smtp`` role over real sockets: smtplib, aiosmtplib and raw BDAT against ``serve``.

One server process serves the whole module (the tests do not interfere: each
message carries its own token and is looked for by it). Each test checks what
a user sees: the reply (with the queue id), the message in the Maildir with
its trace headers, and the maillog lines naming the queue id.
"""

from __future__ import annotations

import re
import smtplib
import ssl
import time
import uuid
from collections.abc import Iterator

import aiosmtplib
import pytest

from postoffice.directory.tables.tableset import SERVER_CHECK_INTERVAL
from tests.integration.smtp_fixtures import (
    HOST,
    OUTSIDER,
    TRUSTED,
    RawClient,
    SmtpServer,
    queue_id_of,
    running,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    data = tmp_path_factory.mktemp("smtp-server") / "var"
    with running(SmtpServer(data, users=("demo", "other"), smtp={"idle_timeout": 30.0})) as srv:
        aliases = srv.data / "etc" / "mail" / "aliases"
        aliases.write_text(aliases.read_text(encoding="utf-8") + "\njürgen: demo\n", "utf-8")
        time.sleep(SERVER_CHECK_INTERVAL + 0.1)  # the server re-checks tables once a second
        yield srv


def token() -> str:
    return uuid.uuid4().hex


def message(tok: str, *, sender: str = "alice@remote.test", body: str = "Hello.\r\n") -> bytes:
    return (
        f"From: <{sender}>\r\nTo: <demo@example.test>\r\nSubject: test {tok}\r\n"
        f"Message-ID: <{tok}@remote.test>\r\n\r\n{body}"
    ).encode()


def tls_context(server: SmtpServer, *, check_hostname: bool = True) -> ssl.SSLContext:
    """Trusts exactly the server's self-signed certificate."""
    context = ssl.create_default_context(cafile=server.cafile)
    context.check_hostname = check_hostname
    return context


def headers(raw: bytes) -> list[tuple[str, str]]:
    """The header fields of a delivered message, unfolded, in order."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    fields: list[tuple[str, str]] = []
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + " " + line.strip())
        else:
            name, _, value = line.partition(":")
            fields.append((name, value.strip()))
    return fields


def header(raw: bytes, name: str) -> list[str]:
    return [value for key, value in headers(raw) if key.lower() == name.lower()]


def assert_logged_and_sent(
    server: SmtpServer, queue_id: str, sender: str, *rcpts: str, nrcpt: int = 0
) -> None:
    """The maillog's story of one message: from=, message-id= and status=sent per recipient."""
    count = nrcpt or len(rcpts)
    server.wait_log(rf"{queue_id}: from=<{re.escape(sender)}>, size=\d+, nrcpt={count}")
    server.wait_log(rf"{queue_id}: message-id=<")
    for rcpt in rcpts:
        server.wait_log(rf"{queue_id}: to=<{re.escape(rcpt)}>, relay=local, .*status=sent")


# -- smtplib ------------------------------------------------------------------------------


def test_smtplib_plain_from_the_internet_lands_in_the_mailbox(server: SmtpServer) -> None:
    tok = token()
    with smtplib.SMTP(HOST, server.port, source_address=(OUTSIDER, 0), timeout=10) as client:
        client.ehlo("client.remote.test")
        assert client.has_extn("pipelining") and client.has_extn("chunking")
        assert client.has_extn("starttls")
        assert not client.has_extn("auth"), "no AUTH on plaintext from outside (DESIGN.md §5)"
        assert client.mail("alice@remote.test") == (250, b"2.1.0 Ok")
        assert client.rcpt("demo@example.test")[0] == 250
        code, text = client.data(message(tok))
    assert code == 250
    queue_id = queue_id_of(text.decode())
    assert text.decode().startswith("2.0.0 ")
    [raw] = server.wait_delivered(tok.encode())
    assert raw.startswith(
        b"Return-Path: <alice@remote.test>\r\nDelivered-To: demo@example.test\r\n"
    )
    [received, *_] = header(raw, "Received")
    assert received.startswith("from client.remote.test (unknown [127.0.0.2])")
    assert f"with ESMTP id {queue_id}" in received
    assert "for <demo@example.test>" in received
    assert "using TLS" not in received
    assert raw.endswith(b"\r\n\r\nHello.\r\n")
    assert_logged_and_sent(server, queue_id, "alice@remote.test", "demo@example.test")
    server.wait_log(rf"{queue_id}: message-id=<{tok}@remote.test>")


def test_smtplib_starttls_with_the_self_signed_certificate(server: SmtpServer) -> None:
    tok = token()
    with smtplib.SMTP(HOST, server.port, source_address=(OUTSIDER, 0), timeout=10) as client:
        client.ehlo("tls.remote.test")
        # smtplib checks the name against the host it dialled (an IP here): verify the
        # chain with the server's own certificate as the only CA and read the name below.
        code, _ = client.starttls(context=tls_context(server, check_hostname=False))
        assert code == 220
        sock = client.sock
        assert isinstance(sock, ssl.SSLSocket)
        peer = sock.getpeercert()
        assert peer is not None
        assert ("DNS", "mail.example.test") in peer.get("subjectAltName", ())
        version, cipher = sock.version(), sock.cipher()
        assert version is not None and cipher is not None
        client.ehlo("tls.remote.test")
        assert not client.has_extn("starttls")  # RFC 3207 §4.2: not offered again
        client.mail("alice@remote.test")
        client.rcpt("demo@example.test")
        code, text = client.data(message(tok))
    assert code == 250
    queue_id = queue_id_of(text.decode())
    [raw] = server.wait_delivered(tok.encode())
    [received, *_] = header(raw, "Received")
    assert f"(using {version} with cipher {cipher[0]})" in received
    assert f"with ESMTPS id {queue_id}" in received
    server.wait_log(rf"TLS established: {re.escape(version)} {re.escape(cipher[0])}")
    assert_logged_and_sent(server, queue_id, "alice@remote.test", "demo@example.test")


def test_multiple_recipients_each_get_the_message_once(server: SmtpServer) -> None:
    tok = token()
    rcpts = ["demo@example.test", "other@example.test", "demo+lists@example.test"]
    with smtplib.SMTP(HOST, server.port, source_address=(OUTSIDER, 0), timeout=10) as client:
        client.ehlo("client.remote.test")
        client.mail("alice@remote.test")
        for rcpt in rcpts:
            assert client.rcpt(rcpt)[0] == 250
        assert client.rcpt("nosuchuser@example.test")[:1] == (550,)
        code, text = client.data(message(tok))
    assert code == 250
    queue_id = queue_id_of(text.decode())
    # demo and demo+lists are two recipients of demo's mailbox; Delivered-To names the account
    demo = server.wait_delivered(tok.encode(), "demo", count=2)
    [other] = server.wait_delivered(tok.encode(), "other")
    assert [header(raw, "Delivered-To") for raw in demo] == [["demo@example.test"]] * 2
    assert header(other, "Delivered-To") == ["other@example.test"]
    received = header(other, "Received")[0]
    assert "for <" not in received  # several recipients: the Received header names none
    assert_logged_and_sent(server, queue_id, "alice@remote.test", *rcpts[:2], nrcpt=3)
    server.wait_log(
        rf"{queue_id}: to=<demo@example\.test>, orig_to=<demo\+lists@example\.test>, "
        r"relay=local, .*status=sent"
    )
    server.wait_log(r"reject: RCPT from unknown\[127\.0\.0\.2\]: 550 5\.1\.1 .*nosuchuser")
    server.wait_queue_empty()
    assert len(server.messages_with(tok.encode(), "demo")) == 2


def test_smtplib_sendmail_with_8bitmime_keeps_the_octets(server: SmtpServer) -> None:
    tok = token()
    body = "Grüße aus Köln, ça va? ½ €\r\n".encode()
    raw_message = message(tok).replace(b"Hello.\r\n", body)
    raw_message = raw_message.replace(
        b"\r\n\r\n",
        b"\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
        1,
    )
    with smtplib.SMTP(HOST, server.port, source_address=(OUTSIDER, 0), timeout=10) as client:
        assert client.ehlo()[0] == 250 and client.has_extn("8bitmime")
        refused = client.sendmail(
            "alice@remote.test", ["demo@example.test"], raw_message, mail_options=["BODY=8BITMIME"]
        )
    assert refused == {}
    [raw] = server.wait_delivered(tok.encode())
    assert raw.endswith(body)


def test_smtputf8_sender_and_recipient(server: SmtpServer) -> None:
    tok = token()
    sender = "pelé@remote.test"
    content = message(tok, sender="pele@remote.test").replace(
        b"Subject: test", "Subject: ünïcödé test".encode()
    )
    with smtplib.SMTP(HOST, server.port, source_address=(OUTSIDER, 0), timeout=10) as client:
        client.ehlo()
        assert client.has_extn("smtputf8")
        refused = client.sendmail(
            sender, ["jürgen@example.test"], content, mail_options=["SMTPUTF8", "BODY=8BITMIME"]
        )
        assert refused == {}
    [raw] = server.wait_delivered(tok.encode())
    assert raw.startswith(f"Return-Path: <{sender}>\r\n".encode())
    assert "Subject: ünïcödé test".encode() in raw
    assert "with UTF8SMTP id" in header(raw, "Received")[0]  # RFC 6531 §3.7.3 protocol name
    server.wait_log(rf"from=<{sender}>")
    # Without SMTPUTF8 a non-ASCII address is refused (RFC 6531 §3.4).
    with RawClient(server.port, source=OUTSIDER) as raw_client:
        raw_client.reply()
        raw_client.ehlo()
        reply = raw_client.command(f"MAIL FROM:<{sender}>")
        assert reply.code == 553 and reply.text.startswith("5.6.7"), reply
        assert raw_client.command("MAIL FROM:<alice@remote.test>").code == 250
        reply = raw_client.command("RCPT TO:<jürgen@example.test>")
        assert reply.code == 553 and reply.text.startswith("5.6.7"), reply
        assert raw_client.command("QUIT").code == 221


def test_dsn_parameters_are_kept_with_the_envelope(server: SmtpServer) -> None:
    """RET, ENVID, NOTIFY and ORCPT of a relayed message (trusted client) are in the queue."""
    tok = token()
    with smtplib.SMTP(HOST, server.port, source_address=(TRUSTED, 0), timeout=10) as client:
        client.ehlo()
        assert client.has_extn("dsn")
        assert client.mail("demo@example.test", ["RET=HDRS", f"ENVID=env+2B{tok}"])[0] == 250
        code, _ = client.rcpt(
            "friend@remote.test", ["NOTIFY=SUCCESS,DELAY", "ORCPT=rfc822;friend@remote.test"]
        )
        assert code == 250
        # RFC 3461 §4.1: NEVER may not be combined; a bad ORCPT is a syntax error.
        assert client.rcpt("demo@example.test", ["NOTIFY=NEVER,SUCCESS"])[0] == 501
        assert client.rcpt("demo@example.test", ["ORCPT=nonsense"])[0] == 501
        code, text = client.data(message(tok))
    assert code == 250
    queue_id = queue_id_of(text.decode())
    try:
        shown = server.cli("queue", "show", queue_id)
        assert "Sender:        <demo@example.test>" in shown
        assert f"ENVID=env+{tok}" in shown and "RET=HDRS" in shown
        assert "NOTIFY:       SUCCESS,DELAY" in shown
        assert "ORCPT:        rfc822;friend@remote.test" in shown
        assert queue_id in server.cli("mailq")
    finally:
        server.cli("queue", "delete", queue_id)
    assert queue_id not in server.queue_ids()


# -- aiosmtplib ---------------------------------------------------------------------------


async def test_aiosmtplib_plain(server: SmtpServer) -> None:
    tok = token()
    client = aiosmtplib.SMTP(
        hostname=HOST, port=server.port, source_address=(OUTSIDER, 0), start_tls=False, timeout=10
    )
    async with client:
        errors, response = await client.sendmail(
            "bob@remote.test", ["demo@example.test", "other@example.test"], message(tok)
        )
    assert errors == {}
    queue_id = queue_id_of(response)
    [raw] = server.wait_delivered(tok.encode(), "other")
    assert raw.startswith(b"Return-Path: <bob@remote.test>\r\nDelivered-To: other@example.test\r\n")
    assert_logged_and_sent(
        server, queue_id, "bob@remote.test", "demo@example.test", "other@example.test"
    )


async def test_aiosmtplib_starttls_verifies_the_certificate_name(server: SmtpServer) -> None:
    tok = token()
    client = aiosmtplib.SMTP(
        hostname=HOST, port=server.port, source_address=(OUTSIDER, 0), start_tls=False, timeout=10
    )
    async with client:
        await client.ehlo(hostname="tls.remote.test")
        await client.starttls(server_hostname="mail.example.test", tls_context=tls_context(server))
        await client.ehlo(hostname="tls.remote.test")
        assert "starttls" not in client.esmtp_extensions
        errors, response = await client.sendmail(
            "bob@remote.test", ["demo@example.test"], message(tok), mail_options=["BODY=8BITMIME"]
        )
    assert errors == {}
    queue_id = queue_id_of(response)
    [raw] = server.wait_delivered(tok.encode())
    received = header(raw, "Received")[0]
    assert re.search(r"\(using TLSv1\.[23] with cipher \S+\) by mail\.example\.test", received)
    assert f"with ESMTPS id {queue_id}" in received
    assert_logged_and_sent(server, queue_id, "bob@remote.test", "demo@example.test")


async def test_aiosmtplib_refused_recipient_and_relay(server: SmtpServer) -> None:
    client = aiosmtplib.SMTP(
        hostname=HOST, port=server.port, source_address=(OUTSIDER, 0), start_tls=False, timeout=10
    )
    async with client:
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
            await client.sendmail("bob@remote.test", ["victim@elsewhere.test"], message(token()))
    [error] = refused.value.recipients
    assert error.code == 554 and "5.7.1 Relay access denied" in error.message


# -- raw socket: BDAT ----------------------------------------------------------------------


def test_bdat_chunks_over_a_raw_socket(server: SmtpServer) -> None:
    tok = token()
    content = message(tok, body="line one\r\n.starts with a dot\r\nlast line\r\n")
    first, second = content[:50], content[50:]
    with server.connect(OUTSIDER) as client:
        assert "CHUNKING" in client.ehlo().lines
        # PIPELINING: the whole transaction in one write, replies in order.
        client.send(
            b"MAIL FROM:<carol@remote.test> BODY=8BITMIME\r\nRCPT TO:<demo@example.test>\r\n"
            + b"BDAT %d\r\n" % len(first)
            + first
            + b"BDAT %d LAST\r\n" % len(second)
            + second
        )
        mail, rcpt, chunk, last = client.replies(4)
        assert (mail.code, rcpt.code) == (250, 250)
        assert chunk.code == 250 and f"{len(first)} octets received" in chunk.text, chunk
        assert last.code == 250 and last.text.startswith("2.0.0 Ok: queued as "), last
        queue_id = queue_id_of(last)
        # An empty last chunk ends a message too (RFC 3030 §2).
        client.send(b"MAIL FROM:<carol@remote.test>\r\nRCPT TO:<other@example.test>\r\n")
        assert [r.code for r in client.replies(2)] == [250, 250]
        client.send(b"BDAT %d\r\n" % len(content) + content)
        assert client.reply().code == 250
        client.send(b"BDAT 0 LAST\r\n")
        assert client.reply().code == 250
        assert client.command("QUIT").code == 221
    [raw] = server.wait_delivered(tok.encode())
    assert raw.endswith(content), "BDAT content is stored octet for octet (no dot-unstuffing)"
    assert f"with ESMTP id {queue_id}" in header(raw, "Received")[0]
    [other] = server.wait_delivered(tok.encode(), "other")
    assert other.endswith(content)
    assert_logged_and_sent(server, queue_id, "carol@remote.test", "demo@example.test")


def test_data_and_bdat_are_refused_without_a_recipient(server: SmtpServer) -> None:
    with server.connect(OUTSIDER) as client:
        client.ehlo()
        assert client.command("DATA").code == 503
        assert client.command("MAIL FROM:<carol@remote.test>").code == 250
        assert client.command("DATA").code == 554  # RFC 5321 §3.3: no valid recipients
        client.send(b"BDAT 5 LAST\r\nhello")
        assert client.reply().code in (503, 554)  # the 5 octets were swallowed, not commands
        assert client.command("NOOP").code == 250
        assert client.command("QUIT").code == 221


def test_the_greeting_and_the_ehlo_keywords(server: SmtpServer) -> None:
    with server.connect(OUTSIDER, greeting=False) as client:
        greeting = client.reply()
        assert greeting.code == 220 and greeting.text.startswith("mail.example.test ESMTP")
        keywords = client.ehlo().lines
        assert keywords[0] == "mail.example.test"
        for keyword in (
            "PIPELINING",
            "SIZE 10485760",
            "STARTTLS",
            "ENHANCEDSTATUSCODES",
            "8BITMIME",
            "DSN",
            "SMTPUTF8",
            "CHUNKING",
        ):
            assert keyword in keywords
        assert client.command("VRFY demo@example.test").code == 252
        assert client.command("EXPN staff").code == 502
        noop = client.command("NOOP")
        assert noop.code == 250 and noop.text.startswith("2.0.0")  # ENHANCEDSTATUSCODES
        assert client.command("QUIT").code == 221
        assert client.closed_by_server()
    server.wait_log(r"disconnect from unknown\[127\.0\.0\.2\] messages=0 \(quit\)")


def test_server_log_and_spool_after_the_module(server: SmtpServer) -> None:
    """Whatever the tests above did, the server is alive and delivered everything local."""
    assert server.process is not None and server.process.poll() is None
    server.wait_queue_empty()
    assert "Traceback" not in server.maillog()
    assert "session error" not in server.maillog()
