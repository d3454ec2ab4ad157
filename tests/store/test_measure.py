"""FileMailStore.measure: a figure from the octets of many messages, in one pass."""

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
