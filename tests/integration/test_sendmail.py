"""``postoffice sendmail``: programs on the host hand mail over, with or without a server.

The command runs as its own process (``python -m postoffice``) and, for the
link test, through a link named ``sendmail`` to the installed console
script, as ``/usr/sbin/sendmail`` would be. Mail goes through the maildrop
and the server's pickup into the queue and the mailbox.
"""

from __future__ import annotations

import getpass
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

from postoffice.cli.main import main
from postoffice.cli.sendmail_command import SendmailUsage, parse_options

from .smtp_fixtures import DOMAIN, SmtpServer, wait_for

POSTOFFICE = (sys.executable, "-m", "postoffice")


def sendmail(
    server: SmtpServer, args: list[str], message: bytes
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*POSTOFFICE, "-c", str(server.config), "sendmail", *args],
        input=message,
        capture_output=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SmtpServer]:
    srv = SmtpServer(tmp_path / "var", users=("demo", "ops")).setup()
    try:
        yield srv
    finally:
        srv.stop()


def test_options_as_scripts_write_them() -> None:
    options = parse_options(["-t", "-oi", "-fcron@example.test", "-F", "Cron Daemon", "-oem", "x"])
    assert options.extract and not options.dot_ends
    assert (options.sender, options.full_name, options.recipients) == (
        "cron@example.test",
        "Cron Daemon",
        ["x"],
    )
    assert parse_options(["-i", "--", "-odd"]).recipients == ["-odd"]
    assert parse_options(["-bp"]).mode == "p" and parse_options(["-q"]).mode == "q"
    assert parse_options(["-bs"]).mode == "s"
    for bad in (["-f"], ["-bz"], ["-Z"]):
        with pytest.raises(SendmailUsage):
            parse_options(bad)


def test_mail_left_while_the_server_is_down_is_delivered_when_it_starts(
    server: SmtpServer,
) -> None:
    message = (
        b"To: demo@example.test\nBcc: ops\nSubject: nightly report\n\n"
        b"all good\n.\nthis line is after the end\n"
    )
    done = sendmail(server, ["-t"], message)
    assert done.returncode == 0, done.stderr
    drops = list((server.data / "spool" / "maildrop").iterdir())
    assert len(drops) == 1  # durably left, nothing queued yet
    server.start()
    (delivered,) = server.wait_delivered(b"nightly report")
    (copy,) = server.wait_delivered(b"nightly report", user="ops")
    assert delivered == copy.replace(b"Delivered-To: ops@", b"Delivered-To: demo@")
    head, _, body = delivered.partition(b"\r\n\r\n")
    assert body == b"all good\r\n"  # the lone dot ended the message (no -i)
    assert b"Bcc" not in head  # RFC 5322 §3.6.3
    assert b"Received: from local (local submission)" in head
    assert re.search(rb"\r\nDate: .+\r\n", head) and re.search(rb"\r\nMessage-ID: <.+>", head)
    assert b"\r\nFrom: " + getpass.getuser().encode() + b"@example.test\r\n" in head
    wait_for(lambda: not any((server.data / "spool" / "maildrop").iterdir()), what="the drop gone")
    assert re.search(r"pickup\[\d+\]: \w+: uid=\d+ from=<", server.maillog())


def test_running_server_picks_up_at_once_with_sender_and_named_recipients(
    server: SmtpServer,
) -> None:
    server.start()
    message = b"Subject: with -i\n\nfirst\n.\nsecond\n"
    done = sendmail(server, ["-i", "-f", "alerts@example.test", "demo", f"ops@{DOMAIN}"], message)
    assert done.returncode == 0, done.stderr
    (delivered,) = server.wait_delivered(b"with -i", timeout=10)
    assert delivered.endswith(b"\r\n\r\nfirst\r\n.\r\nsecond\r\n")
    assert delivered.startswith(b"Return-Path: <alerts@example.test>\r\n")
    assert server.wait_delivered(b"with -i", user="ops", timeout=10)


def test_refusals_use_sysexits(server: SmtpServer) -> None:
    assert sendmail(server, ["-t"], b"Subject: nobody\n\nx\n").returncode == 64  # EX_USAGE
    assert sendmail(server, ["bad address@"], b"x\n").returncode == 67  # EX_NOUSER
    assert sendmail(server, ["-Z"], b"").returncode == 64
    assert not list((server.data / "spool" / "maildrop").iterdir())


