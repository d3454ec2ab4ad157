"""The reference sink of issue 3: a plain aiosmtpd server writing each message to a Maildir.

    .venv/bin/python bench/smtp_sink.py --maildir DIR [--port 0]

Not part of postoffice: the floor that ``smtp_accept.py --sink`` measures
beside postoffice and Postfix. One asyncio process (aiosmtpd's ``SMTP``
protocol on the event loop), no queue, no routing, no index: every message
of every recipient is written to ``DIR/tmp/``, fsync'd, linked into
``DIR/new/`` and ``new/`` fsync'd before the ``250`` (a careful Maildir
delivery, as a sink that must not lose mail would do it). It prints
``port N`` once it listens, and runs until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import socket
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

_counter = itertools.count()


class MaildirSink:
    """aiosmtpd handler: ``DATA`` written to the Maildir, synced, then ``250``."""

    def __init__(self, maildir: Path):
        self.tmp = maildir / "tmp"
        self.new = maildir / "new"
        for folder in (self.tmp, self.new, maildir / "cur"):
            folder.mkdir(parents=True, exist_ok=True)
        self.host = socket.gethostname()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        name = f"{os.getpid()}.{next(_counter)}.{self.host}"
        tmp = self.tmp / name
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.link(tmp, self.new / name)
        os.unlink(tmp)
        directory = os.open(self.new, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return "250 OK"


async def serve(maildir: Path, port: int) -> None:
    handler = MaildirSink(maildir)
    loop = asyncio.get_running_loop()

    def protocol() -> Any:
        return SMTP(handler, hostname="sink.example.test", data_size_limit=0)

    server = await loop.create_server(protocol, "127.0.0.1", port)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--maildir", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args.maildir, args.port))


if __name__ == "__main__":
    main()
