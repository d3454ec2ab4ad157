"""``store_flags_if_unchanged``: the store's side of RFC 7162 §3.1.3 UNCHANGEDSINCE, on
Maildir and mbox. The MODSEQ test and the change are one step: a change made
meanwhile through another store, in this process or another one, is never lost."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from postoffice.store import ChangeKind, FlagMode, StoreFactory, StoreLayout
from tests.store.conftest import ALICE, message

REPO = Path(__file__).resolve().parents[2]
SEEN, DELETED, FLAGGED = "\\Seen", "\\Deleted", "\\Flagged"


async def _three(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        for n in range(3):
            await store.append("INBOX", message(n))  # MODSEQs 1, 2, 3


async def test_messages_changed_after_the_limit_are_left_alone(factory: StoreFactory) -> None:
    await _three(factory)
    async with await factory.open(ALICE) as store:
        await store.store_flags("INBOX", [2], [FLAGGED])  # message 2 now has MODSEQ 4
        result = await store.store_flags_if_unchanged("INBOX", [1, 2, 3, 99], 3, [SEEN])
        assert [(m.uid, m.flags, m.modseq) for m in result.stored] == [
            (1, frozenset({SEEN}), 5),
            (3, frozenset({SEEN}), 6),
        ]
        assert [(m.uid, m.flags, m.modseq) for m in result.modified] == [
            (2, frozenset({FLAGGED}), 4)
        ]
        infos = {m.uid: m for m in await store.messages("INBOX")}
        assert infos[2].flags == {FLAGGED} and infos[2].modseq == 4
        assert (await store.status("INBOX")).highestmodseq == 6


async def test_the_limit_is_inclusive_and_a_change_to_nothing_takes_no_modseq(
    factory: StoreFactory,
) -> None:
    await _three(factory)
    async with await factory.open(ALICE) as store:
        result = await store.store_flags_if_unchanged("INBOX", [2], 2, [SEEN])
        assert [(m.uid, m.modseq) for m in result.stored] == [(2, 4)]
        # Passes (MODSEQ 4 <= 4), but \Seen is there already: nothing changes.
        again = await store.store_flags_if_unchanged("INBOX", [2], 4, [SEEN])
        assert [(m.uid, m.modseq) for m in again.stored] == [(2, 4)]
        assert again.modified == []
        assert (await store.status("INBOX")).highestmodseq == 4


async def test_unchangedsince_zero_fails_for_every_message(factory: StoreFactory) -> None:
    """RFC 7162 §3.1.3: UNCHANGEDSINCE 0 always fails (every message has a MODSEQ)."""
    await _three(factory)
    async with await factory.open(ALICE) as store:
        feed = store.changes("INBOX")
        result = await store.store_flags_if_unchanged(
            "INBOX", range(1, 2**32), 0, [DELETED], mode=FlagMode.REPLACE
        )
        assert result.stored == []
        assert [m.uid for m in result.modified] == [1, 2, 3]
        assert all(not m.flags for m in await store.messages("INBOX"))
        assert (await store.status("INBOX")).highestmodseq == 3
        assert feed.pending() == 0  # nothing changed, nothing told
        feed.close()


async def test_applied_changes_reach_the_change_feed(factory: StoreFactory) -> None:
    await _three(factory)
    async with await factory.open(ALICE) as store:
        feed = store.changes("INBOX")
        await store.store_flags_if_unchanged("INBOX", [1, 3], 2, [SEEN])
        change = await anext(feed)
        assert (change.kind, change.uid, change.modseq, change.flags) == (
            ChangeKind.FLAGS,
            1,
            4,
            {SEEN},
        )
        assert feed.pending() == 0  # message 3 (MODSEQ 3 > 2) was not changed
        feed.close()


async def test_a_change_through_another_store_is_seen(
    layout: StoreLayout, factory: StoreFactory
) -> None:
    """The MODSEQ is read from the index in the change's transaction, not from what
    this store object saw before: another engine (another process's, as far as
    the index and the user lock go) changed message 2 in between."""
    await _three(factory)
    mine = await factory.open(ALICE)
    theirs = await StoreFactory(layout, lock_timeout=5.0).open(ALICE)
    try:
        before = {m.uid: m.modseq for m in await mine.messages("INBOX")}
        await theirs.store_flags("INBOX", [2], ["\\Answered"])
        result = await mine.store_flags_if_unchanged("INBOX", [1, 2], max(before.values()), [SEEN])
        assert [m.uid for m in result.stored] == [1]
        assert [(m.uid, m.flags) for m in result.modified] == [(2, {"\\Answered"})]
    finally:
        await mine.close()
        await theirs.close()


async def test_compare_and_set_from_two_stores_loses_no_change(
    layout: StoreLayout, factory: StoreFactory
) -> None:
    """Two engines race to replace message 1's keywords with what they read plus one
    of their own, each on condition that the MODSEQ read is still current: every
    change reported made is in the final state (none overwrote another)."""
    async with await factory.open(ALICE) as store:
        await store.append("INBOX", message(1))
    stores = [await StoreFactory(layout, lock_timeout=5.0).open(ALICE) for _ in range(2)]

    async def worker(n: int) -> list[str]:
        store = stores[n]
        made = []
        for round_ in range(15):
            (info,) = await store.messages("INBOX", sync=False)
            mine = f"$w{n}-{round_}"
            result = await store.store_flags_if_unchanged(
                "INBOX", [1], info.modseq, (), [*info.keywords, mine], FlagMode.REPLACE
            )
            made += [mine] if result.stored else []
        return made

    try:
        made = await asyncio.gather(worker(0), worker(1))
    finally:
        for store in stores:
            await store.close()
    async with await factory.open(ALICE) as store:
        (info,) = await store.messages("INBOX")
    assert info.keywords == set(made[0]) | set(made[1])
    # A round fails only after a change of the other worker made since its read, and
    # each such change fails at most one round: at least half the rounds succeed.
    assert len(made[0]) + len(made[1]) >= 15


def test_compare_and_set_from_three_processes_loses_no_change(
    layout: StoreLayout, tmp_path: Path
) -> None:
    asyncio.run(_one_message(layout))
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.store.cas_worker",
                str(layout.data_dir),
                layout.format,
                f"p{n}",
                "10",
                str(go),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=REPO,
            env=env,
        )
        for n in range(3)
    ]
    go.touch()
    made: set[str] = set()
    for worker in workers:
        out, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err.decode()
        made.update(json.loads(out))
    assert made
    asyncio.run(_check_keywords(layout, made))


async def _one_message(layout: StoreLayout) -> None:
    async with await StoreFactory(layout).open(ALICE) as store:
        await store.append("INBOX", message(1))


async def _check_keywords(layout: StoreLayout, made: set[str]) -> None:
    async with await StoreFactory(layout).open(ALICE) as store:
        (info,) = await store.messages("INBOX")
    assert info.keywords == made
