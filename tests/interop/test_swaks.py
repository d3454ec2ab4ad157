"""swaks (the Swiss Army Knife for SMTP) against a real ``postoffice serve``.

Each test sends with swaks, reads the Maildir file, and checks the three trace
fields we add (Return-Path, Delivered-To, Received with the TLS version and
cipher that swaks itself reports) and that the rest of the file is the
message swaks put on the wire, octet for octet once dot-stuffing is undone
(RFC 5321 §4.5.2). swaks prints every line it sends (`` -> ``, or `` ~> ``
under TLS), so its transcript is the independent record of what was sent.

Skipped only when swaks is not installed (Debian package ``swaks``; ``.ci/run``
installs it); the TLS cases also need swaks's TLS support (Debian package
``libnet-ssleay-perl``, which ``.ci/run`` installs alongside).
"""

from __future__ import annotations

import re
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.interop.mailserver import (
    PASSWORD,
    ClientRun,
    Server,
    clean_env,
    delivered,
    require_client,
    split_trace,
)

require_client("swaks", "swaks")

SENDER = "sender@client.test"
HELO = "client.test"
CLIENT_LINE = re.compile(r"^ [-~]> (.*)$")
SERVER_LINE = re.compile(r"^<[-~*]\*? +(\d{3}[ -].*)$")
QUEUED = re.compile(r"^<[-~] +250 2\.0\.0 Ok: queued as (\S+)$", re.MULTILINE)
TLS_STARTED = re.compile(r"^=== TLS started with cipher (TLSv[\d.]+):(\S+):\d+$", re.MULTILINE)


class SwaksRun(ClientRun):
    QUEUED = QUEUED
    TLS_USED = TLS_STARTED

    @property
    def lines(self) -> list[str]:
        return self.transcript.splitlines()

    def client_lines(self) -> list[str]:
        return [m.group(1) for m in map(CLIENT_LINE.match, self.lines) if m]

    def sent_message(self) -> bytes:
        """The message as swaks sent it after DATA, dot-stuffing undone."""
        sent = self.client_lines()
        start = sent.index("DATA") + 1
        end = sent.index(".", start)
        lines = [line[1:] if line.startswith(".") else line for line in sent[start:end]]
        return "".join(line + "\r\n" for line in lines).encode("ascii")


