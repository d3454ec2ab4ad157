"""Mail between two postoffice hosts found through DNS: a.test on 127.0.0.2, b.test on
127.0.0.3, and a loopback DNS server that serves their MX and A records.

A client submits to a.test over 587 with STARTTLS and AUTH; a.test finds
b.test's mail host by its MX record, delivers over SMTP (STARTTLS, DKIM
signed with a key made by ``postoffice dkim keygen``) and the mail lands in
bob@b.test's mailbox, where dkimpy verifies the signature against the
published record. Both maillogs tell the story with the same Message-ID.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import dkim
import dns.nameserver
import dns.resolver
import pytest

from tests.dns_server import LoopbackDnsServer
from tests.integration.smtp_fixtures import SmtpServer, run_main

A_HOST, B_HOST = "127.0.0.2", "127.0.0.3"


def common_free_port(*hosts: str) -> int:
    """A port free on every one of ``hosts`` (the MX port both instances listen on)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind((hosts[0], 0))
            port = int(probe.getsockname()[1])
            try:
                for host in hosts[1:]:
                    with socket.socket() as other:
                        other.bind((host, port))
            except OSError:
                continue
            return port
    raise AssertionError("no common free port")


def unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def txt_record(zone_line: str) -> str:
    """The TXT value of a zone-file line ``NAME. IN TXT ( "a" "b" )``, strings joined."""
    return "".join(re.findall(r'"([^"]*)"', zone_line))


@pytest.fixture
def dns_server() -> Iterator[LoopbackDnsServer]:
    with LoopbackDnsServer() as server:
        server.add("a.test", "MX", "10 mail.a.test.")
        server.add("mail.a.test", "A", A_HOST)
        server.add("b.test", "MX", "10 mail.b.test.")
        server.add("mail.b.test", "A", B_HOST)
        yield server


@pytest.fixture
def hosts(tmp_path: Path, dns_server: LoopbackDnsServer) -> Iterator[tuple[SmtpServer, SmtpServer]]:
    port = common_free_port(A_HOST, B_HOST)
    (nameserver,) = dns_server.nameservers
    delivery = {
        "nameservers": [f"{nameserver[0]}:{nameserver[1]}"],
        "smtp_port": port,
        "dns_timeout": 2.0,
    }
    a = SmtpServer(
        tmp_path / "a",
        users=("alice",),
        host=A_HOST,
        domain="a.test",
        hostname="mail.a.test",
        sections={"delivery": {**delivery, "bind_address": A_HOST}},
        fixed_ports={"smtp": port},
    ).setup()
    b = SmtpServer(
        tmp_path / "b",
        users=("bob",),
        host=B_HOST,
        domain="b.test",
        hostname="mail.b.test",
        sections={"delivery": {**delivery, "bind_address": B_HOST}},
        fixed_ports={"smtp": port},
    ).setup()
    record = run_main("-c", str(a.config), "dkim", "keygen", "a.test")
    dns_server.add("postoffice._domainkey.a.test", "TXT", _quoted(txt_record(record)))
    try:
        yield a.start(), b.start()
    finally:
        a.stop()
        b.stop()


def _quoted(value: str) -> str:
    """A TXT rdata in zone syntax: the value in strings of at most 255 octets."""
    return " ".join(f'"{value[i : i + 255]}"' for i in range(0, len(value), 255))


def test_submitted_mail_reaches_the_other_domain_by_mx_with_a_valid_dkim_signature(
    hosts: tuple[SmtpServer, SmtpServer], dns_server: LoopbackDnsServer
) -> None:
    a, b = hosts
    message = EmailMessage()
    message["From"] = "Alice <alice@a.test>"
    message["To"] = "bob@b.test"
    message["Subject"] = "across the Internet"
    message.set_content("Hello Bob, this went through DNS.\n")
    with smtplib.SMTP(A_HOST, a.submission_port, timeout=10) as client:
        client.starttls(context=unverified())
        client.login("alice@a.test", a.password)
        client.send_message(message)
    (delivered,) = b.wait_delivered(b"across the Internet", user="bob", timeout=20)
    assert b"Hello Bob, this went through DNS." in delivered

    def dns_txt(name: bytes, timeout: int = 5) -> bytes:
        # dkimpy asks through this function: the loopback server answers.
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(*dns_server.nameservers[0])]
        answer = resolver.resolve(name.decode(), "TXT", lifetime=timeout)
        return b"".join(b"".join(record.strings) for record in answer)

    # The copy in the mailbox starts with Return-Path/Delivered-To (added by b)
    # and b's Received; the signature covers what a.test sent.
    assert b"DKIM-Signature:" in delivered
    assert dkim.verify(delivered, dnsfunc=dns_txt)
    head = delivered.split(b"\r\n\r\n", 1)[0]
    assert re.search(rb"Received: from mail\.a\.test \(.*\[127\.0\.0\.2\]\)", head)
    assert b"ESMTPS" in head  # a.test used STARTTLS to reach b.test
    message_id = re.search(rb"\r\nMessage-ID: (<[^>]+>)", head)
    assert message_id is not None
    mid = message_id.group(1).decode()
    a_log = a.wait_log(r"smtp\[\d+\]: \w+: to=<bob@b\.test>, relay=mail\.b\.test\[127\.0\.0\.3\]")
    assert "status=sent" in a_log
    assert f"message-id={mid}" in a.maillog()
    assert f"message-id={mid}" in b.maillog()
    # The file is in the mailbox before the delivery's log line (written after its sync).
    assert b.wait_log(r"local\[\d+\]: \w+: to=<bob@b\.test>.*status=sent")
    a.wait_queue_empty()
    b.wait_queue_empty()
