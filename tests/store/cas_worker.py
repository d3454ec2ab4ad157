"""A separate OS process making conditional flag changes, for the cross-process test of
``store_flags_if_unchanged`` (RFC 7162 §3.1.3 UNCHANGEDSINCE).

Usage: python -m tests.store.cas_worker DATA_DIR FORMAT NAME ROUNDS GO_FILE
Waits until GO_FILE exists (so that all workers start together), then ROUNDS
times: reads alice's INBOX message 1 (keywords and MODSEQ) and replaces its
keywords with those plus ``$NAME-<round>``, on condition that its MODSEQ is
still the one read. Prints a JSON list of the keywords whose change was made.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from postoffice.store import FlagMode, StoreFactory, StoreLayout
from tests.store.conftest import ALICE, DOMAIN


async def compare_and_set(data_dir: Path, fmt: str, name: str, rounds: int, go: Path) -> list[str]:
    layout = StoreLayout(data_dir, "mbox" if fmt == "mbox" else "maildir", DOMAIN)
    store = await StoreFactory(layout, lock_timeout=30.0).open(ALICE)
    deadline = time.monotonic() + 30
    while not go.exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    made: list[str] = []
    for n in range(rounds):
        (info,) = [m for m in await store.messages("INBOX", sync=False) if m.uid == 1]
        mine = f"${name}-{n}"
        result = await store.store_flags_if_unchanged(
            "INBOX", [1], info.modseq, (), [*info.keywords, mine], FlagMode.REPLACE
        )
        if result.stored:
            made.append(mine)
    await store.close()
    return made


def main() -> None:
    data_dir, fmt, name, rounds, go = sys.argv[1:6]
    made = asyncio.run(compare_and_set(Path(data_dir), fmt, name, int(rounds), Path(go)))
    print(json.dumps(made))


if __name__ == "__main__":
    main()
