"""Benchmark: one big mailbox, postoffice against the peer Dovecot, command by command.

    .venv/bin/python bench/imap_big.py [--count 100000] [--repeat 3] [--peer-port 10143]
        [--no-peer] [--dir DIR]

One INBOX of COUNT generated messages (``messages.make_varied_message``:
sizes from 2 to 50 KB, replies with In-Reply-To/References, Cc, every 7th
message a multipart with an attachment) is put, byte for byte the same, into
a fresh postoffice store (through the store API, without fsync: the server is
not running yet) and into the Maildir of ``testuser100`` of the local-only
Dovecot of ``shared/peers`` (files in ``cur/`` with the message's date as
mtime; Dovecot's index files of that Maildir removed first).

Then, one client at a time, each server is timed on:

    SELECT INBOX
    UID FETCH 1:* (UID FLAGS)
    FETCH 1:500 (ENVELOPE BODYSTRUCTURE)
    SEARCH SUBJECT <a word of the subjects>
    SORT (DATE) UTF-8 ALL
    THREAD REFERENCES UTF-8 ALL
    SELECT INBOX (QRESYNC (uidvalidity modseq)) after 100 flag changes made by
        another session since the first session's SELECT
    THREAD REFERENCES UTF-8 ALL again, after another session expunged the last
        message (postoffice keeps the answer of an unchanged message set: this
        is the figure of a THREAD it has to work out again)

Before the timed rounds each command is sent once, untimed (a server's first
look builds its index and caches: Dovecot's index, postoffice's part trees
and header values); that first round's times are printed too. Each round
opens one session per command (LOGIN, SELECT, the command), the two servers
alternating, REPEAT rounds; the medians and the ratio postoffice / Dovecot
are printed for each command (the target of issue 7: no command over 2x).
A command a server refuses is shown as "refused" with its answer.

The client is the raw-socket client of ``imap_load`` (it skips literals by
length and parses nothing else), so its cost is small beside the servers'.
Only loopback addresses are used. Reading and writing the Dovecot Maildir
needs root. Not a test: CI does not run it.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import pwd
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from imap_load import HOST, PASSWORD, ImapError, RawImap, set_section
from imap_load import answers_imap as imap_answers
from messages import make_varied_message
from serving import POSTOFFICE, Served, add_peers_arguments, postoffice_cli, tree_cpu

from postoffice.config.loader import load_config
from postoffice.store import StoreFactory
from postoffice.store.layout import layout_from_config

DOMAIN = "example.test"
PEER_USER = "testuser100"
SUBJECT_WORD = "budget"
CHANGES = 100  # flag changes between the two QRESYNC sessions


def generate(count: int) -> Iterator[tuple[bytes, float]]:
    """The mailbox: (message, its date as a POSIX time), the same every run."""
    rng = random.Random(20261127)
    for number in range(1, count + 1):
        yield make_varied_message(rng, number, rng.randint(2048, 51200))


async def fill_postoffice(config: Path, user: str, count: int) -> None:
    loaded = load_config(config)
    layout = dataclasses.replace(layout_from_config(loaded.config, loaded.paths), fsync=False)
    store = await StoreFactory(layout).open(user)
    try:
        for data, _date in generate(count):
            await store.append("INBOX", data)
    finally:
        await store.close()


def fill_dovecot(maildir: Path, count: int) -> None:
    owner = pwd.getpwnam("vmail")
    maildir.mkdir(parents=True, exist_ok=True)
    for folder in (maildir.parent, maildir):
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    for sub in ("cur", "new", "tmp"):
        folder = maildir / sub
        folder.mkdir(parents=True, exist_ok=True)
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        for entry in os.scandir(folder):
            os.unlink(entry.path)
    for entry in os.scandir(maildir):
        if entry.name.startswith("dovecot") and entry.is_file(follow_symlinks=False):
            os.unlink(entry.path)
    for number, (data, date) in enumerate(generate(count), start=1):
        path = maildir / "cur" / f"{int(date)}.M{number:06d}P1Q1.imap-big:2,"
        path.write_bytes(data)
        os.chown(path, owner.pw_uid, owner.pw_gid)
        os.utime(path, (date, date))


class Server:
    def __init__(self, name: str, port: int, user: str, cpu: Callable[[], float]) -> None:
        self.name, self.port, self.user, self.cpu = name, port, user, cpu

    def session(self) -> RawImap:
        client = RawImap(self.port)
        client.command(b"LOGIN " + self.user.encode() + b" " + PASSWORD.encode())
        return client


def _select_state(lines: list[bytes]) -> tuple[int, int]:
    text = b"\n".join(lines)
    validity = re.search(rb"UIDVALIDITY (\d+)", text)
    modseq = re.search(rb"HIGHESTMODSEQ (\d+)", text)
    if validity is None or modseq is None:
        raise ImapError("SELECT gave no UIDVALIDITY or HIGHESTMODSEQ")
    return int(validity.group(1)), int(modseq.group(1))


def qresync_reselect(server: Server, round_number: int) -> float:
    """Seconds for a QRESYNC SELECT after CHANGES flag changes by another session."""
    first = server.session()
    try:
        first.command(b"ENABLE QRESYNC")
        validity, modseq = _select_state(first.command(b"SELECT INBOX"))
    finally:
        first.close()
    other = server.session()
    try:
        lines = other.command(b"SELECT INBOX")
        exists = next(int(line.split()[1]) for line in lines if line.endswith(b" EXISTS"))
        step = max(1, exists // CHANGES)
        sign = b"+" if round_number % 2 == 0 else b"-"
        for number in range(1, min(exists, step * CHANGES) + 1, step):
            other.command(b"STORE %d %sFLAGS.SILENT (\\Flagged)" % (number, sign))
    finally:
        other.close()
    again = server.session()
    try:
        again.command(b"ENABLE QRESYNC")
        started = time.monotonic()
        again.command(b"SELECT INBOX (QRESYNC (%d %d))" % (validity, modseq))
        return time.monotonic() - started
    finally:
        again.close()


COMMANDS: tuple[tuple[str, bytes], ...] = (
    ("SELECT INBOX", b""),
    ("UID FETCH 1:* (UID FLAGS)", b"UID FETCH 1:* (UID FLAGS)"),
    ("FETCH 1:500 (ENVELOPE BODYSTRUCTURE)", b"FETCH 1:500 (ENVELOPE BODYSTRUCTURE)"),
    (f"SEARCH SUBJECT {SUBJECT_WORD}", b"SEARCH SUBJECT " + SUBJECT_WORD.encode()),
    ("SORT (DATE) UTF-8 ALL", b"SORT (DATE) UTF-8 ALL"),
    ("THREAD REFERENCES UTF-8 ALL", b"THREAD REFERENCES UTF-8 ALL"),
)
QRESYNC = "QRESYNC reselect after 100 changes"
THREAD_AFTER_EXPUNGE = "THREAD after an expunge"


def thread_after_expunge(server: Server, round_number: int) -> float | str:
    """Seconds for THREAD REFERENCES in a new session after another session
    expunged the mailbox's last message (the message set changed)."""
    other = server.session()
    try:
        lines = other.command(b"SELECT INBOX")
        exists = next(int(line.split()[1]) for line in lines if line.endswith(b" EXISTS"))
        other.command(b"STORE %d +FLAGS.SILENT (\\Deleted)" % exists)
        other.command(b"EXPUNGE")
    finally:
        other.close()
    return timed(server, b"THREAD REFERENCES UTF-8 ALL", round_number)


