"""After acceptance: update, finish, remove, hold/release, delete, list, load, pending,
open_data."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from postoffice.core.clock import FixedClock
from postoffice.queue import (
    Queue,
    QueueError,
    QueueStateError,
    RecipientState,
    RecipientStatus,
    UnknownQueueId,
    next_attempt,
)
from postoffice.queue.durable import close_quietly, lock_file

from .conftest import envelope, open_queue, put, read_all, spool_files

TWO = envelope("bob@example.test", "carol@remote.test")


async def test_update_is_durable_and_survives_reopen(queue_dir: Path, clock: FixedClock) -> None:
    async with await open_queue(queue_dir, clock) as queue:
        queue_id = await put(queue, b"data", TWO)
        now = clock.now()
        deferred = RecipientStatus.deferred(
            "451 4.4.1 connection refused",
            at=now,
            attempts=1,
            next_attempt=next_attempt(1, now, now) or 0.0,
        )
        entry = await queue.update(
            queue_id, {0: RecipientStatus.delivered("250 2.0.0 delivered", at=now), 1: deferred}
        )
        assert entry.statuses[1] == deferred
        assert spool_files(queue_dir)["tmp"] == []
    async with await open_queue(queue_dir, clock) as queue:
        entry = await queue.load(queue_id)
        assert [s.state for s in entry.statuses] == [
            RecipientState.DELIVERED,
            RecipientState.DEFERRED,
        ]
        assert entry.statuses[1] == deferred
        with pytest.raises(QueueStateError):
            await queue.update(queue_id, {2: deferred})
        with pytest.raises(UnknownQueueId):
            await queue.update("0000000000000Z", {0: deferred})
        with pytest.raises(UnknownQueueId):
            await queue.load("../../etc/passwd")


async def test_remove_only_when_every_recipient_is_final(
    queue_dir: Path, clock: FixedClock
) -> None:
    async with await open_queue(queue_dir, clock) as queue:
        queue_id = await put(queue, b"data", TWO)
        with pytest.raises(QueueStateError):
            await queue.remove(queue_id)
        await queue.update(queue_id, {0: RecipientStatus.delivered("250 ok", at=clock.now())})
        with pytest.raises(QueueStateError):
            await queue.remove(queue_id)
        assert not (await queue.load(queue_id)).is_complete
        await queue.update(queue_id, {1: RecipientStatus.failed("550 5.1.1 no", at=clock.now())})
        assert (await queue.load(queue_id)).is_complete
        await queue.remove(queue_id)
        with pytest.raises(UnknownQueueId):
            await queue.load(queue_id)
        with pytest.raises(UnknownQueueId):
            await queue.remove(queue_id)
    assert spool_files(queue_dir) == {"mqueue": [], "tmp": [], "quarantine": []}


async def test_finish_rewrites_while_recipients_remain_and_removes_when_all_are_final(
    queue_dir: Path, clock: FixedClock
) -> None:
    async with await open_queue(queue_dir, clock) as queue:
        queue_id = await put(queue, b"data", TWO)
        delivered = RecipientStatus.delivered("250 2.0.0 delivered", at=clock.now())
        kept = await queue.finish(queue_id, {0: delivered})
        assert kept is not None and not kept.is_complete
        assert (await queue.load(queue_id)).statuses[0] == delivered
        failed = RecipientStatus.failed("550 5.1.1 no such user", at=clock.now())
        assert await queue.finish(queue_id, {1: failed}) is None
        with pytest.raises(UnknownQueueId):
            await queue.load(queue_id)
        with pytest.raises(UnknownQueueId):
            await queue.finish(queue_id, {1: failed})
    assert spool_files(queue_dir) == {"mqueue": [], "tmp": [], "quarantine": []}


async def test_a_claim_excludes_other_claims_and_lockers_until_it_ends(
    queue_dir: Path, clock: FixedClock
) -> None:
    async with await open_queue(queue_dir, clock) as queue:
        queue_id = await put(queue, b"data", TWO)
        entry = await queue.claim(queue_id)
        assert entry is not None and entry.id == queue_id
        assert await queue.claim(queue_id) is None  # one attempt at a time
        # Another process's lock (a new open file description) is refused meanwhile.
        assert lock_file(queue_dir / f"df{queue_id}", wait=False) is None
        delivered = RecipientStatus.delivered("250 2.0.0 delivered", at=clock.now())
        kept = await queue.finish(queue_id, {0: delivered})  # works under the claim
        assert kept is not None
        queue.end_claim(queue_id)
        queue.end_claim(queue_id)  # idempotent
        other = lock_file(queue_dir / f"df{queue_id}", wait=False)
        assert other is not None  # released: another process may lock it now
        try:
            assert await queue.claim(queue_id) is None  # ...and then this one may not
        finally:
            close_quietly(other)
        again = await queue.claim(queue_id)
        assert again is not None and again.statuses[0] == delivered
        failed = RecipientStatus.failed("550 5.1.1 no such user", at=clock.now())
        assert await queue.finish(queue_id, {1: failed}) is None
        queue.end_claim(queue_id)
        assert await queue.claim(queue_id) is None  # gone
        assert await queue.claim("0000000000000Z") is None


async def test_hold_release_and_pending(queue_dir: Path, clock: FixedClock) -> None:
    async with await open_queue(queue_dir, clock) as queue:
        first = await put(queue, b"1")
        clock.advance(1)
        second = await put(queue, b"2")
        assert await queue.pending(clock.now()) == [first, second]
        held = await queue.hold(first)
        assert held.held
        assert await queue.pending(clock.now()) == [second]
        listed = {e.id: e for e in await queue.list()}
        assert listed[first].held and not listed[second].held
        # A deferred recipient is due at its next attempt, not before.
        later = clock.now() + 300
        await queue.update(
            second,
            {
                0: RecipientStatus.deferred(
                    "451 later", at=clock.now(), attempts=1, next_attempt=later
                )
            },
        )
        assert await queue.pending(clock.now()) == []
        assert await queue.pending(later) == [second]
        await queue.release(first)
        assert await queue.pending(later) == [first, second]
        clock.advance(300)
        assert await queue.pending() == [first, second]  # now from the queue's clock
        # Hold survives a reopen (it lives in the qf).
        await queue.hold(second)
    async with await open_queue(queue_dir, clock) as queue:
        assert await queue.pending(later) == [first]


async def test_delete_whatever_the_state(queue_dir: Path, clock: FixedClock) -> None:
    async with await open_queue(queue_dir, clock) as queue:
        queue_id = await put(queue, b"data", TWO)
        await queue.hold(queue_id)
        await queue.delete(queue_id)
        assert await queue.list() == []
        with pytest.raises(UnknownQueueId):
            await queue.delete(queue_id)
        with pytest.raises(UnknownQueueId):
            await queue.hold(queue_id)
        with pytest.raises(UnknownQueueId):
            await queue.open_data(queue_id)


async def test_list_reads_control_files_only(queue_dir: Path, clock: FixedClock) -> None:
    async with await open_queue(queue_dir, clock) as queue:
        ids = [await put(queue, b"x" * n, TWO) for n in (10, 20, 30)]
        (queue_dir / f"df{ids[1]}").unlink()  # list() never looks at data files
        entries = await queue.list()
        assert [e.id for e in entries] == ids
        assert [e.size for e in entries] == [10, 20, 30]
        assert entries[0].sender == "alice@example.test"
        assert [str(r.recipient.address) for r in entries[0].recipients] == [
            "bob@example.test",
            "carol@remote.test",
        ]
        assert all(r.status.state is RecipientState.PENDING for r in entries[0].recipients)
        assert entries[0].arrival == clock.now()


async def test_corrupt_qf_is_skipped_by_list_and_quarantined_by_pending(
    queue_dir: Path, clock: FixedClock
) -> None:
    async with await open_queue(queue_dir, clock) as queue:
        good = await put(queue, b"good")
        bad = await put(queue, b"bad")
        (queue_dir / f"qf{bad}").write_bytes(b"postoffice-qf 1\ngarbage\n")
        assert [e.id for e in await queue.list()] == [good]
        with pytest.raises(QueueError):
            await queue.load(bad)
        assert await queue.pending(clock.now()) == [good]
        assert f"qf{bad}" in spool_files(queue_dir)["quarantine"]


async def test_concurrent_updates_of_one_message_are_not_lost(
    queue_dir: Path, clock: FixedClock
) -> None:
    rcpts = envelope(*(f"user{n}@example.test" for n in range(20)))
    async with await open_queue(queue_dir, clock) as queue:
        queue_id = await put(queue, b"data", rcpts)
        done = RecipientStatus.delivered("250 ok", at=clock.now())
        await asyncio.gather(*(queue.update(queue_id, {n: done}) for n in range(20)))
        assert (await queue.load(queue_id)).is_complete


async def test_another_process_holding_the_lock_is_waited_for(
    queue_dir: Path, clock: FixedClock
) -> None:
    async with await open_queue(queue_dir, clock) as queue:
        queue_id = await put(queue, b"data")
        fd = lock_file(queue_dir / f"df{queue_id}", wait=True)  # as `postoffice queue hold` would
        assert fd is not None
        released = threading.Event()

        def release_later() -> None:
            time.sleep(0.1)
            released.set()
            close_quietly(fd)

        threading.Thread(target=release_later).start()
        await queue.hold(queue_id)
        assert released.is_set()
        assert (await queue.load(queue_id)).held


async def test_two_queue_objects_on_one_spool_see_each_other(
    queue_dir: Path, clock: FixedClock
) -> None:
    async with await open_queue(queue_dir, clock) as server:
        queue_id = await put(server, b"data", TWO)
        # The administrator's command opens the same spool without recovery.
        async with await open_queue(queue_dir, clock, recover=False) as admin:
            await asyncio.gather(
                admin.hold(queue_id),
                server.update(queue_id, {0: RecipientStatus.delivered("250", at=clock.now())}),
            )
        entry = await server.load(queue_id)
        assert entry.held and entry.statuses[0].state is RecipientState.DELIVERED


async def test_open_data_streams_in_chunks(queue_dir: Path, clock: FixedClock) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    async with await open_queue(queue_dir, clock) as queue:
        queue_id = await put(queue, data, chunk=65536)
        stream = await queue.open_data(queue_id)
        assert len(stream.read(1000)) == 1000
        assert stream.read(0) == b""
        rest = read_all(stream)
        assert data == data[:1000] + rest
        assert stream.read() == b""
        stream.close()
        assert stream.closed
        with pytest.raises(ValueError):
            stream.read(1)


async def test_queue_errors_are_postoffice_errors(queue_dir: Path, clock: FixedClock) -> None:
    from postoffice.core.errors import PostofficeError

    (queue_dir.parent).mkdir(parents=True)
    queue_dir.write_text("a file where the queue should be")
    with pytest.raises(QueueError) as info:
        await Queue.open(queue_dir, clock)
    assert isinstance(info.value, PostofficeError)
