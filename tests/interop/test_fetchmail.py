"""fetchmail against a real ``postoffice serve``: keep and no-keep, over STLS and POP3S.

fetchmail runs as a mail user runs it from cron: one poll (``-N``, no
daemon), its run control file (mode 0600), ``.fetchids`` and lock file in a
private home under ``tmp_path``, no syslog. It verifies the self-signed
certificate (``--sslcertck --sslcertfile cert.pem``) and the name in it
(``sslcommonname mail.example.test``: fetchmail matches the address it
connects to, 127.0.0.1, against names only), and it logs in (USER/PASS)
only over TLS: ``--sslproto tls1.2+`` makes STLS mandatory on the ``pop3``
port, ``--ssl`` is implicit TLS on ``pop3s``. It hands every message to an
MDA, a shell script that writes it to its own file, so nothing is sent
anywhere. fetchmail reads a message with ``TOP N 99999999`` (the whole
message, without RETR's side effects on the server), not RETR.

- keep (``--keep --uidl``): the messages stay on the server; the next poll
  finds them in ``.fetchids`` by their UIDL and fetches nothing
  (fetchmail's exit status 1, "no mail"); a message delivered after that is
  the only one fetched by the poll after.
- no-keep (``--nokeep``): fetchmail marks each message DELE once its MDA
  succeeded and the server removes them at QUIT: the mailbox is empty.
- A maildrop held by another session: ``-ERR [IN-USE]``, which fetchmail
  reports as "lock busy" (exit status 9); a wrong password: status 3.

Skipped only when fetchmail is not installed (Debian package ``fetchmail``;
``.ci/run`` installs it).
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import smtplib
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.integration.smtp_fixtures import wait_for
from tests.interop.mailserver import (
    PASSWORD,
    ClientRun,
    Server,
    clean_env,
    empty_inbox,
    pop3s_login,
    require_client,
)

require_client("fetchmail", "fetchmail")

USER = "demo@example.test"
HOST = "127.0.0.1"
SERVER_NAME = "mail.example.test"  # the name in the generated certificate
FETCHED = 0  # fetchmail's exit status: messages were retrieved
NO_MAIL = 1  # ... there was no (new) mail
AUTH_FAILED = 3
LOCK_BUSY = 9
# The MDA: each message fetchmail hands over goes to OUT/NNNN.eml, numbered in order.
MDA_SCRIPT = """#!/bin/sh
set -e
count=$(ls "$1" | wc -l)
cat > "$1/$(printf %04d $((count + 1))).eml"
"""


class FetchmailRun(ClientRun):
    """fetchmail -v: ``POP3>`` sent, ``POP3<`` received, and its notes, one a line.

    POP3 queues nothing, so ``QUEUED`` is left undefined here.
    """

    TLS_USED = re.compile(r"SSL/TLS: using protocol (TLSv[\d.]+), cipher (\S+),", re.MULTILINE)

    def sent(self, command: str) -> int:
        """Where the transcript shows COMMAND sent (the first time); -1 if never."""
        found = re.search(rf"POP3> {re.escape(command)}$", self.transcript, re.MULTILINE)
        return found.start() if found else -1


class Fetchmail:
    """A mail user's fetchmail set up for one server port, all of it under ``home``."""

    def __init__(self, server: Server, home: Path, *, implicit: bool) -> None:
        self.server = server
        self.home = home
        self.implicit = implicit
        self.out = home / "fetched"
        self.out.mkdir(parents=True)
        self.idfile = home / ".fetchids"
        self.mda = home / "mda.sh"
        self.mda.write_text(MDA_SCRIPT, encoding="ascii")
        self.rcfile = home / ".fetchmailrc"
        port = server.pop3s_port if implicit else server.pop3_port
        self.rcfile.write_text(
            f"poll {SERVER_NAME} via {HOST} protocol POP3 service {port}\n"
            f'    user "{USER}" password "{PASSWORD}"\n'
            # fetchmail checks the certificate against the address it connects
            # to (127.0.0.1, which the certificate lists as an IP, not a name).
            f"    sslcommonname {SERVER_NAME}\n",
            encoding="ascii",
        )
        self.rcfile.chmod(0o600)  # fetchmail refuses a run control file others may read

    def run(self, *, keep: bool, password: str | None = None) -> FetchmailRun:
        rcfile = self.rcfile
        if password is not None:
            rcfile = self.home / "other-password.rc"
            text = self.rcfile.read_text(encoding="ascii").replace(PASSWORD, password)
            rcfile.write_text(text, encoding="ascii")
            rcfile.chmod(0o600)
        command = ["fetchmail", "-f", str(rcfile), "-N", "--nosyslog", "-v"]
        command += ["--idfile", str(self.idfile), "--pidfile", str(self.home / "fetchmail.pid")]
        command += ["--sslcertck", "--sslcertfile", str(self.server.cert)]
        command += ["--ssl"] if self.implicit else ["--sslproto", "tls1.2+"]
        command += ["--keep", "--uidl"] if keep else ["--nokeep"]
        command += ["--mda", f"/bin/sh {shlex.quote(str(self.mda))} {shlex.quote(str(self.out))}"]
        env = {k: v for k, v in clean_env().items() if not k.startswith("FETCHMAIL")}
        env["HOME"] = str(self.home)
        # As root fetchmail runs the MDA as FETCHMAILUSER (else LOGNAME, USER): this user.
        env["FETCHMAILUSER"] = pwd.getpwuid(os.getuid()).pw_name
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=90,
            env=env,
            check=False,
        )
        return FetchmailRun(result.returncode, result.stdout + result.stderr)

    def fetched(self) -> list[bytes]:
        """What the MDA received, oldest first."""
        return [path.read_bytes() for path in sorted(self.out.iterdir())]


