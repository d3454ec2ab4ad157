"""The clients of ``imap_idle``: IDLE sessions, the rounds and their figures.

Owns ``Bench`` (opens the idle clients of one server at a bounded rate, reads
the server's memory once they are all idle, then runs the rounds: one
delivery to one mailbox, and the delay until each idle client of that
mailbox reads its ``* n EXISTS``), ``IdleClient``, ``Round``, ``Result`` and
their printing. The wire work is ``idle_wire``'s. Not a test; CI does not
run it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from idle_wire import SENDER, Lines, Memory, ProtocolError, connect, imap_command, tree_memory
from serving import tree_cpu

PASSWORD = "pass"
MARK = "imapidlebench"  # in the names of the files written into Dovecot's Maildirs


@dataclass
class Round:
    """One delivery: the clients still waiting for its EXISTS, and the arrivals."""

    pending: set[IdleClient]
    arrivals: dict[IdleClient, float] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)


class IdleClient:
    """One connection in IDLE on its mailbox's INBOX."""

    def __init__(self, conn: Lines, mailbox: int, exists: int, bench: Bench) -> None:
        self.conn = conn
        self.mailbox = mailbox
        self.exists = exists
        self.want = 0  # the EXISTS count that shows this round's message
        self.bench = bench
        self.alive = True
        conn.on_line = self._line
        conn.on_lost = self._lost

    def _line(self, line: bytes, stamp: float) -> None:
        if not (line.startswith(b"* ") and line.endswith(b" EXISTS")):
            if line.startswith(b"* BYE"):
                self.bench.byes[line[:60].decode("ascii", "replace")] += 1
            return
        count = int(line.split()[1])
        self.exists = max(self.exists, count)
        current = self.bench.round
        if current is not None and self in current.pending and count >= self.want:
            current.pending.discard(self)
            current.arrivals[self] = stamp
            if not current.pending:
                current.done.set()

    def _lost(self) -> None:
        self.alive = False


def message(rcpt: str, number: int) -> bytes:
    return (
        f"From: Bench <{SENDER}>\r\nTo: <{rcpt}>\r\nSubject: idle bench {number}\r\n"
        f"Message-ID: <{MARK}.{os.getpid()}.{number}@example.test>\r\n"
        f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        + "A line of the body of the message sent to the idle clients.\r\n"
        * 10
    ).encode("ascii")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


@dataclass
class Result:
    name: str
    idle: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    open_s: float = 0.0
    open_cpu: float = 0.0
    quiet_cpu: float = 0.0
    base: Memory = field(default_factory=Memory)
    idle_memory: Memory = field(default_factory=Memory)
    after_memory: Memory = field(default_factory=Memory)
    delays: list[float] = field(default_factory=list)
    missed: int = 0
    round_s: list[float] = field(default_factory=list)
    alive_end: int = 0
    byes: Counter[str] = field(default_factory=Counter)
    rounds_s: float = 0.0

    def figures(self) -> tuple[float, float, float] | None:
        if not self.delays:
            return None
        return (
            percentile(self.delays, 0.50),
            percentile(self.delays, 0.99),
            max(self.delays),
        )