def timed(server: Server, command: bytes, round_number: int) -> float | str:
    """Seconds for ``command`` in a new session with INBOX selected (or the refusal)."""
    client = server.session()
    try:
        started = time.monotonic()
        client.command(b"SELECT INBOX")
        if not command:
            return time.monotonic() - started
        started = time.monotonic()
        try:
            client.command(command)
        except ImapError as refusal:
            return f"refused: {str(refusal)[-60:]}"
        return time.monotonic() - started
    finally:
        client.close()


def one_round(server: Server, round_number: int) -> dict[str, float | str]:
    figures: dict[str, float | str] = {}
    for name, command in COMMANDS:
        figures[name] = timed(server, command, round_number)
    figures[QRESYNC] = qresync_reselect(server, round_number)
    figures[THREAD_AFTER_EXPUNGE] = thread_after_expunge(server, round_number)
    return figures


def show(value: float | str) -> str:
    return f"{1000 * value:10.1f} ms" if isinstance(value, float) else f"{value:>13}"


def start_postoffice(work: Path, count: int) -> tuple[Server, Served]:
    data = work / "postoffice"
    config = data / "postoffice.toml"
    user = f"big@{DOMAIN}"

    def cli(*args: str, with_config: bool = True) -> str:
        return postoffice_cli(config if with_config else None, *args)

    cli("init", "--data-dir", str(data), "--domain", DOMAIN, with_config=False)
    cli("user", "add", user, "--password", PASSWORD)
    set_section(config, "imap", {"plaintext_auth_on_loopback": "true"})
    started = time.monotonic()
    asyncio.run(fill_postoffice(config, user, count))
    print(f"postoffice: {count} messages appended in {time.monotonic() - started:.0f} s")
    served = Served([*POSTOFFICE], config, data, "imap")
    pid = served.process.pid
    return Server("postoffice", served.port, user, lambda: tree_cpu(pid)), served


