"""The SQLite index on its own: UID and MODSEQ rules, corruption detection."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from postoffice.core.errors import StoreError
from postoffice.store.index import IndexCorrupt, MailIndex, NewMessage


def _message(n: int) -> NewMessage:
    return NewMessage(flags=0, keywords="", internal_date=float(n), size=n, locator=f"m{n}")


def test_uids_and_modseqs_ascend(tmp_path: Path) -> None:
    index = MailIndex.open(tmp_path / "i.sqlite3", durable=False)
    with index.transaction():
        box = index.create_mailbox("INBOX", 42)
        given = [index.add_message(box.id, _message(n)) for n in range(5)]
    assert given == [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5)]
    with index.transaction():
        assert index.remove_messages(box.id, [2, 4, 99]) == [(2, 6), (4, 7)]
        assert index.set_flags(box.id, 1, 0b10000, "kw") == 8
        assert index.add_message(box.id, _message(9)) == (6, 9)
    row = index.mailbox("INBOX")
    assert row is not None and (row.uidnext, row.highestmodseq) == (7, 9)
    assert [m.uid for m in index.messages(box.id)] == [1, 3, 5, 6]
    assert [m.uid for m in index.messages_by_uid(box.id, range(2000))] == [1, 3, 5, 6]
    assert index.totals(box.id) == (4, 3, 0 + 2 + 4 + 9)
    assert index.by_locator(box.id, "m4") is not None
    index.close()


def test_failed_transaction_changes_nothing(tmp_path: Path) -> None:
    index = MailIndex.open(tmp_path / "i.sqlite3", durable=False)
    with index.transaction():
        box = index.create_mailbox("INBOX", 1)
    with pytest.raises(RuntimeError), index.transaction():
        index.add_message(box.id, _message(1))
        raise RuntimeError("boom")
    row = index.mailbox("INBOX")
    assert row is not None and row.uidnext == 1
    assert index.messages(box.id) == []
    index.close()


def test_reset_takes_a_new_uidvalidity(tmp_path: Path) -> None:
    index = MailIndex.open(tmp_path / "i.sqlite3")
    with index.transaction():
        box = index.create_mailbox("INBOX", 1)
        index.add_message(box.id, _message(1))
        index.reset_mailbox(box.id, 2)
        assert index.add_message(box.id, _message(2))[0] == 1
    row = index.mailbox("INBOX")
    assert row is not None and row.uidvalidity == 2
    index.close()


def test_wal_mode_and_corruption_detection(tmp_path: Path) -> None:
    path = tmp_path / "i.sqlite3"
    MailIndex.open(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    db.commit()
    db.close()
    with pytest.raises(IndexCorrupt, match="schema version"):
        MailIndex.open(path)
    path.write_bytes(b"\0" * 4096)
    with pytest.raises(IndexCorrupt):
        MailIndex.open(path)


class _CommitFails:
    """A connection whose first COMMIT fails and leaves the transaction open (SQLITE_BUSY)."""

    def __init__(self, db: sqlite3.Connection):
        self._db = db
        self.failed = False

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        if sql == "COMMIT" and not self.failed:
            self.failed = True
            raise sqlite3.OperationalError("database is locked")
        return self._db.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self._db, name)


def test_a_failed_commit_is_rolled_back(tmp_path: Path) -> None:
    # If COMMIT fails and the transaction stayed open, the UID below would be
    # committed later with whatever comes next, although the caller was told
    # it failed (and an mbox append has already been truncated back).
    index = MailIndex.open(tmp_path / "i.sqlite3", durable=False)
    with index.transaction():
        box = index.create_mailbox("INBOX", 1)
    flaky = _CommitFails(index._db)
    index._db = flaky  # type: ignore[assignment]
    with pytest.raises(sqlite3.OperationalError), index.transaction():
        index.add_message(box.id, _message(1))
    assert flaky.failed
    with index.transaction():
        assert index.add_message(box.id, _message(2)) == (1, 1)
    assert [m.locator for m in index.messages(box.id)] == ["m2"]
    index.close()


def test_only_real_corruption_is_called_corrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A full file-descriptor table or a permission problem is not corruption:
    # treating it so would set the index aside and lose every flag and UID.
    path = tmp_path / "i.sqlite3"
    MailIndex.open(path).close()
    real_connect = sqlite3.connect

    def no_descriptors(*args: object, **kwargs: object) -> sqlite3.Connection:
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(sqlite3, "connect", no_descriptors)
    with pytest.raises(StoreError) as caught:
        MailIndex.open(path)
    assert not isinstance(caught.value, IndexCorrupt)
    monkeypatch.setattr(sqlite3, "connect", real_connect)
    MailIndex.open(path).close()
