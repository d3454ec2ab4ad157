"""Crash safety of the ``smtp`` role with a real process and SIGKILL (DESIGN.md §5).

- Killed right after it sent ``250`` for a message: the message was on disk
  (queued or already delivered), and after a restart it is delivered exactly
  once.
- Killed in the middle of DATA/BDAT: after a restart nothing is delivered and
  recovery leaves no stray file in ``spool/mqueue`` or ``spool/mqueue/tmp``,
  saying in the maillog what it removed.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from postoffice.queue.spares import is_spare
from tests.integration.smtp_fixtures import (
    OUTSIDER,
    RawClient,
    SmtpServer,
    queue_id_of,
    wait_for,
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SmtpServer]:
    srv = SmtpServer(tmp_path / "var", users=("demo",)).setup()
    try:
        yield srv.start()
    finally:
        srv.stop()


def token() -> str:
    return uuid.uuid4().hex


def send_message(client: RawClient, tok: str) -> str:
    """One whole transaction; the queue id of the ``250``."""
    client.send(b"MAIL FROM:<alice@remote.test>\r\nRCPT TO:<demo@example.test>\r\nDATA\r\n")
    assert [r.code for r in client.replies(3)] == [250, 250, 354]
    client.send(b"Subject: " + tok.encode() + b"\r\nMessage-ID: <" + tok.encode() + b"@t>\r\n\r\n")
    client.send(b"body\r\n" * 200 + b".\r\n")
    reply = client.reply()
    assert reply.code == 250, reply
    return queue_id_of(reply)


def test_killed_right_after_250_delivers_exactly_once(server: SmtpServer) -> None:
    """Two rounds of: send a message, SIGKILL as soon as the 250 is read, restart."""
    delivered: list[tuple[str, str]] = []
    for _ in range(2):
        tok = token()
        with server.connect(OUTSIDER) as client:
            client.ehlo()
            queue_id = send_message(client, tok)
            server.kill()  # as soon as the 250 was read
        # Acknowledged means on disk: in the queue, or already in the mailbox.
        assert queue_id in server.queue_ids() or server.messages_with(tok.encode()), queue_id
        server.start()
        server.wait_delivered(tok.encode())
        server.wait_queue_empty()
        delivered.append((queue_id, tok))
    time.sleep(0.3)  # time enough for a second delivery, were there one
    log = server.maillog()
    for queue_id, tok in delivered:
        assert len(server.messages_with(tok.encode())) == 1, tok
        # One copy. Its line says "delivered to maildir" once the copy is
        # synced (delivery.mailbox_sync); a kill after the copy was made and
        # before the queue's removal adds a line for the repeated attempt
        # that recognised it, and a kill before the sync leaves only that one.
        sent = re.findall(rf"{queue_id}: to=<demo@example\.test>.*status=sent \((.*)\)", log)
        assert sent, log
        assert sent.count("delivered to maildir") <= 1, sent
        assert set(sent) <= {"delivered to maildir", "already delivered before a restart"}, sent


@pytest.mark.parametrize("command", ["DATA", "BDAT"])
def test_killed_in_the_middle_of_a_message_leaves_nothing(server: SmtpServer, command: str) -> None:
    tok = token()
    head = b"Subject: " + tok.encode() + b"\r\n\r\n"
    body = b"0123456789abcdef" * 62 + b"\r\n"  # 994-octet lines
    half = head + body * 300  # ~300 kB: more than the queue keeps in memory before writing
    client = server.connect(OUTSIDER)
    try:
        client.ehlo()
        client.send(b"MAIL FROM:<alice@remote.test>\r\nRCPT TO:<demo@example.test>\r\n")
        assert [r.code for r in client.replies(2)] == [250, 250]
        if command == "DATA":
            client.send(b"DATA\r\n")
            assert client.reply().code == 354
            client.send(half)
        else:
            client.send(b"BDAT %d LAST\r\n" % (2 * len(half)) + half)
        tmp = server.spool / "tmp"
        wait_for(
            lambda: any(not is_spare(p.name) for p in tmp.iterdir()),
            what="the message being written in spool/mqueue/tmp",
        )
        server.kill()  # half the message is on the disk, nothing acknowledged
    finally:
        client.close()
    strays = server.queue_files()
    assert strays and all(name.startswith("tmp/") for name in strays), strays
    assert server.queue_ids() == []
    server.start()
    for name in strays:
        server.wait_log(rf"removed unfinished file tmp/ {re.escape(name[4:])}")
    assert server.queue_files() == []
    assert list((server.spool / "quarantine").iterdir()) == []
    time.sleep(0.3)
    assert server.messages_with(tok.encode()) == []
    assert "Queue ID" not in server.cli("queue", "list")  # the queue is empty
    # The client's retry after the crash is delivered once.
    with server.connect(OUTSIDER) as client:
        client.ehlo()
        send_message(client, tok)
        client.command("QUIT")
    server.wait_delivered(tok.encode())
    server.wait_queue_empty()
    assert len(server.messages_with(tok.encode())) == 1
