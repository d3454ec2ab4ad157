"""Long lock holds and counters: the mbox dotlock stays fresh, UIDVALIDITY never repeats."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from postoffice.core.clock import FixedClock
from postoffice.core.errors import StoreError
from postoffice.store import StoreFactory, StoreLayout, locking, provision
from postoffice.store.fileio import CHUNK
from tests.store.conftest import ALICE, DOMAIN, message


@pytest.fixture
def layout(tmp_path: Path) -> StoreLayout:
    return StoreLayout(tmp_path / "data", "mbox", DOMAIN)


class FakeClock:
    """Stands in for ``locking.refresh_clock``."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class SlowSource:
    """A message source where each chunk takes ``step`` seconds of the fake clock.

    Before handing out a chunk it records how old the dotlock looks, then makes
    it look 100 s old (as if that much time had passed since its last touch).
    """

    def __init__(self, data: bytes, dotlock: Path, clock: FakeClock, step: float):
        self._data = data
        self._dotlock = dotlock
        self._clock = clock
        self._step = step
        self._position = 0
        self.ages: list[float] = []

    def read(self, size: int = -1, /) -> bytes:
        self.ages.append(time.time() - self._dotlock.stat().st_mtime)
        aged = time.time() - 100
        os.utime(self._dotlock, (aged, aged))
        self._clock.now += self._step
        chunk = self._data[self._position : self._position + CHUNK]
        self._position += len(chunk)
        return chunk


async def test_the_dotlock_is_refreshed_during_a_long_append(
    layout: StoreLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(locking, "refresh_clock", clock)
    data = message(1, 8 * CHUNK)
    async with await StoreFactory(layout).open(ALICE) as store:
        dotlock = store.paths.mbox_inbox.with_name("alice.lock")
        source = SlowSource(data, dotlock, clock, locking.DOTLOCK_REFRESH_SECONDS + 1)
        assert await store.deliver(source) == 1
        assert await store.read("INBOX", 1) == data
    assert len(source.ages) == 9
    # Every chunk found the dotlock touched after the previous one had aged it.
    assert max(source.ages) < locking.DOTLOCK_STALE_SECONDS / 10


async def test_no_refresh_before_the_interval(
    layout: StoreLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(locking, "refresh_clock", clock)
    async with await StoreFactory(layout).open(ALICE) as store:
        dotlock = store.paths.mbox_inbox.with_name("alice.lock")
        source = SlowSource(message(1, 4 * CHUNK), dotlock, clock, 1.0)
        await store.deliver(source)
    assert min(source.ages[1:]) >= 99  # a quick append writes without touching it


async def test_a_dotlock_broken_meanwhile_stops_the_append(
    layout: StoreLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(locking, "refresh_clock", clock)

    class Breaking(SlowSource):
        def read(self, size: int = -1, /) -> bytes:
            chunk = super().read(size)
            if len(self.ages) == 3:
                # A dotlock-only program found it stale, broke it and took its own.
                self._dotlock.unlink()
                self._dotlock.write_text("4242\n")
            return chunk

    async with await StoreFactory(layout).open(ALICE) as store:
        await store.deliver(b"first")
        spool = store.paths.mbox_inbox
        before = spool.read_bytes()
        dotlock = spool.with_name("alice.lock")
        source = Breaking(message(1, 8 * CHUNK), dotlock, clock, 40.0)
        with pytest.raises(StoreError, match="broken by another program"):
            await store.deliver(source)
        assert spool.read_bytes() == before  # truncated back
        assert dotlock.read_text() == "4242\n"  # theirs is not ours to remove
        dotlock.unlink()
        assert await store.deliver(b"second") == 2


async def test_expunge_and_scan_refresh_the_dotlock(
    layout: StoreLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    refresh = locking.Dotlock.refresh

    def counting(self: locking.Dotlock) -> None:
        calls.append(1)
        refresh(self)

    async with await StoreFactory(layout).open(ALICE) as store:
        for n in range(3):
            await store.deliver(message(n, 3 * CHUNK))
        monkeypatch.setattr(locking.Dotlock, "refresh", counting)
        await store.store_flags("INBOX", [1], ["\\Deleted"])
        calls.clear()
        await store.expunge("INBOX")
        assert len(calls) >= 6  # one per chunk copied
        spool = store.paths.mbox_inbox
        spool.write_bytes(spool.read_bytes() + b"From x Sat Jan  6 10:00:00 2024\n\nhi\n\n" * 5000)
        calls.clear()
        assert len(await store.messages("INBOX")) == 5002
        assert calls  # the scan of 5000 new messages touched it too


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


async def test_a_dotlock_of_a_dead_process_is_broken_at_once(layout: StoreLayout) -> None:
    quick = StoreFactory(layout, lock_timeout=0.3)
    async with await quick.open(ALICE) as store:
        dotlock = store.paths.mbox_inbox.with_name("alice.lock")
        dotlock.write_text(f"{dead_pid()}:{socket.gethostname()}\n")
        assert await store.deliver(b"through") == 1
        assert not dotlock.exists()
        # A live process (or another host, or another program's format) is waited for.
        for content in (
            f"{os.getppid()}:{socket.gethostname()}\n",
            f"{dead_pid()}:elsewhere.example\n",
            f"{dead_pid()}\n",
        ):
            dotlock.write_text(content)
            with pytest.raises(StoreError, match="dotlock"):
                await store.deliver(b"blocked")
            dotlock.unlink()


# -- the UIDVALIDITY counter -----------------------------------------------------------


def counter(layout: StoreLayout, now: float = 1_700_000_000.0) -> provision.UidValidityCounter:
    paths = StoreFactory(layout).paths(ALICE)
    paths.mail_dir.mkdir(parents=True, exist_ok=True)
    return provision.UidValidityCounter(paths, FixedClock(now))


def test_uidvalidity_values_grow_and_are_fsynced(
    layout: StoreLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(provision, "fsync_dir", lambda path: synced.append(f"dir {path}"))
    next_value = counter(layout)
    path = StoreFactory(layout).paths(ALICE).uidvalidity_path
    assert [next_value(), next_value(), next_value()] == [
        1_700_000_000,
        1_700_000_001,
        1_700_000_002,
    ]
    assert path.read_text() == "1700000002\n"
    # Each value: the new file's data, then the directory entry of the rename.
    assert synced == [str(path) + ".tmp", f"dir {path.parent}"] * 3
    assert sorted(p.name for p in path.parent.iterdir()) == ["postoffice-uidvalidity"]


def test_uidvalidity_never_writes_through_a_planted_link(
    layout: StoreLayout, tmp_path: Path
) -> None:
    next_value = counter(layout)
    path = StoreFactory(layout).paths(ALICE).uidvalidity_path
    target = tmp_path / "target"
    target.write_text("precious\n")
    temporary = path.with_name(path.name + ".tmp")
    temporary.symlink_to(target)
    assert next_value() == 1_700_000_000
    assert target.read_text() == "precious\n"
    assert not temporary.exists() and not temporary.is_symlink()
    temporary.write_text("left over by a crash\n")
    assert next_value() == 1_700_000_001
    path.unlink()
    path.symlink_to(target)
    with pytest.raises(StoreError, match="symbolic link"):
        next_value()
    assert target.read_text() == "precious\n"
