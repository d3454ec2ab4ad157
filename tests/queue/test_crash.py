"""Crashes at every step of a commit or a rewrite leave no message or a whole one.

Two ways: an injected ``SimulatedCrash`` (a BaseException, so no cleanup code
runs, as with a real crash; open descriptors are closed, as the kernel does)
raised at each named step, and a real SIGKILL of a writing process.
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

from postoffice.core.clock import FixedClock
from postoffice.queue import FsHooks, Queue, RecipientState, RecipientStatus

from .conftest import envelope, open_queue, put, read_all, spool_files
from .crash_worker import body

COMMIT_STEPS = [
    "df-written",
    "df-fsynced",
    "df-renamed",
    "qf-written",
    "qf-fsynced",
    "qf-renamed",
    "dir-fsynced",
]
UPDATE_STEPS = ["update-written", "update-fsynced", "update-renamed", "update-dir-fsynced"]
WORKER = Path(__file__).with_name("crash_worker.py")


class SimulatedCrash(BaseException):
    """Not an Exception: no ``except Exception`` cleanup runs, as in a real crash."""


def crash_at(step: str) -> FsHooks:
    def hook(name: str) -> None:
        if name == step:
            raise SimulatedCrash(step)

    return FsHooks(fsync=lambda fd: None, fsync_directory=lambda fd: None, step=hook)


async def assert_whole_or_absent(queue_dir: Path, clock: FixedClock, data: bytes) -> int:
    async with await open_queue(queue_dir, clock) as queue:
        assert queue.recovery is not None
        assert queue.recovery.quarantined == []
        entries = await queue.list()
        for entry in entries:
            with await queue.open_data(entry.id) as stream:
                assert read_all(stream) == data
    files = spool_files(queue_dir)
    assert files["tmp"] == [] and files["quarantine"] == []
    assert len(files["mqueue"]) == 2 * len(entries)
    return len(entries)


@pytest.mark.parametrize("step", COMMIT_STEPS)
async def test_crash_at_each_commit_step(queue_dir: Path, clock: FixedClock, step: str) -> None:
    data = b"Subject: crash\r\n\r\n" + b"x" * 300_000
    queue = await Queue.open(queue_dir, clock, hooks=crash_at(step))
    with pytest.raises(SimulatedCrash):
        await put(queue, data, chunk=65536)
    await queue.close()
    survivors = await assert_whole_or_absent(queue_dir, clock, data)
    # Before the qf's rename there is no message; from it on, a whole one.
    assert survivors == (1 if COMMIT_STEPS.index(step) >= COMMIT_STEPS.index("qf-renamed") else 0)


@pytest.mark.parametrize("step", UPDATE_STEPS)
async def test_crash_at_each_update_step(queue_dir: Path, clock: FixedClock, step: str) -> None:
    async with await open_queue(queue_dir, clock) as queue:
        queue_id = await put(queue, b"data", envelope("a@x.test", "b@x.test"))
    queue = await Queue.open(queue_dir, clock, hooks=crash_at(step))
    delivered = RecipientStatus.delivered("250 ok", at=clock.now())
    with pytest.raises(SimulatedCrash):
        await queue.update(queue_id, {1: delivered})
    await queue.close()
    assert await assert_whole_or_absent(queue_dir, clock, b"data") == 1
    async with await open_queue(queue_dir, clock) as queue:
        states = [s.state for s in (await queue.load(queue_id)).statuses]
    new = UPDATE_STEPS.index(step) >= UPDATE_STEPS.index("update-renamed")
    assert states == [RecipientState.PENDING, delivered.state if new else RecipientState.PENDING]


def test_sigkill_in_the_middle_of_writing_leaves_nothing(queue_dir: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), str(queue_dir), "mid-write"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "writing"
        assert spool_files(queue_dir)["tmp"]  # the data file is being written
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.stdout is not None
        proc.stdout.close()

    async def reopen() -> None:
        async with await Queue.open(queue_dir) as queue:
            assert queue.recovery is not None
            assert len(queue.recovery.removed) == 1
            assert await queue.list() == []

    asyncio.run(reopen())
    assert spool_files(queue_dir) == {"mqueue": [], "tmp": [], "quarantine": []}


@pytest.mark.parametrize("wanted", [5, 23, 60])
def test_sigkill_during_commits_keeps_every_acknowledged_message(
    queue_dir: Path, wanted: int
) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), str(queue_dir), "commit-loop"],
        stdout=subprocess.PIPE,
        text=True,
    )
    acknowledged: dict[str, int] = {}
    try:
        assert proc.stdout is not None
        while len(acknowledged) < wanted:
            line = proc.stdout.readline()
            assert line, "worker died"
            _, queue_id, n = line.split()
            acknowledged[queue_id] = int(n)
        time.sleep(0.0005 * wanted)  # land the kill somewhere inside later commits
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    # Lines printed after our last read were acknowledged too.
    assert proc.stdout is not None
    for line in proc.stdout.read().splitlines():
        _, queue_id, n = line.split()
        acknowledged[queue_id] = int(n)
    proc.stdout.close()

    async def reopen() -> None:
        async with await Queue.open(queue_dir) as queue:
            assert queue.recovery is not None and queue.recovery.quarantined == []
            entries = {entry.id: entry for entry in await queue.list()}
            assert set(acknowledged) <= set(entries)
            for queue_id, entry in entries.items():
                with await queue.open_data(entry.id) as stream:
                    data = read_all(stream)  # verified against size and SHA-256
                if queue_id in acknowledged:
                    assert data == body(acknowledged[queue_id])

    asyncio.run(reopen())
    files = spool_files(queue_dir)
    assert files["tmp"] == [] and files["quarantine"] == []
