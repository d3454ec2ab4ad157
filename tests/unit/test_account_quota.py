"""Account quotas in the directory database: both limits, ``set_quota``, the cached
``quota()`` lookup, and the migration of a database made before ``quota_messages``."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from postoffice.core.address import parse_address
from postoffice.core.errors import AccountError
from postoffice.core.quota import Quota, Usage
from postoffice.directory import accounts as accounts_module
from postoffice.directory.accounts import AccountDatabase

ALICE = parse_address("alice@example.test")
HASHER = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)

# The accounts table as versions before the message quota made it.
OLD_SCHEMA = """
CREATE TABLE accounts (
    address       TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    enabled       INTEGER NOT NULL DEFAULT 1,
    quota_bytes   INTEGER NOT NULL DEFAULT 0,
    created       REAL NOT NULL
);
CREATE TABLE domains (name TEXT PRIMARY KEY, created REAL NOT NULL);
"""


def test_an_old_database_gains_the_message_quota(tmp_path: Path) -> None:
    path = tmp_path / "dir.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(OLD_SCHEMA)
    old.execute(
        "INSERT INTO accounts VALUES (?, ?, 1, ?, ?)",
        ("alice@example.test", HASHER.hash("pw"), 5 * 1024 * 1024, 1.0),
    )
    old.commit()
    old.close()
    db = AccountDatabase(path, hasher=HASHER)
    try:
        account = db.get(ALICE)
        assert account is not None
        assert (account.quota_bytes, account.quota_messages) == (5 * 1024 * 1024, 0)
        assert db.verify_password(ALICE, "pw")  # the rest of the row is untouched
        db.set_quota(ALICE, messages=7)
        db.add_user(parse_address("bob@example.test"), "pw", quota_messages=3)
    finally:
        db.close()
    again = AccountDatabase(path, hasher=HASHER)  # opening twice migrates once
    try:
        assert again.quota(ALICE) == Quota(5 * 1024 * 1024, 7)
        assert again.quota(parse_address("bob@example.test")) == Quota(0, 3)
    finally:
        again.close()
    columns = [row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(accounts)")]
    assert columns.count("quota_messages") == 1


def test_set_quota_changes_one_limit_or_both(tmp_path: Path) -> None:
    db = AccountDatabase(tmp_path / "dir.sqlite3", hasher=HASHER)
    db.add_user(ALICE, "pw", quota_bytes=100, quota_messages=10)
    assert db.set_quota(ALICE, octets=200).quota == Quota(200, 10)
    assert db.set_quota(ALICE, messages=0).quota == Quota(200, 0)
    assert db.set_quota(ALICE, octets=0, messages=4).quota == Quota(0, 4)
    with pytest.raises(AccountError, match="no such account"):
        db.set_quota(parse_address("nobody@example.test"), octets=1)
    with pytest.raises(AccountError):
        db.set_quota(ALICE, messages=-1)
    assert db.quota(parse_address("nobody@example.test")) == Quota()


def test_cached_quota_sees_own_changes_at_once_and_others_within_the_ttl(tmp_path: Path) -> None:
    now = [0.0]
    path = tmp_path / "dir.sqlite3"
    db = AccountDatabase(path, hasher=HASHER, cache_ttl=1.0, monotonic=lambda: now[0])
    db.add_user(ALICE, "pw", quota_messages=1)
    assert db.quota(ALICE) == Quota(0, 1)
    db.set_quota(ALICE, messages=2)  # through this object: seen at once
    assert db.quota(ALICE) == Quota(0, 2)
    other = AccountDatabase(path, hasher=HASHER)  # another process (the CLI)
    other.set_quota(ALICE, messages=3)
    assert db.quota(ALICE) == Quota(0, 2)
    now[0] = 1.5
    assert db.quota(ALICE) == Quota(0, 3)


def test_quota_verdicts() -> None:
    """``Quota.exceeded_by``: only a limited resource taken past its limit refuses;
    adding nothing (a MOVE) never does, even over quota."""
    quota = Quota(octets=1000, messages=2)
    assert quota.exceeded_by(Usage(900, 1), 100, 1) is None  # exactly full is allowed
    assert quota.exceeded_by(Usage(900, 1), 101, 1) == "STORAGE"
    assert quota.exceeded_by(Usage(0, 2), 1, 1) == "MESSAGE"
    assert quota.exceeded_by(Usage(5000, 9), 0, 0) is None
    assert Quota().exceeded_by(Usage(10**12, 10**9), 10**9, 10**6) is None
    assert not Quota().limited and Quota(messages=1).limited


class _RacedConnection:
    """A connection whose first look at the accounts columns is followed, before it
    returns, by another process adding ``quota_messages`` (the serving workers open
    the directory at once, each migrating an old database)."""

    def __init__(self, real: sqlite3.Connection, path: Path, connect: object) -> None:
        self._real = real
        self._path = path
        self._connect = connect
        self._raced = False

    def execute(self, sql: str, *args: object) -> object:
        result = self._real.execute(sql, *args)
        if sql.startswith("PRAGMA table_info") and not self._raced:
            self._raced = True
            rows = result.fetchall()
            assert callable(self._connect)
            other = self._connect(self._path, timeout=0.2, isolation_level=None)
            # Locked out: the migration holds the write lock, so no race can happen.
            with contextlib.suppress(sqlite3.OperationalError):
                other.execute(
                    "ALTER TABLE accounts ADD COLUMN quota_messages INTEGER NOT NULL DEFAULT 0"
                )
            other.close()
            return iter(rows)
        return result

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)


def test_two_processes_migrating_an_old_database_at_once_both_open_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "dir.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(OLD_SCHEMA)
    old.close()
    connect = sqlite3.connect

    def raced(*args: object, **kwargs: object) -> object:
        return _RacedConnection(connect(*args, **kwargs), path, connect)  # type: ignore[arg-type]

    monkeypatch.setattr(accounts_module.sqlite3, "connect", raced)
    db = AccountDatabase(path, hasher=HASHER)  # duplicate column name: quota_messages
    monkeypatch.undo()
    try:
        db.add_user(ALICE, "pw", quota_messages=2)
        assert db.quota(ALICE) == Quota(0, 2)
    finally:
        db.close()
