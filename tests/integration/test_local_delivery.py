"""Local delivery: queued messages into real mailboxes, with routing, loops and forwarding."""

from __future__ import annotations

import asyncio
import sqlite3
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
from postoffice.delivery.local import LocalDeliveryAgent
from postoffice.delivery.runner import QueueRunner
from postoffice.directory.accounts import AccountDatabase
from postoffice.directory.directory import Directory
from postoffice.queue import Queue, RecipientState
from postoffice.store import StoreFactory
from postoffice.store.engine import UserEngine
from postoffice.store.layout import layout_from_config

MESSAGE = b"Received: from a by b; date\r\nSubject: hello\r\n\r\nBody line\r\n.dot line\r\n"


@dataclass
class Site:
    directory: Directory
    queue: Queue
    stores: StoreFactory
    agent: QueueRunner
    tables: Path
    clock: FixedClock


@dataclass
class SiteConfig:
    """A configured data dir with two accounts; ``open()`` starts the parts on the test's loop."""

    config_file: Path

    @asynccontextmanager
    async def open(self) -> AsyncIterator[Site]:
        loaded = load_config(self.config_file)
        directory = Directory(loaded.config, loaded.paths)
        clock = FixedClock(1_800_000_000.0)
        queue = await Queue.open(loaded.paths.queue_dir, clock)
        stores = StoreFactory(layout_from_config(loaded.config, loaded.paths), clock=clock)
        local = LocalDeliveryAgent(queue=queue, stores=stores, clock=clock)
        agent = QueueRunner(queue=queue, directory=directory, local=local, clock=clock)
        try:
            yield Site(directory, queue, stores, agent, loaded.paths.tables_dir, clock)
        finally:
            await agent.drain()
            await queue.close()
            directory.close()


def make_site(
    tmp_path: Path, store_format: str, users: tuple[str, ...] = ("alice", "bob")
) -> SiteConfig:
    """A data dir for ``example.test`` with ``users``, its mail in ``store_format``."""
    config_file = tmp_path / "postoffice.toml"
    config_file.write_text(
        'hostname = "mail.example.test"\nprimary_domain = "example.test"\n'
        f'[store]\nformat = "{store_format}"\n',
        encoding="utf-8",
    )
    loaded = load_config(config_file)
    # Cheap hashing keeps the fixture fast; the real parameters are tested elsewhere.
    accounts = AccountDatabase(
        loaded.paths.directory_db,
        hasher=PasswordHasher(time_cost=1, memory_cost=64, parallelism=1),
    )
    accounts.add_domain("example.test")
    for user in users:
        accounts.add_user(parse_address(f"{user}@example.test"), "pw")
    accounts.close()
    loaded.paths.tables_dir.mkdir(parents=True, exist_ok=True)
    return SiteConfig(config_file)


@pytest.fixture(params=["maildir", "mbox"])
def site_config(request: pytest.FixtureRequest, tmp_path: Path) -> SiteConfig:
    return make_site(tmp_path, request.param)


async def enqueue(
    site: Site, *recipients: str, data: bytes = MESSAGE, sender: str = "x@far.test"
) -> str:
    envelope = Envelope(
        sender=parse_address(sender) if sender else None,
        recipients=tuple(EnvelopeRecipient(parse_address(r)) for r in recipients),
    )
    async with site.queue.begin(envelope) as incoming:
        await incoming.write(data)
        return await incoming.commit()


async def inbox(site: Site, user: str) -> list[bytes]:
    store = await site.stores.open(f"{user}@example.test")
    try:
        return [await store.read("INBOX", info.uid) for info in await store.messages("INBOX")]
    finally:
        await store.close()


async def test_delivery_prepends_return_path_and_delivered_to(site_config: SiteConfig) -> None:
    async with site_config.open() as site:
        queue_id = await enqueue(site, "Alice@example.test")
        await site.agent.deliver(queue_id)
        [stored] = await inbox(site, "alice")
        assert stored == (
            b"Return-Path: <x@far.test>\r\nDelivered-To: alice@example.test\r\n" + MESSAGE
        )
        assert await site.queue.list() == []


async def test_null_sender_and_alias_fan_out(site_config: SiteConfig) -> None:
    async with site_config.open() as site:
        (site.tables / "aliases").parent.mkdir(parents=True, exist_ok=True)
        (site.tables / "aliases").write_text("staff: alice, bob\n", encoding="utf-8")
        queue_id = await enqueue(site, "staff@example.test", sender="")
        await site.agent.deliver(queue_id)
        for user in ("alice", "bob"):
            [stored] = await inbox(site, user)
            assert stored.startswith(b"Return-Path: <>\r\nDelivered-To: " + user.encode())
        assert await site.queue.list() == []


async def test_alias_to_a_remote_address_is_forwarded(site_config: SiteConfig) -> None:
    async with site_config.open() as site:
        site.tables.mkdir(parents=True, exist_ok=True)
        (site.tables / "aliases").write_text("carol: alice, carol@far.test\n", encoding="utf-8")
        queue_id = await enqueue(site, "carol@example.test")
        await site.agent.deliver(queue_id)
        assert len(await inbox(site, "alice")) == 1
        [forwarded] = await site.queue.list()
        assert forwarded.id != queue_id
        [recipient] = forwarded.envelope.recipients
        assert recipient.address == parse_address("carol@far.test")
        assert recipient.orcpt is not None and recipient.orcpt.address == "carol@example.test"


