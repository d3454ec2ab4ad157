"""mbsync (isync) against a real ``postoffice serve``: a mailbox tree down, changes up.

mbsync runs as a mail user runs it: one channel between the server (its
IMAPS port, the certificate checked against the server's own with
``CertificateFile``, the user's name and password) and a Maildir tree under
``tmp_path`` (``SubFolders Verbatim``: ``a/b`` is the Maildir ``ROOT/a/b``),
``Patterns *`` (every mailbox), ``Create Both`` (new folders either side are
made on the other), ``Expunge Both`` (messages flagged deleted go, either
side) and its sync state kept in each Maildir (``SyncState *``). isync 1.4
(Debian bookworm) names TLS ``SSLType``; 1.5 renamed it ``TLSType``.

The scenario, on both store formats (``tests/interop/imapsync.py`` builds and
reads the trees):

1. The server holds INBOX (mail delivered by SMTP) and a folder tree made
   over IMAP. The first sync makes the same tree locally: every message once,
   the same octets, the same flags.
2. Locally, flags change (seen; flagged and answered; a flag taken away), a
   message moves to another folder, one is flagged deleted (T, and
   ``Expunge Both``), two new folders (one in an existing folder, one with a
   new parent) get a new message each; on the server, a new message
   arrives. The second sync makes both sides the expected tree, and each
   upload got its UID in the APPEND reply (RFC 4315 APPENDUID).
3. A third sync changes nothing on either side: no file renamed, no message
   uploaded again (every UID as before), nothing duplicated, and mbsync
   sends no APPEND, STORE, EXPUNGE or CREATE.

mbsync writes an ``X-TUID`` field into each message it stores, on either
side (its own transaction id): the trees are compared without it.
STARTTLS on the ``imap`` port is checked too, and a wrong password.

Skipped only when mbsync is not installed (Debian package ``isync``;
``.ci/run`` installs it).
"""

from __future__ import annotations

import glob
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.interop.imapsync import (
    Mail,
    Tree,
    address,
    after_local_changes,
    change_locally,
    deliver,
    maildir_tree,
    seed_tree,
    serve,
    server_tree,
    snapshot,
    summary,
)
from tests.interop.mailserver import PASSWORD, Server, clean_env, require_client

require_client("mbsync", "isync")

USERS = ("tree", "starttls", "refused", "scram")
# New local folders: one under an existing name, one whose parent is new too
# (mbsync creates just the folder; above it the server lists ``Projects``
# as ``\Noselect``).
NEW_FOLDERS = ("Work/Plans", "Projects/2026")
# Lines mbsync writes only when something went wrong (its notices say "notice").
TROUBLE = re.compile(r"^.*(?:error|warning|fail|expected|unexpected).*$", re.I | re.M)


