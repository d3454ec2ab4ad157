"""Benchmark: mail relayed between two postoffice hosts found through DNS, end to end.

    .venv/bin/python bench/relay.py [--count 2000] [--size 10000] [--sessions 10]
        [--repeat 1] [--tls may|none] [--workers N] [--dir DIR]

Two fresh postoffice hosts: a.test on 127.0.0.2 and b.test on 127.0.0.3,
both with ``fsync = true``, and a loopback DNS server (``tests/dns_server.py``)
serving b.test's MX. SESSIONS client processes submit COUNT messages of
SIZE octets for bob@b.test to a.test's SMTP port from 127.0.0.1 (a trusted
network, so a.test relays), each session over one connection, pipelined as
an MTA sends (a raw client: its CPU stays small beside the servers'); a.test queues
each message, looks up b.test's MX and delivers it there over SMTP; b.test
queues it and delivers it into bob's Maildir.

It prints the end-to-end rate (from the first submission until the last
message is in bob's ``new/``), the submission rate, and the latency of each
message from the ``250`` of its submission to its arrival in the Maildir
(the file's modification time): p50, p99 and the maximum. Then it checks that
every message arrived exactly once and that both queues are empty.

The peers of ``shared/peers`` cannot take part: their Postfix has no SMTP
client at all (delivery off the machine is disabled by design), so there is
no Postfix-to-Postfix relay to measure beside this one. Only loopback
addresses are used. Not a test: CI does not run it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.queues import Queue
from pathlib import Path

from serving import POSTOFFICE, Served, postoffice_cli, tree_cpu

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.dns_server import LoopbackDnsServer  # noqa: E402

A_HOST, B_HOST = "127.0.0.2", "127.0.0.3"
TOKEN = re.compile(rb"Subject: relay-bench (\d+)\r?\n")


def common_free_port() -> int:
    for _ in range(50):
        with socket.socket() as first:
            first.bind((A_HOST, 0))
            port = int(first.getsockname()[1])
            try:
                with socket.socket() as second:
                    second.bind((B_HOST, port))
            except OSError:
                continue
            return port
    raise SystemExit("no port free on both 127.0.0.2 and 127.0.0.3")


cli = postoffice_cli


def make_host(
    work: Path,
    name: str,
    domain: str,
    user: str,
    delivery: dict[str, str],
    workers: int | None = None,
) -> Path:
    data = work / name
    cli(None, "init", "--data-dir", str(data), "--domain", domain, "--hostname", f"mail.{domain}")
    config = data / "postoffice.toml"
    cli(config, "user", "add", f"{user}@{domain}", "--password-stdin", stdin="pw\n")
    text = config.read_text(encoding="utf-8")
    for key, value in delivery.items():  # keys init writes into [delivery] only
        text, count = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
        if count != 1:
            raise SystemExit(f"{config}: no single {key} line to set")
    if workers is not None:
        text, count = re.subn(r"(?m)^workers = .*$", f"workers = {workers}", text)
        if count != 1:
            raise SystemExit(f"{config}: no single workers line to set")
    config.write_text(text, encoding="utf-8")
    return config


@dataclass
class Sent:
    times: dict[int, float]  # message number -> time.time() of its 250
    errors: int
    first_error: str


def read_reply(sock: socket.socket, buffer: bytearray) -> bytes:
    """The next whole SMTP reply (its last line), reading as needed."""
    while True:
        end = buffer.find(b"\r\n")
        while end >= 0:
            line = bytes(buffer[: end + 2])
            del buffer[: end + 2]
            if line[3:4] != b"-":
                return line
            end = buffer.find(b"\r\n")
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        buffer += data


def submit(numbers: list[int], port: int, size: int, results: Queue[Sent]) -> None:
    """One client process: its messages over one connection, as an MTA sends them
    (PIPELINING: MAIL, RCPT and DATA in one write, RFC 2920), each 250's time noted.
    A raw client, so that the load generator's own CPU stays small beside the
    servers' on the same cores."""
    body = ("x" * 76 + "\r\n") * max(1, size // 78)
    times: dict[int, float] = {}
    errors = 0
    first = ""
    sock = socket.create_connection((A_HOST, port), timeout=60, source_address=("127.0.0.1", 0))
    buffer = bytearray()
    read_reply(sock, buffer)  # 220
    sock.sendall(b"EHLO bench.a.test\r\n")
    read_reply(sock, buffer)
    envelope = b"MAIL FROM:<alice@a.test>\r\nRCPT TO:<bob@b.test>\r\nDATA\r\n"
    for number in numbers:
        message = (
            f"From: alice@a.test\r\nTo: bob@b.test\r\nSubject: relay-bench {number}\r\n"
            f"Message-ID: <{number}.bench@a.test>\r\n\r\n{body}.\r\n"
        ).encode()
        sock.sendall(envelope)
        replies = [read_reply(sock, buffer) for _ in range(3)]
        if [r[:3] for r in replies] != [b"250", b"250", b"354"]:
            errors += 1
            first = first or repr(replies)
            if replies[2][:3] == b"354":
                sock.sendall(b".\r\n")
                read_reply(sock, buffer)
            continue
        sock.sendall(message)
        reply = read_reply(sock, buffer)
        if reply[:3] == b"250":
            times[number] = time.time()
        else:
            errors += 1
            first = first or reply.decode(errors="replace")
    sock.sendall(b"QUIT\r\n")
    read_reply(sock, buffer)
    sock.close()
    results.put(Sent(times, errors, first))


def arrivals(new_dir: Path) -> dict[int, list[float]]:
    """Message number -> modification times of its files in ``new_dir``."""
    found: dict[int, list[float]] = {}
    with os.scandir(new_dir) as entries:
        for entry in entries:
            with open(entry.path, "rb") as file:
                head = file.read(4096)
            match = TOKEN.search(head)
            if match:
                found.setdefault(int(match.group(1)), []).append(entry.stat().st_mtime)
    return found


def count_files(folder: Path) -> int:
    try:
        with os.scandir(folder) as entries:
            return sum(1 for _ in entries)
    except FileNotFoundError:
        return 0


def queued(spool: Path) -> int:
    """Messages in a queue: its control files (``qfID``)."""
    with os.scandir(spool) as entries:
        return sum(1 for e in entries if e.name.startswith("qf"))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run(args: argparse.Namespace, work: Path, run_number: int) -> bool:
    port = common_free_port()
    with LoopbackDnsServer() as dns_server:
        dns_server.add("b.test", "MX", "10 mail.b.test.")
        dns_server.add("mail.b.test", "A", B_HOST)
        dns_server.add("a.test", "MX", "10 mail.a.test.")
        dns_server.add("mail.a.test", "A", A_HOST)
        nameserver = f'["127.0.0.1:{dns_server.port}"]'
        common = {"nameservers": nameserver, "smtp_port": str(port), "tls": f'"{args.tls}"'}
        a_config = make_host(
            work,
            f"a{run_number}",
            "a.test",
            "alice",
            {**common, "bind_address": f'"{A_HOST}"'},
            args.workers,
        )
        b_config = make_host(
            work,
            f"b{run_number}",
            "b.test",
            "bob",
            {**common, "bind_address": f'"{B_HOST}"'},
            args.workers,
        )
        a = Served([*POSTOFFICE], a_config, a_config.parent, "smtp", host=A_HOST, port=port)
        try:
            b = Served([*POSTOFFICE], b_config, b_config.parent, "smtp", host=B_HOST, port=port)
        except BaseException:
            a.stop()
            raise
        new_dir = b_config.parent / "mail" / "b.test" / "bob" / "new"
        try:
            return measure(args, a, b, port, new_dir, run_number)
        finally:
            a.stop()
            b.stop()


def measure(
    args: argparse.Namespace, a: Served, b: Served, port: int, new_dir: Path, run_number: int
) -> bool:
    context = multiprocessing.get_context("fork")
    results: Queue[Sent] = context.Queue()
    numbers = list(range(args.count))
    shares = [numbers[i :: args.sessions] for i in range(args.sessions)]
    cpu_before = (tree_cpu(a.process.pid), tree_cpu(b.process.pid))
    started = time.time()
    processes = [
        context.Process(target=submit, args=(share, port, args.size, results)) for share in shares
    ]
    for process in processes:
        process.start()
    sent = [results.get(timeout=600) for _ in processes]
    submitted = time.time()
    for process in processes:
        process.join(timeout=30)
    times = {n: t for s in sent for n, t in s.times.items()}
    deadline = time.monotonic() + args.timeout
    while count_files(new_dir) < len(times) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # a duplicate, if any, shows up
    cpu_a = tree_cpu(a.process.pid) - cpu_before[0]
    cpu_b = tree_cpu(b.process.pid) - cpu_before[1]
    arrived = arrivals(new_dir) if new_dir.exists() else {}
    last = max((t for ts in arrived.values() for t in ts), default=submitted)
    latencies = [min(arrived[n]) - t for n, t in times.items() if n in arrived]
    duplicates = sum(len(ts) - 1 for ts in arrived.values())
    missing = len(times) - sum(1 for n in times if n in arrived)
    errors = sum(s.errors for s in sent)
    elapsed = last - started
    print(
        f"run {run_number}: {len(times)} messages of {args.size} octets, {args.sessions} sessions: "
        f"end to end {len(times) / elapsed:7.1f} msg/s ({elapsed:.2f} s), "
        f"submission {len(times) / (submitted - started):7.1f} msg/s; "
        f"servers' CPU a {1000 * cpu_a / max(1, len(times)):.2f} + "
        f"b {1000 * cpu_b / max(1, len(times)):.2f} ms/msg"
    )
    if latencies:
        print(
            f"  latency 250 -> mailbox: p50 {1000 * percentile(latencies, 0.5):.0f} ms, "
            f"p99 {1000 * percentile(latencies, 0.99):.0f} ms, max {1000 * max(latencies):.0f} ms"
        )
    queues = [queued(served.data / "spool" / "mqueue") for served in (a, b)]
    ok = missing == 0 and duplicates == 0 and errors == 0
    print(
        f"  delivered exactly once: {'yes' if ok else 'NO'} "
        f"(missing {missing}, duplicates {duplicates}, submission errors {errors}"
        + (f": {next(s.first_error for s in sent if s.first_error)}" if errors else "")
        + f"); messages left in the queues: a={queues[0]} b={queues[1]}"
    )
    return ok and queues == [0, 0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--workers", type=int, default=None, help="[server] workers per host")
    parser.add_argument(
        "--tls", choices=("may", "none"), default="may", help="STARTTLS between the hosts"
    )
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="relay-bench-", dir=args.dir))
    try:
        results = [run(args, work, number) for number in range(1, args.repeat + 1)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not all(results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
