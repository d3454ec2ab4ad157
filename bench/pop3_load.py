"""Benchmark: POP3 download of whole mailboxes, postoffice against the peer Dovecot.

    .venv/bin/python bench/pop3_load.py [--clients 4] [--messages 1000] [--size 10240]
        [--seconds 30] [--repeat 3] [--peer-port 10110] [--no-peer] [--dir DIR]

CLIENTS client processes download at once, each from its own user (POP3
sessions of one user exclude each other on postoffice, ``-ERR [IN-USE]``,
while Dovecot lets them run side by side: one user per client is the same
load for both). Each client repeats, for SECONDS: connect, USER/PASS, STAT,
LIST, RETR of every message, QUIT. It never sends DELE, so the mailboxes stay
as they are. At the deadline a client stops after the RETR in progress and
QUITs; a session cut short counts as the share of the mailbox it retrieved.

1. postoffice: a fresh data directory (``init``, users user1..userN at
   example.test, password ``pass``), every INBOX filled in this process through
   the store API with the same MESSAGES generated messages of exactly SIZE
   octets (realistic header, CRLF line ends), ``[pop3]
   plaintext_auth_on_loopback = true`` (the peer has no TLS, so both are
   measured in plaintext), then ``serve --listen smtp=127.0.0.1:0 --listen
   pop3=127.0.0.1:0 --listen pop3s=127.0.0.1:0``.
2. The local-only Dovecot of ``shared/peers`` (POP3 on 127.0.0.1:10110, users
   testuser1..N, password ``pass``), filled first by the peers'
   ``fill-dovecot N MESSAGES SIZE_KB`` (its own generated messages of about
   that size: the octets per message are printed for both). If nothing
   answers on the port it runs the peers' ``start`` (as root, after ``setup``).

Before the runs, one session per mailbox (login, STAT, LIST, QUIT) is left
out of the figures: the work a server does once for a mailbox it never saw
(Dovecot: its index and cached sizes) is not what is measured; how long
those first sessions took is printed.

The two alternate, the order flipping every run, REPEAT times. Each run
prints sessions/s, MB/s (10^6 octets of RETR data on the wire), messages/s,
and the CPU time of the server per session: user + system time of the
server's processes (postoffice: ``serve`` and its workers; Dovecot: its
master and every process below it), children that exited included, from
``/proc/PID/stat``, and the clients' own CPU (the clients share the machine
with the server). Then the medians and the ratios postoffice / Dovecot.
At the end it checks that every postoffice mailbox still holds all its
messages. Only loopback addresses are used. Not a test: CI does not run it.

The clients use poplib for the commands but read RETR's data in blocks up
to the terminating ``.`` line (not line by line), so that the load generator
costs little next to the servers it measures. ``--quickack`` is a diagnostic:
the clients then ACK every segment at once (Linux ``TCP_QUICKACK``) instead
of delaying their ACKs as every real client does, which takes out of the
figures a server's wait for a delayed ACK (a small write held back by
Nagle's algorithm behind unacknowledged data).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import io
import os
import poplib
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import cast

from messages import make_messages
from serving import (
    POSTOFFICE,
    Served,
    add_peers_arguments,
    postoffice_cli,
    repeat_sessions,
    run_clients,
)

from postoffice.config.loader import load_config
from postoffice.store import StoreFactory
from postoffice.store.layout import layout_from_config

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
DOMAIN = "example.test"
PASSWORD = "pass"

# -- the load -------------------------------------------------------------------------


@dataclass
class Tally:
    """What one client did in one run."""

    sessions: int = 0  # whole sessions
    partial: float = 0.0  # share of the mailbox retrieved by the session cut at the deadline
    messages: int = 0
    octets: int = 0
    errors: int = 0
    first_error: str = ""
    cpu: float = 0.0  # the client process's own CPU seconds
    ended: float = 0.0  # time.monotonic() after its last QUIT


class Client(poplib.POP3):
    # --quickack: ACK every segment at once (Linux TCP_QUICKACK, which the kernel
    # clears again by itself, so it is set before every read). Set in main(),
    # before the client processes fork.
    quickack = False

    def retr_octets(self, which: int) -> int:
        """RETR WHICH; the octets of its data on the wire (without the final ``.`` line)."""
        self.sock.sendall(f"RETR {which}\r\n".encode("ascii"))
        reader = cast(io.BufferedReader, self.file)
        status = reader.readline(1024)
        if not status.startswith(b"+OK"):
            raise poplib.error_proto(status.decode("ascii", "replace").rstrip())
        total = 0
        tail = b""
        while True:
            if self.quickack:
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            chunk = reader.read1(65536)
            if not chunk:
                raise EOFError(f"connection closed during RETR {which}")
            total += len(chunk)
            tail = (tail + chunk)[-5:]
            # Nothing follows the terminator: the server waits for the next command.
            if tail.endswith(b"\r\n.\r\n") or (total == 3 and tail == b".\r\n"):
                return total - 3


def one_session(port: int, user: str, end: float, tally: Tally) -> None:
    client = Client(HOST, port, timeout=60)
    try:
        client.user(user)
        client.pass_(PASSWORD)
        count, _ = client.stat()
        _, lines, _ = client.list()
        sizes = [int(line.split()[1]) for line in lines]
        if len(sizes) != count or count == 0:
            raise poplib.error_proto(f"STAT says {count} messages, LIST lists {len(sizes)}")
        for number, size in enumerate(sizes, 1):
            if time.monotonic() >= end:
                tally.partial += (number - 1) / count
                break
            octets = client.retr_octets(number)
            if octets < size:
                raise poplib.error_proto(f"RETR {number}: {octets} octets, LIST said {size}")
            tally.messages += 1
            tally.octets += octets
        else:
            tally.sessions += 1
        client.quit()
    finally:
        client.close()


def client_loop(
    port: int,
    user: str,
    start: Event,
    deadline: Synchronized[float],
    results: Queue[Tally],
) -> None:
    tally = Tally()
    repeat_sessions(
        user,
        start,
        deadline,
        results,
        tally,
        lambda end: one_session(port, user, end, tally),
        (OSError, EOFError, poplib.error_proto),
    )


@dataclass
class Result:
    name: str
    seconds: float
    tallies: list[Tally]
    server_cpu: float | None  # seconds, over the run

    @property
    def sessions(self) -> float:
        return sum(t.sessions + t.partial for t in self.tallies)

    @property
    def messages(self) -> int:
        return sum(t.messages for t in self.tallies)

    @property
    def octets(self) -> int:
        return sum(t.octets for t in self.tallies)

    @property
    def errors(self) -> int:
        return sum(t.errors for t in self.tallies)

    @property
    def session_rate(self) -> float:
        return self.sessions / self.seconds

    @property
    def mb_rate(self) -> float:
        return self.octets / 1e6 / self.seconds

    @property
    def message_rate(self) -> float:
        return self.messages / self.seconds

    def line(self, run: int) -> str:
        size = self.octets / self.messages if self.messages else 0
        text = (
            f"run {run} {self.name:10} {self.sessions:6.1f} sessions in {self.seconds:5.1f} s = "
            f"{self.session_rate:6.2f} sessions/s, {self.mb_rate:6.1f} MB/s, "
            f"{self.message_rate:7.0f} msg/s ({size:.0f} octets/msg)"
        )
        if self.server_cpu is not None and self.sessions:
            per_session = 1000 * self.server_cpu / self.sessions
            per_message = 1e6 * self.server_cpu / self.messages
            text += f"; server CPU {per_session:.0f} ms/session ({per_message:.0f} us/msg)"
        client_share = 100 * sum(t.cpu for t in self.tallies) / self.seconds
        text += f"; clients' CPU {client_share:.0f} %"
        if self.errors:
            first = next(t.first_error for t in self.tallies if t.first_error)
            text += f"; {self.errors} ERRORS, first: {first}"
        return text


def warm_up(name: str, port: int, users: list[str]) -> None:
    """One unmeasured session per mailbox (login, STAT, LIST, QUIT): what a server
    does once for a new mailbox (Dovecot: its index and the message sizes) is
    not part of the runs. Prints how long each first login took."""
    took = []
    for user in users:
        started = time.monotonic()
        client = Client(HOST, port, timeout=300)
        try:
            client.user(user)
            client.pass_(PASSWORD)
            client.stat()
            client.list()
            client.quit()
        finally:
            client.close()
        took.append(time.monotonic() - started)
    print(
        f"{name}: first session (login, STAT, LIST) of each mailbox: "
        + ", ".join(f"{seconds:.2f}" for seconds in took)
        + " s",
        flush=True,
    )


def load(name: str, port: int, users: list[str], seconds: float, server_pid: int | None) -> Result:
    """One measured run: one client process per user, for SECONDS."""
    elapsed, tallies, server_cpu = run_clients(
        client_loop,
        lambda user, start, deadline, results: (port, user, start, deadline, results),
        users,
        seconds,
        server_pid,
    )
    return Result(name, elapsed, tallies, server_cpu)


# -- the servers ----------------------------------------------------------------------


def set_options(config: Path, section_name: str, values: dict[str, str]) -> None:
    """Set ``key = value`` lines of a section that ``postoffice init`` wrote."""
    text = config.read_text(encoding="utf-8")
    head, marker, rest = text.partition(f"[{section_name}]\n")
    if not marker:
        raise SystemExit(f"{config}: no [{section_name}] section")
    section, next_section, tail = rest.partition("\n[")
    for key, value in values.items():
        section, found = re.subn(rf"(?m)^{key} = [^#\n]*", f"{key} = {value} ", section)
        if not found:
            section += f"\n{key} = {value}\n"
    config.write_text(head + marker + section + next_section + tail, encoding="utf-8")


async def fill_stores(config: Path, users: list[str], messages: list[bytes]) -> None:
    """Append MESSAGES to every user's INBOX through the store API (no fsync: the
    server is not running yet, nothing needs to survive a crash)."""
    loaded = load_config(config)
    layout = dataclasses.replace(layout_from_config(loaded.config, loaded.paths), fsync=False)
    factory = StoreFactory(layout)
    for user in users:
        store = await factory.open(user)
        try:
            for data in messages:
                await store.append("INBOX", data)
        finally:
            await store.close()


async def count_messages(config: Path, users: list[str]) -> dict[str, int]:
    loaded = load_config(config)
    factory = StoreFactory(layout_from_config(loaded.config, loaded.paths))
    counts = {}
    for user in users:
        store = await factory.open(user, create=False)
        try:
            counts[user] = len(await store.messages("INBOX"))
        finally:
            await store.close()
    return counts


class Postoffice:
    """A postoffice server on a fresh data directory, for the whole benchmark."""

    def __init__(
        self, work: Path, clients: int, messages: list[bytes], server_options: dict[str, str]
    ) -> None:
        self.data = work / "postoffice"
        self.config = self.data / "postoffice.toml"
        self.users = [f"user{n}@{DOMAIN}" for n in range(1, clients + 1)]
        self.cli("init", "--data-dir", str(self.data), "--domain", DOMAIN, config=False)
        for user in self.users:
            self.cli("user", "add", user, "--password", PASSWORD)
        # Every client connects from 127.0.0.1: the per-address limit must let all in
        # (Dovecot's peer allows 1000).
        limit = str(max(10, 2 * clients))
        set_options(
            self.config,
            "pop3",
            {"plaintext_auth_on_loopback": "true", "max_connections_per_client": limit},
        )
        set_options(self.config, "server", server_options)
        started = time.monotonic()
        asyncio.run(fill_stores(self.config, self.users, messages))
        print(
            f"postoffice: {len(self.users)} mailboxes of {len(messages)} messages filled "
            f"in {time.monotonic() - started:.1f} s",
            flush=True,
        )
        self.served = Served([*POSTOFFICE], self.config, self.data, "pop3")
        self.process, self.port = self.served.process, self.served.port
        try:
            warm_up("postoffice", self.port, self.users)
        except BaseException:
            self.stop()
            raise

    def cli(self, *args: str, config: bool = True) -> str:
        return postoffice_cli(self.config if config else None, *args)

    def run(self, seconds: float) -> Result:
        return load("postoffice", self.port, self.users, seconds, self.process.pid)

    def stop(self) -> None:
        self.served.stop()

    def check_mailboxes(self, expected: int) -> list[str]:
        """Users whose INBOX does not hold EXPECTED messages (run after stop())."""
        counts = asyncio.run(count_messages(self.config, self.users))
        return [f"{user}: {n} messages" for user, n in counts.items() if n != expected]


def answers_pop3(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=2) as sock:
            return sock.recv(4).startswith(b"+OK")
    except OSError:
        return False


class Dovecot:
    """The peers' Dovecot: started if need be, its users' INBOXes filled."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.port = args.peer_port
        self.users = [f"testuser{n}" for n in range(1, args.clients + 1)]
        env = {**os.environ, "PEERS_DIR": str(args.peers_dir)}
        if not answers_pop3(self.port):
            start = args.peers_kit / "start"
            print(f"nothing answers on {HOST}:{self.port}; running {start}", flush=True)
            subprocess.run([str(start)], check=True, env=env)
            if not answers_pop3(self.port):
                raise SystemExit(f"the peer Dovecot does not answer on {HOST}:{self.port}")
        size_kb = max(1, round(args.size / 1024))
        started = time.monotonic()
        subprocess.run(
            [
                str(args.peers_kit / "fill-dovecot"),
                *map(str, (args.clients, args.messages, size_kb)),
            ],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        print(
            f"dovecot: fill-dovecot {args.clients} {args.messages} {size_kb} "
            f"in {time.monotonic() - started:.1f} s",
            flush=True,
        )
        pidfile = args.peers_dir / "dovecot" / "run" / "master.pid"
        try:
            self.pid: int | None = int(pidfile.read_text(encoding="ascii").split()[0])
        except (OSError, ValueError, IndexError):
            self.pid = None  # no CPU figure then
        warm_up("dovecot", self.port, self.users)

    def run(self, seconds: float) -> Result:
        return load("dovecot", self.port, self.users, seconds, self.pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=4, help="client processes, one user each")
    parser.add_argument("--messages", type=int, default=1000, help="messages in each mailbox")
    parser.add_argument("--size", type=int, default=10240, help="octets per message")
    parser.add_argument("--seconds", type=float, default=30, help="length of one run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--peer-port", type=int, default=10110, help="the peer Dovecot's POP3")
    parser.add_argument("--no-peer", action="store_true", help="measure postoffice only")
    add_peers_arguments(parser)
    parser.add_argument("--dir", type=Path, default=None, help="where the data directory goes")
    parser.add_argument(
        "--event-loop",
        choices=["asyncio", "uvloop", "auto"],
        default="asyncio",
        help="postoffice's [server] event_loop",
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="postoffice's [server] workers (default: its own)"
    )
    parser.add_argument(
        "--quickack",
        action="store_true",
        help="diagnostic: clients ACK at once (TCP_QUICKACK), no delayed ACK during RETR",
    )
    args = parser.parse_args()
    if not 1 <= args.clients <= 100:
        parser.error("--clients must be 1 to 100 (the peer has testuser1..100)")
    if args.messages < 1:
        parser.error("--messages must be at least 1")

    Client.quickack = args.quickack
    messages = make_messages(args.messages, args.size)
    peer = None if args.no_peer else Dovecot(args)
    work = Path(tempfile.mkdtemp(prefix="pop3-load-", dir=args.dir))
    print(
        f"pop3 load: {args.clients} clients, one user each, {args.messages} messages of "
        f"{args.size} octets per mailbox, {args.seconds:g} s a run; {os.cpu_count()} CPUs; "
        f"postoffice on the {args.event_loop} loop; "
        f"{'clients ACK at once (--quickack); ' if args.quickack else ''}data in {work}",
        flush=True,
    )
    problems: list[str] = []
    results: dict[str, list[Result]] = {"postoffice": [], "dovecot": []}
    server_options = {"event_loop": f'"{args.event_loop}"'}
    if args.workers is not None:
        server_options["workers"] = str(args.workers)
    server = Postoffice(work, args.clients, messages, server_options)
    try:
        for run in range(1, args.repeat + 1):
            order = ["postoffice", "dovecot"] if run % 2 else ["dovecot", "postoffice"]
            for name in order:
                if name == "postoffice":
                    result = server.run(args.seconds)
                elif peer is None:
                    continue
                else:
                    result = peer.run(args.seconds)
                results[name].append(result)
                print(result.line(run), flush=True)
    finally:
        server.stop()
        problems += server.check_mailboxes(args.messages)
        shutil.rmtree(work, ignore_errors=True)

    print()
    medians: dict[str, tuple[float, float, float]] = {}
    for name, runs in results.items():
        if runs:
            medians[name] = (
                statistics.median(r.session_rate for r in runs),
                statistics.median(r.mb_rate for r in runs),
                statistics.median(r.message_rate for r in runs),
            )
            sessions, mb, msgs = medians[name]
            print(
                f"median {name:10} {sessions:6.2f} sessions/s, {mb:6.1f} MB/s, "
                f"{msgs:7.0f} msg/s over {len(runs)} runs"
            )
    if len(medians) == 2:
        ours, theirs = medians["postoffice"], medians["dovecot"]
        print(
            f"ratio postoffice / dovecot: sessions/s {ours[0] / theirs[0]:.2f}, "
            f"MB/s {ours[1] / theirs[1]:.2f}"
        )
    errors = sum(r.errors for runs in results.values() for r in runs)
    if problems:
        print(f"PROBLEM: postoffice mailboxes changed: {'; '.join(problems)}")
    else:
        print(f"every postoffice mailbox still holds its {args.messages} messages")
    if problems or errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
