"""mbox specifics: spool paths, the bytes on disk, locks, failures, other programs."""

from __future__ import annotations

import io
import os
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from postoffice.core.errors import MailboxExists, MailboxNameError, MailboxNotPossible, StoreError
from postoffice.store import ChangeKind, FileMailStore, StoreFactory, StoreLayout
from postoffice.store.engine import UserEngine
from postoffice.store.index import MailIndex
from postoffice.store.mbox import MboxFormat
from tests.store.conftest import ALICE, DOMAIN, TRICKY


@pytest.fixture
def layout(tmp_path: Path) -> StoreLayout:
    return StoreLayout(tmp_path / "data", "mbox", DOMAIN)


async def test_spool_paths(factory: StoreFactory, tmp_path: Path) -> None:
    spool = tmp_path / "data" / "spool" / "mail"
    async with await factory.open(ALICE) as store:
        assert store.paths.mbox_inbox == spool / "alice"
        await store.deliver(b"x")
        assert (spool / "alice").stat().st_size > 0
        assert (store.paths.mail_dir / "Sent").is_file()
    # A virtual domain's user gets LOCAL@DOMAIN, so the two alices never share a file.
    async with await factory.open("Alice@other.test") as other:
        assert other.paths.mbox_inbox == spool / "alice@other.test"
        await other.deliver(b"y")
        assert await other.read("INBOX", 1) == b"y"
    assert sorted(os.listdir(spool)) == ["alice", "alice@other.test"]