def start_dovecot(args: argparse.Namespace) -> Server:
    env = {**os.environ, "PEERS_DIR": str(args.peers_dir)}
    if not imap_answers(args.peer_port):
        subprocess.run([str(args.peers_kit / "start")], check=True, env=env)
        if not imap_answers(args.peer_port):
            raise SystemExit(f"the peer Dovecot does not answer on {HOST}:{args.peer_port}")
    maildir = args.peers_dir / "dovecot-mail" / PEER_USER / "Maildir"
    started = time.monotonic()
    fill_dovecot(maildir, args.count)
    print(f"dovecot: {args.count} messages written in {time.monotonic() - started:.0f} s")
    pidfile = args.peers_dir / "dovecot" / "run" / "master.pid"
    pid = int(pidfile.read_text(encoding="ascii").split()[0])
    return Server("dovecot", args.peer_port, PEER_USER, lambda: tree_cpu(pid))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--peer-port", type=int, default=10143)
    parser.add_argument("--no-peer", action="store_true")
    add_peers_arguments(parser)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    if args.count < CHANGES:
        parser.error(f"--count must be at least {CHANGES}")
    work = Path(tempfile.mkdtemp(prefix="imap-big-", dir=args.dir))
    print(f"imap big: one INBOX of {args.count} messages; {os.cpu_count()} CPUs; data in {work}")
    servers: list[Server] = []
    served = None
    try:
        if not args.no_peer:
            servers.append(start_dovecot(args))
        postoffice, served = start_postoffice(work, args.count)
        servers.insert(0, postoffice)
        figures: dict[str, dict[str, list[float | str]]] = {s.name: {} for s in servers}
        for round_number in range(args.repeat + 1):
            order = servers if round_number % 2 == 0 else servers[::-1]
            for server in order:
                before = server.cpu()
                started = time.monotonic()
                got = one_round(server, round_number)
                label = "first look" if round_number == 0 else f"round {round_number}"
                print(
                    f"{label:10} {server.name:10} {time.monotonic() - started:6.1f} s, "
                    f"server CPU {server.cpu() - before:6.1f} s",
                    flush=True,
                )
                for name, value in got.items():
                    if round_number == 0:
                        print(f"    {name:42} {show(value)}")
                    else:
                        figures[server.name].setdefault(name, []).append(value)
        print("\nmedians over the timed rounds:")
        header = "".join(f"{s.name:>14}" for s in servers)
        print(f"{'command':44}{header}{'ratio':>8}" if len(servers) > 1 else f"{'':44}{header}")
        for name in [n for n, _ in COMMANDS] + [QRESYNC, THREAD_AFTER_EXPUNGE]:
            cells = []
            medians: list[float | None] = []
            for server in servers:
                values = figures[server.name][name]
                numbers = [v for v in values if isinstance(v, float)]
                if len(numbers) == len(values):
                    median = statistics.median(numbers)
                    medians.append(median)
                    cells.append(show(median))
                else:
                    medians.append(None)
                    cells.append(f"{'refused':>13}")
            ratio = ""
            if len(medians) == 2 and medians[0] is not None and medians[1]:
                ratio = f"{medians[0] / medians[1]:7.2f}x"
            print(f"{name:44}" + "".join(f"{c:>14}" for c in cells) + f"{ratio:>8}")
    finally:
        if served is not None:
            served.stop()
        if not os.environ.get("IMAP_BIG_KEEP"):
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
