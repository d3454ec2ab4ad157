"""Appends interrupted by a real process crash (SIGKILL): never a torn message, none lost.

Each test runs ``tests.store.crash_worker`` in a separate process that dies
at a chosen point of an append, then opens the store again and checks the
files and the index.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from postoffice.store import FileMailStore, StoreFactory, StoreLayout
from postoffice.store.mboxrecovery import QUARANTINE_PREFIX
from tests.store.conftest import ALICE, DOMAIN, message

REPO = Path(__file__).resolve().parents[2]
SEEDS = [message(n, 2000) for n in range(3)] + [b"Subject: no final newline\n\nlast line"]
BIG = 300_000
# "From MAILER-DAEMON " and an asctime date: the From line of the worker's append.
FROM_LINE_SIZE = len(b"From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n")


@pytest.fixture
def mbox(tmp_path: Path) -> StoreLayout:
    return StoreLayout(tmp_path / "data", "mbox", DOMAIN)


@pytest.fixture
def maildir(tmp_path: Path) -> StoreLayout:
    return StoreLayout(tmp_path / "data", "maildir", DOMAIN)


def factory_of(layout: StoreLayout) -> StoreFactory:
    return StoreFactory(layout, lock_timeout=5.0)


async def seed(layout: StoreLayout) -> None:
    async with await factory_of(layout).open(ALICE) as store:
        for data in SEEDS:
            await store.deliver(data)


def start_worker(layout: StoreLayout, step: str, size: int = BIG) -> subprocess.Popen[bytes]:
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.store.crash_worker",
            str(layout.data_dir),
            layout.format,
            step,
            str(size),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert worker.stdout is not None
    assert worker.stdout.readline() == b"ready\n", worker.communicate(timeout=30)[1].decode()
    return worker


def crash(layout: StoreLayout, step: str, size: int = BIG) -> None:
    worker = start_worker(layout, step, size)
    out, err = worker.communicate(timeout=60)
    assert worker.returncode == -signal.SIGKILL, (out, err.decode())


def torn_files(layout: StoreLayout) -> list[Path]:
    return sorted(factory_of(layout).paths(ALICE).mail_dir.glob(QUARANTINE_PREFIX + "*"))


async def check_previous(store: FileMailStore, *more: int) -> None:
    """The store holds the seeded messages, byte for byte, and the UIDs ``more``."""
    expected = list(range(1, len(SEEDS) + 1)) + list(more)
    assert [info.uid for info in await store.messages("INBOX")] == expected
    for uid, data in enumerate(SEEDS, start=1):
        assert await store.read("INBOX", uid) == data


async def check_taken_back(layout: StoreLayout, before: bytes) -> None:
    spool = factory_of(layout).paths(ALICE).mbox_inbox
    async with await factory_of(layout).open(ALICE) as store:
        assert spool.read_bytes() == before  # same length, same octets
        await check_previous(store)
        status = await store.status("INBOX")
        assert (status.messages, status.uidnext) == (4, 5)
        assert await store.deliver(b"Subject: next\n\nafter the crash\n") == 5
        assert await store.read("INBOX", 5) == b"Subject: next\n\nafter the crash\n"
    assert not spool.with_name(spool.name + ".lock").exists()
    assert torn_files(layout) == []
    async with await factory_of(layout).open(ALICE) as store:
        assert [info.uid for info in await store.messages("INBOX")] == [1, 2, 3, 4, 5]


async def test_sigkill_while_the_source_blocks_mid_message(mbox: StoreLayout) -> None:
    await seed(mbox)
    spool = factory_of(mbox).paths(ALICE).mbox_inbox
    before = spool.read_bytes()
    data = message(99, BIG)
    half = len(data) // 2
    # A store open all along: it must take the torn octets back at its next sync.
    async with await factory_of(mbox).open(ALICE) as watcher:
        await check_previous(watcher)
        worker = start_worker(mbox, "pipe")
        assert worker.stdin is not None
        worker.stdin.write(data[:half])
        worker.stdin.flush()
        deadline = time.monotonic() + 30
        while spool.stat().st_size < len(before) + FROM_LINE_SIZE + half:
            assert time.monotonic() < deadline, "the worker never wrote the first half"
            time.sleep(0.01)
        worker.kill()
        worker.communicate(timeout=30)
        assert worker.returncode == -signal.SIGKILL
        torn = spool.read_bytes()
        assert len(torn) == len(before) + FROM_LINE_SIZE + half
        assert torn.endswith(data[:half])
        await check_previous(watcher)
        assert spool.read_bytes() == before
    await check_taken_back(mbox, before)


@pytest.mark.parametrize(
    "step", ["after-intent", "mid-write", "after-fsync", "before-index-commit"]
)
async def test_a_crashed_append_is_taken_back(mbox: StoreLayout, step: str) -> None:
    await seed(mbox)
    spool = factory_of(mbox).paths(ALICE).mbox_inbox
    before = spool.read_bytes()
    crash(mbox, step)
    written = spool.stat().st_size - len(before)
    if step == "after-intent":
        assert written == 0
    elif step == "mid-write":
        assert 0 < written < BIG
    else:
        assert written > BIG  # the whole message, never registered
    await check_taken_back(mbox, before)


async def test_a_crash_after_the_index_commit_keeps_the_message(mbox: StoreLayout) -> None:
    await seed(mbox)
    crash(mbox, "after-index-commit")
    async with await factory_of(mbox).open(ALICE) as store:
        await check_previous(store, 5)
        assert await store.read("INBOX", 5) == message(99, BIG)
    assert torn_files(mbox) == []


async def test_another_programs_append_after_torn_octets_survives(mbox: StoreLayout) -> None:
    await seed(mbox)
    spool = factory_of(mbox).paths(ALICE).mbox_inbox
    before = spool.read_bytes()
    crash(mbox, "mid-write")
    torn = spool.read_bytes()[len(before) :]
    assert not torn.endswith(b"\n")  # torn mid-line: the other program ends the line first
    theirs = b"From procmail@example.net Sat Jan  6 10:00:00 2024\nSubject: theirs\n\nbody\n\n"
    with open(spool, "ab") as other:
        other.write(b"\n" + theirs)
    async with await factory_of(mbox).open(ALICE) as store:
        await check_previous(store, 5)
        assert await store.read("INBOX", 5) == b"Subject: theirs\n\nbody\n"
        infos = await store.messages("INBOX")
        assert infos[4].internal_date.isoformat() == "2024-01-06T10:00:00+00:00"
        assert spool.read_bytes() == before + theirs
        assert await store.deliver(b"ours again") == 6
    [saved] = torn_files(mbox)
    assert saved.read_bytes() == torn + b"\n"  # our octets, and the line end they added


async def test_a_message_glued_onto_torn_octets_is_set_aside(mbox: StoreLayout) -> None:
    # A careless program appends without ending our torn last line: no reader
    # can tell its message from ours any more, so both go aside, none is adopted.
    await seed(mbox)
    spool = factory_of(mbox).paths(ALICE).mbox_inbox
    before = spool.read_bytes()
    crash(mbox, "mid-write")
    torn = spool.read_bytes()[len(before) :]
    glued = b"From careless@example.net Sat Jan  6 10:00:00 2024\nSubject: glued\n\n"
    with open(spool, "ab") as other:
        other.write(glued)
    async with await factory_of(mbox).open(ALICE) as store:
        await check_previous(store)
        assert spool.read_bytes() == before
    [saved] = torn_files(mbox)
    assert saved.read_bytes() == torn + glued


@pytest.mark.parametrize("step", ["before-index-commit", "after-index-commit"])
async def test_maildir_crash_after_the_link_delivers_exactly_once(
    maildir: StoreLayout, step: str
) -> None:
    await seed(maildir)
    crash(maildir, step)
    new = factory_of(maildir).paths(ALICE).mail_dir / "new"
    assert len(list(new.iterdir())) == 5  # the message was linked into new/
    for _ in range(2):
        async with await factory_of(maildir).open(ALICE) as store:
            await check_previous(store, 5)
            assert await store.read("INBOX", 5) == message(99, BIG)
    assert not list((new.parent / "tmp").iterdir())
    async with await factory_of(maildir).open(ALICE) as store:
        assert await store.deliver(b"next") == 6


def test_the_workers_die_where_asked(mbox: StoreLayout) -> None:
    asyncio.run(seed(mbox))
    worker = start_worker(mbox, "none", 100)
    out, _ = worker.communicate(timeout=60)
    assert (worker.returncode, out) == (0, b"survived\n")
