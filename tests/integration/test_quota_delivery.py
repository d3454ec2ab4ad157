"""Local delivery into a mailbox at its quota (``delivery.quota``): the recipient is
deferred with 452 4.2.2, or with ``over_quota_reject`` failed with 552 5.2.2 and
bounced through the DSN path; the message never reaches the mailbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from postoffice.config.loader import load_config
from postoffice.core.address import parse_address
from postoffice.core.clock import FixedClock
from postoffice.core.envelope import Envelope, EnvelopeRecipient
from postoffice.delivery.bounce import Bouncer
from postoffice.delivery.local import DeliveryTrace, LocalDeliveryAgent
from postoffice.delivery.runner import QueueRunner
from postoffice.directory.accounts import AccountDatabase
from postoffice.directory.directory import Directory
from postoffice.queue import Queue, QueueEntry, RecipientState
from postoffice.store import StoreFactory
from postoffice.store.layout import StoreFormat, layout_from_config

MESSAGE = b"Subject: hello\r\n\r\nBody line\r\n"
ALICE = "alice@example.test"
SENDER = "x@far.test"
# What local delivery puts before the message (RFC 5321 §4.4; Postfix local(8))
PREFIX = b"Return-Path: <x@far.test>\r\nDelivered-To: alice@example.test\r\n"


@dataclass
class Site:
    queue: Queue
    runner: QueueRunner
    stores: StoreFactory
    accounts: AccountDatabase
    clock: FixedClock

    async def send(self, data: bytes = MESSAGE) -> str:
        """Queue ``data`` for alice and make one delivery attempt; the queue id."""
        envelope = Envelope(
            sender=parse_address(SENDER), recipients=(EnvelopeRecipient(parse_address(ALICE)),)
        )
        async with self.queue.begin(envelope) as incoming:
            await incoming.write(data)
            queue_id = await incoming.commit()
        await self.runner.deliver(queue_id)
        return queue_id

    async def entry(self, queue_id: str) -> QueueEntry | None:
        """The queue entry, or None once it is gone (every recipient final)."""
        return next((e for e in await self.queue.list() if e.id == queue_id), None)

    async def state(self, queue_id: str) -> RecipientState | None:
        entry = await self.entry(queue_id)
        return None if entry is None else entry.recipients[0].status.state

    async def retry(self, queue_id: str) -> None:
        """The next attempt, an hour later (past the retry schedule's first delay)."""
        self.clock.advance(3600)
        await self.runner.deliver(queue_id)

    async def inbox_count(self) -> int:
        store = await self.stores.open(ALICE)
        try:
            return (await store.status("INBOX")).messages
        finally:
            await store.close()

    def set_quota(self, *, octets: int | None = None, messages: int | None = None) -> None:
        self.accounts.set_quota(parse_address(ALICE), octets=octets, messages=messages)


@asynccontextmanager
async def open_site(tmp_path: Path, fmt: StoreFormat, *, reject: bool) -> AsyncIterator[Site]:
    config_file = tmp_path / "postoffice.toml"
    config_file.write_text(
        'hostname = "mail.example.test"\nprimary_domain = "example.test"\n'
        f'[store]\nformat = "{fmt}"\n',
        encoding="utf-8",
    )
    loaded = load_config(config_file)
    loaded.paths.tables_dir.mkdir(parents=True, exist_ok=True)
    accounts = AccountDatabase(
        loaded.paths.directory_db,
        hasher=PasswordHasher(time_cost=1, memory_cost=64, parallelism=1),
    )
    accounts.add_domain("example.test")
    accounts.add_user(parse_address(ALICE), "pw", quota_messages=1)
    accounts.close()
    directory = Directory(loaded.config, loaded.paths)
    clock = FixedClock(1_800_000_000.0)
    queue = await Queue.open(loaded.paths.queue_dir, clock)
    stores = StoreFactory(layout_from_config(loaded.config, loaded.paths), clock=clock)
    local = LocalDeliveryAgent(
        queue=queue,
        stores=stores,
        clock=clock,
        accounts=directory.accounts,
        over_quota_reject=reject,
    )
    bouncer = Bouncer(queue=queue, hostname="mail.example.test", clock=clock)
    runner = QueueRunner(
        queue=queue, directory=directory, local=local, clock=clock, notices=bouncer
    )
    try:
        yield Site(queue, runner, stores, directory.accounts, clock)
    finally:
        await runner.drain()
        await queue.close()
        directory.close()


@pytest.fixture(params=["maildir", "mbox"])
def fmt(request: pytest.FixtureRequest) -> StoreFormat:
    value: StoreFormat = request.param
    return value


async def test_a_full_mailbox_defers_by_default(tmp_path: Path, fmt: StoreFormat) -> None:
    async with open_site(tmp_path, fmt, reject=False) as site:
        first = await site.send()
        assert await site.entry(first) is None  # delivered
        second = await site.send()
        entry = await site.entry(second)
        assert entry is not None
        status = entry.recipients[0].status
        assert status.state is RecipientState.DEFERRED
        assert "452 4.2.2 Mailbox full" in str(status)
        assert await site.inbox_count() == 1
        assert [e.id for e in await site.queue.list()] == [second]  # no bounce
        await site.retry(second)  # still full: deferred again
        assert await site.state(second) is RecipientState.DEFERRED
        site.set_quota(messages=2)  # room made: the next attempt delivers
        await site.retry(second)
        assert await site.inbox_count() == 2
        assert await site.queue.list() == []


async def test_a_full_mailbox_bounces_with_reject(tmp_path: Path, fmt: StoreFormat) -> None:
    async with open_site(tmp_path, fmt, reject=True) as site:
        await site.send()
        second = await site.send()
        assert await site.inbox_count() == 1
        assert await site.entry(second) is None  # failed: final, gone from the queue
        [bounce] = await site.queue.list()
        assert bounce.envelope.sender is None  # RFC 3461 §6.2: a DSN has the null sender
        assert [str(r.address) for r in bounce.envelope.recipients] == [SENDER]
        reader = await site.queue.open_data(bounce.id)
        try:
            report = reader.read(-1)
        finally:
            reader.close()
        assert b"5.2.2" in report
        assert b"Mailbox full" in report


async def test_the_storage_limit_counts_the_delivered_size(
    tmp_path: Path, fmt: StoreFormat
) -> None:
    """The size checked is the message with Return-Path and Delivered-To added: a
    limit of exactly that size takes one copy and not a second."""
    async with open_site(tmp_path, fmt, reject=False) as site:
        site.set_quota(octets=len(PREFIX) + len(MESSAGE) - 1, messages=0)
        refused = await site.send()
        assert await site.state(refused) is RecipientState.DEFERRED
        assert await site.inbox_count() == 0
        site.set_quota(octets=len(PREFIX) + len(MESSAGE))
        await site.retry(refused)
        assert await site.entry(refused) is None
        assert await site.inbox_count() == 1
        third = await site.send()
        assert await site.state(third) is RecipientState.DEFERRED
        assert await site.inbox_count() == 1


async def test_a_repeat_after_a_crash_is_delivered_not_refused_over_quota(
    tmp_path: Path, fmt: StoreFormat
) -> None:
    """The server died after the delivery and before the queue file went: the next
    attempt finds its own copy (the delivery key) and must count it as delivered,
    not refuse it because that very copy filled the quota (a bounce for mail that
    was delivered, with ``over_quota_reject``)."""
    async with open_site(tmp_path, fmt, reject=True) as site:
        envelope = Envelope(
            sender=parse_address(SENDER), recipients=(EnvelopeRecipient(parse_address(ALICE)),)
        )
        async with site.queue.begin(envelope) as incoming:
            await incoming.write(MESSAGE)
            queue_id = await incoming.commit()
        entry = await site.entry(queue_id)
        assert entry is not None
        alice = parse_address(ALICE)
        local = site.runner.local
        first = await local.to_mailbox(entry, alice, alice, DeliveryTrace())
        assert first.code == 250
        again = await local.to_mailbox(entry, alice, alice, DeliveryTrace(repeated=True))
        assert again.code == 250, again  # not 552 5.2.2: it is in the mailbox
        assert await site.inbox_count() == 1
