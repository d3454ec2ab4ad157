"""curl's SMTP client against a real ``postoffice serve``.

curl uploads a file as the message (``-T msg.eml``), dot-stuffing it on the
wire, so the stored file must be our three trace fields followed by the file's
octets. The EHLO name is the URL's path (``smtp://host:port/client.test``).
With ``--ssl-reqd`` curl does STARTTLS and verifies the self-signed
certificate against ``--cacert``; the version and cipher that curl reports
(``-v``) must be the ones the Received field names.

Skipped only when curl is not installed (Debian package ``curl``; ``.ci/run``
installs it).
"""

from __future__ import annotations

import re
import subprocess
import uuid
from pathlib import Path

from tests.interop.mailserver import (
    ClientRun,
    Server,
    clean_env,
    delivered,
    require_client,
    split_trace,
)

require_client("curl", "curl")

SENDER = "sender@client.test"
HELO = "client.test"
QUEUED = re.compile(r"^< 250 2\.0\.0 Ok: queued as (\S+)\r?$", re.MULTILINE)
TLS_USED = re.compile(r"^\* SSL connection using (TLSv[\d.]+) / (\S+)\r?$", re.MULTILINE)


class CurlRun(ClientRun):
    """curl -v: "> " sent, "< " received, "* " curl's notes."""

    QUEUED = QUEUED
    TLS_USED = TLS_USED