def server_uids(server: Server) -> list[str]:
    client = pop3s_login(server)
    try:
        _, lines, _ = client.uidl()
    finally:
        client.quit()
    return [line.split()[1].decode("ascii") for line in lines]


@pytest.fixture(autouse=True)
def empty_maildrop(server: Server) -> None:
    """Every test starts with demo's mailbox empty (the server runs for the whole module)."""
    empty_inbox(server)


def deliver(server: Server, count: int) -> list[tuple[str, bytes]]:
    """COUNT messages to demo by SMTP, one at a time; (mark, stored file) each, in order."""
    delivered = []
    with smtplib.SMTP(HOST, server.port, timeout=10) as client:
        for _ in range(count):
            mark = uuid.uuid4().hex
            message = (
                "From: Sender <sender@client.test>\r\n"
                f"To: Demo <{USER}>\r\n"
                f"Subject: fetch {mark}\r\n"
                f"Message-ID: <{mark}@client.test>\r\n"
                "\r\n"
                f"Body of {mark}.\r\n"
                ".a line with a leading dot\r\n"
                "last line\r\n"
            )
            client.sendmail("sender@client.test", [USER], message.encode("ascii"))
            delivered.append((mark, server.wait_for_message("demo", mark.encode())))
    return delivered


def lf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


def without_fetchmail_received(message: bytes) -> bytes:
    """MESSAGE less the one Received field fetchmail inserts (``by HOST with POP3
    (fetchmail-VERSION)``, placed after the leading Return-Path and Delivered-To)."""
    fields = re.findall(rb"[^\s][^\n]*\n(?:[ \t][^\n]*\n)*", message.split(b"\n\n", 1)[0] + b"\n")
    ours = [f for f in fields if f.startswith(b"Received:") and b"(fetchmail-" in f]
    assert len(ours) == 1, fields
    return message.replace(ours[0], b"", 1)


def check_fetched(fetched: list[bytes], expected: list[tuple[str, bytes]]) -> None:
    """Each fetched message is the stored one, in order: octet for octet but for
    fetchmail's own Received field and the LF line ends it hands the MDA."""
    assert len(fetched) == len(expected), [m[:200] for m in fetched]
    for got, (mark, stored) in zip(fetched, expected, strict=True):
        assert f"Subject: fetch {mark}".encode() in got
        assert f"Body of {mark}.".encode() in got
        assert b"\n.a line with a leading dot\n" in got  # dot-stuffing undone
        assert without_fetchmail_received(got) == lf(stored)
        assert re.search(rb"^Received: from 127\.0\.0\.1 \[127\.0\.0\.1\]$", got, re.M), got


def read_numbers(run: FetchmailRun) -> list[int]:
    """The message numbers fetchmail read (RETR, or ``TOP N 99999999`` when it keeps
    the mail: that leaves the server's seen flag alone), from its own report."""
    found = re.findall(r"^reading message \S+:(\d+) of \d+ ", run.transcript, re.MULTILINE)
    return [int(number) for number in found]


