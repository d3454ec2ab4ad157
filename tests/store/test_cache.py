"""StoreCache: user stores kept open across deliveries, bounded, closed when idle."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from postoffice.core.address import parse_address
from postoffice.core.errors import StoreError
from postoffice.store import StoreFactory, StoreLayout
from postoffice.store.cache import Mailbox, StoreCache
from postoffice.store.engine import UserEngine

from .conftest import ALICE, DOMAIN

BOB = f"bob@{DOMAIN}"


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def deliver(data: bytes) -> Callable[[Mailbox], int]:
    def job(mailbox: Mailbox) -> int:
        return mailbox.deliver(data, sender="sender@example.test")

    return job


async def inbox(factory: StoreFactory, user: str) -> list[bytes]:
    async with await factory.open(user) as store:
        return [await store.read("INBOX", info.uid) for info in await store.messages("INBOX")]


async def test_one_engine_serves_many_deliveries(
    factory: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = []
    real_open = UserEngine.open

    def counting_open(self: UserEngine, *, create: bool, clean_tmp: bool = True) -> None:
        opened.append(clean_tmp)
        real_open(self, create=create, clean_tmp=clean_tmp)

    monkeypatch.setattr(UserEngine, "open", counting_open)
    cache = StoreCache(factory)
    alice = parse_address(ALICE)
    uids = [await cache.run(alice, deliver(b"Subject: %d\r\n\r\nx\r\n" % n)) for n in range(5)]
    assert uids == [1, 2, 3, 4, 5]
    assert opened == [False]  # once, and without the tmp/ clean-up on the delivery path
    assert len(cache) == 1
    await cache.close()
    assert len(cache) == 0
    monkeypatch.undo()
    assert len(await inbox(factory, ALICE)) == 5


async def test_concurrent_deliveries_to_one_user_all_land(factory: StoreFactory) -> None:
    cache = StoreCache(factory)
    alice = parse_address(ALICE)
    messages = [b"Subject: %d\r\n\r\nbody\r\n" % n for n in range(20)]
    uids = await asyncio.gather(*(cache.run(alice, deliver(m)) for m in messages))
    assert sorted(uids) == list(range(1, 21))
    await cache.close()
    assert sorted(await inbox(factory, ALICE)) == sorted(messages)


async def test_a_job_that_does_not_deliver_opens_nothing(factory: StoreFactory) -> None:
    cache = StoreCache(factory)
    assert await cache.run(parse_address(ALICE), lambda mailbox: "refused") == "refused"
    await cache.close()
    assert not factory.paths(ALICE).mail_dir.exists()


async def test_least_recently_used_engine_goes_over_capacity(factory: StoreFactory) -> None:
    cache = StoreCache(factory, capacity=1)
    await cache.run(parse_address(ALICE), deliver(b"a"))
    await cache.run(parse_address(BOB), deliver(b"b"))
    assert len(cache) == 1
    await cache.close()
    assert await inbox(factory, ALICE) == [b"a"]
    assert await inbox(factory, BOB) == [b"b"]


async def test_idle_engines_are_closed(factory: StoreFactory) -> None:
    ticks = Ticks()
    cache = StoreCache(factory, idle_seconds=0.05, clock=ticks)
    await cache.run(parse_address(ALICE), deliver(b"a"))
    assert len(cache) == 1
    ticks.now += 1.0
    for _ in range(100):
        await asyncio.sleep(0.01)
        if not len(cache):
            break
    assert len(cache) == 0
    await cache.close()


async def test_tmp_is_cleaned_in_the_background_not_in_delivery(tmp_path: Path) -> None:
    # tmp/ is Maildir's own: this test runs on a Maildir store only.
    factory = StoreFactory(StoreLayout(tmp_path / "data", "maildir", DOMAIN, fsync=True))
    cache = StoreCache(factory, idle_seconds=0.05)
    alice = parse_address(ALICE)
    await cache.run(alice, deliver(b"first"))
    old = factory.paths(ALICE).mail_dir / "tmp" / "old.M1P1.host"
    old.write_bytes(b"x")
    past = time.time() - 37 * 3600
    os.utime(old, (past, past))
    await cache.run(alice, deliver(b"second"))
    assert old.exists()  # not by a delivery
    for _ in range(100):
        await asyncio.sleep(0.01)
        if not old.exists():
            break
    assert not old.exists()
    await cache.close()


async def test_a_rebuilt_index_is_opened_again(factory: StoreFactory) -> None:
    cache = StoreCache(factory)
    alice = parse_address(ALICE)
    await cache.run(alice, deliver(b"one"))
    index: Path = factory.paths(ALICE).index_path
    # Another process set the index aside (as a rebuild does): the cached
    # engine must not keep writing to the old file.
    os.replace(index, index.with_name(index.name + ".old"))
    for suffix in ("-wal", "-shm"):
        src = index.with_name(index.name + suffix)
        if src.exists():
            os.replace(src, index.with_name(index.name + ".old" + suffix))
    await cache.run(alice, deliver(b"two"))
    await cache.close()
    old = sqlite3.connect(index.with_name(index.name + ".old"))
    try:
        assert old.execute("SELECT count(*) FROM messages").fetchone() == (1,)
    finally:
        old.close()
    # (an index rebuilt from an mbox file cannot tell a message's last line break
    # from the separator before the next ``From`` line)
    assert sorted(m.rstrip(b"\n") for m in await inbox(factory, ALICE)) == [b"one", b"two"]


async def test_engine_errors_leave_as_store_errors(
    factory: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(self: UserEngine, *args: object) -> int:
        raise OSError("disk on fire")

    monkeypatch.setattr(UserEngine, "append", failing)
    cache = StoreCache(factory)
    with pytest.raises(StoreError, match="disk on fire"):
        await cache.run(parse_address(ALICE), deliver(b"x"))
    await cache.close()


async def test_changes_are_published(factory: StoreFactory) -> None:
    cache = StoreCache(factory)
    alice = parse_address(ALICE)
    await cache.run(alice, deliver(b"first"))
    async with await factory.open(ALICE) as store:
        async with store.changes("INBOX") as feed:
            await cache.run(alice, deliver(b"second"))
            change = await asyncio.wait_for(anext(feed), 5)
        assert change.uid == 2
    await cache.close()


async def test_maildir_jobs_run_on_the_loop_mbox_jobs_in_a_thread(factory: StoreFactory) -> None:
    """A Maildir delivery runs on the event loop; an mbox one (lock waits) never does."""
    cache = StoreCache(factory)
    alice = parse_address(ALICE)
    loop_thread = threading.get_ident()
    seen: list[int] = []

    def job(mailbox: Mailbox) -> int:
        seen.append(threading.get_ident())
        return mailbox.deliver(b"Subject: where\r\n\r\nx\r\n")

    assert await cache.run(alice, job) == 1
    on_loop = seen[0] == loop_thread
    assert on_loop is (factory.layout.format == "maildir")
    await cache.close()
    assert len(await inbox(factory, ALICE)) == 1
