"""The maillog: Postfix-like lines in the file, and on stderr in the foreground."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from postoffice.core.maillog import (
    log_delivery,
    log_event,
    log_received,
    setup_maillog,
    teardown_maillog,
)

PREFIX = r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d mail postoffice/(\w+)\[\d+\]: "


def test_lines_look_like_postfix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "log" / "maillog"
    handlers = setup_maillog(path, hostname="mail.example.test", foreground=True)
    try:
        log_received("smtpd", "4ABCD", sender="a@x.test", size=1024, nrcpt=2)
        log_delivery(
            "local",
            "4ABCD",
            recipient="bob@example.test",
            orig_to="staff@example.test",
            relay="local",
            delay=0.034,
            dsn="2.0.0",
            status="sent",
            detail="delivered to maildir",
        )
        log_delivery(
            "smtp",
            "4ABCD",
            recipient="c@far.test",
            relay="none",
            delay=12,
            dsn="4.4.1",
            status="deferred",
            detail="connection refused",
        )
        log_event("master", "ready")
    finally:
        teardown_maillog(handlers)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4
    for line in lines:
        assert re.match(PREFIX, line), line
    assert lines[0].endswith("4ABCD: from=<a@x.test>, size=1024, nrcpt=2")
    assert "postoffice/local[" in lines[1]
    assert lines[1].endswith(
        "4ABCD: to=<bob@example.test>, orig_to=<staff@example.test>, relay=local, "
        "delay=0.03, dsn=2.0.0, status=sent (delivered to maildir)"
    )
    assert "warning: 4ABCD: to=<c@far.test>, relay=none, delay=12.00" in lines[2]
    assert lines[3].endswith(
        "postoffice/master[" + lines[3].split("[")[1].split("]")[0] + "]: ready"
    )
    assert capsys.readouterr().err.count("\n") == 4


def test_nothing_written_after_teardown(tmp_path: Path) -> None:
    path = tmp_path / "maillog"
    handlers = setup_maillog(path, hostname="mail.example.test", foreground=False)
    log_event("master", "one")
    teardown_maillog(handlers)
    log_event("master", "two")
    assert path.read_text(encoding="utf-8").count("\n") == 1


def test_a_maillog_that_cannot_be_written_never_fails_the_caller() -> None:
    # /dev/full: every write fails with ENOSPC, as a full /var/log would.
    handlers = setup_maillog(Path("/dev/full"), hostname="mail.example.test", foreground=False)
    try:
        log_event("smtpd", "connect from unknown[127.0.0.2]")
        log_received("queue", "4ABCD", sender="a@x.test", size=10, nrcpt=1)
    finally:
        teardown_maillog(handlers)
    assert getattr(handlers[0], "lost", 0) == 2


def test_a_hostile_reply_cannot_forge_a_line(tmp_path: Path) -> None:
    path = tmp_path / "maillog"
    handlers = setup_maillog(path, hostname="mail", foreground=False)
    try:
        log_delivery(
            "smtp",
            "4ABCD",
            recipient="bob@far.test",
            relay="mx.far.test",
            delay=1,
            dsn="5.0.0",
            status="bounced",
            detail="550 no\r\nJan  1 00:00:00 mail postoffice/smtp[1]: X: status=sent\x1b[2J",
        )
    finally:
        teardown_maillog(handlers)
    (line,) = path.read_text(encoding="utf-8").splitlines()
    assert "status=bounced (550 no|Jan  1" in line and "\x1b" not in line


def test_each_process_writes_its_own_id(tmp_path: Path) -> None:
    """A forked worker's lines carry the worker's id, not the master's."""
    path = tmp_path / "maillog"
    handlers = setup_maillog(path, hostname="mail.example.test", foreground=False)
    try:
        log_event("master", "parent")
        child = os.fork()
        if child == 0:  # pragma: no cover - the child exits without returning
            log_event("smtpd", "child")
            os._exit(0)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        teardown_maillog(handlers)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert f"postoffice/master[{os.getpid()}]: parent" in lines[0]
    assert f"postoffice/smtpd[{child}]: child" in lines[1]
