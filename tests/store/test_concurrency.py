"""Concurrent deliveries to one mailbox: none lost, none torn, UIDs 1..N exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from postoffice.store import StoreFactory, StoreLayout
from tests.store.conftest import ALICE, message

REPO = Path(__file__).resolve().parents[2]


async def _check_inbox(factory: StoreFactory, expected: dict[int, int], total: int) -> None:
    async with await factory.open(ALICE) as store:
        infos = await store.messages("INBOX")
        assert [info.uid for info in infos] == list(range(1, total + 1))
        assert sorted(expected.values()) == list(range(1, total + 1))
        for number, uid in expected.items():
            assert await store.read("INBOX", uid) == message(number, 4000)
        status = await store.status("INBOX")
        assert status.messages == total
        assert status.uidnext == total + 1
        assert status.highestmodseq == total


async def test_fifty_concurrent_tasks_on_one_store(factory: StoreFactory) -> None:
    store = await factory.open(ALICE)
    uids = await asyncio.gather(*(store.deliver(message(n, 4000)) for n in range(50)))
    await store.close()
    await _check_inbox(factory, dict(enumerate(uids)), 50)


async def test_fifty_concurrent_tasks_on_separate_stores(factory: StoreFactory) -> None:
    stores = [await factory.open(ALICE) for _ in range(5)]
    uids = await asyncio.gather(*(stores[n % 5].deliver(message(n, 4000)) for n in range(50)))
    for store in stores:
        await store.close()
    await _check_inbox(factory, dict(enumerate(uids)), 50)


def test_fifty_deliveries_from_five_processes(layout: StoreLayout, tmp_path: Path) -> None:
    asyncio.run(_provision(layout))
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.store.deliver_worker",
                str(layout.data_dir),
                layout.format,
                str(first),
                "10",
                str(go),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=REPO,
            env=env,
        )
        for first in range(0, 50, 10)
    ]
    go.touch()
    expected: dict[int, int] = {}
    for worker in workers:
        out, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err.decode()
        expected.update({int(k): v for k, v in json.loads(out).items()})
    assert len(expected) == 50
    asyncio.run(_check_inbox(StoreFactory(layout), expected, 50))


async def _provision(layout: StoreLayout) -> None:
    await StoreFactory(layout).provision(ALICE)
