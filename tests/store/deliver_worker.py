"""A separate OS process that delivers messages, for the cross-process lock tests.

Usage: python -m tests.store.deliver_worker DATA_DIR FORMAT FIRST COUNT GO_FILE
Waits until GO_FILE exists (so that all workers start together), delivers
messages FIRST..FIRST+COUNT-1 to alice's INBOX concurrently, and prints a
JSON object {message number: uid}.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from postoffice.store import StoreFactory, StoreLayout
from tests.store.conftest import ALICE, DOMAIN, message


async def deliver(data_dir: Path, fmt: str, first: int, count: int, go: Path) -> dict[int, int]:
    layout = StoreLayout(data_dir, "mbox" if fmt == "mbox" else "maildir", DOMAIN)
    store = await StoreFactory(layout, lock_timeout=30.0).open(ALICE)
    deadline = time.monotonic() + 30
    while not go.exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    numbers = range(first, first + count)
    uids = await asyncio.gather(*(store.deliver(message(n, 4000)) for n in numbers))
    await store.close()
    return dict(zip(numbers, uids, strict=True))


def main() -> None:
    data_dir, fmt, first, count, go = sys.argv[1:6]
    result = asyncio.run(deliver(Path(data_dir), fmt, int(first), int(count), Path(go)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
