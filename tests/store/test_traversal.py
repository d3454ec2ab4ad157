"""Mailbox names never escape the user's directory (DESIGN.md §5), on both formats."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from postoffice.core.errors import MailboxNameError, StoreError
from postoffice.store import FileMailStore, StoreFactory
from tests.store.conftest import ALICE, tree

HOSTILE = [
    "../evil",
    "../../../../../tmp/evil",
    "/etc/passwd",
    "/abs/olute",
    "a/../../evil",
    "INBOX/../../evil",
    "..",
    ".",
    "a/./b",
    "a/..",
    "evil\x00name",
    "new\nline",
    "a//b",
    "trailing/",
    "",
]

Operation = Callable[[FileMailStore, str], Awaitable[object]]


async def _iterate(store: FileMailStore, name: str) -> None:
    async for _ in store.iter_bytes(name, 1):
        pass


OPERATIONS: dict[str, Operation] = {
    "create": lambda s, n: s.create_mailbox(n),
    "delete": lambda s, n: s.delete_mailbox(n),
    "rename-from": lambda s, n: s.rename_mailbox(n, "Safe"),
    "rename-to": lambda s, n: s.rename_mailbox("Archive", n),
    "append": lambda s, n: s.append(n, b"Subject: x\r\n\r\nbody\r\n"),
    "status": lambda s, n: s.status(n),
    "messages": lambda s, n: s.messages(n),
    "read": lambda s, n: s.read(n, 1),
    "iter_bytes": _iterate,
    "store_flags": lambda s, n: s.store_flags(n, [1], ["\\Seen"]),
    "copy-from": lambda s, n: s.copy(n, [1], "Archive"),
    "copy-to": lambda s, n: s.copy("INBOX", [1], n),
    "move-from": lambda s, n: s.move(n, [1], "Archive"),
    "move-to": lambda s, n: s.move("INBOX", [1], n),
    "expunge": lambda s, n: s.expunge(n),
    "subscribe": lambda s, n: s.subscribe(n),
    "unsubscribe": lambda s, n: s.unsubscribe(n),
}


async def _changes(store: FileMailStore, name: str) -> None:
    store.changes(name)


OPERATIONS["changes"] = _changes


def _snapshot(root: Path) -> set[str]:
    # SQLite's WAL side files come and go with connections; they are not ours to judge.
    return {p for p in tree(root) if not p.endswith(("-wal", "-shm"))}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
async def test_hostile_names_are_refused_and_touch_nothing(
    factory: StoreFactory, tmp_path: Path, operation: str
) -> None:
    store = await factory.open(ALICE)
    await store.append("INBOX", b"Subject: keep\r\n\r\nme\r\n")
    before = _snapshot(tmp_path)
    for name in HOSTILE:
        with pytest.raises(MailboxNameError):
            await OPERATIONS[operation](store, name)
    await store.close()
    assert _snapshot(tmp_path) == before
    assert not (tmp_path / "evil").exists()
    assert not list(tmp_path.rglob("*evil*"))


ODD_BUT_VALID = [
    ".hidden",
    "...",
    "a.b",
    "dots.in/the.path",
    "postoffice-index.sqlite3",
    "postoffice-index.lock",
    "cur",
    "new",
    "tmp",
    "~",
    "-rf",
    "back\\slash",
    "ünïcödé/子",
    "50% off".replace("%", "pct"),
    "sp ace",
]


async def test_odd_names_stay_inside_and_round_trip(factory: StoreFactory, tmp_path: Path) -> None:
    store = await factory.open(ALICE)
    paths = store.paths
    outside_before = _snapshot(tmp_path) - {
        p for p in _snapshot(tmp_path) if (tmp_path / p).is_relative_to(paths.mail_dir)
    }
    for name in ODD_BUT_VALID:
        await store.create_mailbox(name)
        uid = await store.append(name, name.encode() + b"\n")
        assert await store.read(name, uid) == name.encode() + b"\n"
    listed = {box.name for box in await store.list_mailboxes()}
    assert set(ODD_BUT_VALID) <= listed
    await store.close()
    # Nothing new outside the user's mail directory, except the spool INBOX.
    outside_after = {
        p for p in _snapshot(tmp_path) if not (tmp_path / p).is_relative_to(paths.mail_dir)
    }
    assert outside_after - outside_before <= {
        str(paths.mbox_inbox.relative_to(tmp_path)),
        str(paths.mbox_inbox.relative_to(tmp_path)) + ".lock",
    }
    # The index and lock files were not taken over by a mailbox.
    assert paths.index_path.is_file()
    async with await factory.open(ALICE) as again:
        assert set(ODD_BUT_VALID) <= {box.name for box in await again.list_mailboxes()}
        assert await again.read("postoffice-index.sqlite3", 1) == b"postoffice-index.sqlite3\n"


@pytest.mark.parametrize(
    "address", ["../evil@example.test", ".hidden@example.test", "a/b@example.test"]
)
async def test_hostile_user_names_are_refused(
    factory: StoreFactory, tmp_path: Path, address: str
) -> None:
    from postoffice.core.address import Address
    from postoffice.core.errors import PostofficeError

    before = _snapshot(tmp_path)
    local, _, domain = address.partition("@")
    with pytest.raises(PostofficeError):
        await factory.open(Address(local, domain))
    with pytest.raises(PostofficeError):
        await factory.open(Address("alice", "../" + domain))
    assert _snapshot(tmp_path) == before


def _secret(tmp_path: Path) -> Path:
    secret = tmp_path / "outside" / "secret"
    secret.parent.mkdir()
    secret.write_bytes(b"From root Sat Jan  6 10:00:00 2024\nSubject: secret\n\nroot:x:0:0\n")
    return secret


async def test_symlinks_in_the_mail_directory_are_not_followed(
    factory: StoreFactory, tmp_path: Path
) -> None:
    # Whoever can write into a mail directory must not reach other files
    # through the server, which may run with more rights than they have.
    secret = _secret(tmp_path)
    before = secret.read_bytes()
    async with await factory.open(ALICE) as store:
        if store.paths.layout.format == "maildir":
            fake = tmp_path / "outside" / "folder"
            for sub in ("cur", "new", "tmp"):
                (fake / sub).mkdir(parents=True)
            (store.paths.mail_dir / ".Evil").symlink_to(fake)
            (store.paths.mail_dir / "cur" / "1700000000.M1P1.evil:2,S").symlink_to(secret)
        else:
            (store.paths.mail_dir / "Evil").symlink_to(secret)
        assert "Evil" not in {box.name for box in await store.list_mailboxes()}
        with pytest.raises(StoreError):
            await store.status("Evil")
        with pytest.raises(StoreError):
            await store.append("Evil", b"x")
        assert await store.messages("INBOX") == []
    assert secret.read_bytes() == before
    assert not any(p.is_file() for p in (tmp_path / "outside").rglob("*") if p != secret)
