"""offlineimap against a real ``postoffice serve``: a mailbox tree down, changes up.

offlineimap (Debian ``offlineimap3``) runs as a mail user runs it from
cron: one pass (``-o``), the plain log on its output (``-u basic``), its
status cache under ``tmp_path`` (``metadata``), one account between the
server (``ssl = yes`` on the IMAPS port, the certificate checked against the
server's own with ``sslcacertfile``) and a Maildir tree (``sep = /``: the
mailbox ``a/b`` is the Maildir ``ROOT/a/b``). offlineimap checks the name
in the certificate itself and knows DNS names only, not addresses, so it
connects to ``localhost`` (a name the certificate holds) over IPv4
(``ipv6 = no``): 127.0.0.1 all the same.

The scenario, on both store formats (``tests/interop/imapsync.py`` builds and
reads the trees):

1. The server holds INBOX (mail delivered by SMTP) and a folder tree made
   over IMAP. The first sync makes the same tree locally: every message once,
   the same octets, the same flags.
2. Locally, flags change (seen; flagged and answered; a flag taken away), a
   message moves to another folder, one is deleted (its file removed: how
   offlineimap learns of a deletion), a new folder in the existing tree
   gets a new message; on the server, a new message arrives. The second
   sync makes both sides the expected tree. The uploads are the local
   octets unchanged: offlineimap adds its ``X-OfflineIMAP`` field only when
   the server does not say which UID an APPEND got (RFC 4315 APPENDUID).
3. A third sync changes nothing on either side: no file renamed, no message
   uploaded again (every UID as before), nothing duplicated.

Only IMAPS: offlineimap's STARTTLS (``ssl = no``, ``starttls = yes``; imaplib2
3.05) hangs in about one run of ten, here: after the handshake its first
command never reaches the socket (the connection's counters show the client
stopped after its TLS Finished, while the server had read every octet sent
and waits for a command). imaplib2 starts its reader thread again at that
moment, reading the same TLS connection its writer thread sends on; over
IMAPS the first command follows the greeting and it never hung. mbsync and
curl cover STARTTLS.

Skipped only when offlineimap is not installed (Debian package
``offlineimap3``; ``.ci/run`` installs it).
"""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.interop.imapsync import (
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

require_client("offlineimap", "offlineimap3")

USERS = ("tree", "refused")
# A new local folder in an existing part of the tree. offlineimap creates a
# new folder's parents on the server first, one CREATE each, taking
# ``NO [ALREADYEXISTS]`` (RFC 5530) for a parent already there; a parent that
# is new on both sides it then looks for locally in the same run and stops
# ("getfolder() asked for a nonexisting folder"), whatever the server.
NEW_FOLDERS = ("Work/Plans",)
RUN_TIMEOUT = 120  # seconds; a sync here takes a few
SERVER_NAME = "localhost"  # in the certificate, and 127.0.0.1 over IPv4
# offlineimap marks whatever went wrong with ERROR or WARNING.
TROUBLE = re.compile(r"^.*(?:ERROR|WARNING|Traceback).*$", re.M)


@pytest.fixture(scope="module", params=["maildir", "mbox"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    yield from serve(tmp_path_factory, request.param, USERS)


@pytest.fixture(scope="module", autouse=True)
def localhost_is_loopback() -> None:
    """offlineimap must reach the server as ``localhost``: that has to be 127.0.0.1."""
    found = {info[4][0] for info in socket.getaddrinfo(SERVER_NAME, 143, socket.AF_INET)}
    assert found == {"127.0.0.1"}, f"{SERVER_NAME} resolves to {found} over IPv4"


@dataclass
class OfflineimapRun:
    code: int
    output: str

    @property
    def trouble(self) -> list[str]:
        return TROUBLE.findall(self.output)


class Offlineimap:
    """One user's offlineimap set-up: its config file, status cache and Maildir tree."""

    def __init__(
        self,
        server: Server,
        home: Path,
        user: str,
        *,
        password: str = PASSWORD,
    ) -> None:
        self.home = home
        self.root = home / "Mail"
        self.root.mkdir(parents=True)
        self.config = home / "offlineimaprc"
        self.config.write_text(
            "[general]\n"
            "accounts = tree\n"
            f"metadata = {home / 'metadata'}\n"
            "\n"
            "[Account tree]\n"
            "localrepository = Local\n"
            "remoterepository = Remote\n"
            "\n"
            "[Repository Local]\n"
            "type = Maildir\n"
            f"localfolders = {self.root}\n"
            "sep = /\n"
            "\n"
            "[Repository Remote]\n"
            "type = IMAP\n"
            f"remotehost = {SERVER_NAME}\n"
            f"remoteport = {server.imaps_port}\n"
            "ipv6 = no\n"
            "ssl = yes\n"
            f"sslcacertfile = {server.cert}\n"
            f"remoteuser = {address(user)}\n"
            f"remotepass = {password}\n",
            encoding="utf-8",
        )
        self.config.chmod(0o600)

    def run(self, *options: str) -> OfflineimapRun:
        env = clean_env()
        env["HOME"] = str(self.home)
        command = ["offlineimap", "-c", str(self.config), "-o", "-u", "basic", *options]
        try:
            result = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=RUN_TIMEOUT,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            output = (exc.stdout or b"") + (exc.stderr or b"")
            text = output.decode("utf-8", "replace") if isinstance(output, bytes) else output
            raise AssertionError(
                f"offlineimap still running after {RUN_TIMEOUT}s:\n{text}"
            ) from exc
        return OfflineimapRun(result.returncode, result.stdout + result.stderr)

    def sync(self, *options: str) -> OfflineimapRun:
        """A sync that must succeed, with neither errors nor warnings on its output."""
        run = self.run(*options)
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
    offlineimap = Offlineimap(server, tmp_path, user)

    # 1. Down: the local tree is the server's, message for message.
    run = offlineimap.sync()
    copied = re.findall(r"^Copy message UID \d+ .* Remote:\S+ -> Local:", run.output, re.M)
    assert len(copied) == sum(len(mails) for mails in before.values()), run.output
    assert summary(maildir_tree(offlineimap.root)) == seeded.expected
    assert maildir_tree(offlineimap.root) == before
    assert server_tree(server, user)[0] == before  # nothing changed there

    # 2. Changes on both sides, then up (and the new mail down).
    created = change_locally(offlineimap.root, seeded, delete="unlink", new_folders=NEW_FOLDERS)
    deliver(server, user, seeded.subject("late"))
    run = offlineimap.sync()
    assert "Creating folder Work/Plans[Remote]" in run.output
    expected = after_local_changes(seeded, NEW_FOLDERS)
    after, uids = server_tree(server, user)
    assert summary(after) == expected
    assert summary(maildir_tree(offlineimap.root)) == expected
    assert maildir_tree(offlineimap.root) == after  # the same octets both sides
    # The uploads are the local octets: no X-OfflineIMAP field was needed.
    assert {folder: after[folder][0].body for folder in NEW_FOLDERS} == created

    # 3. Again: nothing to do, nothing done.
    files = snapshot(offlineimap.root)
    run = offlineimap.sync()
    for action in ("Copy message", "Deleting", "Adding flag", "Removing flag", "Creating"):
        assert action not in run.output, run.output
    assert snapshot(offlineimap.root) == files
    again, uids_again = server_tree(server, user)
    assert again == after
    assert uids_again == uids


def test_wrong_password_syncs_nothing(server: Server, tmp_path: Path) -> None:
    user = "refused"
    deliver(server, user, "not for offlineimap")
    offlineimap = Offlineimap(server, tmp_path, user, password="not-the-password")
    run = offlineimap.run()
    assert run.code != 0, run.output
    assert "ERROR: All authentication types failed" in run.output
    # Each mechanism offlineimap tried was refused with the RFC 5530 code.
    tried = re.findall(r"^(\w+) authentication failed: b'(.*)'$", run.output, re.M)
    assert tried and all(text.startswith("[AUTHENTICATIONFAILED]") for _, text in tried), tried
    assert not any(offlineimap.root.iterdir())
    assert [m.subject for m in server_tree(server, user)[0]["INBOX"]] == ["not for offlineimap"]
