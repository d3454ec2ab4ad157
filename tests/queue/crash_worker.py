"""A queue writer for the SIGKILL tests, run as a separate process.

    python crash_worker.py QUEUE_DIR mid-write      # prints "writing", then writes forever
    python crash_worker.py QUEUE_DIR commit-loop    # prints "committed ID N" after each commit

Real fsyncs, real files: the parent kills it with SIGKILL at some point.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from postoffice.core.address import parse_address
from postoffice.core.clock import SystemClock
from postoffice.core.envelope import Envelope, EnvelopeRecipient
from postoffice.queue import Queue

ENVELOPE = Envelope(
    sender=parse_address("crash@example.test"),
    recipients=(EnvelopeRecipient(parse_address("bob@example.test")),),
)


def body(n: int) -> bytes:
    return (b"message %d\r\n" % n) * (1000 + n % 50)


async def mid_write(queue: Queue) -> None:
    incoming = queue.begin(ENVELOPE)
    for n in range(1_000_000):
        await incoming.write(b"x" * 65536)
        if n == 4:
            print("writing", flush=True)
        await asyncio.sleep(0.001)


async def commit_loop(queue: Queue) -> None:
    counter = iter(range(1_000_000))

    async def worker() -> None:
        for n in counter:
            incoming = queue.begin(ENVELOPE)
            data = body(n)
            for start in range(0, len(data), 4096):
                await incoming.write(data[start : start + 4096])
            queue_id = await incoming.commit()
            print(f"committed {queue_id} {n}", flush=True)

    await asyncio.gather(*(worker() for _ in range(4)))


async def main() -> None:
    queue = await Queue.open(Path(sys.argv[1]), SystemClock())
    await (mid_write if sys.argv[2] == "mid-write" else commit_loop)(queue)


if __name__ == "__main__":
    asyncio.run(main())