def curl(
    server: Server, message: Path, *args: str, host: str = "127.0.0.1", max_time: int = 30
) -> CurlRun:
    result = subprocess.run(
        [
            *("curl", "--silent", "--show-error", "--verbose", "--max-time", str(max_time)),
            *(f"smtp://{host}:{server.port}/{HELO}", "--mail-from", SENDER),
            *("--upload-file", str(message), *args),
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=90,
        env=clean_env(),
        check=False,
    )
    return CurlRun(result.returncode, result.stderr)


def message_file(tmp_path: Path, *, body: str = "Hello from curl.\r\n") -> tuple[Path, bytes, str]:
    """A CRLF message with a unique Message-ID; returns (file, its octets, the token)."""
    mark = uuid.uuid4().hex
    content = (
        f"From: Sender <{SENDER}>\r\n"
        "To: Demo <demo@example.test>\r\n"
        f"Subject: curl {mark}\r\n"
        f"Message-ID: <{mark}@client.test>\r\n"
        "\r\n" + body
    ).encode("ascii")
    path = tmp_path / "msg.eml"
    path.write_bytes(content)
    return path, content, mark


def test_upload_lands_with_trace_headers_and_exact_content(server: Server, tmp_path: Path) -> None:
    eml, content, mark = message_file(tmp_path)
    run = curl(server, eml, "--mail-rcpt", "demo@example.test")
    assert run.code == 0, run.transcript
    assert f"> EHLO {HELO}" in run.transcript
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
    assert message == content


def test_starttls_verified_against_the_generated_certificate(
    server: Server, tmp_path: Path
) -> None:
    eml, content, mark = message_file(tmp_path)
    run = curl(
        server, eml, "--mail-rcpt", "demo@example.test", "--ssl-reqd", "--cacert", str(server.cert)
    )
    assert run.code == 0, run.transcript
    assert "> STARTTLS" in run.transcript
    assert "SSL certificate verify ok." in run.transcript
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
    assert message == content


def test_starttls_by_host_name_with_tls_1_2(server: Server, tmp_path: Path) -> None:
    """The certificate names mail.example.test; TLS 1.2 is reported as such."""
    eml, content, mark = message_file(tmp_path)
    run = curl(
        server,
        eml,
        "--mail-rcpt",
        "demo@example.test",
        "--ssl-reqd",
        "--cacert",
        str(server.cert),
        "--resolve",
        f"mail.example.test:{server.port}:127.0.0.1",
        "--tlsv1.2",
        "--tls-max",
        "1.2",
        host="mail.example.test",
    )
    assert run.code == 0, run.transcript
    assert run.tls[0] == "TLSv1.2"
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
    assert message == content


def test_starttls_handshake_is_never_lost(server: Server, tmp_path: Path) -> None:
    """Many STARTTLS sessions in a row: each handshake completes.

    curl sends its ClientHello the moment it reads ``220 Ready to start TLS``;
    the server must not mistake those octets for plaintext pipelined behind
    STARTTLS (RFC 3207 §4.2) and throw them away, or the session hangs.
    """
    eml, _, _ = message_file(tmp_path)
    failures = []
    for _ in range(30):
        run = curl(
            server,
            eml,
            "--mail-rcpt",
            "demo@example.test",
            "--ssl-reqd",
            "--cacert",
            str(server.cert),
            max_time=5,
        )
        if run.code != 0:
            failures.append(run.transcript.splitlines()[-1])
            if len(failures) == 3:  # enough to tell; each costs the 5 s timeout
                break
    assert failures == [], f"{len(failures)} of 30 STARTTLS sessions failed: {failures[:3]}"


def test_dot_stuffed_lines_arrive_unstuffed(server: Server, tmp_path: Path) -> None:
    body = ".\r\n..\r\n.leading dot\r\nmiddle . dot\r\n.\r\nlast\r\n"
    eml, content, mark = message_file(tmp_path, body=body)
    run = curl(server, eml, "--mail-rcpt", "demo@example.test")
    assert run.code == 0, run.transcript
    stored = server.wait_for_message("demo", mark.encode())
    _, message = split_trace(stored)
    assert message == content
    assert message.endswith(b"\r\n\r\n" + body.encode())


def test_several_recipients(server: Server, tmp_path: Path) -> None:
    eml, content, mark = message_file(tmp_path)
    run = curl(server, eml, "--mail-rcpt", "demo@example.test", "--mail-rcpt", "other@example.test")
    assert run.code == 0, run.transcript
    for user in ("demo", "other"):
        message, _ = delivered(
            server,
            user,
            mark,
            sender=SENDER,
            recipient=f"{user}@example.test",
            helo=HELO,
            protocol="ESMTP",
            queue_id=run.queue_id,
        )
        assert message == content


def test_unknown_recipient_fails_the_upload(server: Server, tmp_path: Path) -> None:
    eml, _, mark = message_file(tmp_path)
    run = curl(server, eml, "--mail-rcpt", "nobody@example.test")
    assert run.code != 0
    assert "< 550 5.1.1 No such user here" in run.transcript
    assert "> DATA" not in run.transcript
    assert server.messages_with(mark.encode(), "demo") == []


def test_unknown_recipient_beside_a_known_one(server: Server, tmp_path: Path) -> None:
    eml, content, mark = message_file(tmp_path)
    run = curl(
        server,
        eml,
        "--mail-rcpt",
        "nobody@example.test",
        "--mail-rcpt",
        "demo@example.test",
        "--mail-rcpt-allowfails",
    )
    assert run.code == 0, run.transcript
    assert "< 550 5.1.1 No such user here" in run.transcript
    stored = server.wait_for_message("demo", mark.encode())
    assert split_trace(stored)[1] == content
    assert not (server.data_dir / "mail" / "example.test" / "nobody").exists()


def test_message_written_with_lf_line_ends_is_stored_with_crlf(
    server: Server, tmp_path: Path
) -> None:
    """A msg.eml typed in an editor has bare LFs; curl sends them as they are."""
    mark = uuid.uuid4().hex
    eml = tmp_path / "msg.eml"
    eml.write_bytes(f"Subject: lf {mark}\n\nline one\n.dot\nlast\n".encode())
    run = curl(server, eml, "--mail-rcpt", "demo@example.test")
    assert run.code == 0, run.transcript
    stored = server.wait_for_message("demo", mark.encode())
    _, message = split_trace(stored)
    assert b"\n" not in message.replace(b"\r\n", b"")  # no bare LF left
    assert b"\r" not in message.replace(b"\r\n", b"")
    assert message.startswith(f"Subject: lf {mark}\r\n\r\nline one\r\n.dot\r\nlast\r\n".encode())


def test_declared_size_over_the_limit_is_refused_at_mail(server: Server, tmp_path: Path) -> None:
    eml, _, mark = message_file(tmp_path, body="x" * 998 + "\r\n")
    with eml.open("ab") as out:  # 11 MB of 1000-octet lines, over the 10 MiB default
        out.write((b"y" * 998 + b"\r\n") * 11_000)
    run = curl(server, eml, "--mail-rcpt", "demo@example.test")
    assert run.code != 0
    assert re.search(r"^> MAIL FROM:<sender@client\.test> SIZE=\d+", run.transcript, re.MULTILINE)
    assert re.search(r"^< 552 5\.3\.4 ", run.transcript, re.MULTILINE), run.transcript
    assert "> RCPT TO" not in run.transcript
    assert server.messages_with(mark.encode(), "demo") == []


def test_queue_is_empty_after_the_deliveries(server: Server) -> None:
    listing = server.cli("mailq")
    assert listing.strip() == "Mail queue is empty", listing
