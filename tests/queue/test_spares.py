"""Spare queue files: a removed message's inodes serve the next message's files."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from postoffice.core.clock import FixedClock
from postoffice.queue import RecipientStatus
from postoffice.queue.durable import close_quietly, write_whole
from postoffice.queue.spares import SparePool, is_spare

from .conftest import envelope, open_queue, put, read_all, spool_files


def spares_in(queue_dir: Path) -> list[str]:
    return sorted(name for name in os.listdir(queue_dir / "tmp") if is_spare(name))


async def test_a_removed_message_leaves_spares_that_the_next_commit_reuses(
    queue_dir: Path, clock: FixedClock
) -> None:
    async with await open_queue(queue_dir, clock) as queue:
        first = await put(queue, b"first message\r\n", envelope("bob@example.test"))
        inodes = {os.stat(queue_dir / f"{p}{first}").st_ino for p in ("df", "qf")}
        delivered = RecipientStatus.delivered("250 2.0.0 ok", at=clock.now())
        assert await queue.finish(first, {0: delivered}) is None
        assert len(spares_in(queue_dir)) == 2
        assert {os.stat(queue_dir / "tmp" / n).st_ino for n in spares_in(queue_dir)} == inodes
        second = await put(queue, b"second\r\n", envelope("carol@example.test"))
        reused = {os.stat(queue_dir / f"{p}{second}").st_ino for p in ("df", "qf")}
        assert reused == inodes  # no new inode for the second message
        assert queue.spares.reused == 2
        assert spares_in(queue_dir) == []
        # The reused files hold the new message only: written over the longer
        # first one, then cut to the new length.
        reader = await queue.open_data(second)
        try:
            assert read_all(reader) == b"second\r\n"
        finally:
            reader.close()
        assert os.stat(queue_dir / f"df{second}").st_size == len(b"second\r\n")
        assert os.stat(queue_dir / f"df{second}").st_mode & 0o777 == 0o600
        assert (await queue.load(second)).envelope.recipients[0].address.key == (
            "carol@example.test"
        )
        await queue.delete(second)
        assert len(spares_in(queue_dir)) == 2
    # Closing drops this process's spares: nothing is left in tmp/.
    assert spool_files(queue_dir) == {"mqueue": [], "tmp": [], "quarantine": []}


async def test_recovery_removes_spares_without_a_word(
    queue_dir: Path, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with await open_queue(queue_dir, clock):
        pass
    (queue_dir / "tmp" / "spare.4242.7").write_bytes(b"an old message")
    (queue_dir / "tmp" / "dfUNFINISHED").write_bytes(b"half")
    with caplog.at_level("INFO"):
        async with await open_queue(queue_dir, clock) as queue:
            assert queue.recovery is not None
            assert queue.recovery.removed == ["dfUNFINISHED"]
    assert "spare" not in caplog.text
    assert spool_files(queue_dir)["tmp"] == []


def test_a_spare_still_locked_is_not_reused_and_the_pool_is_bounded(tmp_path: Path) -> None:
    pool = SparePool(tmp_path, capacity=2)
    files = []
    for name in ("a", "b", "c"):
        path = tmp_path / name
        path.write_bytes(b"old")
        files.append(path)
    holder = os.open(files[0], os.O_RDONLY)  # a claim still open on the first file
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        assert pool.keep(files[0]) and pool.keep(files[1])
        assert not pool.keep(files[2])  # full: the caller unlinks it
        fd = pool.take(tmp_path / "new1")  # the last kept (b) comes out first
        assert fd is not None
        try:
            # Not emptied at take: the writer writes over the old octets, then trims.
            assert (tmp_path / "new1").read_bytes() == b"old"
            write_whole(fd, b"x")
        finally:
            close_quietly(fd)
        assert (tmp_path / "new1").read_bytes() == b"x"
        assert pool.take(tmp_path / "new2") is None  # a: locked elsewhere, dropped
        assert not (tmp_path / "new2").exists()
        assert pool.reused == 1
    finally:
        os.close(holder)
    pool.retire(tmp_path / "new1")
    pool.retire(tmp_path / "gone")  # a file already gone is no error
    pool.close()
    assert sorted(os.listdir(tmp_path)) == ["c"]