async def test_remote_recipient_waits_in_the_queue(site_config: SiteConfig) -> None:
    async with site_config.open() as site:
        queue_id = await enqueue(site, "someone@far.test", "bob@example.test")
        await site.agent.deliver(queue_id)
        assert len(await inbox(site, "bob")) == 1
        [entry] = await site.queue.list()
        remote, local = entry.recipients
        assert local.status.state is RecipientState.DELIVERED
        assert remote.status.state is RecipientState.DEFERRED
        assert remote.status.next_attempt is not None
        assert remote.status.next_attempt > site.clock.now()
        assert "4.4.1" in (remote.status.reply or "")
        assert await site.queue.pending(site.clock.now()) == []


@pytest.mark.parametrize(
    "headers",
    [
        b"Delivered-To: alice@example.test\r\n",
        b"Received: x\r\n" * 51,
    ],
)
async def test_loops_are_refused(site_config: SiteConfig, headers: bytes) -> None:
    async with site_config.open() as site:
        queue_id = await enqueue(site, "alice@example.test", data=headers + b"\r\nbody\r\n")
        await site.agent.deliver(queue_id)
        assert await inbox(site, "alice") == []
        assert await site.queue.list() == []  # failed is final (the bounce is the outbound issue's)


async def test_unknown_recipient_fails(site_config: SiteConfig) -> None:
    async with site_config.open() as site:
        queue_id = await enqueue(site, "ghost@example.test")
        await site.agent.deliver(queue_id)
        assert await site.queue.list() == []


async def test_store_failure_defers_and_a_later_attempt_delivers(
    site_config: SiteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with site_config.open() as site:
        calls = 0

        def failing_open(self: UserEngine, *, create: bool, clean_tmp: bool = True) -> None:
            nonlocal calls
            calls += 1
            raise OSError("disk on fire")

        monkeypatch.setattr(UserEngine, "open", failing_open)
        queue_id = await enqueue(site, "alice@example.test")
        await site.agent.deliver(queue_id)
        [entry] = await site.queue.list()
        assert entry.recipients[0].status.state is RecipientState.DEFERRED
        assert "disk on fire" in entry.recipients[0].status.reply
        assert calls == 1
        monkeypatch.undo()
        site.clock.advance(400)
        assert await site.queue.pending(site.clock.now()) == [queue_id]
        await site.agent.deliver(queue_id)
        assert len(await inbox(site, "alice")) == 1
        assert await site.queue.list() == []


async def test_runner_delivers_what_was_queued_before_it_started(site_config: SiteConfig) -> None:
    async with site_config.open() as site:
        ids = [await enqueue(site, "bob@example.test") for _ in range(5)]
        assert len(ids) == 5
        stop = asyncio.Event()
        runner = asyncio.ensure_future(site.agent.run(stop))
        for _ in range(200):
            if len(await inbox(site, "bob")) == 5:
                break
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(runner, 10)
        assert len(await inbox(site, "bob")) == 5
        assert await site.queue.list() == []


async def test_runner_delivers_new_commits_at_once(site_config: SiteConfig) -> None:
    async with site_config.open() as site:
        site.queue.add_listener(site.agent.notice)
        await enqueue(site, "alice@example.test")
        for _ in range(200):
            if await inbox(site, "alice"):
                break
            await asyncio.sleep(0.02)
        await site.agent.drain()
        assert len(await inbox(site, "alice")) == 1


def _save_queue_files(site: Site, queue_id: str) -> dict[Path, bytes]:
    root = site.queue.layout.root
    return {path: path.read_bytes() for path in (root / f"qf{queue_id}", root / f"df{queue_id}")}


def _restore(saved: dict[Path, bytes]) -> None:
    """Put the message back in the queue, as a crash before its removal would have left it."""
    for path, data in saved.items():
        path.write_bytes(data)


async def test_a_delivery_repeated_after_a_crash_is_not_made_twice(
    site_config: SiteConfig, caplog: pytest.LogCaptureFixture
) -> None:
    async with site_config.open() as site:
        queue_id = await enqueue(site, "alice@example.test", "bob@example.test")
        saved = _save_queue_files(site, queue_id)
        await site.agent.deliver(queue_id)
        assert await site.queue.list() == []
        _restore(saved)  # the server died after delivering, before the queue file went
        with caplog.at_level("INFO"):
            await site.agent.deliver(queue_id)
        assert await site.queue.list() == []
        assert len(await inbox(site, "alice")) == 1
        assert len(await inbox(site, "bob")) == 1
        assert caplog.text.count("already delivered before a restart") == 2
        # Another message for the same people is delivered as usual.
        await site.agent.deliver(await enqueue(site, "alice@example.test"))
        assert len(await inbox(site, "alice")) == 2


async def test_a_maildir_file_whose_index_row_a_crash_lost_still_counts(tmp_path: Path) -> None:
    site_config = make_site(tmp_path, "maildir", ("alice",))
    loaded = load_config(site_config.config_file)
    async with site_config.open() as site:
        queue_id = await enqueue(site, "alice@example.test")
        saved = _save_queue_files(site, queue_id)
        await site.agent.deliver(queue_id)
        await site.agent.drain()  # the store is closed: its index may be edited
        # The crash came between the link into new/ and the index commit: the
        # file is there, its index row and delivery key are not.
        index = loaded.paths.data_dir / "mail" / "example.test" / "alice"
        db = sqlite3.connect(index / "postoffice-index.sqlite3")
        with db:
            db.execute("DELETE FROM messages")
            db.execute("DELETE FROM deliveries")
            db.execute("UPDATE mailboxes SET sync_state = ''")
        db.close()
        assert len(list((index / "new").iterdir())) == 1
        _restore(saved)
        await site.agent.deliver(queue_id)
        assert len(list((index / "new").iterdir())) == 1
        assert len(await inbox(site, "alice")) == 1
        assert await site.queue.list() == []
