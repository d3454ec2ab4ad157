"""Acceptance: streaming writes, the durable commit order, group commit, failures undone."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from pathlib import Path

import pytest

from postoffice.core.clock import FixedClock
from postoffice.core.envelope import Envelope
from postoffice.queue import FsHooks, Queue, QueueError, QueueId, QueueStateError
from postoffice.queue.incoming import FLUSH_OCTETS

from .conftest import envelope, hostile_envelope, open_queue, put, read_all, spool_files

MESSAGE = b"From: a@example.test\r\nSubject: test\r\n\r\nHello.\r\n"


async def test_commit_stores_data_and_envelope(
    queue_dir: Path, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="postoffice.maillog")
    async with await open_queue(queue_dir, clock) as queue:
        queue_id = await put(queue, MESSAGE, hostile_envelope())
        entry = await queue.load(queue_id)
        assert entry.envelope == hostile_envelope()
        assert entry.size == len(MESSAGE)
        assert entry.arrival == clock.now()
        with await queue.open_data(queue_id) as stream:
            assert read_all(stream) == MESSAGE
    assert spool_files(queue_dir) == {
        "mqueue": [f"df{queue_id}", f"qf{queue_id}"],
        "tmp": [],
        "quarantine": [],
    }
    assert f'{queue_id}: from=<"john \\"q\\" doe"@example.net>, size={len(MESSAGE)}, nrcpt=4' in (
        caplog.text
    )
    assert oct(os.stat(queue_dir).st_mode & 0o777) == "0o700"
    assert oct(os.stat(queue_dir / f"qf{queue_id}").st_mode & 0o777) == "0o600"


async def test_queue_id_is_known_before_commit(queue_dir: Path, clock: FixedClock) -> None:
    async with await open_queue(queue_dir, clock) as queue:
        incoming = queue.begin(envelope())
        await incoming.write(b"x")
        assert await incoming.commit() == incoming.queue_id


async def test_large_message_is_streamed_to_disk_not_held(
    queue_dir: Path, clock: FixedClock
) -> None:
    chunk = bytes(range(256)) * 40  # 10 KiB
    async with await open_queue(queue_dir, clock) as queue:
        incoming = queue.begin(envelope())
        for _ in range(100):
            await incoming.write(chunk)
            # What is not yet on disk stays below the flush threshold.
            on_disk = (
                (queue_dir / "tmp" / f"df{incoming.queue_id}").stat().st_size
                if (queue_dir / "tmp" / f"df{incoming.queue_id}").exists()
                else 0
            )
            assert incoming.size - on_disk < FLUSH_OCTETS
        queue_id = await incoming.commit()
        with await queue.open_data(queue_id) as stream:
            assert read_all(stream) == chunk * 100


async def test_empty_message(queue_dir: Path, clock: FixedClock) -> None:
    async with await open_queue(queue_dir, clock) as queue:
        queue_id = await queue.begin(envelope()).commit()
        with await queue.open_data(queue_id) as stream:
            assert stream.read() == b""
        assert (await queue.load(queue_id)).size == 0


async def test_abort_leaves_nothing(queue_dir: Path, clock: FixedClock) -> None:
    async with await open_queue(queue_dir, clock) as queue:
        incoming = queue.begin(envelope())
        await incoming.write(b"x" * (FLUSH_OCTETS + 1))
        assert spool_files(queue_dir)["tmp"]
        await incoming.abort()
        await incoming.abort()  # idempotent
        with pytest.raises(QueueStateError):
            await incoming.write(b"more")
        async with queue.begin(envelope()) as other:
            await other.write(b"x" * (FLUSH_OCTETS + 1))
            # leaving the block without commit aborts
        assert await queue.list() == []
    assert spool_files(queue_dir) == {"mqueue": [], "tmp": [], "quarantine": []}


async def test_misuse_is_refused(queue_dir: Path, clock: FixedClock) -> None:
    async with await open_queue(queue_dir, clock) as queue:
        with pytest.raises(QueueError):
            queue.begin(Envelope(sender=None))
        incoming = queue.begin(envelope())
        await incoming.commit()
        with pytest.raises(QueueStateError):
            await incoming.commit()
        with pytest.raises(QueueStateError):
            await incoming.write(b"x")
        with pytest.raises(QueueStateError):
            await incoming.abort()


class Recorder:
    """Hooks that log every fsync, directory fsync and step, in order."""

    def __init__(self, queue_dir: Path, dir_delay: float = 0.0):
        self.queue_dir = queue_dir
        self.dir_delay = dir_delay
        self.events: list[tuple[str, str]] = []
        self.completed_dir_syncs: list[set[str]] = []  # qf names present when each one STARTED
        self.lock = threading.Lock()

    def fsync(self, fd: int) -> None:
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        with self.lock:
            self.events.append(("fsync", name))

    def fsync_directory(self, fd: int) -> None:
        present = {n for n in os.listdir(self.queue_dir) if n.startswith("qf")}
        time.sleep(self.dir_delay)
        with self.lock:
            self.events.append(("dirsync", ""))
            self.completed_dir_syncs.append(present)

    def step(self, name: str) -> None:
        with self.lock:
            self.events.append(("step", name))

    def hooks(self) -> FsHooks:
        return FsHooks(fsync=self.fsync, fsync_directory=self.fsync_directory, step=self.step)

    def synced(self, queue_id: QueueId) -> bool:
        with self.lock:
            return any(f"qf{queue_id}" in present for present in self.completed_dir_syncs)


async def test_commit_order_df_then_qf_then_directory(queue_dir: Path, clock: FixedClock) -> None:
    recorder = Recorder(queue_dir)
    async with await Queue.open(queue_dir, clock, hooks=recorder.hooks()) as queue:
        recorder.events.clear()
        queue_id = await put(queue, MESSAGE)
        recorder.events.append(("returned", ""))
    names = [e[1] if e[0] == "step" else f"{e[0]}:{e[1][:2]}" for e in recorder.events]
    assert names == [
        "df-written",
        "fsync:df",
        "df-fsynced",
        "df-renamed",
        "qf-written",
        "fsync:qf",
        "qf-fsynced",
        "qf-renamed",
        "dirsync:",
        "dir-fsynced",
        "returned:",
    ]
    assert recorder.synced(queue_id)


@pytest.mark.parametrize("in_flight", [1, 2, 4])
async def test_group_commit_shares_directory_fsyncs_and_never_returns_early(
    queue_dir: Path, clock: FixedClock, in_flight: int
) -> None:
    # Each directory fsync takes 0.2 s: all 40 commits (their file work runs on
    # the loop) reach sync() long before the first fsync ends.
    recorder = Recorder(queue_dir, dir_delay=0.2)
    async with await Queue.open(
        queue_dir, clock, hooks=recorder.hooks(), workers=32, fsyncs_in_flight=in_flight
    ) as queue:
        before = queue.stats.directory_fsyncs

        async def one(n: int) -> QueueId:
            queue_id = await put(queue, MESSAGE + str(n).encode())
            # The invariant: a directory fsync that started after our qf was
            # renamed into place has completed before commit() returned.
            assert recorder.synced(queue_id), f"{queue_id} returned before its directory fsync"
            return queue_id

        ids = await asyncio.gather(*(one(n) for n in range(40)))
        dir_syncs = queue.stats.directory_fsyncs - before
        assert len(set(ids)) == 40
        # Shared: at most ``in_flight`` batches run at once, and every commit
        # that finds them all running joins the one batch waiting behind them.
        # 40 would mean no grouping; more than in_flight + 1, a batch opened
        # beside a waiting one or more fsyncs at once than allowed.
        assert 1 <= dir_syncs <= in_flight + 1
        assert queue.stats.commits == 40


async def test_by_default_each_commit_fsyncs_the_directory_itself_on_the_loop(
    queue_dir: Path, clock: FixedClock
) -> None:
    recorder = Recorder(queue_dir)
    threads: list[int] = []
    record = recorder.fsync_directory

    def on_which_thread(fd: int) -> None:
        threads.append(threading.get_ident())
        record(fd)

    hooks = FsHooks(fsync=recorder.fsync, fsync_directory=on_which_thread, step=recorder.step)
    async with await Queue.open(queue_dir, clock, hooks=hooks) as queue:
        before = queue.stats.directory_fsyncs
        threads.clear()
        ids = await asyncio.gather(*(put(queue, MESSAGE + str(n).encode()) for n in range(10)))
        for queue_id in ids:
            assert recorder.synced(queue_id)
        # One each, none shared, and none handed to a thread.
        assert queue.stats.directory_fsyncs - before == 10
        assert threads == [threading.get_ident()] * 10


async def test_a_commit_arriving_during_an_fsync_waits_for_the_next_one(
    queue_dir: Path, clock: FixedClock
) -> None:
    recorder = Recorder(queue_dir, dir_delay=0.1)
    grouped = {"fsyncs_in_flight": 2}  # directory fsyncs in threads, grouped
    async with await Queue.open(queue_dir, clock, hooks=recorder.hooks(), **grouped) as queue:
        recorder.completed_dir_syncs.clear()  # those of open(), creating the folders
        first = asyncio.create_task(put(queue, b"first"))
        while not recorder.events or recorder.events[-1] != ("step", "qf-renamed"):
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.02)  # the first directory fsync is now in flight
        second_id = await put(queue, b"second")
        assert recorder.synced(second_id)
        await first
        assert len(recorder.completed_dir_syncs) == 2


async def test_two_hundred_concurrent_commits_survive_reopen(
    queue_dir: Path, clock: FixedClock
) -> None:
    # Real fsyncs, grouped in threads.
    async with await Queue.open(queue_dir, clock, fsyncs_in_flight=2) as queue:
        ids = await asyncio.gather(
            *(put(queue, b"message %d\r\n" % n, chunk=4096) for n in range(200))
        )
        assert queue.stats.directory_fsyncs < 200
    async with await Queue.open(queue_dir, clock) as reopened:
        assert reopened.recovery is not None and reopened.recovery.messages == 200
        entries = await reopened.list()
        assert sorted(ids) == [entry.id for entry in entries]
        for n, queue_id in enumerate(ids):
            with await reopened.open_data(queue_id) as stream:
                assert stream.read() == b"message %d\r\n" % n


@pytest.mark.parametrize(
    "step",
    [
        "df-written",
        "df-fsynced",
        "df-renamed",
        "qf-written",
        "qf-fsynced",
        "qf-renamed",
        "dir-fsynced",
    ],
)
async def test_a_failing_step_is_undone(queue_dir: Path, clock: FixedClock, step: str) -> None:
    def fail_at(name: str) -> None:
        if name == step:
            raise OSError(28, "No space left on device")

    hooks = FsHooks(fsync=lambda fd: None, fsync_directory=lambda fd: None, step=fail_at)
    async with await Queue.open(queue_dir, clock, hooks=hooks) as queue:
        with pytest.raises(QueueError, match="commit failed"):
            await put(queue, MESSAGE * 10_000)
        assert await queue.list() == []
    assert spool_files(queue_dir) == {"mqueue": [], "tmp": [], "quarantine": []}


async def test_failing_fsyncs_are_reported_to_every_waiter(
    queue_dir: Path, clock: FixedClock
) -> None:
    def bad_dir_fsync(fd: int) -> None:
        time.sleep(0.01)
        raise OSError(5, "Input/output error")

    await (await open_queue(queue_dir, clock)).close()  # the folders exist
    hooks = FsHooks(fsync=lambda fd: None, fsync_directory=bad_dir_fsync)
    async with await Queue.open(queue_dir, clock, hooks=hooks, recover=False) as queue:
        results = await asyncio.gather(
            *(put(queue, MESSAGE) for _ in range(10)), return_exceptions=True
        )
        assert all(isinstance(r, QueueError) for r in results)
        assert await queue.list() == []

    def bad_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    hooks = FsHooks(fsync=bad_fsync, fsync_directory=lambda fd: None)
    async with await Queue.open(queue_dir, clock, hooks=hooks) as queue:
        with pytest.raises(QueueError):
            await put(queue, MESSAGE)
    assert spool_files(queue_dir) == {"mqueue": [], "tmp": [], "quarantine": []}


async def test_a_cancelled_session_does_not_cut_a_commit_short(
    queue_dir: Path, clock: FixedClock
) -> None:
    recorder = Recorder(queue_dir, dir_delay=0.05)
    # Directory fsyncs in threads: the commit awaits one, where a cancel can land.
    grouped = {"fsyncs_in_flight": 2}
    async with await Queue.open(queue_dir, clock, hooks=recorder.hooks(), **grouped) as queue:
        incoming = queue.begin(envelope())
        await incoming.write(MESSAGE)

        async def session() -> None:
            async with incoming:
                await incoming.commit()

        task = asyncio.create_task(session())
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The commit ran to its end: the message is whole and durable.
        assert recorder.synced(incoming.queue_id)
        assert [e.id for e in await queue.list()] == [incoming.queue_id]


async def test_listeners_hear_of_each_commit(queue_dir: Path, clock: FixedClock) -> None:
    heard: list[QueueId] = []
    async with await open_queue(queue_dir, clock) as queue:
        queue.add_listener(lambda entry: heard.append(entry.id))
        queue.add_listener(lambda entry: 1 / 0)  # a failing listener does not undo a commit
        queue_id = await put(queue, MESSAGE)
        assert heard == [queue_id]
        assert (await queue.load(queue_id)).id == queue_id
