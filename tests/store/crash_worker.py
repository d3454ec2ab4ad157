"""A separate OS process that dies (SIGKILL) in the middle of an append, for the crash tests.

Usage: python -m tests.store.crash_worker DATA_DIR FORMAT STEP SIZE
Opens alice's store and delivers ``message(99, SIZE)`` to INBOX; prints
``ready`` first. STEP says where the process kills itself:

- ``pipe``: nowhere; the message is read from stdin, and the parent kills
  the process while it waits for the rest of it.
- ``after-intent``: the append intent is committed, nothing written yet.
- ``mid-write``: two chunks of the message are written.
- ``after-fsync``: the whole message is written and fsync'd.
- ``before-index-commit``: inside the transaction that adds the index row.
- ``after-index-commit``: the append has completed (the index row committed).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

from postoffice.store import StoreFactory, StoreLayout
from postoffice.store.fileio import CHUNK
from postoffice.store.index import MailIndex
from postoffice.store.maildir import MaildirFormat
from postoffice.store.mbox import MboxFormat
from tests.store.conftest import ALICE, DOMAIN, message


def die(*args: object, **kwargs: object) -> Any:
    os.kill(os.getpid(), signal.SIGKILL)


def after(original: Any) -> Any:
    def wrapper(*args: object, **kwargs: object) -> Any:
        result = original(*args, **kwargs)
        die()
        return result

    return wrapper


class DyingSource:
    """Hands out ``data`` in chunks; dies when asked for the third one."""

    def __init__(self, data: bytes):
        self._data = data
        self._calls = 0

    def read(self, size: int = -1, /) -> bytes:
        self._calls += 1
        if self._calls == 3:
            die()
        start = (self._calls - 1) * CHUNK
        return self._data[start : start + CHUNK]


def install(step: str) -> None:
    fmt: Any = MboxFormat
    if step == "after-intent":
        fmt.commit = die
    elif step == "after-fsync":
        fmt._append = after(fmt._append)
    elif step == "before-index-commit":
        MailIndex.add_message = die  # type: ignore[method-assign]
    elif step == "after-index-commit":
        fmt.durable = die
        MaildirFormat.durable = die  # type: ignore[method-assign]


async def run(data_dir: Path, fmt: str, step: str, size: int) -> None:
    layout = StoreLayout(data_dir, "mbox" if fmt == "mbox" else "maildir", DOMAIN)
    store = await StoreFactory(layout, lock_timeout=10.0).open(ALICE)
    install(step)
    source: Any = message(99, size)
    if step == "pipe":
        source = os.fdopen(0, "rb", buffering=0)
    elif step == "mid-write":
        source = DyingSource(source)
    print("ready", flush=True)
    await store.deliver(source)
    print("survived", flush=True)


def main() -> None:
    data_dir, fmt, step, size = sys.argv[1:5]
    asyncio.run(run(Path(data_dir), fmt, step, int(size)))


if __name__ == "__main__":
    main()
