"""The wire side of ``imap_idle``: a line-reading asyncio protocol with arrival
times, one IMAP command, one SMTP transaction, and the memory of a process tree.

Each line is stamped with ``time.monotonic()`` when it is read, so that the
bench can put the time an ``* n EXISTS`` arrived beside the time a ``250``
did. Not a test; CI does not run it.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
SENDER = "sender@example.test"


class ProtocolError(Exception):
    pass


class Lines(asyncio.Protocol):
    """A connection read as CRLF lines, each stamped with the time it was received.

    Until ``on_line`` is set, lines queue up for ``line()``; afterwards each
    goes to ``on_line`` as it arrives."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.lines: deque[tuple[bytes, float]] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.closed = False
        self.on_line: Callable[[bytes, float], None] | None = None
        self.on_lost: Callable[[], None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.buffer += data
        while (end := self.buffer.find(b"\r\n")) >= 0:
            line = bytes(self.buffer[:end])
            del self.buffer[: end + 2]
            if self.on_line is not None:
                self.on_line(line, now)
            else:
                self.lines.append((line, now))
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._wake()
        if self.on_lost is not None:
            self.on_lost()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def line(self) -> tuple[bytes, float]:
        while not self.lines:
            if self.closed:
                raise ProtocolError("connection closed")
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
            self.waiter = None
        return self.lines.popleft()

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()


async def connect(port: int) -> Lines:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(Lines, HOST, port)
    return protocol


async def imap_command(conn: Lines, tag: bytes, text: bytes) -> list[bytes]:
    """Send one command; its untagged lines (OK expected)."""
    conn.send(tag + b" " + text + b"\r\n")
    lines: list[bytes] = []
    while True:
        line, _ = await conn.line()
        if line.startswith(tag + b" "):
            if line[len(tag) + 1 : len(tag) + 3] != b"OK":
                raise ProtocolError(
                    f"{text.split()[0].decode()}: {line[:80].decode('ascii', 'replace')}"
                )
            return lines
        lines.append(line)


async def smtp_reply(conn: Lines) -> tuple[bytes, float]:
    while True:
        line, stamp = await conn.line()
        if line[3:4] != b"-":
            return line, stamp


async def smtp_send(port: int, rcpt: str, data: bytes) -> float:
    """One message over SMTP; the time its 250 (after DATA) was received."""
    conn = await connect(port)
    try:
        steps = [
            None,
            b"EHLO bench.example.test",
            f"MAIL FROM:<{SENDER}>".encode(),
            f"RCPT TO:<{rcpt}>".encode(),
            b"DATA",
        ]
        for step in steps:
            if step is not None:
                conn.send(step + b"\r\n")
            line, _ = await smtp_reply(conn)
            if line[:1] not in (b"2", b"3"):
                raise ProtocolError(f"SMTP {step!r}: {line.decode('ascii', 'replace')}")
        conn.send(data + b".\r\n")
        line, stamp = await smtp_reply(conn)
        if not line.startswith(b"250"):
            raise ProtocolError(f"SMTP end of data: {line.decode('ascii', 'replace')}")
        conn.send(b"QUIT\r\n")
        return stamp
    finally:
        conn.close()


def tree_pids(pid: int) -> list[int]:
    pids, pending = [], [pid]
    while pending:
        each = pending.pop()
        try:
            for task in Path(f"/proc/{each}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text("ascii").split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
        pids.append(each)
    return pids


@dataclass
class Memory:
    rss_kib: int = 0
    pss_kib: int = 0
    processes: int = 0

    def per_client(self, base: Memory, clients: int) -> str:
        if not clients:
            return ""
        rss = (self.rss_kib - base.rss_kib) / clients
        pss = (self.pss_kib - base.pss_kib) / clients
        return f" ({rss:.0f} KiB RSS, {pss:.0f} KiB PSS a client above the idle server)"

    def text(self) -> str:
        return (
            f"RSS {self.rss_kib / 1024:7.1f} MiB, PSS {self.pss_kib / 1024:7.1f} MiB "
            f"in {self.processes} processes"
        )


def tree_memory(pid: int) -> Memory:
    """Sums of VmRSS and Pss (KiB) over PID's process tree."""
    memory = Memory()
    for each in tree_pids(pid):
        try:
            status = Path(f"/proc/{each}/status").read_text("ascii")
            rollup = Path(f"/proc/{each}/smaps_rollup").read_text("ascii")
        except (FileNotFoundError, ProcessLookupError):
            continue
        rss = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        pss = re.search(r"^Pss:\s+(\d+) kB", rollup, re.M)
        memory.rss_kib += int(rss.group(1)) if rss else 0
        memory.pss_kib += int(pss.group(1)) if pss else 0
        memory.processes += 1
    return memory