async def test_bytes_on_disk_are_mboxrd(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        await store.deliver(TRICKY[2], sender="bob@example.net")
        await store.deliver(b"no newline")
        raw = store.paths.mbox_inbox.read_bytes()
    first, second = raw.split(b"\n\nFrom ")
    assert first.startswith(b"From bob@example.net ")
    # ">>>From" without a space is no From line and stays as it is.
    assert first.endswith(b"\n\n>From here on\n>>From quoted\n>>>From twice\n>>>From\n>From ")
    assert second.startswith(b"MAILER-DAEMON ")
    assert second.endswith(b"\nno newline\n\n")


async def test_failed_append_is_truncated_back(factory: StoreFactory) -> None:
    class Broken(io.RawIOBase):
        sent = 0

        def read(self, size: int = -1, /) -> bytes:
            self.sent += 1
            if self.sent == 4:
                raise RuntimeError("client went away")
            return b"line\nFrom line\n" * 100

    async with await factory.open(ALICE) as store:
        await store.deliver(b"first")
        before = store.paths.mbox_inbox.read_bytes()
        with pytest.raises(StoreError, match="client went away"):
            await store.deliver(Broken())
        assert store.paths.mbox_inbox.read_bytes() == before
        assert not store.paths.mbox_inbox.with_name("alice.lock").exists()
        assert await store.deliver(b"second") == 2
        assert [await store.read("INBOX", uid) for uid in (1, 2)] == [b"first", b"second"]


async def test_index_failure_truncates_the_append(
    factory: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await factory.open(ALICE) as store:
        await store.deliver(b"first")
        before = store.paths.mbox_inbox.read_bytes()

        def refuse(*args: object) -> None:
            raise sqlite3.OperationalError("database is locked")

        monkeypatch.setattr(MailIndex, "add_message", refuse)
        with pytest.raises(StoreError, match="database is locked"):
            await store.deliver(b"never")
        monkeypatch.undo()
        assert store.paths.mbox_inbox.read_bytes() == before
        assert [m.uid for m in await store.messages("INBOX")] == [1]


async def test_other_programs_appends_are_picked_up(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        await store.deliver(b"ours\n")
        feed = store.changes("INBOX")
        with open(store.paths.mbox_inbox, "ab") as spool:
            spool.write(
                b"From procmail@example.net Sat Jan  6 10:00:00 2024\n"
                b"Subject: theirs\n\n>From quoted\nbody\n\n"
            )
        infos = await store.messages("INBOX")
        assert [i.uid for i in infos] == [1, 2]
        assert await store.read("INBOX", 2) == b"Subject: theirs\n\nFrom quoted\nbody\n"
        assert infos[1].size == len(b"Subject: theirs\n\nFrom quoted\nbody\n")
        assert infos[1].internal_date.isoformat() == "2024-01-06T10:00:00+00:00"
        change = await anext(feed)
        assert (change.kind, change.uid) == (ChangeKind.APPENDED, 2)
        # Our next append lands after theirs.
        assert await store.deliver(b"ours again") == 3
        assert await store.read("INBOX", 3) == b"ours again"
        feed.close()


async def test_external_rewrite_bumps_uidvalidity(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        for n in range(3):
            await store.deliver(b"message %d\n" % n)
        old = await store.status("INBOX")
        feed = store.changes("INBOX")
        # Another program deletes the first message by rewriting the file.
        path = store.paths.mbox_inbox
        raw = path.read_bytes()
        path.write_bytes(raw[raw.index(b"\nFrom ", 1) + 1 :])
        new = await store.status("INBOX")
        assert new.uidvalidity > old.uidvalidity
        assert new.messages == 2
        assert [await store.read("INBOX", uid) for uid in (1, 2)] == [
            b"message 1\n",
            b"message 2\n",
        ]
        assert (await anext(feed)).kind is ChangeKind.RESET
        feed.close()


async def test_external_truncation_is_an_expunge(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        for n in range(3):
            await store.deliver(b"message %d\n" % n)
        old = await store.status("INBOX")
        store.paths.mbox_inbox.write_bytes(b"")  # e.g. movemail took everything
        new = await store.status("INBOX")
        assert (new.uidvalidity, new.messages, new.uidnext) == (old.uidvalidity, 0, 4)


async def test_expunge_rewrites_safely(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        path = store.paths.mbox_inbox
        for data in TRICKY[:6]:
            await store.deliver(data)
        os.chmod(path, 0o660)
        await store.store_flags("INBOX", [1, 3, 5], ["\\Deleted"])
        assert await store.expunge("INBOX") == [1, 3, 5]
        assert stat.S_IMODE(path.stat().st_mode) == 0o660
        assert not [p for p in path.parent.iterdir() if "rewrite" in p.name or p.suffix == ".lock"]
        for uid in (2, 4, 6):
            assert await store.read("INBOX", uid) == TRICKY[uid - 1]
        # The file is still a plain mbox that appends continue after.
        assert await store.deliver(b"after") == 7
        assert path.read_bytes().count(b"\nFrom ") + 1 == 4
    async with await factory.open(ALICE) as store:
        assert [m.uid for m in await store.messages("INBOX")] == [2, 4, 6, 7]


@pytest.fixture
def quick(layout: StoreLayout) -> StoreFactory:
    return StoreFactory(layout, lock_timeout=0.3)


async def test_a_held_dotlock_blocks_then_goes_stale(quick: StoreFactory) -> None:
    async with await quick.open(ALICE) as store:
        dotlock = store.paths.mbox_inbox.with_name("alice.lock")
        dotlock.write_text("12345\n")
        started = time.monotonic()
        with pytest.raises(StoreError, match="dotlock"):
            await store.deliver(b"blocked")
        assert time.monotonic() - started >= 0.3
        assert dotlock.exists()
        past = time.time() - 600  # left by a crashed program
        os.utime(dotlock, (past, past))
        assert await store.deliver(b"through") == 1
        assert not dotlock.exists()


async def test_a_classic_fcntl_lock_blocks(quick: StoreFactory) -> None:
    async with await quick.open(ALICE) as store:
        path = store.paths.mbox_inbox
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import fcntl, sys, time\n"
                f"f = open({str(path)!r}, 'r+')\n"
                "fcntl.lockf(f, fcntl.LOCK_EX)\n"
                "print('locked', flush=True)\n"
                "sys.stdin.read()\n",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
            with pytest.raises(StoreError, match="timed out waiting for the lock"):
                await store.deliver(b"blocked")
        finally:
            holder.communicate(b"", timeout=10)
        assert await store.deliver(b"through") == 1
        assert await store.read("INBOX", 1) == b"through"


async def test_mbox_hierarchy_rules(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        await store.create_mailbox("Lists")
        with pytest.raises(MailboxNotPossible, match="cannot also hold other mailboxes"):
            await store.create_mailbox("Lists/debian")
        await store.create_mailbox("Projects/2024")
        # The name exists, as a place for mailboxes (IMAP \Noselect): ALREADYEXISTS.
        with pytest.raises(MailboxExists, match="directory of mailboxes"):
            await store.create_mailbox("Projects")
        await store.create_mailbox("Projects", parent=True)  # already so: nothing to do
        await store.delete_mailbox("Projects/2024")
        await store.create_mailbox("Projects")  # the empty directory went with it
        assert (await store.status("Projects")).messages == 0


@pytest.mark.parametrize("address", ["alice.lock@example.test", "bob@other.lock"])
async def test_a_spool_file_never_is_another_users_dotlock(
    quick: StoreFactory, address: str
) -> None:
    # spool/mail/alice.lock is alice's dotlock: as a user's INBOX it would block
    # alice's delivery, and alice's stale-lock cleanup would unlink that INBOX.
    with pytest.raises(MailboxNameError, match="dotlock"):
        await quick.open(address)
    spool = quick.layout.spool_dir
    assert not spool.exists() or not [p for p in spool.iterdir() if p.name.endswith(".lock")]
    async with await quick.open(ALICE) as store:
        assert await store.deliver(b"not blocked") == 1


async def test_an_in_place_rewrite_that_grew_is_not_taken_for_an_append(
    factory: StoreFactory,
) -> None:
    # mutt rewrites an mbox in place (same inode). Here it expunged message 1
    # and then two messages arrived; by chance a From line now starts exactly
    # where the file used to end. Offsets before that point no longer hold.
    def entry(n: int) -> bytes:
        return b"From x@example.net Sat Jan  6 10:00:0%d 2024\nSubject: %d\n\nbody\n\n" % (n, n)

    async with await factory.open(ALICE) as store:
        path = store.paths.mbox_inbox
        path.write_bytes(entry(1) + entry(2))
        assert [i.uid for i in await store.messages("INBOX")] == [1, 2]
        old = await store.status("INBOX")
        inode = path.stat().st_ino
        with open(path, "r+b") as mbox:
            mbox.write(entry(2) + entry(3) + entry(4))
        assert path.stat().st_ino == inode
        new = await store.status("INBOX")
        assert new.uidvalidity != old.uidvalidity
        contents = [await store.read("INBOX", i.uid) for i in await store.messages("INBOX")]
        assert contents == [b"Subject: %d\n\nbody\n" % n for n in (2, 3, 4)]


async def test_an_append_by_another_program_is_read_incrementally(
    factory: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await factory.open(ALICE) as store:
        for data in TRICKY:
            await store.deliver(data)
        path = store.paths.mbox_inbox
        end = path.stat().st_size
        with open(path, "ab") as spool:
            spool.write(b"From procmail Sat Jan  6 10:00:00 2024\nSubject: theirs\n\n")
        starts: list[int] = []
        scan = MboxFormat._entries

        def recording(self: MboxFormat, name: str, start: int, stop: int, tick: Any) -> object:
            starts.append(start)
            return scan(self, name, start, stop, tick)

        monkeypatch.setattr(MboxFormat, "_entries", recording)
        assert len(await store.messages("INBOX")) == len(TRICKY) + 1
        assert starts == [end]


async def test_a_symlinked_spool_file_is_refused(factory: StoreFactory, tmp_path: Path) -> None:
    # The classic /var/spool/mail attack: a link planted where a user's spool
    # file will be, so that delivery appends to a file of the attacker's choice.
    secret = tmp_path / "outside" / "secret"
    secret.parent.mkdir()
    secret.write_bytes(b"root:x:0:0\n")
    before = secret.read_bytes()
    spool = factory.paths(ALICE).mbox_inbox
    spool.parent.mkdir(parents=True)
    spool.symlink_to(secret)
    with pytest.raises(StoreError):
        store = await factory.open(ALICE)
        try:
            await store.deliver(b"Subject: x\n\nappended to the target\n")
        finally:
            await store.close()
    assert secret.read_bytes() == before
    spool.unlink()
    os.link(secret, spool)  # a hard link does the same where the kernel allows it
    with pytest.raises(StoreError):
        store = await factory.open(ALICE)
        try:
            await store.deliver(b"Subject: x\n\nappended to the target\n")
        finally:
            await store.close()
    assert secret.read_bytes() == before


def pending_appends(store: FileMailStore) -> list[str]:
    index = MailIndex.open(store.paths.index_path)
    try:
        return index.pending_appends()
    finally:
        index.close()


async def test_a_failure_the_process_survives_settles_the_intent(
    factory: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await factory.open(ALICE) as store:
        await store.deliver(b"first")
        before = store.paths.mbox_inbox.read_bytes()

        def refuse(*args: object) -> None:
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(MailIndex, "add_message", refuse)
        with pytest.raises(StoreError, match="disk I/O error"):
            await store.deliver(b"never")
        monkeypatch.undo()
        assert store.paths.mbox_inbox.read_bytes() == before
        assert pending_appends(store) == []
        monkeypatch.setattr(MailIndex, "set_append_intent", refuse)
        with pytest.raises(StoreError, match="disk I/O error"):
            await store.deliver(b"never")  # no intent, no write
        monkeypatch.undo()
        assert store.paths.mbox_inbox.read_bytes() == before
        assert await store.deliver(b"second") == 2


async def test_a_copy_cut_short_is_taken_back_as_one(
    factory: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await factory.open(ALICE) as store:
        for n in range(3):
            await store.deliver(b"message %d\n" % n)
        await store.create_mailbox("Keep")
        await store.append("Keep", b"kept\n")
        target = store.paths.mbox_file("Keep")
        before = target.read_bytes()
        copied = 0
        copy = MboxFormat.copy_message

        def dying(self: MboxFormat, *args: Any) -> object:
            nonlocal copied
            copied += 1
            if copied == 3:
                raise RuntimeError("killed")
            return copy(self, *args)

        # The process dies during the third copy: nothing of the clean-up runs.
        monkeypatch.setattr(MboxFormat, "copy_message", dying)
        monkeypatch.setattr(MboxFormat, "discard", lambda *args: None)
        monkeypatch.setattr(UserEngine, "_settle", lambda *args: None)
        with pytest.raises(StoreError, match="killed"):
            await store.copy("INBOX", [1, 2, 3], "Keep")
        monkeypatch.undo()
        assert len(target.read_bytes()) > len(before)  # two copies on disk, no index rows
        assert pending_appends(store) == ["Keep"]
        assert [m.uid for m in await store.messages("Keep")] == [1]
        assert target.read_bytes() == before
        assert pending_appends(store) == []
        assert await store.copy("INBOX", [1, 2, 3], "Keep") == {1: 2, 2: 3, 3: 4}
        assert await store.read("Keep", 4) == b"message 2\n"
