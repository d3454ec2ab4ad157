"""Benchmark: SMTP acceptance until the mailbox, postoffice against the peer Postfix.

    .venv/bin/python bench/smtp_accept.py [--count 2000] [--sessions 10] [--size 10000]
        [--repeat 3] [--peer 127.0.0.1:10025] [--no-peer] [--sink] [--reuse] [--dir DIR]
        [--profile FILE.prof] [--workers N]

Postfix's ``smtp-source`` (Debian package postfix, ``/usr/sbin/smtp-source``)
sends COUNT messages with a SIZE-octet body over SESSIONS parallel SMTP
sessions, one message per connection (``--reuse``: ``-d``, every message of a
session over one connection), first to postoffice (a fresh data directory,
``fsync = true``, ``serve --listen smtp=127.0.0.1:PORT``, recipient
``user@example.test``), then to the local-only Postfix of ``shared/peers``
(127.0.0.1:10025, recipient ``user@example.test``, Maildir
``$PEERS_DIR/postfix-mail/example.test/user/new``), alternating, REPEAT times.

Each rate is counted from the start of smtp-source (its first connection)
until the last message is in the recipient's Maildir ``new/`` (files counted
every 5 ms), as the peers' ``smtp-rate`` does; the accept rate (until
smtp-source's last 250) is printed beside it. After each run it checks that
every accepted message reached the mailbox, exactly once (and, for
postoffice, that the queue is empty). It prints every run, the medians and
the ratio postoffice / Postfix.

With ``--sink``, the issue's reference sink (``smtp_sink.py``: aiosmtpd
writing every message to a Maildir, fsync'd, in one process; ``pip install
-e .[bench]``) takes its turn in every run too, and the ratio postoffice /
sink is printed.

If nothing listens on the peer port it runs the peers' ``start`` (as root;
``setup`` must have been run before). Reading the Postfix Maildir needs
root. Only loopback addresses are used. Not a test: CI does not run it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from serving import POSTOFFICE, Served, add_peers_arguments, postoffice_cli, tree_cpu

ROOT = Path(__file__).resolve().parents[1]
SINK = Path(__file__).resolve().parent / "smtp_sink.py"
SMTP_SOURCE = "/usr/sbin/smtp-source"
SENDER = "sender@example.test"
RCPT = "user@example.test"


@dataclass
class Result:
    name: str
    count: int
    accept_s: float  # until smtp-source's last reply
    mailbox_s: float  # until the last message was in new/
    delivered: int  # new files in new/ after the run settled
    ok: bool
    note: str = ""
    cpu_ms: float | None = None  # server CPU per message (user + system of its processes)

    @property
    def rate(self) -> float:
        return self.count / self.mailbox_s

    @property
    def accept_rate(self) -> float:
        return self.count / self.accept_s

    def line(self, run: int) -> str:
        status = "all in the mailbox" if self.ok else f"PROBLEM: {self.note}"
        if self.cpu_ms is not None:
            status += f"; server CPU {self.cpu_ms:.2f} ms/msg"
        return (
            f"run {run} {self.name:10} {self.count} msgs in {self.mailbox_s:6.2f} s = "
            f"{self.rate:7.1f} msg/s until in the mailbox (accept {self.accept_rate:7.1f} msg/s); "
            f"delivered {self.delivered}/{self.count}: {status}"
        )


def count_files(folder: Path) -> int:
    try:
        with os.scandir(folder) as entries:
            return sum(1 for e in entries if not e.name.startswith("."))
    except FileNotFoundError:
        return 0


def smtp_source(
    args: argparse.Namespace, target: str, rcpt: str, new_dir: Path, name: str
) -> Result:
    """One measured run: smtp-source to TARGET, clock until COUNT more files are in NEW_DIR."""
    cmd = [SMTP_SOURCE, "-c", "-l", str(args.size), "-m", str(args.count), "-s", str(args.sessions)]
    cmd += ["-f", SENDER, "-t", rcpt]
    if args.reuse:
        cmd.append("-d")
    cmd.append(target)
    before = count_files(new_dir)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        # The mailbox is counted only once smtp-source is done: the rate ends at
        # the later of its exit and the last arrival, so counting earlier adds
        # nothing, and listing a folder of thousands of files every 5 ms took
        # a good part of a core from the servers being measured.
        code = process.wait()
        exited = time.monotonic()
        arrived = None
        while code == 0:
            now = time.monotonic()
            if count_files(new_dir) - before >= args.count:
                arrived = now
                break
            if now - exited > args.timeout:
                break
            time.sleep(0.005)
        err.seek(0)
        errors = err.read().decode(errors="replace").strip()
    time.sleep(0.5)  # let a duplicate delivery, if any, show up
    delivered = count_files(new_dir) - before
    end = arrived if arrived is not None else time.monotonic()
    result = Result(name, args.count, exited - started, max(end, exited) - started, delivered, True)
    problems = []
    if code != 0:
        problems.append(f"smtp-source exited {code}: {errors[-500:]}")
    if delivered != args.count:
        problems.append(f"{delivered} files in {new_dir} for {args.count} accepted messages")
    if problems:
        result.ok = False
        result.note = "; ".join(problems)
    return result


class Postoffice:
    """A postoffice server on a fresh data directory, for the whole benchmark."""

    def __init__(
        self,
        work: Path,
        profile: Path | None,
        workers: int | None = None,
        event_loop: str | None = None,
    ) -> None:
        self.data = work / "postoffice"
        self.config = self.data / "postoffice.toml"
        self.cli("init", "--data-dir", str(self.data), "--domain", "example.test", config=False)
        self.cli("user", "add", RCPT, "--password", "bench-password")
        if workers is not None:
            text = self.config.read_text(encoding="utf-8")
            text = text.replace("\nworkers = 0\n", f"\nworkers = {workers}\n", 1)
            self.config.write_text(text, encoding="utf-8")
        if event_loop is not None:
            text = self.config.read_text(encoding="utf-8")
            text = re.sub(r'(?m)^event_loop = "\w+"', f'event_loop = "{event_loop}"', text, count=1)
            self.config.write_text(text, encoding="utf-8")
        settings = tomllib.loads(self.config.read_text(encoding="utf-8"))
        if workers is not None and settings["server"]["workers"] != workers:
            raise SystemExit(f"{self.config}: could not set [server] workers")
        if event_loop is not None and settings["server"]["event_loop"] != event_loop:
            raise SystemExit(f"{self.config}: could not set [server] event_loop")
        if settings["store"]["fsync"] is not True:
            raise SystemExit(f"{self.config}: store.fsync is not true")
        self.new_dir = self.data / "mail" / "example.test" / "user" / "new"
        command = [*POSTOFFICE]
        if profile is not None:
            command = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "postoffice"]
        self.served = Served(command, self.config, self.data, "smtp")
        self.process, self.port = self.served.process, self.served.port

    def cli(self, *args: str, config: bool = True) -> str:
        return postoffice_cli(self.config if config else None, *args)

    def run(self, args: argparse.Namespace) -> Result:
        before = tree_cpu(self.process.pid)
        result = smtp_source(args, f"127.0.0.1:{self.port}", RCPT, self.new_dir, "postoffice")
        result.cpu_ms = 1000 * (tree_cpu(self.process.pid) - before) / args.count
        queue = self.cli("mailq").strip()
        if queue != "Mail queue is empty":
            result.ok = False
            result.note = (result.note + "; " if result.note else "") + "queue not empty"
        return result

    def stop(self) -> None:
        self.served.stop()


class Sink:
    """The reference sink (``smtp_sink.py``) on a free port, for the whole benchmark."""

    def __init__(self, work: Path) -> None:
        maildir = work / "sink"
        self.new_dir = maildir / "new"
        command = [sys.executable, str(SINK), "--maildir", str(maildir)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("port "):
            self.process.kill()
            raise SystemExit("the sink did not start (it needs aiosmtpd: pip install -e .[bench])")
        self.port = int(line.split()[1])

    def run(self, args: argparse.Namespace) -> Result:
        before = tree_cpu(self.process.pid)
        result = smtp_source(args, f"127.0.0.1:{self.port}", RCPT, self.new_dir, "sink")
        result.cpu_ms = 1000 * (tree_cpu(self.process.pid) - before) / args.count
        return result

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            return sock.recv(4).startswith(b"220")
    except OSError:
        return False


def ensure_peer(host: str, port: int, peers: Path) -> None:
    if listening(host, port):
        return
    start = peers / "start"
    print(f"nothing answers on {host}:{port}; running {start}", flush=True)
    subprocess.run([str(start)], check=True)
    if not listening(host, port):
        raise SystemExit(f"the peer Postfix does not answer on {host}:{port}")


def postfix_master() -> int | None:
    """The peer Postfix's master process (its pid file in the queue directory), if running."""
    try:
        queue = subprocess.run(
            ["postconf", "-h", "queue_directory"], capture_output=True, text=True, check=True
        ).stdout.strip()
        pid = int(Path(queue, "pid", "master.pid").read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError, subprocess.CalledProcessError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def run_peer(args: argparse.Namespace, new_dir: Path) -> Result:
    """One run against the peer Postfix, with its CPU time (master and every daemon below)."""
    host, port = args.peer
    master = postfix_master()
    before = None if master is None else tree_cpu(master)
    result = smtp_source(args, f"{host}:{port}", RCPT, new_dir, "postfix")
    if master is not None and before is not None:
        result.cpu_ms = 1000 * (tree_cpu(master) - before) / args.count
    return result


def loopback_target(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host.startswith("127.") or not port.isdigit():
        raise argparse.ArgumentTypeError("the peer must be 127.x.x.x:PORT")
    return host, int(port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--size", type=int, default=10000, help="body octets (smtp-source -l)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--peer", type=loopback_target, default=("127.0.0.1", 10025))
    parser.add_argument("--no-peer", action="store_true", help="measure postoffice only")
    parser.add_argument("--sink", action="store_true", help="measure the reference sink too")
    add_peers_arguments(parser)
    parser.add_argument("--reuse", action="store_true", help="smtp-source -d: one connection each")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for files")
    parser.add_argument("--dir", type=Path, default=None, help="where the data directory goes")
    parser.add_argument("--profile", type=Path, default=None, help="run serve under cProfile")
    parser.add_argument(
        "--workers", type=int, default=None, help="[server] workers (default: the config's 0)"
    )
    parser.add_argument(
        "--event-loop",
        choices=["asyncio", "uvloop", "auto"],
        default=None,
        help="[server] event_loop (default: the config's)",
    )
    args = parser.parse_args()

    if not os.access(SMTP_SOURCE, os.X_OK):
        raise SystemExit(f"{SMTP_SOURCE} missing (Debian package postfix)")
    peer_new = args.peers_dir / "postfix-mail" / "example.test" / "user" / "new"
    if not args.no_peer:
        ensure_peer(*args.peer, args.peers_kit)

    work = Path(tempfile.mkdtemp(prefix="smtp-accept-", dir=args.dir))
    print(
        f"smtp-source: {args.count} messages, {args.size}-octet body, {args.sessions} sessions, "
        f"{'one connection per session' if args.reuse else 'one message per connection'}; "
        f"{os.cpu_count()} CPUs; data in {work}",
        flush=True,
    )
    server = Postoffice(work, args.profile, args.workers, args.event_loop)
    sink: Sink | None = None
    results: dict[str, list[Result]] = {"postoffice": [], "postfix": [], "sink": []}
    names = ["postoffice", *([] if args.no_peer else ["postfix"]), *(["sink"] if args.sink else [])]
    try:
        if args.sink:
            sink = Sink(work)
        for run in range(1, args.repeat + 1):
            shift = (run - 1) % len(names)  # each server goes first in turn
            for name in names[shift:] + names[:shift]:
                if name == "postoffice":
                    result = server.run(args)
                elif name == "sink" and sink is not None:
                    result = sink.run(args)
                else:
                    result = run_peer(args, peer_new)
                results[name].append(result)
                print(result.line(run), flush=True)
    finally:
        server.stop()
        if sink is not None:
            sink.stop()
        shutil.rmtree(work, ignore_errors=True)

    print()
    medians = {}
    for name, runs in results.items():
        if runs:
            medians[name] = statistics.median(r.rate for r in runs)
            accept = statistics.median(r.accept_rate for r in runs)
            every = all(r.ok for r in runs)
            print(
                f"median {name:10} {medians[name]:7.1f} msg/s until in the mailbox "
                f"(accept {accept:7.1f} msg/s) over {len(runs)} runs; every accepted message "
                f"in the mailbox: {'yes' if every else 'NO'}"
            )
    for other in ("postfix", "sink"):
        if other in medians:
            print(f"ratio postoffice / {other}: {medians['postoffice'] / medians[other]:.2f}")
    if not all(r.ok for runs in results.values() for r in runs):
        sys.exit(1)


if __name__ == "__main__":
    main()