def test_links_named_sendmail_and_mailq(server: SmtpServer, tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("postoffice")
    links = tmp_path / "bin"
    links.mkdir()
    for name in ("sendmail", "mailq"):
        (links / name).symlink_to(script)
    env = {**os.environ, "POSTOFFICE_CONFIG": str(server.config)}
    done = subprocess.run(
        [str(links / "sendmail"), "-oi", "demo"],
        input=b"Subject: through the link\n\nhi\n",
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    listed = subprocess.run(
        [str(links / "mailq")], capture_output=True, env=env, timeout=60, check=False
    )
    assert listed.returncode == 0, listed.stderr
    assert b"empty" in listed.stdout.lower() or b"Mail queue" in listed.stdout
    server.start()
    assert server.wait_delivered(b"through the link")


def test_bs_speaks_smtp_on_stdin_and_the_server_delivers_what_it_left(
    server: SmtpServer,
) -> None:
    session = (
        b"EHLO localhost\r\nMAIL FROM:<cron@example.test>\r\n"
        b"RCPT TO:<demo@example.test>\r\nRCPT TO:<ops@example.test>\r\nDATA\r\n"
        b"Subject: via -bs\r\n\r\n..dotted\r\n.\r\nQUIT\r\n"
    )
    done = sendmail(server, ["-bs"], session)
    assert done.returncode == 0, done.stderr
    replies = done.stdout.decode().splitlines()
    assert replies[0].startswith("220 ") and "ESMTP" in replies[0]
    assert any(line.startswith("250-PIPELINING") for line in replies)
    assert [line[:3] for line in replies if not line.startswith("250-")][-6:] == [
        "250",
        "250",
        "250",
        "354",
        "250",
        "221",
    ]
    assert len(list((server.data / "spool" / "maildrop").iterdir())) == 1
    server.start()
    (delivered,) = server.wait_delivered(b"via -bs")
    (copy,) = server.wait_delivered(b"via -bs", user="ops")
    assert copy.replace(b"Delivered-To: ops@", b"Delivered-To: demo@") == delivered
    assert delivered.endswith(b"\r\n\r\n.dotted\r\n")
    assert b"Return-Path: <cron@example.test>" in delivered
    assert re.search(rb"\r\nMessage-ID: <", delivered)


def as_user(user: pwd.struct_passwd, args: list[str], stdin: bytes) -> int:
    """``postoffice ARGS`` in a forked child that has become ``user``; its exit status.

    The child keeps this interpreter (no exec: the venv's Python may live where
    an unprivileged user cannot reach it), drops every privilege, then runs."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 70
        try:
            os.close(write_end)
            os.dup2(read_end, 0)
            sys.stdin = os.fdopen(0, "r")  # pytest's capture stands in for it otherwise
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(user.pw_gid)
                os.setuid(user.pw_uid)
            os.environ.update(HOME="/", USER=user.pw_name, LOGNAME=user.pw_name)
            try:
                main(args)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()  # the test shows why the child failed
        finally:
            os._exit(code)
    os.close(read_end)
    os.write(write_end, stdin)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_an_unprivileged_user_leaves_mail_with_the_server_stopped(tmp_path: Path) -> None:
    """``sendmail -t`` as ``nobody`` (or, run by a plain user, as that user): the
    maildrop (mode 1733) takes it; the server, started later, delivers it and
    records who sent it."""
    base = Path(tempfile.mkdtemp(prefix="po-unpriv-", dir="/tmp"))
    try:
        base.chmod(0o755)
        srv = SmtpServer(base / "var", users=("demo",)).setup()
        for path in (srv.data, srv.data / "etc", srv.config):
            path.chmod(path.stat().st_mode | 0o005)
        # As root (CI), the child becomes nobody; otherwise it is a plain user already.
        nobody = pwd.getpwnam("nobody") if os.geteuid() == 0 else pwd.getpwuid(os.getuid())
        status = as_user(
            nobody,
            ["-c", str(srv.config), "sendmail", "-t"],
            b"To: demo@example.test\nSubject: from nobody\n\nhello\n",
        )
        assert status == 0
        (drop,) = (srv.data / "spool" / "maildrop").iterdir()
        assert drop.stat().st_uid == nobody.pw_uid
        try:
            srv.start()
            (delivered,) = srv.wait_delivered(b"from nobody")
            assert f"Return-Path: <{nobody.pw_name}@example.test>".encode() in delivered
            assert re.search(rf"pickup\[\d+\]: \w+: uid={nobody.pw_uid} from=<", srv.maillog())
        finally:
            srv.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)
