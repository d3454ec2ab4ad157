"""Benchmark: local delivery into the mailbox store, and listing a large index.

    .venv/bin/python bench/store_deliver.py [--count 10000] [--size 10240] [--dir DIR]
        [--concurrency 1] [--index-count 100000]

1. Delivers COUNT messages of SIZE octets into alice's INBOX, once in Maildir
   and once in mbox, with fsync on (the production setting), and prints the
   messages per second of each. With --concurrency N, N deliveries run at
   once (as N SMTP sessions would).
2. Registers INDEX_COUNT messages in the SQLite index only (no message
   files) and times listing them the way ``messages()`` does.
3. If ``dovecot-lda`` is installed, delivers the same messages with it into
   a Maildir and prints the ratio, as a peer figure.

Not a test: CI does not run it. Results depend on the disk (fsync cost).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from postoffice.store import StoreFactory, StoreLayout
from postoffice.store.convert import message_infos
from postoffice.store.index import MailIndex, NewMessage

ADDRESS = "alice@example.test"


def make_message(n: int, size: int) -> bytes:
    head = (
        f"From: bench@example.net\r\nTo: {ADDRESS}\r\nSubject: bench {n}\r\n"
        f"Message-ID: <{n}.bench@example.net>\r\n\r\n"
    ).encode()
    line = b"From the benchmark, a body line of ordinary text for delivery.\r\n"
    body = (line * (size // len(line) + 1))[: max(size - len(head), 0)]
    return head + body


async def deliver_all(layout: StoreLayout, count: int, size: int, concurrency: int) -> float:
    store = await StoreFactory(layout).open(ADDRESS)
    messages = iter(range(count))

    async def worker() -> None:
        for n in messages:
            await store.deliver(make_message(n, size), sender="bench@example.net")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    status = await store.status("INBOX")
    await store.close()
    if status.messages != count:
        raise SystemExit(f"{layout.format}: expected {count} messages, found {status.messages}")
    return elapsed


def index_only(directory: Path, count: int) -> tuple[float, float]:
    index = MailIndex.open(directory / "bench-index.sqlite3", durable=True)
    started = time.perf_counter()
    with index.transaction():
        box = index.create_mailbox("INBOX", 1)
        for n in range(count):
            index.add_message(
                box.id,
                NewMessage(
                    flags=n & 0b10000,
                    keywords="",
                    internal_date=1_700_000_000.0 + n,
                    size=10240,
                    locator=f"{n}.bench",
                    filename=f"new/{n}.bench",
                ),
            )
    appended = time.perf_counter() - started
    started = time.perf_counter()
    infos = message_infos(index.summaries(box.id))
    listed = time.perf_counter() - started
    index.close()
    if len(infos) != count:
        raise SystemExit(f"index: expected {count} rows, found {len(infos)}")
    return appended, listed


PEER_USER = "testuser100"


def dovecot_peer(count: int, size: int) -> float | None:
    """Seconds for dovecot-lda to deliver the same messages, or None without the peer.

    Uses the local-only Dovecot of ``shared/peers`` (``setup`` then ``start``;
    ``PEERS_DIR`` as there): its auth socket must be up for ``-d USER``. The
    messages go to the peer user ``testuser100``, whose Maildir is emptied
    afterwards. Like Postfix's ``mailbox_command``, it is one process per
    message: that is how an MTA hands mail to Dovecot's LDA.
    """
    peers = Path(os.environ.get("PEERS_DIR", "/var/tmp/peers"))
    config = peers / "dovecot" / "dovecot.conf"
    lda = next(
        (
            p
            for p in ("/usr/lib/dovecot/dovecot-lda", "/usr/libexec/dovecot/dovecot-lda")
            if Path(p).exists()
        ),
        shutil.which("dovecot-lda"),
    )
    if lda is None or not config.exists() or not (peers / "dovecot/run/auth-userdb").exists():
        return None
    maildir = peers / "dovecot-mail" / PEER_USER / "Maildir"
    shutil.rmtree(maildir, ignore_errors=True)
    started = time.perf_counter()
    for n in range(count):
        subprocess.run(
            [lda, "-c", str(config), "-d", PEER_USER, "-f", "bench@example.net"],
            input=make_message(n, size).replace(b"\r\n", b"\n"),
            check=True,
        )
    elapsed = time.perf_counter() - started
    delivered = len(list((maildir / "new").iterdir()))
    shutil.rmtree(maildir, ignore_errors=True)
    if delivered != count:
        raise SystemExit(f"dovecot-lda: expected {count} messages, found {delivered}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=10_240)
    parser.add_argument("--dir", type=Path, default=None, help="work here (default: a temp dir)")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--index-count", type=int, default=100_000)
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="store-bench-", dir=args.dir))
    try:
        print(
            f"delivering {args.count} messages of {args.size} octets, fsync on, "
            f"{args.concurrency} at a time, into {base}"
        )
        rates = {}
        for fmt in ("maildir", "mbox"):
            layout = StoreLayout(base / fmt, fmt, "example.test", fsync=True)
            elapsed = asyncio.run(deliver_all(layout, args.count, args.size, args.concurrency))
            rates[fmt] = args.count / elapsed
            print(f"  {fmt:8s} {rates[fmt]:9.1f} messages/s  ({elapsed:.2f} s)")

        appended, listed = index_only(base, args.index_count)
        print(f"index only: {args.index_count} messages")
        print(f"  append   {args.index_count / appended:9.0f} rows/s     ({appended:.2f} s)")
        print(f"  list     {listed:9.3f} s        (messages()-equivalent)")

        peer = dovecot_peer(args.count, args.size)
        if peer is None:
            print("dovecot-lda: no peer figure (run shared/peers/setup and start first)")
        else:
            rate = args.count / peer
            print(
                f"dovecot-lda {rate:9.1f} messages/s; maildir ratio {rates['maildir'] / rate:.2f}"
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
