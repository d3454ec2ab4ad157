"""A sending server killed (SIGKILL) in the middle of a remote delivery loses nothing.

The far side holds its reply to the final dot; meanwhile the sender is
killed. The queue file still names the recipient as not delivered, so the
restarted server delivers the message again: at least once, maybe twice
(RFC 5321 §4.1.1.4 and DESIGN.md §5), never zero times.
"""

from __future__ import annotations

import smtplib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dns_server import LoopbackDnsServer
from tests.integration.smtp_fixtures import DOMAIN, HOST, SmtpServer, wait_for
from tests.scripted_smtp import Script, ScriptedSmtpServer

FAR = "127.0.0.3"


@pytest.fixture
def far() -> Iterator[ScriptedSmtpServer]:
    with ScriptedSmtpServer(FAR, 0) as server:
        yield server


def test_a_delivery_cut_by_a_kill_is_made_again_after_the_restart(
    tmp_path: Path, far: ScriptedSmtpServer
) -> None:
    release = threading.Event()

    def slow_first(count: int) -> str:
        if count == 0:
            release.wait(20)  # the first message's reply waits until the sender is dead
        return f"250 2.0.0 Ok: queued as FAR{count}"

    far.script = Script(final_reply=slow_first)
    with LoopbackDnsServer() as dns_server:
        dns_server.add("far.test", "MX", "10 mx.far.test.")
        dns_server.add("mx.far.test", "A", FAR)
        (nameserver,) = dns_server.nameservers
        sender = SmtpServer(
            tmp_path / "var",
            sections={
                "delivery": {
                    "nameservers": [f"{nameserver[0]}:{nameserver[1]}"],
                    "smtp_port": far.port,
                    "dns_timeout": 2.0,
                }
            },
        ).setup()
        sender.start()
        try:
            with smtplib.SMTP(HOST, sender.port, timeout=10) as client:
                client.sendmail(
                    f"demo@{DOMAIN}",
                    ["bob@far.test"],
                    f"From: demo@{DOMAIN}\r\nSubject: cut short\r\n\r\nbody\r\n",
                )
            wait_for(
                lambda: any(t.data is not None for s in far.sessions for t in s.transactions),
                what="the far side has the message's octets",
            )
            assert len(sender.queue_ids()) == 1
            sender.kill()  # SIGKILL: no goodbye, no queue update
            release.set()
            sender.start()
            wait_for(lambda: len(far.messages) >= 1, timeout=20, what="delivery after restart")
            sender.wait_queue_empty(timeout=20)
        finally:
            release.set()
            sender.stop()
    copies = [t for s in far.sessions for t in s.transactions if t.data is not None]
    # At least once (DESIGN.md §5): zero accepted copies is mail lost, and fails. The
    # kill fell after the far side had the octets, so the copy sent again after the
    # restart may be a second one; a third would mean a resend per restart, a loop.
    assert 1 <= len([t for t in copies if t.accepted]) <= 2
    assert all(b"Subject: cut short" in (t.data or b"") for t in copies)
