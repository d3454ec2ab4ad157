"""Benchmark: durable queue commits (acceptance into spool/mqueue), fsync on.

    .venv/bin/python bench/queue_commit.py [--count 2000] [--size 10240] [--dir DIR]
        [--concurrency 1 10]

For each concurrency N, commits COUNT messages of SIZE octets with N commits
in flight at once (as N SMTP sessions would), each streamed in 4 KiB chunks,
and prints commits per second and directory fsyncs per commit (below 1 when
group commit shares them). Real fsyncs: the figures depend on the disk.

Not a test: CI does not run it.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from pathlib import Path

from postoffice.core.address import parse_address
from postoffice.core.clock import SystemClock
from postoffice.core.envelope import Envelope, EnvelopeRecipient
from postoffice.queue import Queue

ENVELOPE = Envelope(
    sender=parse_address("bench@example.net"),
    recipients=(EnvelopeRecipient(parse_address("alice@example.test")),),
)


def make_message(n: int, size: int) -> bytes:
    head = f"From: bench@example.net\r\nSubject: bench {n}\r\n\r\n".encode()
    line = b"From the benchmark, a body line of ordinary text for the queue.\r\n"
    return head + (line * (size // len(line) + 1))[: max(size - len(head), 0)]


async def run(queue_dir: Path, count: int, size: int, concurrency: int) -> tuple[float, float]:
    queue = await Queue.open(queue_dir, SystemClock())
    numbers = iter(range(count))

    async def session() -> None:
        for n in numbers:
            data = make_message(n, size)
            incoming = queue.begin(ENVELOPE)
            for start in range(0, len(data), 4096):
                await incoming.write(data[start : start + 4096])
            await incoming.commit()

    before = queue.stats.directory_fsyncs
    started = time.perf_counter()
    await asyncio.gather(*(session() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    fsyncs = queue.stats.directory_fsyncs - before
    found = len(await queue.list())
    await queue.close()
    if found != count:
        raise SystemExit(f"expected {count} messages in the queue, found {found}")
    return count / elapsed, fsyncs / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--size", type=int, default=10240)
    parser.add_argument("--dir", type=Path, default=None, help="where to put the spool")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10])
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="queue-bench-", dir=args.dir))
    try:
        print(f"{args.count} commits of {args.size} octets, fsync on, spool in {base}")
        for concurrency in args.concurrency:
            queue_dir = base / f"c{concurrency}" / "mqueue"
            rate, per_commit = asyncio.run(run(queue_dir, args.count, args.size, concurrency))
            print(
                f"  {concurrency:3d} at a time: {rate:8.0f} commits/s, "
                f"{per_commit:.3f} directory fsyncs per commit"
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
