"""The kept mailbox listings (``store/listing_cache.py``): always what the index says.

Every check compares the listing of a long-lived store (whose kept listing is
reused or merged) with the listing of a store opened fresh on the same user
(another engine, as another serving process would be), after changes made
by the store itself and by that other engine.
"""

from __future__ import annotations

import random

import pytest

from postoffice.store import FlagMode, StoreFactory, listing_cache
from postoffice.store.api import MessageInfo
from postoffice.store.listing_cache import ListingCache
from postoffice.store.service import FileMailStore

from .conftest import ALICE


def message(number: int) -> bytes:
    return b"Subject: message %d\r\nMessage-ID: <%d@example.test>\r\n\r\nbody %d\r\n" % (
        number,
        number,
        number,
    )


def cache_of(store: FileMailStore) -> ListingCache:
    cache: ListingCache = store._engine._listings
    return cache


async def fresh_listing(factory: StoreFactory, name: str = "INBOX") -> list[MessageInfo]:
    store = await factory.open(ALICE)
    try:
        return await store.messages(name)
    finally:
        await store.close()


async def test_a_second_listing_without_changes_is_the_kept_one(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        for number in range(1, 6):
            await store.append("INBOX", message(number))
        first = await store.messages("INBOX")
        reads = cache_of(store).reads
        second = await store.messages("INBOX")
        assert second == first
        assert cache_of(store).reads == reads  # not read again from the index
        second.clear()  # a caller's list is its own
        assert await store.messages("INBOX") == first


async def test_own_changes_are_merged_into_the_kept_listing(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        for number in range(1, 8):
            await store.append("INBOX", message(number))
        await store.messages("INBOX")
        reads, merges = cache_of(store).reads, cache_of(store).merges
        await store.store_flags("INBOX", [2, 5], flags=["\\Seen"], mode=FlagMode.ADD)
        await store.store_flags("INBOX", [3], flags=["\\Deleted"], mode=FlagMode.ADD)
        await store.expunge("INBOX")
        await store.append("INBOX", message(8))
        listing = await store.messages("INBOX")
        assert cache_of(store).reads == reads
        assert cache_of(store).merges == merges + 1
        assert listing == await fresh_listing(factory)
        assert [info.uid for info in listing] == [1, 2, 4, 5, 6, 7, 8]
        assert [info.uid for info in listing if "\\Seen" in info.flags] == [2, 5]


async def test_changes_by_another_engine_are_seen(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        for number in range(1, 5):
            await store.append("INBOX", message(number))
        await store.messages("INBOX")
        other = await factory.open(ALICE)  # another process's engine, in effect
        try:
            await other.store_flags("INBOX", [1], flags=["\\Flagged"], mode=FlagMode.ADD)
            await other.store_flags("INBOX", [4], flags=["\\Deleted"], mode=FlagMode.ADD)
            await other.expunge("INBOX")
            await other.append("INBOX", message(5))
        finally:
            await other.close()
        listing = await store.messages("INBOX", sync=False)
        assert listing == await fresh_listing(factory)
        assert [info.uid for info in listing] == [1, 2, 3, 5]
        assert "\\Flagged" in listing[0].flags


async def test_many_changes_read_the_listing_whole(
    factory: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listing_cache, "MERGE_LIMIT", 5)
    async with await factory.open(ALICE) as store:
        await store.append("INBOX", message(1))
        await store.messages("INBOX")
        reads = cache_of(store).reads
        last = listing_cache.MERGE_LIMIT + 2  # more changed rows than a merge takes
        for number in range(2, last + 1):
            await store.append("INBOX", message(number))
        listing = await store.messages("INBOX")
        assert cache_of(store).reads == reads + 1
        assert [info.uid for info in listing] == list(range(1, last + 1))


async def test_renamed_mailboxes_never_share_a_listing(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        await store.create_mailbox("Work")
        await store.append("Work", message(1))
        assert len(await store.messages("Work")) == 1
        await store.rename_mailbox("Work", "Play")
        await store.create_mailbox("Work")
        assert await store.messages("Work") == []
        assert len(await store.messages("Play")) == 1


async def test_random_changes_keep_the_listing_exact(factory: StoreFactory) -> None:
    rng = random.Random(7)
    async with await factory.open(ALICE) as store:
        other = await factory.open(ALICE)
        try:
            number = 0
            for step in range(60):
                actor = store if rng.random() < 0.6 else other
                uids = [info.uid for info in await actor.messages("INBOX", sync=False)]
                action = rng.choice(("append", "append", "flag", "expunge"))
                if action == "append" or not uids:
                    number += 1
                    await actor.append("INBOX", message(number))
                elif action == "flag":
                    chosen = rng.sample(uids, min(len(uids), rng.randint(1, 3)))
                    mode = rng.choice((FlagMode.ADD, FlagMode.REMOVE))
                    await actor.store_flags("INBOX", chosen, flags=["\\Seen"], mode=mode)
                else:
                    await actor.store_flags(
                        "INBOX", [rng.choice(uids)], flags=["\\Deleted"], mode=FlagMode.ADD
                    )
                    await actor.expunge("INBOX")
                got = await store.messages("INBOX", sync=step % 2 == 0)
                assert got == await fresh_listing(factory), f"step {step}: {action}"
        finally:
            await other.close()
        assert cache_of(store).merges > 10


async def test_merged_listings_stay_within_the_capacity(factory: StoreFactory) -> None:
    """``capacity`` bounds the kept messages also when merges make a listing grow."""
    async with await factory.open(ALICE) as store:
        cache = cache_of(store)
        cache.capacity = 6
        await store.create_mailbox("Work")
        for number in range(1, 3):
            await store.append("Work", message(number))
        await store.messages("Work")
        for number in range(1, 4):
            await store.append("INBOX", message(number))
        await store.messages("INBOX")  # read whole: 2 + 3 kept
        for number in range(4, 12):
            await store.append("INBOX", message(number))
            listing = await store.messages("INBOX")  # merged, one more each time
            kept = sum(len(entry.infos) for entry in cache._kept.values())
            assert kept <= cache.capacity, f"{kept} messages kept after {number}"
            assert cache._size == kept
        assert [info.uid for info in listing] == list(range(1, 12))
        assert listing == await fresh_listing(factory)