def check_tls_first(run: FetchmailRun, implicit: bool) -> None:
    assert run.tls[0] in ("TLSv1.2", "TLSv1.3"), run.transcript
    login = run.sent(f"USER {USER}")
    assert login > 0, run.transcript
    if implicit:
        assert run.sent("STLS") == -1
    else:
        assert 0 < run.sent("STLS") < login, run.transcript
    assert PASSWORD not in run.transcript  # fetchmail shows "PASS *"


@pytest.mark.parametrize("implicit", [False, True], ids=["stls", "pop3s"])
def test_keep_leaves_the_mail_and_the_next_poll_fetches_only_new_mail(
    server: Server, tmp_path: Path, implicit: bool
) -> None:
    fetchmail = Fetchmail(server, tmp_path, implicit=implicit)
    first = deliver(server, 3)

    run = fetchmail.run(keep=True)
    assert run.code == FETCHED, run.transcript
    check_tls_first(run, implicit)
    assert f"3 messages for {USER} at {SERVER_NAME}" in run.transcript
    assert read_numbers(run) == [1, 2, 3]
    assert "not flushed" in run.transcript and run.sent("DELE 1") == -1
    check_fetched(fetchmail.fetched(), first)
    assert server.mailbox("demo") == [stored for _, stored in first]
    uids = server_uids(server)
    ids = fetchmail.idfile.read_text(encoding="ascii")
    assert all(uid in ids for uid in uids), ids

    again = fetchmail.run(keep=True)
    assert again.code == NO_MAIL, again.transcript
    assert f"3 messages (3 seen) for {USER}" in again.transcript
    assert read_numbers(again) == []
    assert len(fetchmail.fetched()) == 3
    assert server.mailbox("demo") == [stored for _, stored in first]

    later = deliver(server, 1)
    third = fetchmail.run(keep=True)
    assert third.code == FETCHED, third.transcript
    assert read_numbers(third) == [4]
    check_fetched(fetchmail.fetched(), first + later)
    assert server.mailbox("demo") == [stored for _, stored in first + later]
    assert server_uids(server)[:3] == uids  # UIDLs are stable


@pytest.mark.parametrize("implicit", [False, True], ids=["stls", "pop3s"])
def test_nokeep_removes_the_fetched_mail_at_quit(
    server: Server, tmp_path: Path, implicit: bool
) -> None:
    fetchmail = Fetchmail(server, tmp_path, implicit=implicit)
    messages = deliver(server, 3)
    logged_out = re.compile(
        r"pop3\(demo@example\.test\)(?:\[\d+\])?: Disconnected: Logged out .*del=3/3,"
    )
    before = len(logged_out.findall(server.maillog()))

    run = fetchmail.run(keep=False)
    assert run.code == FETCHED, run.transcript
    check_tls_first(run, implicit)
    assert read_numbers(run) == [1, 2, 3]
    assert run.sent("DELE 3") > 0
    assert run.sent("DELE 3") < run.sent("QUIT")
    check_fetched(fetchmail.fetched(), messages)
    assert server.mailbox("demo") == []
    wait_for(
        lambda: len(logged_out.findall(server.maillog())) == before + 1,
        what="the maillog line of the session that deleted 3 of 3",
    )

    again = fetchmail.run(keep=False)
    assert again.code == NO_MAIL, again.transcript
    assert len(fetchmail.fetched()) == 3


def test_a_maildrop_in_use_is_left_alone(server: Server, tmp_path: Path) -> None:
    fetchmail = Fetchmail(server, tmp_path, implicit=True)
    messages = deliver(server, 2)
    holder = pop3s_login(server)
    try:
        run = fetchmail.run(keep=False)
    finally:
        holder.quit()
    assert run.code == LOCK_BUSY, run.transcript  # fetchmail reads RFC 2449's [IN-USE]
    assert "lock busy" in run.transcript
    assert fetchmail.fetched() == []
    assert len(server.mailbox("demo")) == 2
    run = fetchmail.run(keep=False)
    assert run.code == FETCHED, run.transcript
    check_fetched(fetchmail.fetched(), messages)


def test_wrong_password_fetches_nothing(server: Server, tmp_path: Path) -> None:
    fetchmail = Fetchmail(server, tmp_path, implicit=False)
    deliver(server, 1)
    run = fetchmail.run(keep=False, password="not-the-password")
    assert run.code == AUTH_FAILED, run.transcript
    assert "[AUTH]" in run.transcript
    assert fetchmail.fetched() == []
    assert len(server.mailbox("demo")) == 1
