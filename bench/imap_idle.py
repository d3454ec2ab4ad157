"""Benchmark: thousands of IMAP clients in IDLE, postoffice against the peer Dovecot.

    .venv/bin/python bench/imap_idle.py [--clients 10000] [--mailboxes 100] [--rounds 20]
        [--concurrency 200] [--timeout 40] [--quiet 10] [--max-errors 200]
        [--workers N] [--peer-port 10143] [--no-peer] [--dir DIR]

One client process (asyncio, raw sockets, one ``asyncio.Protocol`` a
connection) opens CLIENTS connections, at most CONCURRENCY of them logging in
at a time. Connection i logs in as the user of mailbox i mod MAILBOXES, so
every mailbox has CLIENTS / MAILBOXES clients. Each does LOGIN, SELECT INBOX,
IDLE, and waits for the ``+`` continuation (``+ idling``); then it stays in
IDLE until the end. With every client idle (and after QUIET seconds of
nothing happening, whose server CPU is printed), it reads the server's memory:
the sum of VmRSS of the server's process tree (``/proc/PID/status``; pages
shared between processes are counted once per process) and the sum of Pss
(``/proc/PID/smaps_rollup``: shared pages divided among their sharers).

Then ROUNDS rounds, one at a time: one mailbox (a different one each round
until all were used) gets one new message, and the bench takes, for every
idle client of that mailbox, the time of its first ``* n EXISTS`` with n above
what it had seen, minus the time the message was delivered:

- postoffice: the message is sent over SMTP (the same asyncio loop, one
  connection, EHLO/MAIL/RCPT/DATA) to its ``smtp`` listener; "delivered" is
  the arrival of the ``250`` reply to the DATA's end. The push runs through
  postoffice's change hub and, for clients held by another worker process,
  the change relay.
- Dovecot: the peer Postfix delivers into its own store, not Dovecot's
  (``shared/peers/README.md``), so the bench does a local delivery agent's
  work itself: it writes the message into ``Maildir/tmp/`` of testuserN,
  fsyncs it, chowns it to vmail and renames it into ``Maildir/new/``;
  "delivered" is the return of that rename. Dovecot's imap processes learn of
  it through inotify on the Maildir, or, without inotify, by polling every
  ``mailbox_idle_check_interval`` (30 s by default).

All times are ``time.monotonic()`` in the client process, taken when the
event loop receives the data (``data_received``), so a delay includes the
client's own latency. A delay may be negative when the push is read before
the ``250``; it is kept as it is. A client without its EXISTS after TIMEOUT
seconds counts as missed. It prints p50, p99 and max of all delays, the
misses, the clients actually idle, the setup errors (by kind), the clients
still connected at the end, and the ratio postoffice / Dovecot.

1. postoffice: a fresh data directory (``init``), users idle1..idleM at
   example.test (password ``pass``, made in-process through the account
   database), ``[imap] plaintext_auth_on_loopback = true`` (the peer has no
   TLS) and ``max_connections_per_client`` above CLIENTS (all come from
   127.0.0.1), ``serve`` on free ports. Logins check argon2 only for a
   password a worker has not verified before (the account database's cache),
   so the opens cost about MAILBOXES x workers argon2 checks; the server CPU
   per login is printed beside the cost of one argon2 check in this process.
2. The local-only Dovecot of ``shared/peers`` (IMAP 127.0.0.1:10143,
   testuser1..M, password ``pass``), with its configuration as it is: one
   ``imap`` process per client (``service imap { process_limit = 1024 }``;
   each holds a connection to the ``stats`` service, whose ``client_limit``
   is ``default_client_limit``, 1000), one ``imap-login`` process per login.
   If it stops accepting below CLIENTS, the bench stops opening after
   MAX_ERRORS failed opens and measures the clients it has; the failures are
   printed by kind, and Dovecot's new log warnings and errors are counted by
   kind. Messages the bench wrote into the Dovecot Maildirs are removed at
   the end.

The client raises its own open-files limit to the hard limit. Only loopback
addresses are used. Not a test: CI does not run it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pwd
import re
import resource
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from argon2 import PasswordHasher
from idle_clients import MARK, PASSWORD, Bench, Result, message, print_result
from idle_wire import (
    HOST,
    smtp_send,
    tree_pids,
)
from imap_load import answers_imap, set_section
from serving import POSTOFFICE, Served, add_peers_arguments, postoffice_cli

from postoffice.config.loader import load_config
from postoffice.core.address import parse_address
from postoffice.directory.directory import Directory
from postoffice.store import StoreFactory
from postoffice.store.layout import layout_from_config

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = "example.test"


# -- postoffice -------------------------------------------------------------------------------


class Postoffice:
    def __init__(self, work: Path, args: argparse.Namespace) -> None:
        self.data = work / "postoffice"
        self.config = self.data / "postoffice.toml"
        self.users = [f"idle{n}@{DOMAIN}" for n in range(1, args.mailboxes + 1)]
        self.cli("init", "--data-dir", str(self.data), "--domain", DOMAIN, config=False)
        values = {
            "plaintext_auth_on_loopback": "true",
            "max_connections_per_client": str(min(65535, args.clients + 100)),
        }
        set_section(self.config, "imap", values)
        if args.workers is not None:
            set_section(self.config, "server", {"workers": str(args.workers)})
        loaded = load_config(self.config)
        directory = Directory(loaded.config, loaded.paths)
        factory = StoreFactory(layout_from_config(loaded.config, loaded.paths))
        try:
            for user in self.users:
                account = directory.accounts.add_user(parse_address(user), PASSWORD)
                asyncio.run(factory.provision(account.address))
        finally:
            directory.close()
        self.served = Served([*POSTOFFICE], self.config, self.data, "imap")
        log = (self.data / "log" / "maillog").read_text(encoding="utf-8")
        found = re.search(rf"listening: smtp on {re.escape(HOST)}:(\d+)", log)
        if not found:
            self.stop()
            raise SystemExit("postoffice: no smtp listener in the maillog")
        self.smtp_port = int(found.group(1))
        workers = re.findall(r"open files[^\n]*", log)
        if workers:
            print(f"postoffice maillog: {workers[0].strip()}")

    def cli(self, *args: str, config: bool = True) -> str:
        return postoffice_cli(self.config if config else None, *args)

    def bench(self, args: argparse.Namespace) -> Bench:
        async def deliver(mailbox: int, number: int) -> float:
            rcpt = self.users[mailbox]
            return await smtp_send(self.smtp_port, rcpt, message(rcpt, number))

        return Bench(
            "postoffice", self.served.port, self.users, self.served.process.pid, deliver, args
        )

    def stop(self) -> None:
        self.served.stop()


# -- Dovecot ----------------------------------------------------------------------------------


class Dovecot:
    def __init__(self, args: argparse.Namespace) -> None:
        self.port = args.peer_port
        self.users = [f"testuser{n}" for n in range(1, args.mailboxes + 1)]
        self.mail = args.peers_dir / "dovecot-mail"
        self.log = args.peers_dir / "dovecot" / "log" / "dovecot.log"
        env = {**os.environ, "PEERS_DIR": str(args.peers_dir)}
        if not answers_imap(self.port):
            subprocess.run([str(args.peers_kit / "start")], check=True, env=env)
            if not answers_imap(self.port):
                raise SystemExit(f"the peer Dovecot does not answer on {HOST}:{self.port}")
        pidfile = args.peers_dir / "dovecot" / "run" / "master.pid"
        self.pid = int(pidfile.read_text(encoding="ascii").split()[0])
        vmail = pwd.getpwnam("vmail")
        self.owner = (vmail.pw_uid, vmail.pw_gid)
        self.log_start = self.log.stat().st_size if self.log.exists() else 0

    def deliver_file(self, mailbox: int, number: int) -> float:
        """What a local delivery agent does: tmp/, fsync, rename into new/."""
        maildir = self.mail / self.users[mailbox] / "Maildir"
        now = time.time()
        name = f"{int(now)}.M{int(now * 1e6) % 1000000}P{os.getpid()}Q{number}.{MARK}"
        temporary = maildir / "tmp" / name
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(descriptor, message(f"{self.users[mailbox]}@{DOMAIN}", number))
            os.fchown(descriptor, *self.owner)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.rename(temporary, maildir / "new" / name)
        return time.monotonic()

    def bench(self, args: argparse.Namespace) -> Bench:
        async def deliver(mailbox: int, number: int) -> float:
            return self.deliver_file(mailbox, number)

        return Bench("dovecot", self.port, self.users, self.pid, deliver, args)

    def imap_processes(self) -> int:
        count = 0
        for each in tree_pids(self.pid):
            try:
                if Path(f"/proc/{each}/comm").read_text("ascii").strip() == "imap":
                    count += 1
            except (FileNotFoundError, ProcessLookupError):
                continue
        return count

    def log_summary(self) -> Counter[str]:
        """Dovecot's warnings and errors since the bench began, by kind."""
        kinds: Counter[str] = Counter()
        try:
            with self.log.open("rb") as handle:
                handle.seek(self.log_start)
                text = handle.read().decode("utf-8", "replace")
        except OSError:
            return kinds
        for line in text.splitlines():
            found = re.search(r"(Warning|Error|Fatal|Panic): (.*)", line)
            if found:
                kind = re.sub(r"\d+", "N", found.group(0))
                kinds[re.sub(r"\([^)]*@[^)]*\)", "(..)", kind)[:140]] += 1
        return kinds

    def clean(self) -> int:
        """Remove the messages the bench wrote (from new/ or, once seen, cur/)."""
        removed = 0
        for user in self.users:
            for folder in ("new", "cur", "tmp"):
                directory = self.mail / user / "Maildir" / folder
                with os.scandir(directory) as entries:
                    for entry in entries:
                        if MARK in entry.name:
                            os.unlink(entry.path)
                            removed += 1
        return removed