def swaks(server: Server, *args: str) -> SwaksRun:
    result = subprocess.run(
        [
            *("swaks", "--server", f"127.0.0.1:{server.port}"),
            *("--helo", HELO, "--timeout", "30", *args),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
        env=clean_env(),
        check=False,
    )
    return SwaksRun(result.returncode, result.stdout)


def require_swaks_tls() -> None:
    support = subprocess.run(
        ["swaks", "--support"], capture_output=True, text=True, timeout=30, check=False
    )
    if "TLS supported" not in support.stdout + support.stderr:
        pytest.skip(
            "swaks cannot do STARTTLS without Net::SSLeay "
            "(Debian package libnet-ssleay-perl); .ci/run installs it"
        )


def token() -> str:
    return uuid.uuid4().hex


def send(server: Server, *args: str, to: str = "demo@example.test") -> tuple[SwaksRun, str]:
    """Send with a unique Subject; swaks must succeed. Returns the run and the token."""
    mark = token()
    run = swaks(server, "--from", SENDER, "--to", to, "--header", f"Subject: {mark}", *args)
    assert run.code == 0, run.transcript
    return run, mark


def test_plain_message_lands_with_trace_headers_and_exact_content(server: Server) -> None:
    run, mark = send(server)
    message, _ = delivered(
        server,
        "demo",
        mark,
        sender=SENDER,
        recipient="demo@example.test",
        helo=HELO,
        protocol="ESMTP",
        queue_id=run.queue_id,
    )
    assert message == run.sent_message()
    assert f"Subject: {mark}\r\n".encode() in message


def test_starttls_with_the_self_signed_certificate(server: Server) -> None:
    require_swaks_tls()
    run, mark = send(server, "--tls")
    assert "STARTTLS" in run.client_lines()
    assert "<-  220 2.0.0 Ready to start TLS" in run.lines
    message, _ = delivered(
        server,
        "demo",
        mark,
        sender=SENDER,
        recipient="demo@example.test",
        helo=HELO,
        protocol="ESMTPS",
        queue_id=run.queue_id,
        tls=run.tls,
    )
    assert message == run.sent_message()


def test_starttls_certificate_verifies_against_its_own_pem(server: Server) -> None:
    require_swaks_tls()
    run, mark = send(server, "--tls", "--tls-verify", "--tls-ca-path", str(server.cert))
    assert 'TLS peer DN="/CN=mail.example.test"' in run.transcript
    assert run.tls[0] in ("TLSv1.2", "TLSv1.3")
    server.wait_for_message("demo", mark.encode())


def test_ehlo_advertises_what_the_issue_lists(server: Server) -> None:
    run = swaks(server, "--from", SENDER, "--to", "demo@example.test", "--quit-after", "EHLO")
    assert run.code == 0, run.transcript
    advertised = {m.group(1)[4:].split()[0] for m in map(SERVER_LINE.match, run.lines) if m}
    for keyword in ("PIPELINING", "SIZE", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES"):
        assert keyword in advertised, run.transcript
    for keyword in ("CHUNKING", "DSN", "STARTTLS"):
        assert keyword in advertised, run.transcript
    assert "AUTH" not in advertised  # no AUTH on plaintext (DESIGN §5)
    assert "250-SIZE 10485760" in run.transcript


def test_pipelined_transaction(server: Server) -> None:
    run, mark = send(server, "--pipeline", to="demo@example.test,nobody@example.test")
    sent = run.client_lines()
    start = next(i for i, line in enumerate(sent) if line.startswith("MAIL FROM:"))
    # PIPELINING (RFC 2920): MAIL, both RCPTs and DATA went out before any reply.
    assert sent[start : start + 4] == [
        f"MAIL FROM:<{SENDER}>",
        "RCPT TO:<demo@example.test>",
        "RCPT TO:<nobody@example.test>",
        "DATA",
    ]
    mail_at = run.lines.index(f" -> MAIL FROM:<{SENDER}>")
    assert all(not line.startswith("<") for line in run.lines[mail_at : mail_at + 4]), (
        run.transcript
    )
    replies = [m.group(1) for m in map(SERVER_LINE.match, run.lines[mail_at:]) if m]
    assert replies[:4] == [
        "250 2.1.0 Ok",
        "250 2.1.5 Ok",
        "550 5.1.1 No such user here",
        "354 End data with <CR><LF>.<CR><LF>",
    ]
    stored = server.wait_for_message("demo", mark.encode())
    fields, message = split_trace(stored)
    assert {k.lower(): v for k, v in fields}["delivered-to"] == "demo@example.test"
    assert message == run.sent_message()
    assert not (server.data_dir / "mail" / "example.test" / "nobody").exists()


def test_pipelined_starttls_session(server: Server) -> None:
    require_swaks_tls()
    run, mark = send(server, "--tls", "--pipeline")
    message, _ = delivered(
        server,
        "demo",
        mark,
        sender=SENDER,
        recipient="demo@example.test",
        helo=HELO,
        protocol="ESMTPS",
        queue_id=run.queue_id,
        tls=run.tls,
    )
    assert message == run.sent_message()


def test_body_option_arrives_exactly(server: Server) -> None:
    body = "first line\n.starts with a dot\n.\n..\nlast line"
    run, mark = send(server, "--body", body)
    assert " -> ..starts with a dot" in run.lines  # swaks stuffed it on the wire
    stored = server.wait_for_message("demo", mark.encode())
    _, message = split_trace(stored)
    assert message == run.sent_message()
    _, _, stored_body = message.partition(b"\r\n\r\n")
    assert stored_body.startswith(b"first line\r\n.starts with a dot\r\n.\r\n..\r\nlast line\r\n")


def test_data_file_arrives_octet_for_octet(server: Server, tmp_path: Path) -> None:
    mark = token()
    long_line = "x" * 990
    content = (
        f"From: Sender <{SENDER}>\r\n"
        "To: Demo <demo@example.test>\r\n"
        f"Subject: data file {mark}\r\n"
        f"Message-ID: <{mark}@client.test>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        "Hello,\r\n"
        "\r\n"
        ".\r\n"
        ". a lone dot above, a dotted line here\r\n"
        f"{long_line}\r\n"
        "\ttab-indented\r\n"
        "trailing spaces   \r\n"
        "end"
    ).encode("ascii")
    eml = tmp_path / "message.eml"
    eml.write_bytes(content)
    run = swaks(server, "--from", SENDER, "--to", "demo@example.test", "--data", f"@{eml}")
    assert run.code == 0, run.transcript
    message, _ = delivered(
        server,
        "demo",
        mark,
        sender=SENDER,
        recipient="demo@example.test",
        helo=HELO,
        protocol="ESMTP",
        queue_id=run.queue_id,
    )
    assert message == content + b"\r\n"  # swaks ends the last line before <CRLF>.<CRLF>
    assert message == run.sent_message()


def test_several_recipients_get_one_copy_each(server: Server) -> None:
    run, mark = send(server, to="demo@example.test,other@example.test")
    assert run.transcript.count("250 2.1.5 Ok") == 2
    sent = run.sent_message()
    for user in ("demo", "other"):
        message, received = delivered(
            server,
            user,
            mark,
            sender=SENDER,
            recipient=f"{user}@example.test",
            helo=HELO,
            protocol="ESMTP",
            queue_id=run.queue_id,
        )
        assert "for <" not in received or f"for <{user}@example.test>" in received
        assert message == sent


@pytest.mark.parametrize(
    ("protocol", "with_", "tls", "auth"),
    [
        ("SMTP", "SMTP", False, False),
        ("ESMTP", "ESMTP", False, False),
        ("ESMTPS", "ESMTPS", True, False),
        ("ESMTPSA", "ESMTPSA", True, True),
    ],
)
def test_protocol_is_named_in_received(
    server: Server, protocol: str, with_: str, tls: bool, auth: bool
) -> None:
    if tls:
        require_swaks_tls()
    extra = ["--protocol", protocol]
    if auth:
        extra += ["--auth-user", "demo@example.test", "--auth-password", PASSWORD]
    run, mark = send(server, *extra)
    greeting = "HELO" if protocol == "SMTP" else "EHLO"
    assert f"{greeting} {HELO}" in run.client_lines()
    if auth:
        assert "235 2.7.0 Authentication successful" in run.transcript
    message, _ = delivered(
        server,
        "demo",
        mark,
        sender=SENDER,
        recipient="demo@example.test",
        helo=HELO,
        protocol=with_,
        queue_id=run.queue_id,
        tls=run.tls if tls else None,
    )
    assert message == run.sent_message()


def test_no_auth_on_plaintext(server: Server) -> None:
    mark = token()
    run = swaks(
        server,
        "--from",
        SENDER,
        "--to",
        "demo@example.test",
        "--header",
        f"Subject: {mark}",
        "--protocol",
        "ESMTPA",
        "--auth-user",
        "demo@example.test",
        "--auth-password",
        PASSWORD,
    )
    assert run.code != 0
    assert "*** Host did not advertise authentication" in run.transcript
    assert not any(line.startswith("AUTH ") for line in run.client_lines())
    assert server.messages_with(mark.encode(), "demo") == []


def test_unknown_recipient_is_refused_at_rcpt(server: Server) -> None:
    mark = token()
    run = swaks(
        server, "--from", SENDER, "--to", "nobody@example.test", "--header", f"Subject: {mark}"
    )
    assert run.code != 0
    assert "<** 550 5.1.1 No such user here" in run.lines
    assert "DATA" not in run.client_lines()
