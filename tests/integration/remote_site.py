"""An in-process sending host for remote delivery tests: a.test's queue and runner.

``Outpost`` is one data dir (``mail.a.test``, user alice) whose queue runner is
built exactly as the server builds it (``server.delivery_setup``), with a
``FixedClock`` the test moves, the resolver pointed at a ``LoopbackDnsServer``
and MX delivery on the port of a ``ScriptedSmtpServer`` (the far side).
``deliver(id)`` runs one attempt; nothing runs in the background.
"""

from __future__ import annotations

import email
import email.message
import email.policy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher

from postoffice.config.loader import LoadedConfig, load_config
from postoffice.core.address import parse_address
from postoffice.core.clock import FixedClock
from postoffice.core.envelope import Envelope, EnvelopeRecipient, Notify
from postoffice.delivery.runner import QueueRunner
from postoffice.directory.accounts import AccountDatabase
from postoffice.directory.directory import Directory
from postoffice.queue import Queue, QueueEntry
from postoffice.server.delivery_setup import build_queue_runner
from postoffice.store import StoreFactory
from postoffice.store.layout import layout_from_config

START = 1_800_000_000.0
MESSAGE = (
    b"From: Alice <alice@a.test>\nTo: bob@far.test\nSubject: outbound\n"
    b"Message-ID: <m1@a.test>\n\nfirst line\n.leading dot\nlast line\n"
)


def write_config(
    data: Path, *, dns_port: int, smtp_port: int, extra: str = "", command_timeout: float = 5.0
) -> Path:
    config = data / "postoffice.toml"
    data.mkdir(parents=True, exist_ok=True)
    config.write_text(
        'hostname = "mail.a.test"\nprimary_domain = "a.test"\n'
        "[delivery]\n"
        f'nameservers = ["127.0.0.1:{dns_port}"]\n'
        f"smtp_port = {smtp_port}\n"
        'bind_address = "127.0.0.2"\n'
        f"dns_timeout = 1.0\nconnect_timeout = 2.0\ncommand_timeout = {command_timeout}\n" + extra,
        encoding="utf-8",
    )
    loaded = load_config(config)
    accounts = AccountDatabase(
        loaded.paths.directory_db,
        hasher=PasswordHasher(time_cost=1, memory_cost=64, parallelism=1),
    )
    accounts.add_domain("a.test")
    accounts.add_user(parse_address("alice@a.test"), "pw")
    accounts.close()
    loaded.paths.tables_dir.mkdir(parents=True, exist_ok=True)
    return config


@dataclass
class Outpost:
    loaded: LoadedConfig
    queue: Queue
    runner: QueueRunner
    stores: StoreFactory
    clock: FixedClock

    async def enqueue(
        self,
        *recipients: str,
        data: bytes = MESSAGE,
        sender: str | None = "alice@a.test",
        notify: frozenset[Notify] | None = None,
    ) -> str:
        envelope = Envelope(
            sender=parse_address(sender) if sender else None,
            recipients=tuple(EnvelopeRecipient(parse_address(r), notify) for r in recipients),
        )
        async with self.queue.begin(envelope) as incoming:
            await incoming.write(data)
            return await incoming.commit()

    async def deliver(self, queue_id: str) -> None:
        await self.runner.deliver(queue_id)

    async def entries(self) -> list[QueueEntry]:
        return await self.queue.list()

    async def entry(self, queue_id: str) -> QueueEntry | None:
        for entry in await self.queue.list():
            if entry.id == queue_id:
                return entry
        return None

    async def notifications(self) -> list[QueueEntry]:
        """The queued DSNs: messages from ``<>``."""
        return [e for e in await self.queue.list() if e.envelope.sender is None]

    async def read(self, queue_id: str) -> bytes:
        reader = await self.queue.open_data(queue_id)
        try:
            return reader.read(-1)
        finally:
            reader.close()

    async def dsn(self) -> email.message.EmailMessage:
        """The one queued DSN, parsed by the email package."""
        (notice,) = await self.notifications()
        parsed = email.message_from_bytes(await self.read(notice.id), policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        return parsed


@asynccontextmanager
async def outpost(config: Path) -> AsyncIterator[Outpost]:
    loaded = load_config(config)
    directory = Directory(loaded.config, loaded.paths)
    clock = FixedClock(START)
    queue = await Queue.open(loaded.paths.queue_dir, clock)
    stores = StoreFactory(layout_from_config(loaded.config, loaded.paths), clock=clock)
    runner = build_queue_runner(
        loaded, queue=queue, directory=directory, stores=stores, clock=clock
    )
    try:
        yield Outpost(loaded, queue, runner, stores, clock)
    finally:
        await runner.drain()
        await queue.close()
        directory.close()


def delivery_status(dsn: email.message.EmailMessage) -> list[dict[str, str]]:
    """The per-message block, then one block per recipient, of a DSN's status part."""
    part = next(p for p in dsn.walk() if p.get_content_type() == "message/delivery-status")
    blocks = []
    for block in part.get_payload():
        assert isinstance(block, email.message.Message)
        blocks.append({key: str(value) for key, value in block.items()})
    return blocks