@pytest.fixture(scope="module", params=["maildir", "mbox"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    yield from serve(tmp_path_factory, request.param, USERS)


def isync_version() -> tuple[int, ...]:
    out = subprocess.run(
        ["mbsync", "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    found = re.search(r"isync (\d+)\.(\d+)", out)
    assert found, out
    return int(found.group(1)), int(found.group(2))


# mbsync writes its transaction id into every message it stores, either side,
# so that a sync cut short can still pair the copy with its original: it is
# mbsync's own field, whatever the server (it got every APPENDUID it asked for).
TUID = re.compile(rb"^X-TUID: [^\n]*\n", re.M)


def without_tuid(tree: Tree) -> Tree:
    """TREE with mbsync's one ``X-TUID`` field taken out of each message that has one."""
    cleaned: Tree = {}
    for name, mails in tree.items():
        for mail in mails:
            head = mail.body.split(b"\n\n", 1)[0] + b"\n"
            assert len(TUID.findall(head)) <= 1, mail.body
        cleaned[name] = sorted(
            Mail(m.subject, m.flags, TUID.sub(b"", m.body, count=1)) for m in mails
        )
    return cleaned


def local_tree(root: Path) -> Tree:
    return without_tuid(maildir_tree(root))


@dataclass
class MbsyncRun:
    code: int
    output: str

    @property
    def trouble(self) -> list[str]:
        return TROUBLE.findall(self.output)


def sent(run: MbsyncRun, command: str) -> int | None:
    """Where mbsync's debug output (``-D``) first shows COMMAND sent to the server."""
    found = re.search(rf"^F: >>> \d+ {re.escape(command)}(?: |$)", run.output, re.M)
    return found.start() if found else None


class Mbsync:
    """One user's mbsync set-up: its config file and Maildir tree, under ``home``."""

    def __init__(
        self,
        server: Server,
        home: Path,
        user: str,
        *,
        starttls: bool = False,
        password: str = PASSWORD,
        patterns: str = "*",
        mechanisms: str = "*",
    ) -> None:
        self.home = home
        self.root = home / "Mail"
        self.root.mkdir(parents=True)
        self.config = home / "mbsyncrc"
        tls_word = "TLSType" if isync_version() >= (1, 5) else "SSLType"
        port = server.imap_port if starttls else server.imaps_port
        self.config.write_text(
            "IMAPAccount remote\n"
            "Host 127.0.0.1\n"
            f"Port {port}\n"
            f"User {address(user)}\n"
            f'Pass "{password}"\n'
            f"{tls_word} {'STARTTLS' if starttls else 'IMAPS'}\n"
            f"CertificateFile {server.cert}\n"
            f"AuthMechs {mechanisms}\n"
            "\n"
            "IMAPStore remote\n"
            "Account remote\n"
            "\n"
            "MaildirStore local\n"
            f"Path {self.root}/\n"
            f"Inbox {self.root}/INBOX\n"
            "SubFolders Verbatim\n"
            "\n"
            "Channel tree\n"
            "Far :remote:\n"
            "Near :local:\n"
            f"Patterns {patterns}\n"
            "Create Both\n"
            "Expunge Both\n"
            "SyncState *\n",
            encoding="utf-8",
        )
        self.config.chmod(0o600)

    def run(self, *options: str) -> MbsyncRun:
        env = clean_env()
        env["HOME"] = str(self.home)
        result = subprocess.run(
            ["mbsync", "-c", str(self.config), *options, "-a"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            check=False,
        )
        return MbsyncRun(result.returncode, result.stdout + result.stderr)

    def sync(self, *options: str) -> MbsyncRun:
        """A sync that must succeed, with nothing on its output but its progress notes."""
        run = self.run(*options or ("-V",))
        assert run.code == 0, run.output
        assert run.trouble == [], run.output
        return run


def test_tree_down_changes_up_and_a_third_sync_changes_nothing(
    server: Server, tmp_path: Path
) -> None:
    user = "tree"
    assert server.store_format is not None
    seeded = seed_tree(server, user, server.store_format)
    before, _ = server_tree(server, user)
    assert summary(before) == seeded.expected
    mbsync = Mbsync(server, tmp_path, user)

    # 1. Down: the local tree is the server's, message for message.
    mbsync.sync()
    assert summary(local_tree(mbsync.root)) == seeded.expected
    assert local_tree(mbsync.root) == before
    assert server_tree(server, user)[0] == before  # nothing changed there

    # 2. Changes on both sides, then up (and the new mail down).
    created = change_locally(mbsync.root, seeded, delete="flag", new_folders=NEW_FOLDERS)
    deliver(server, user, seeded.subject("late"))
    run = mbsync.sync("-D")  # the exchange too
    expected = after_local_changes(seeded, NEW_FOLDERS)
    after, uids = server_tree(server, user)
    after = without_tuid(after)
    assert summary(after) == expected
    assert summary(local_tree(mbsync.root)) == expected
    assert local_tree(mbsync.root) == after  # the same octets both sides
    assert {folder: after[folder][0].body for folder in NEW_FOLDERS} == created
    # Three uploads (the new messages, the moved one), each answered with its UID
    # (RFC 4315 APPENDUID), so mbsync never had to look for them by X-TUID.
    assert sent(run, "APPEND") and sent(run, "UID STORE"), run.output
    appended = re.findall(r"^F: \d+ OK \[APPENDUID \d+ \d+\] ", run.output, re.M)
    assert len(appended) == 3, run.output
    assert "X-TUID)" not in run.output

    # 3. Again: nothing to do, nothing done.
    files = snapshot(mbsync.root)
    run = mbsync.sync("-D")
    assert snapshot(mbsync.root) == files
    again, uids_again = server_tree(server, user)
    assert without_tuid(again) == after
    assert uids_again == uids
    for verb in ("APPEND", "UID STORE", "STORE", "EXPUNGE", "UID EXPUNGE", "CREATE"):
        assert sent(run, verb) is None, run.output


def test_starttls_on_the_imap_port(server: Server, tmp_path: Path) -> None:
    user = "starttls"
    subjects = ["over starttls 1", "over starttls 2"]
    deliver(server, user, *subjects)
    mbsync = Mbsync(server, tmp_path, user, starttls=True, patterns="INBOX")
    run = mbsync.run("-D")  # the exchange, to see STARTTLS come before the login
    assert run.code == 0, run.output
    starttls = sent(run, "STARTTLS")
    assert starttls is not None, run.output
    assert "LOGINDISABLED" in run.output[:starttls]  # no login offered in the clear
    login = sent(run, "AUTHENTICATE") or sent(run, "LOGIN")
    assert login is not None and starttls < login, run.output
    local = local_tree(mbsync.root)
    assert list(local) == ["INBOX"]
    assert [mail.subject for mail in local["INBOX"]] == subjects
    assert local == {"INBOX": server_tree(server, user)[0]["INBOX"]}


def test_wrong_password_syncs_nothing(server: Server, tmp_path: Path) -> None:
    user = "refused"
    deliver(server, user, "not for mbsync")
    mbsync = Mbsync(server, tmp_path, user, password="not-the-password")
    run = mbsync.run("-V")
    assert run.code == 1, run.output
    assert re.search(r"AUTHENTICATIONFAILED", run.output), run.output
    assert not any(mbsync.root.iterdir())
    assert [m.subject for m in server_tree(server, user)[0]["INBOX"]] == ["not for mbsync"]


def test_scram_sha_256_through_cyrus_sasl(server: Server, tmp_path: Path) -> None:
    """mbsync's SASL (Cyrus libsasl2, whose SCRAM plugin is in libsasl2-modules)
    logs in with SCRAM-SHA-256: an implementation of RFC 5802 in C, not ours."""
    if not glob.glob("/usr/lib/*/sasl2/libscram.so*"):
        pytest.skip(
            "no Cyrus SASL SCRAM plugin (Debian package libsasl2-modules); .ci/run installs it"
        )
    user = "scram"
    deliver(server, user, "fetched after SCRAM")
    mbsync = Mbsync(server, tmp_path, user, patterns="INBOX", mechanisms="SCRAM-SHA-256")
    run = mbsync.run("-D")
    assert run.code == 0, run.output
    assert sent(run, "AUTHENTICATE SCRAM-SHA-256") is not None, run.output
    assert [mail.subject for mail in local_tree(mbsync.root)["INBOX"]] == ["fetched after SCRAM"]
    wrong = Mbsync(server, tmp_path / "wrong", user, password="nope", mechanisms="SCRAM-SHA-256")
    run = wrong.run("-V")
    assert run.code == 1 and "AUTHENTICATIONFAILED" in run.output, run.output