class Bench:
    """The clients of one server and its rounds."""

    def __init__(
        self,
        name: str,
        port: int,
        users: list[str],
        pid: int,
        deliver: Callable[[int, int], Awaitable[float]],
        args: argparse.Namespace,
    ) -> None:
        self.name = name
        self.port = port
        self.users = users
        self.pid = pid
        self.deliver = deliver  # (mailbox, number) -> awaitable of the delivery's time
        self.args = args
        self.clients: list[IdleClient] = []
        self.round: Round | None = None
        self.result = Result(name)
        self.byes = self.result.byes

    async def open_one(self, index: int) -> None:
        mailbox = index % len(self.users)
        conn = await connect(self.port)
        try:
            greeting, _ = await conn.line()
            if not greeting.startswith(b"* OK"):
                raise ProtocolError(f"greeting: {greeting[:60].decode('ascii', 'replace')}")
            user = self.users[mailbox].encode()
            await imap_command(conn, b"a", b"LOGIN " + user + b" " + PASSWORD.encode())
            lines = await imap_command(conn, b"b", b"SELECT INBOX")
            exists = next(int(x.split()[1]) for x in lines if x.endswith(b" EXISTS"))
            conn.send(b"c IDLE\r\n")
            while True:
                line, _ = await conn.line()
                if line.startswith(b"+"):
                    break
                if line.startswith(b"c "):
                    raise ProtocolError(f"IDLE: {line[:80].decode('ascii', 'replace')}")
        except BaseException:
            conn.close()
            raise
        self.clients.append(IdleClient(conn, mailbox, exists, self))

    async def open_all(self) -> None:
        gate = asyncio.Semaphore(self.args.concurrency)
        errors = self.result.errors

        async def one(index: int) -> None:
            try:
                await asyncio.wait_for(self.open_one(index), self.args.setup_timeout)
            except (OSError, ProtocolError, StopIteration, ValueError, TimeoutError) as exc:
                text = str(exc) or type(exc).__name__
                errors[re.sub(r"\d+", "N", text)[:100]] += 1
            finally:
                gate.release()

        tasks = []
        for index in range(self.args.clients):
            await gate.acquire()
            if sum(errors.values()) >= self.args.max_errors:
                gate.release()
                break
            tasks.append(asyncio.ensure_future(one(index)))
        await asyncio.gather(*tasks)

    async def run(self) -> Result:
        result = self.result
        result.base = tree_memory(self.pid)
        cpu = tree_cpu(self.pid)
        started = time.monotonic()
        await self.open_all()
        result.open_s = time.monotonic() - started
        result.open_cpu = tree_cpu(self.pid) - cpu
        result.idle = len(self.clients)
        print(
            f"{self.name}: {result.idle} clients idle after {result.open_s:.1f} s "
            f"(server CPU {result.open_cpu:.1f} s, "
            f"{1000 * result.open_cpu / max(1, result.idle):.2f} ms a client); "
            f"{sum(result.errors.values())} failed opens",
            flush=True,
        )
        cpu = tree_cpu(self.pid)
        await asyncio.sleep(self.args.quiet)
        result.quiet_cpu = tree_cpu(self.pid) - cpu
        result.idle_memory = tree_memory(self.pid)
        print(
            f"{self.name}: all idle: {result.idle_memory.text()} "
            f"(before the clients: {result.base.text()}); "
            f"server CPU over {self.args.quiet:g} s of quiet: {result.quiet_cpu:.2f} s",
            flush=True,
        )
        by_mailbox: dict[int, list[IdleClient]] = {}
        for client in self.clients:
            by_mailbox.setdefault(client.mailbox, []).append(client)
        order = [m for m in range(len(self.users)) if m in by_mailbox]
        if not order:
            return result
        random.Random(7).shuffle(order)
        started = time.monotonic()
        for number in range(self.args.rounds):
            await self.one_round(number, order[number % len(order)], by_mailbox)
            await asyncio.sleep(self.args.pause)
        result.rounds_s = time.monotonic() - started
        result.after_memory = tree_memory(self.pid)
        result.alive_end = sum(1 for c in self.clients if c.alive)
        return result

    async def one_round(
        self, number: int, mailbox: int, by_mailbox: dict[int, list[IdleClient]]
    ) -> None:
        targets = [c for c in by_mailbox[mailbox] if c.alive]
        for client in targets:
            client.want = client.exists + 1
        current = Round(set(targets))
        self.round = current
        try:
            delivered = await self.deliver(mailbox, number)
        except (OSError, ProtocolError) as exc:
            self.round = None
            print(f"  round {number + 1}: delivery failed: {exc}", flush=True)
            self.result.errors[f"delivery: {exc}"[:100]] += 1
            return
        if current.pending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(current.done.wait(), self.args.timeout)
        self.round = None
        delays = [stamp - delivered for stamp in current.arrivals.values()]
        self.result.delays += delays
        self.result.missed += len(current.pending)
        late = max(delays) if delays else float("nan")
        self.result.round_s.append(late)
        print(
            f"  round {number + 1:2d}: mailbox {mailbox + 1:3d}, {len(delays)}/{len(targets)} "
            f"EXISTS, delay median {statistics.median(delays) if delays else float('nan'):.3f} s, "
            f"max {late:.3f} s" + (f", {len(current.pending)} MISSED" if current.pending else ""),
            flush=True,
        )

    def close(self) -> None:
        for client in self.clients:
            client.conn.close()


def print_result(result: Result) -> None:
    figures = result.figures()
    text = f"{result.name:10} idle {result.idle}"
    if figures:
        p50, p99, top = figures
        text += (
            f"; EXISTS after delivery: p50 {1000 * p50:.1f} ms, p99 {1000 * p99:.1f} ms, "
            f"max {1000 * top:.1f} ms over {len(result.delays)} observations"
        )
    text += f"; missed {result.missed}; {result.idle_memory.text()} all idle"
    text += result.idle_memory.per_client(result.base, result.idle)
    text += f"; still connected at the end {result.alive_end}"
    print(text)
    for kind, count in result.errors.most_common(5):
        print(f"    {count} x {kind}")
    for kind, count in result.byes.most_common(3):
        print(f"    {count} x in IDLE: {kind}")
