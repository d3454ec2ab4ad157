"""FileMailStore.measure and message_files: reads of many messages of one mailbox."""

from __future__ import annotations

from postoffice.store import StoreFactory

from .conftest import ALICE


async def test_measure_reads_each_message_once_and_skips_the_missing(
    factory: StoreFactory,
) -> None:
    async with await factory.open(ALICE) as store:
        bodies = [b"Subject: a\r\n\r\none\r\n", b"Subject: b\n\ntwo\n", b"x" * 70_000]
        uids = [await store.append("INBOX", body) for body in bodies]
        seen: list[bytes] = []

        def measure(octets: bytes) -> int:
            seen.append(octets)
            return len(octets) * 2

        found = await store.measure("INBOX", [*uids, 999], measure)
    assert found == {uid: 2 * len(body) for uid, body in zip(uids, bodies, strict=True)}
    assert [s.rstrip(b"\n") for s in seen] == [b.rstrip(b"\n") for b in bodies]


async def test_message_files_name_whole_files_that_a_flag_change_moves(
    factory: StoreFactory,
) -> None:
    async with await factory.open(ALICE) as store:
        bodies = [b"Subject: a\r\n\r\none\r\n", b"Subject: b\r\n\r\n" + b"y" * 5000 + b"\r\n"]
        uids = [await store.append("INBOX", body) for body in bodies]
        files = await store.message_files("INBOX", [*uids, 999])
        if factory.layout.format == "mbox":
            assert files == {}  # one file for all: a reader asks the index each time
            return
        assert sorted(files) == uids
        assert [store.read_file(files[uid]) for uid in uids] == bodies
        await store.store_flags("INBOX", [uids[0]], ["\\Flagged"])
        assert store.read_file(files[uids[0]]) is None  # renamed: the index knows where
        assert await store.read("INBOX", uids[0]) == bodies[0]
        assert store.read_file(files[uids[1]]) == bodies[1]
