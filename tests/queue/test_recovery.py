"""Recovery at open: broken messages quarantined (and logged), leftovers removed,
files a live writer holds left alone."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from postoffice.core.clock import FixedClock
from postoffice.queue import CorruptQueueFile, QueueId
from postoffice.queue.durable import close_quietly, create_exclusive

from .conftest import open_queue, put, read_all, spool_files

DATA = b"Subject: x\r\n\r\n" + b"body line\r\n" * 100


async def one_message(queue_dir: Path, clock: FixedClock, count: int = 1) -> list[QueueId]:
    async with await open_queue(queue_dir, clock) as queue:
        return [await put(queue, DATA) for _ in range(count)]


def flip(path: Path, position: int) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= 0x01
    path.write_bytes(bytes(data))


async def reopen_and_expect_quarantine(
    queue_dir: Path,
    clock: FixedClock,
    queue_id: QueueId,
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="postoffice.maillog")
    async with await open_queue(queue_dir, clock) as queue:
        assert queue.recovery is not None
        assert [q for q, _ in queue.recovery.quarantined] == [queue_id]
        assert reason in queue.recovery.quarantined[0][1]
        assert await queue.list() == []
        assert await queue.pending(clock.now()) == []
    files = spool_files(queue_dir)
    assert files["mqueue"] == []
    assert f"qf{queue_id}" in files["quarantine"]
    assert reason in (queue_dir / "quarantine" / f"{queue_id}.reason").read_text()
    assert f"{queue_id}: quarantined: " in caplog.text and reason in caplog.text


async def test_whole_messages_pass(queue_dir: Path, clock: FixedClock) -> None:
    ids = await one_message(queue_dir, clock, 3)
    async with await open_queue(queue_dir, clock) as queue:
        assert queue.recovery is not None
        assert queue.recovery.messages == 3
        assert queue.recovery.quarantined == queue.recovery.removed == []
        assert await queue.pending(clock.now()) == ids


@pytest.mark.parametrize("keep", [0, 1, 20, -60, -1])
async def test_truncated_qf_is_quarantined(
    queue_dir: Path, clock: FixedClock, caplog: pytest.LogCaptureFixture, keep: int
) -> None:
    (queue_id,) = await one_message(queue_dir, clock)
    qf = queue_dir / f"qf{queue_id}"
    qf.write_bytes(qf.read_bytes()[:keep])
    await reopen_and_expect_quarantine(queue_dir, clock, queue_id, "control file", caplog)
    assert f"df{queue_id}" in spool_files(queue_dir)["quarantine"]


async def test_bit_flipped_qf_is_quarantined(
    queue_dir: Path, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    (queue_id,) = await one_message(queue_dir, clock)
    flip(queue_dir / f"qf{queue_id}", 100)
    await reopen_and_expect_quarantine(queue_dir, clock, queue_id, "checksum mismatch", caplog)


async def test_qf_under_another_name_is_quarantined(
    queue_dir: Path, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = await one_message(queue_dir, clock, 2)
    os.replace(queue_dir / f"qf{first}", queue_dir / f"qf{second}")
    os.unlink(queue_dir / f"df{first}")
    await reopen_and_expect_quarantine(queue_dir, clock, second, "names", caplog)


async def test_oversized_qf_is_quarantined(
    queue_dir: Path, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    (queue_id,) = await one_message(queue_dir, clock)
    with (queue_dir / f"qf{queue_id}").open("ab") as stream:
        stream.write(b"x" * (2 << 20))
    await reopen_and_expect_quarantine(queue_dir, clock, queue_id, "larger", caplog)


async def test_qf_without_df_is_quarantined(
    queue_dir: Path, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    (queue_id,) = await one_message(queue_dir, clock)
    os.unlink(queue_dir / f"df{queue_id}")
    await reopen_and_expect_quarantine(queue_dir, clock, queue_id, "data file missing", caplog)


async def test_df_of_wrong_size_is_quarantined(
    queue_dir: Path, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    (queue_id,) = await one_message(queue_dir, clock)
    df = queue_dir / f"df{queue_id}"
    df.write_bytes(df.read_bytes()[:-1])
    await reopen_and_expect_quarantine(queue_dir, clock, queue_id, "octets", caplog)


async def test_bit_flipped_df_is_quarantined_when_verified_at_open(
    queue_dir: Path, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    (queue_id,) = await one_message(queue_dir, clock)
    flip(queue_dir / f"df{queue_id}", 500)
    await reopen_and_expect_quarantine(queue_dir, clock, queue_id, "SHA-256", caplog)


async def test_bit_flipped_df_is_caught_while_reading_when_not_verified_at_open(
    queue_dir: Path, clock: FixedClock
) -> None:
    (queue_id,) = await one_message(queue_dir, clock)
    flip(queue_dir / f"df{queue_id}", 500)
    async with await open_queue(queue_dir, clock, verify_data=False) as queue:
        assert queue.recovery is not None and queue.recovery.quarantined == []
        with await queue.open_data(queue_id) as stream:
            head = stream.read(100)
            assert head == DATA[:100]
            with pytest.raises(CorruptQueueFile, match="SHA-256"):
                read_all(stream)
        await queue.quarantine(queue_id, "data file SHA-256 mismatch at delivery")
        assert await queue.list() == []


async def test_df_longer_than_recorded_is_caught_while_reading(
    queue_dir: Path, clock: FixedClock
) -> None:
    (queue_id,) = await one_message(queue_dir, clock)
    async with await open_queue(queue_dir, clock, recover=False) as queue:
        with (queue_dir / f"df{queue_id}").open("ab") as stream:
            stream.write(b"extra")
        with await queue.open_data(queue_id) as reader, pytest.raises(CorruptQueueFile):
            read_all(reader)
        (queue_dir / f"df{queue_id}").write_bytes(DATA[:10])
        with await queue.open_data(queue_id) as reader, pytest.raises(CorruptQueueFile):
            read_all(reader)


async def test_leftovers_are_removed_and_logged(
    queue_dir: Path, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="postoffice.maillog")
    (queue_id,) = await one_message(queue_dir, clock)
    (queue_dir / "tmp" / "dfXXXXXXXXXXXXXX").write_bytes(b"half a message")
    (queue_dir / "tmp" / "qfXXXXXXXXXXXXXX.1234").write_bytes(b"postoffice-qf 1\n")
    (queue_dir / "tmp" / "junk").write_bytes(b"")
    (queue_dir / "df1234567890ABCD").write_bytes(b"a df whose qf never came")
    (queue_dir / "README").write_text("an admin's note")
    async with await open_queue(queue_dir, clock) as queue:
        assert queue.recovery is not None
        assert sorted(queue.recovery.removed) == [
            "df1234567890ABCD",
            "dfXXXXXXXXXXXXXX",
            "junk",
            "qfXXXXXXXXXXXXXX.1234",
        ]
        assert [e.id for e in await queue.list()] == [queue_id]
    assert spool_files(queue_dir) == {
        "mqueue": ["README", f"df{queue_id}", f"qf{queue_id}"],
        "tmp": [],
        "quarantine": [],
    }
    assert "1234567890ABCD: removed data file without control file" in caplog.text
    assert "removed unfinished file tmp/ dfXXXXXXXXXXXXXX" in caplog.text
    assert "unknown file README left alone" in caplog.text


async def test_files_a_live_writer_holds_are_left_alone(queue_dir: Path, clock: FixedClock) -> None:
    await one_message(queue_dir, clock)
    tmp_fd = create_exclusive(queue_dir / "tmp" / "dfYYYYYYYYYYYYYY")
    df_fd = create_exclusive(queue_dir / "dfZZZZZZZZZZZZZZ")  # between the two renames
    try:
        async with await open_queue(queue_dir, clock) as queue:
            assert queue.recovery is not None
            assert sorted(queue.recovery.in_use) == ["dfYYYYYYYYYYYYYY", "dfZZZZZZZZZZZZZZ"]
            assert queue.recovery.removed == []
        assert (queue_dir / "tmp" / "dfYYYYYYYYYYYYYY").exists()
        assert (queue_dir / "dfZZZZZZZZZZZZZZ").exists()
    finally:
        close_quietly(tmp_fd)
        close_quietly(df_fd)
    async with await open_queue(queue_dir, clock) as queue:
        assert queue.recovery is not None
        assert sorted(queue.recovery.removed) == ["dfYYYYYYYYYYYYYY", "dfZZZZZZZZZZZZZZ"]


async def test_open_creates_private_folders(tmp_path: Path, clock: FixedClock) -> None:
    queue_dir = tmp_path / "var" / "spool" / "mqueue"
    async with await open_queue(queue_dir, clock):
        pass
    for path in (queue_dir, queue_dir / "tmp", queue_dir / "quarantine"):
        assert path.is_dir() and (path.stat().st_mode & 0o777) == 0o700
