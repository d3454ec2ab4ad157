"""A ``postoffice serve`` process for the benchmarks: started on free ports, stopped cleanly.

Owns what every benchmark script did alike: start ``serve`` with the
served roles on port 0 (free ports, so that nothing
the machine runs is disturbed), wait for the maillog's ``listening:`` line of
the role measured and ``ready:``, and stop it (SIGTERM, then SIGKILL after a
minute). Not a test; CI does not run it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import IO, Protocol, TypeVar

ROOT = Path(__file__).resolve().parents[1]
POSTOFFICE = (sys.executable, "-m", "postoffice")
DEFAULT_PEERS = ROOT.parent / "shared" / "peers"  # the peers kit, beside the project
ROLES = ("smtp", "submission", "submissions", "pop3", "pop3s", "imap", "imaps")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
T = TypeVar("T")


class Served:
    """One ``postoffice serve`` over ``config``, whose maillog is under ``data``."""

    def __init__(
        self,
        command: list[str],
        config: Path,
        data: Path,
        role: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        """``role`` listens on ``host``:``port`` (0: a free one), the others on free ports."""
        self.data = data
        self.host = host
        self.stderr: IO[bytes] = open(data / "serve.stderr", "wb")  # noqa: SIM115 (stop closes)
        self.process = subprocess.Popen(
            [*command, "-c", str(config), "serve"]
            + [f"--listen={name}={host}:{port if name == role else 0}" for name in ROLES],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
        )
        self.port = self._wait_ready(role)

    def _wait_ready(self, role: str) -> int:
        maillog = self.data / "log" / "maillog"
        listening = re.compile(rf"listening: {role} on {re.escape(self.host)}:(\d+)")
        deadline = time.monotonic() + 60
        while True:
            log = maillog.read_text(encoding="utf-8") if maillog.exists() else ""
            found = listening.search(log)
            if found and "ready:" in log:
                return int(found.group(1))
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"postoffice serve did not start; see {self.data}/serve.stderr")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.stderr.close()


def run_clients(
    target: Callable[..., None],
    args_for: Callable[[str, Event, Synchronized[float], Queue[T]], tuple[object, ...]],
    users: list[str],
    seconds: float,
    server_pid: int | None,
) -> tuple[float, list[T], float | None]:
    """One measured run: a client process per user runs ``target(*args_for(user, start,
    deadline, results))`` until the deadline and puts one tally (with ``ended``, its
    ``time.monotonic()`` at the end) on ``results``. Returns the run's length, the
    tallies and the server's CPU seconds over the run (``tree_cpu``; None without
    a PID)."""
    context = multiprocessing.get_context("fork")
    start = context.Event()
    deadline = context.Value("d", 0.0)
    results: Queue[T] = context.Queue()
    processes = [
        context.Process(target=target, args=args_for(user, start, deadline, results))
        for user in users
    ]
    for process in processes:
        process.start()
    time.sleep(0.5)  # let every client reach start.wait()
    cpu_before = tree_cpu(server_pid) if server_pid is not None else 0.0
    began = time.monotonic()
    deadline.value = began + seconds
    start.set()
    tallies = [results.get(timeout=seconds + 300) for _ in processes]
    cpu_after = tree_cpu(server_pid) if server_pid is not None else 0.0
    for process in processes:
        process.join(timeout=30)
    elapsed = max(t.ended for t in tallies) - began
    return elapsed, tallies, (cpu_after - cpu_before if server_pid is not None else None)


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of PID and every process below it, children
    that exited and were reaped included (``cutime``, ``cstime``).

    A child that exits while the tree is read may be missed or counted twice:
    a few milliseconds against the seconds of a run.
    """
    total = 0
    pending = [pid]
    while pending:
        each = pending.pop()
        try:
            stat = Path(f"/proc/{each}/stat").read_text(encoding="ascii")
            for task in Path(f"/proc/{each}/task").iterdir():
                children = (task / "children").read_text(encoding="ascii").split()
                pending += [int(child) for child in children]
        except (FileNotFoundError, ProcessLookupError):
            continue  # gone meanwhile
        values = stat.rsplit(")", 1)[1].split()
        # utime, stime, cutime, cstime: fields 14 to 17 of proc(5); values[0] is field 3
        total += sum(int(value) for value in values[11:15])
    return total / CLOCK_TICKS


class ClientTally(Protocol):
    """What ``repeat_sessions`` keeps in a client's tally."""

    errors: int
    first_error: str
    cpu: float
    ended: float


def repeat_sessions(
    user: str,
    start: Event,
    deadline: Synchronized[float],
    results: Queue[T],
    tally: T,
    session: Callable[[float], None],
    errors: tuple[type[BaseException], ...],
) -> None:
    """A client process's run: wait for the start, call ``session(end)`` until the
    deadline (an error counted, its first kept, then a short pause), then put the
    tally (with its CPU time and ``ended``) on ``results``."""
    counted: ClientTally = tally  # type: ignore[assignment]
    start.wait()
    end = deadline.value
    cpu = time.process_time()
    while time.monotonic() < end:
        try:
            session(end)
        except errors as exc:
            counted.errors += 1
            if not counted.first_error:
                counted.first_error = f"{user}: {type(exc).__name__}: {exc}"
            time.sleep(0.05)
    counted.cpu = time.process_time() - cpu
    counted.ended = time.monotonic()
    results.put(tally)


def postoffice_cli(config: Path | None, *args: str, stdin: str | None = None) -> str:
    """``postoffice [-c CONFIG] ARGS`` (``init``, ``user add``, ``mailq``): its output;
    the benchmark stops with the command's error when it fails."""
    prefix = ["-c", str(config)] if config is not None else []
    done = subprocess.run(
        [*POSTOFFICE, *prefix, *args], input=stdin, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"postoffice {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def add_peers_arguments(parser: argparse.ArgumentParser) -> None:
    """``--peers-dir`` (the peers' data, ``$PEERS_DIR``) and ``--peers-kit`` (its scripts)."""
    parser.add_argument(
        "--peers-dir", type=Path, default=Path(os.environ.get("PEERS_DIR", "/var/tmp/peers"))
    )
    parser.add_argument("--peers-kit", type=Path, default=DEFAULT_PEERS)
