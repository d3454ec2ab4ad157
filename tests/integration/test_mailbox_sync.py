"""Group-committed local deliveries: a Maildir copy counts only after a file-system sync."""

from __future__ import annotations

import asyncio
import errno
import os
import threading
from pathlib import Path

import pytest

from postoffice.config.loader import load_config
from postoffice.delivery.mailbox_sync import MailboxSync
from postoffice.queue import RecipientState
from postoffice.store.fileio import sync_file_system
from tests.integration.test_local_delivery import SiteConfig, enqueue, inbox, make_site


@pytest.fixture
def maildir_site(tmp_path: Path) -> SiteConfig:
    return make_site(tmp_path, "maildir", ("alice",))  # store.fsync is on by default


def _alice_new(site_config: SiteConfig) -> Path:
    data_dir = load_config(site_config.config_file).paths.data_dir
    return data_dir / "mail" / "example.test" / "alice" / "new"


async def test_a_copy_counts_as_delivered_only_after_a_sync_that_sees_it(
    maildir_site: SiteConfig,
) -> None:
    new = _alice_new(maildir_site)
    seen: list[tuple[int, bool]] = []  # (files in new/, queue file still there) per sync
    async with maildir_site.open() as site:
        queue_id = await enqueue(site, "alice@example.test")
        control = site.queue.layout.root / f"qf{queue_id}"

        def recording_sync(fd: int) -> None:
            seen.append((len(os.listdir(new)), control.exists()))

        site.agent.local.mailbox_sync = MailboxSync(sync=recording_sync)
        await site.agent.deliver(queue_id)
        # One sync, after the link into new/, while the queue still held the message.
        assert seen == [(1, True)]
        assert not control.exists()
        assert len(await inbox(site, "alice")) == 1


async def test_the_store_leaves_the_copy_unsynced_for_the_group_sync(
    maildir_site: SiteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    mail_root = _alice_new(maildir_site).parent.parent.parent
    synced: list[str] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    async with maildir_site.open() as site:
        queue_id = await enqueue(site, "alice@example.test")
        await site.agent.deliver(await enqueue(site, "alice@example.test"))  # store opened
        synced.clear()
        monkeypatch.setattr(os, "fsync", counting_fsync)
        syncs = site.agent.local.mailbox_sync
        assert syncs is not None
        before = syncs.syncs
        await site.agent.deliver(queue_id)
        monkeypatch.undo()
        assert len(await inbox(site, "alice")) == 2
        # No fsync of the message file, of new/ or of the user's directory: one syncfs.
        assert [path for path in synced if path.startswith(str(mail_root))] == []
        assert syncs.syncs == before + 1


async def test_a_failed_sync_defers_and_the_retry_counts_the_one_copy(
    maildir_site: SiteConfig,
) -> None:
    failures = [OSError(errno.EIO, "write-back error")]

    def sync_failing_once(fd: int) -> None:
        if failures:
            raise failures.pop()

    async with maildir_site.open() as site:
        site.agent.local.mailbox_sync = MailboxSync(sync=sync_failing_once)
        queue_id = await enqueue(site, "alice@example.test")
        await site.agent.deliver(queue_id)
        [entry] = await site.queue.list()
        status = entry.recipients[0].status
        assert status.state is RecipientState.DEFERRED
        assert "write-back error" in status.reply
        assert len(os.listdir(_alice_new(maildir_site))) == 1  # the copy is in; not counted
        site.clock.advance(400)
        await site.agent.deliver(queue_id)  # found by its key, synced, counted: no second copy
        assert await site.queue.list() == []
        assert len(await inbox(site, "alice")) == 1


async def test_concurrent_callers_share_syncs_and_each_waits_for_one_started_after_it(
    tmp_path: Path,
) -> None:
    release = threading.Event()
    started = threading.Event()
    calls = 0

    def slow_sync(fd: int) -> None:
        nonlocal calls
        calls += 1
        started.set()
        release.wait(5)

    syncs = MailboxSync(sync=slow_sync, max_in_flight=1)
    try:
        first = asyncio.ensure_future(syncs.sync(tmp_path))
        assert await asyncio.to_thread(started.wait, 5)
        # These arrive while the first sync runs: they must wait for the next one.
        later = [asyncio.ensure_future(syncs.sync(tmp_path)) for _ in range(20)]
        await asyncio.sleep(0.05)
        assert not first.done() and not any(task.done() for task in later)
        release.set()
        await asyncio.wait_for(asyncio.gather(first, *later), 5)
        assert calls == 2  # 21 callers, two syncs: the running one, then one for the rest
        assert syncs.syncs == 2
    finally:
        release.set()
        await syncs.close()


async def test_a_sync_error_reaches_every_caller_of_its_batch(tmp_path: Path) -> None:
    def broken_sync(fd: int) -> None:
        raise OSError(errno.EIO, "write-back error")

    syncs = MailboxSync(sync=broken_sync)
    try:
        results = await asyncio.gather(
            *(syncs.sync(tmp_path) for _ in range(5)), return_exceptions=True
        )
        assert all(isinstance(result, OSError) for result in results)
    finally:
        await syncs.close()


def test_sync_file_system_syncs_and_reports_a_bad_descriptor(tmp_path: Path) -> None:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        sync_file_system(fd)  # a real syncfs(2) of the test's file system
    finally:
        os.close(fd)
    with pytest.raises(OSError) as raised:
        sync_file_system(fd)  # closed now
    assert raised.value.errno == errno.EBADF
