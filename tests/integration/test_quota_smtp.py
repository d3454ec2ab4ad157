"""Over-quota recipients at SMTP RCPT, against a real ``postoffice serve`` with
smtplib (``delivery.quota``, ``SmtpPolicy.on_rcpt_quota``): ``452 4.2.2`` by
default, ``552 5.2.2`` with ``[smtp] over_quota = "reject"``; a recipient with
room in the same transaction is still accepted; the CLI sets the limits."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest

from .smtp_fixtures import DOMAIN, HOST, SmtpServer

FULL = f"full@{DOMAIN}"
DEMO = f"demo@{DOMAIN}"


def message(token: str) -> str:
    return f"From: x@far.test\r\nTo: {FULL}\r\nSubject: {token}\r\n\r\n{token}\r\n"


def start(tmp_path: Path, smtp: dict[str, object]) -> SmtpServer:
    server = SmtpServer(tmp_path / "var", users=("demo", "full"), smtp=smtp).setup()
    out = server.cli("user", "quota", FULL, "--messages", "1", "--storage", "1")
    assert out == f"{FULL}\tquota 1 MiB, 1 messages\n"
    return server.start()


@pytest.fixture
def deferring(tmp_path: Path) -> Iterator[SmtpServer]:
    server = start(tmp_path, {})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def rejecting(tmp_path: Path) -> Iterator[SmtpServer]:
    server = start(tmp_path, {"over_quota": "reject"})
    try:
        yield server
    finally:
        server.stop()


def fill(server: SmtpServer) -> None:
    """One message for full@: its one-message quota is then used up."""
    with smtplib.SMTP(HOST, server.port, timeout=10) as client:
        client.sendmail("x@far.test", [FULL], message("first-one"))
    server.wait_delivered(b"first-one", user="full")


def rcpt_replies(
    server: SmtpServer, *recipients: str, size: int | None = None
) -> list[tuple[int, bytes]]:
    with smtplib.SMTP(HOST, server.port, timeout=10) as client:
        client.ehlo("client.test")
        options = [f"SIZE={size}"] if size is not None else []
        assert client.mail("x@far.test", options)[0] == 250
        return [client.rcpt(r) for r in recipients]


def test_rcpt_to_a_full_mailbox_is_452_4_2_2(deferring: SmtpServer) -> None:
    assert rcpt_replies(deferring, FULL)[0][0] == 250  # room for one
    fill(deferring)
    replies = rcpt_replies(deferring, FULL, DEMO)
    assert replies[0] == (452, b"4.2.2 Mailbox full")
    assert replies[1][0] == 250  # the other recipient is unaffected
    assert "452 4.2.2 Mailbox full" in deferring.wait_log(r"NOQUEUE: reject: RCPT .*full@")
    with smtplib.SMTP(HOST, deferring.port, timeout=10) as client:
        refused = client.sendmail("x@far.test", [FULL, DEMO], message("second-one"))
    assert refused == {FULL: (452, b"4.2.2 Mailbox full")}
    deferring.wait_delivered(b"second-one", user="demo")
    assert deferring.messages_with(b"second-one", user="full") == []


def test_rcpt_to_a_full_mailbox_is_552_5_2_2_with_reject(rejecting: SmtpServer) -> None:
    fill(rejecting)
    assert rcpt_replies(rejecting, FULL) == [(552, b"5.2.2 Mailbox full")]


def test_declared_size_over_the_storage_limit_is_refused(rejecting: SmtpServer) -> None:
    """RFC 1870 SIZE: a message declared larger than the room left is refused at RCPT."""
    assert rcpt_replies(rejecting, FULL, size=2 * 1024 * 1024)[0] == (552, b"5.2.2 Mailbox full")
    assert rcpt_replies(rejecting, FULL, size=1024)[0][0] == 250
