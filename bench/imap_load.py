"""Benchmark: a mixed IMAP workload, postoffice against the peer Dovecot.

    .venv/bin/python bench/imap_load.py [--clients 10] [--messages 200] [--size 10240]
        [--seconds 30] [--repeat 3] [--peer-port 10143] [--no-peer] [--dir DIR]

CLIENTS client processes work at once, each on its own user's INBOX of
MESSAGES messages, for SECONDS. Each repeats one session of what a mail
client does:

    LOGIN; SELECT INBOX; UID FETCH 1:* (UID FLAGS);
    FETCH of 20 messages (ENVELOPE BODYSTRUCTURE) at a random place;
    FETCH of 20 messages (BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)]);
    FETCH n (BODY.PEEK[]) of 3 random messages;
    STORE n +FLAGS (\\Seen), STORE n -FLAGS (\\Seen) of a random message;
    SEARCH UNSEEN; UID SEARCH SUBJECT <a word>;
    APPEND a new message; UID STORE it +FLAGS (\\Deleted); UID EXPUNGE it;
    NOOP; LOGOUT

and counts the tagged commands answered: commands per second, the figure
the issue asks for. The mailbox ends each session as it began (the
appended message is expunged again). Each run prints commands/s, sessions/s
and the CPU time of the server per command (user + system of its process
tree, ``serving.tree_cpu``), then the medians and the ratio postoffice /
Dovecot.

1. postoffice: a fresh data directory (``init``, users user1..userN,
   password ``pass``), INBOXes filled through the store API with the same
   generated messages (``messages.make_messages``: realistic headers, CRLF),
   ``[imap] plaintext_auth_on_loopback = true`` (the peer has no TLS, so both
   are measured in plaintext).
2. The local-only Dovecot of ``shared/peers`` (IMAP on 127.0.0.1:10143,
   testuser1..N, password ``pass``), filled by the peers' ``fill-dovecot``.

Before the runs one session per mailbox is left out of the figures (the
first look of each server at a mailbox: Dovecot builds its index, postoffice
its part trees). The two servers alternate, the order flipping every run.
The client is a small raw-socket IMAP client (it reads literals by their
length and does not parse the rest), so the load generator costs little next
to the servers. Only loopback addresses are used. Not a test: CI does not run it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from pathlib import Path

from messages import WORDS, make_message, make_messages
from pop3_load import count_messages, fill_stores
from serving import (
    POSTOFFICE,
    Served,
    add_peers_arguments,
    postoffice_cli,
    repeat_sessions,
    run_clients,
)

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
DOMAIN = "example.test"
PASSWORD = "pass"
_LITERAL = re.compile(rb"\{(\d+)\+?\}$")


class Options:
    detail = False  # --detail: time spent per command kind, printed after each run (set in main)


class ImapError(Exception):
    pass


class RawImap:
    """Just enough IMAP client: one command at a time, literals skipped by length."""

    def __init__(self, port: int, times: dict[str, float] | None = None) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=60)
        self.buffer = bytearray()
        self.tag = 0
        self.times = times  # seconds per command kind (--detail)
        self._line()  # the greeting

    def _fill(self) -> None:
        chunk = self.sock.recv(262144)
        if not chunk:
            raise ImapError("connection closed")
        self.buffer += chunk

    def _line(self) -> bytes:
        while True:
            end = self.buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buffer[:end])
                del self.buffer[: end + 2]
                return line
            self._fill()

    def _skip(self, count: int) -> None:
        while len(self.buffer) < count:
            self._fill()
        del self.buffer[:count]

    def command(self, text: bytes, literal: bytes | None = None) -> list[bytes]:
        """Send one command (with one synchronising literal at its end); its untagged lines."""
        self.tag += 1
        tag = b"t%d" % self.tag
        started = time.monotonic()
        try:
            return self._command(tag, text, literal)
        finally:
            if self.times is not None:
                words = text.decode("ascii", "replace").split()
                kind = " ".join(words[:2] if words[0] == "UID" else words[:1])
                if words[0] == "FETCH":
                    kind = "FETCH (" + text.decode("ascii", "replace").split(" (", 1)[1][:30]
                self.times[kind] = self.times.get(kind, 0.0) + time.monotonic() - started

    def _command(self, tag: bytes, text: bytes, literal: bytes | None) -> list[bytes]:
        if literal is None:
            self.sock.sendall(tag + b" " + text + b"\r\n")
        else:
            self.sock.sendall(tag + b" " + text + b" {%d}\r\n" % len(literal))
            line = self._line()
            if not line.startswith(b"+"):
                raise ImapError(line.decode("ascii", "replace"))
            self.sock.sendall(literal + b"\r\n")
        lines = []
        while True:
            line = self._line()
            found = _LITERAL.search(line)
            while found:
                self._skip(int(found.group(1)))
                line = self._line()
                found = _LITERAL.search(line)
            if line.startswith(tag + b" "):
                if line[len(tag) + 1 : len(tag) + 3] != b"OK":
                    raise ImapError(f"{text[:40]!r}: {line.decode('ascii', 'replace')}")
                return lines
            lines.append(line)

    def close(self) -> None:
        self.sock.close()


@dataclass
class Tally:
    commands: int = 0
    sessions: int = 0
    errors: int = 0
    first_error: str = ""
    cpu: float = 0.0
    ended: float = 0.0
    times: dict[str, float] = field(default_factory=dict)


def one_session(port: int, user: str, rng: random.Random, tally: Tally, extra: bytes) -> None:
    client = RawImap(port, tally.times if Options.detail else None)
    done = 0
    try:
        client.command(b"LOGIN " + user.encode() + b" " + PASSWORD.encode())
        lines = client.command(b"SELECT INBOX")
        exists = next(int(line.split()[1]) for line in lines if line.endswith(b" EXISTS"))
        done += 2
        client.command(b"UID FETCH 1:* (UID FLAGS)")
        first = rng.randint(1, max(1, exists - 19))
        window = b"%d:%d" % (first, min(exists, first + 19))
        client.command(b"FETCH " + window + b" (ENVELOPE BODYSTRUCTURE)")
        client.command(b"FETCH " + window + b" (BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)])")
        done += 3
        for _ in range(3):
            client.command(b"FETCH %d (BODY.PEEK[])" % rng.randint(1, exists))
            done += 1
        number = rng.randint(1, exists)
        client.command(b"STORE %d +FLAGS (\\Seen)" % number)
        client.command(b"STORE %d -FLAGS (\\Seen)" % number)
        client.command(b"SEARCH UNSEEN")
        client.command(b"UID SEARCH SUBJECT " + rng.choice(WORDS).encode())
        done += 4
        appended = client.command(b"APPEND INBOX (\\Seen)", extra)
        done += 1
        uid = None
        for line in appended:  # a server may say APPENDUID in the tagged line only
            match = re.search(rb"APPENDUID \d+ (\d+)", line)
            if match:
                uid = int(match.group(1))
        if uid is None:
            found = client.command(b"UID SEARCH HEADER X-Bench-Append " + user.encode())
            uid = int(found[-1].split()[-1])
        client.command(b"UID STORE %d +FLAGS.SILENT (\\Deleted)" % uid)
        client.command(b"UID EXPUNGE %d" % uid)
        client.command(b"NOOP")
        client.command(b"LOGOUT")
        done += 4
        tally.sessions += 1
    finally:
        tally.commands += done
        client.close()


def client_loop(
    port: int,
    user: str,
    start: Event,
    deadline: Synchronized[float],
    results: Queue[Tally],
) -> None:
    rng = random.Random(user)
    extra = make_message(random.Random(7), 1, 4096).replace(
        b"MIME-Version", b"X-Bench-Append: " + user.encode() + b"\r\nMIME-Version", 1
    )
    tally = Tally()
    repeat_sessions(
        user,
        start,
        deadline,
        results,
        tally,
        lambda _end: one_session(port, user, rng, tally, extra),
        (OSError, ImapError, StopIteration, ValueError),
    )


@dataclass
class Result:
    name: str
    seconds: float
    tallies: list[Tally]
    server_cpu: float | None

    @property
    def commands(self) -> int:
        return sum(t.commands for t in self.tallies)

    @property
    def rate(self) -> float:
        return self.commands / self.seconds

    @property
    def errors(self) -> int:
        return sum(t.errors for t in self.tallies)

    def line(self, run: int) -> str:
        sessions = sum(t.sessions for t in self.tallies)
        text = (
            f"run {run} {self.name:10} {self.commands:6d} commands in {self.seconds:5.1f} s = "
            f"{self.rate:7.1f} commands/s ({sessions / self.seconds:5.1f} sessions/s)"
        )
        if self.server_cpu is not None and self.commands:
            text += f"; server CPU {1e6 * self.server_cpu / self.commands:.0f} us/command"
        text += f"; clients' CPU {100 * sum(t.cpu for t in self.tallies) / self.seconds:.0f} %"
        if self.errors:
            first = next(t.first_error for t in self.tallies if t.first_error)
            text += f"; {self.errors} ERRORS, first: {first}"
        if Options.detail:
            spent: dict[str, float] = {}
            for tally in self.tallies:
                for kind, seconds in tally.times.items():
                    spent[kind] = spent.get(kind, 0.0) + seconds
            total = sum(spent.values()) or 1.0
            for kind, seconds in sorted(spent.items(), key=lambda item: -item[1]):
                text += f"\n    {100 * seconds / total:5.1f} % {kind}"
        return text


def load(name: str, port: int, users: list[str], seconds: float, pid: int | None) -> Result:
    elapsed, tallies, server_cpu = run_clients(
        client_loop,
        lambda user, start, deadline, results: (port, user, start, deadline, results),
        users,
        seconds,
        pid,
    )
    return Result(name, elapsed, tallies, server_cpu)


def warm_up(name: str, port: int, users: list[str]) -> None:
    took = []
    for user in users:
        started = time.monotonic()
        client = RawImap(port)
        try:
            client.command(b"LOGIN " + user.encode() + b" " + PASSWORD.encode())
            client.command(b"SELECT INBOX")
            client.command(b"FETCH 1:* (UID FLAGS ENVELOPE BODYSTRUCTURE)")
            client.command(b"LOGOUT")
        finally:
            client.close()
        took.append(time.monotonic() - started)
    print(f"{name}: first session of each mailbox: {statistics.mean(took):.2f} s on average")


def set_section(config: Path, section: str, values: dict[str, str]) -> None:
    text = config.read_text(encoding="utf-8")
    head, marker, rest = text.partition(f"[{section}]\n")
    if not marker:
        raise SystemExit(f"{config}: no [{section}] section")
    body, next_section, tail = rest.partition("\n[")
    for key, value in values.items():
        body, found = re.subn(rf"(?m)^{key} = [^#\n]*", f"{key} = {value} ", body)
        if not found:
            body += f"\n{key} = {value}\n"
    config.write_text(head + marker + body + next_section + tail, encoding="utf-8")


class Postoffice:
    def __init__(self, work: Path, clients: int, messages: list[bytes]) -> None:
        self.data = work / "postoffice"
        self.config = self.data / "postoffice.toml"
        self.users = [f"user{n}@{DOMAIN}" for n in range(1, clients + 1)]
        self.cli("init", "--data-dir", str(self.data), "--domain", DOMAIN, config=False)
        for user in self.users:
            self.cli("user", "add", user, "--password", PASSWORD)
        set_section(
            self.config,
            "imap",
            {
                "plaintext_auth_on_loopback": "true",
                "max_connections_per_client": str(max(10, 2 * clients)),
            },
        )
        asyncio.run(fill_stores(self.config, self.users, messages))
        self.served = Served([*POSTOFFICE], self.config, self.data, "imap")
        self.port = self.served.port
        try:
            warm_up("postoffice", self.port, self.users)
        except BaseException:
            self.stop()
            raise

    def cli(self, *args: str, config: bool = True) -> str:
        return postoffice_cli(self.config if config else None, *args)

    def run(self, seconds: float) -> Result:
        return load("postoffice", self.port, self.users, seconds, self.served.process.pid)

    def stop(self) -> None:
        self.served.stop()


def answers_imap(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=2) as sock:
            return sock.recv(4).startswith(b"* OK")
    except OSError:
        return False


class Dovecot:
    def __init__(self, args: argparse.Namespace) -> None:
        self.port = args.peer_port
        self.users = [f"testuser{n}" for n in range(1, args.clients + 1)]
        env = {**os.environ, "PEERS_DIR": str(args.peers_dir)}
        if not answers_imap(self.port):
            subprocess.run([str(args.peers_kit / "start")], check=True, env=env)
            if not answers_imap(self.port):
                raise SystemExit(f"the peer Dovecot does not answer on {HOST}:{self.port}")
        size_kb = max(1, round(args.size / 1024))
        subprocess.run(
            [
                str(args.peers_kit / "fill-dovecot"),
                str(args.clients),
                str(args.messages),
                str(size_kb),
            ],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        pidfile = args.peers_dir / "dovecot" / "run" / "master.pid"
        try:
            self.pid: int | None = int(pidfile.read_text(encoding="ascii").split()[0])
        except (OSError, ValueError, IndexError):
            self.pid = None
        warm_up("dovecot", self.port, self.users)

    def run(self, seconds: float) -> Result:
        return load("dovecot", self.port, self.users, seconds, self.pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--size", type=int, default=10240)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--peer-port", type=int, default=10143)
    parser.add_argument("--no-peer", action="store_true")
    add_peers_arguments(parser)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--detail", action="store_true", help="time per command kind")
    args = parser.parse_args()
    Options.detail = args.detail
    if not 1 <= args.clients <= 100:
        parser.error("--clients must be 1 to 100 (the peer has testuser1..100)")
    messages = make_messages(args.messages, args.size)
    peer = None if args.no_peer else Dovecot(args)
    work = Path(tempfile.mkdtemp(prefix="imap-load-", dir=args.dir))
    print(
        f"imap load: {args.clients} clients, one user each, {args.messages} messages of "
        f"{args.size} octets, {args.seconds:g} s a run; {os.cpu_count()} CPUs",
        flush=True,
    )
    results: dict[str, list[Result]] = {"postoffice": [], "dovecot": []}
    server = Postoffice(work, args.clients, messages)
    try:
        for run in range(1, args.repeat + 1):
            order = ["postoffice", "dovecot"] if run % 2 else ["dovecot", "postoffice"]
            for name in order:
                if name == "dovecot" and peer is None:
                    continue
                result = (
                    server.run(args.seconds) if name == "postoffice" else peer.run(args.seconds)
                )  # type: ignore[union-attr]
                results[name].append(result)
                print(result.line(run), flush=True)
    finally:
        server.stop()
        counts = asyncio.run(count_messages(server.config, server.users))
        shutil.rmtree(work, ignore_errors=True)
    print()
    medians = {
        name: statistics.median(r.rate for r in runs) for name, runs in results.items() if runs
    }
    for name, rate in medians.items():
        print(f"median {name:10} {rate:7.1f} commands/s over {len(results[name])} runs")
    if len(medians) == 2:
        print(f"ratio postoffice / dovecot: {medians['postoffice'] / medians['dovecot']:.2f}")
    changed = {u: n for u, n in counts.items() if n != args.messages}
    print("every postoffice mailbox holds its messages" if not changed else f"CHANGED: {changed}")
    if changed or any(r.errors for runs in results.values() for r in runs):
        sys.exit(1)


if __name__ == "__main__":
    main()