# -- main -------------------------------------------------------------------------------------


def raise_open_files() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def argon2_cost() -> float:
    """CPU seconds of one argon2 check with the library's defaults, as the server does."""
    hasher = PasswordHasher()
    stored = hasher.hash(PASSWORD)
    started = time.process_time()
    for _ in range(3):
        hasher.verify(stored, PASSWORD)
    return (time.process_time() - started) / 3


async def measure(bench: Bench, settle: Callable[[], None] | None = None) -> Result:
    try:
        return await bench.run()
    finally:
        bench.close()
        await asyncio.sleep(0.5)  # let the loop close the sockets
        if settle is not None:
            await asyncio.to_thread(settle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=10000)
    parser.add_argument("--mailboxes", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=200, help="logins at once")
    parser.add_argument("--timeout", type=float, default=40.0, help="wait for EXISTS, s")
    parser.add_argument("--setup-timeout", type=float, default=60.0, help="per open, s")
    parser.add_argument("--quiet", type=float, default=10.0, help="idle seconds before RSS")
    parser.add_argument("--pause", type=float, default=0.3, help="between rounds, s")
    parser.add_argument("--max-errors", type=int, default=200, help="stop opening after")
    parser.add_argument("--workers", type=int, default=None, help="postoffice [server] workers")
    parser.add_argument("--peer-port", type=int, default=10143)
    parser.add_argument("--no-peer", action="store_true")
    add_peers_arguments(parser)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    if not 1 <= args.mailboxes <= 100:
        parser.error("--mailboxes must be 1 to 100 (the peer has testuser1..100)")
    limit = raise_open_files()
    if limit < args.clients + 100:
        parser.error(f"open-files limit {limit}: too low for {args.clients} clients")
    cost = argon2_cost()
    print(
        f"imap idle: {args.clients} clients on {args.mailboxes} mailboxes, {args.rounds} rounds; "
        f"{os.cpu_count()} CPUs; client open-files limit {limit}; "
        f"one argon2 check here: {1000 * cost:.0f} ms of CPU",
        flush=True,
    )
    began = time.monotonic()
    results: dict[str, Result] = {}
    peer = None if args.no_peer else Dovecot(args)
    work = Path(tempfile.mkdtemp(prefix="imap-idle-", dir=args.dir))
    try:
        server = Postoffice(work, args)
        try:
            results["postoffice"] = asyncio.run(measure(server.bench(args)))
            print(
                f"postoffice: logins cost {results['postoffice'].open_cpu / cost:.0f} argon2 "
                "checks' worth of server CPU in all",
                flush=True,
            )
        finally:
            server.stop()
        if peer is not None:
            print(f"dovecot: {peer.imap_processes()} imap processes before", flush=True)

            def settle() -> None:
                for _ in range(60):
                    if peer.imap_processes() == 0:
                        break
                    time.sleep(0.5)

            try:
                bench = peer.bench(args)
                results["dovecot"] = asyncio.run(measure(bench, settle))
                print(f"dovecot: {peer.imap_processes()} imap processes after the clients left")
            finally:
                print(f"dovecot: removed {peer.clean()} bench messages from the Maildirs")
                for kind, count in peer.log_summary().most_common(8):
                    print(f"    dovecot log: {count} x {kind}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    for result in results.values():
        print_result(result)
    if len(results) == 2:
        ours, theirs = results["postoffice"], results["dovecot"]
        mine, peers = ours.figures(), theirs.figures()
        rss = ours.idle_memory.rss_kib / max(1, theirs.idle_memory.rss_kib)
        pss = ours.idle_memory.pss_kib / max(1, theirs.idle_memory.pss_kib)
        if mine and peers:
            print(
                f"ratio postoffice / dovecot: p99 delay {mine[1] / peers[1]:.2f}, "
                f"p50 {mine[0] / peers[0]:.2f}; RSS {rss:.2f}, PSS {pss:.2f} "
                f"(at {ours.idle} against {theirs.idle} idle clients)"
            )
    print(f"whole run: {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
