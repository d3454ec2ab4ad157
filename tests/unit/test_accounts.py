"""Accounts and domains in SQLite with argon2 hashes."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from postoffice.core.address import parse_address
from postoffice.core.errors import AccountError
from postoffice.directory.accounts import AccountDatabase

ALICE = parse_address("Alice@Example.test")


@pytest.fixture
def accounts(tmp_path: Path) -> AccountDatabase:
    # Cheap argon2 parameters keep the suite fast; the defaults are used in production.
    db = AccountDatabase(
        tmp_path / "dir.sqlite3", hasher=PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    )
    db.add_domain("example.test")
    return db


def test_add_and_verify(accounts: AccountDatabase) -> None:
    accounts.add_user(ALICE, "s3cret")
    assert accounts.verify_password(parse_address("alice@example.test"), "s3cret")
    assert not accounts.verify_password(ALICE, "wrong")
    assert not accounts.verify_password(parse_address("nobody@example.test"), "s3cret")
    stored = accounts.password_hash(ALICE)
    assert stored is not None and stored.startswith("$argon2id$")
    assert "s3cret" not in stored


def test_users_are_listed_by_key(accounts: AccountDatabase) -> None:
    accounts.add_user(ALICE, "pw")
    accounts.add_user(parse_address("bob@example.test"), "pw", quota_bytes=1024)
    listed = [(a.address.key, a.quota_bytes) for a in accounts.users()]
    assert listed == [("alice@example.test", 0), ("bob@example.test", 1024)]
    assert accounts.users("other.test") == []


def test_duplicates_and_unknowns_are_errors(accounts: AccountDatabase) -> None:
    accounts.add_user(ALICE, "pw")
    with pytest.raises(AccountError, match="already exists"):
        accounts.add_user(parse_address("ALICE@example.test"), "pw2")
    with pytest.raises(AccountError, match="no such account"):
        accounts.delete_user(parse_address("ghost@example.test"))
    with pytest.raises(AccountError, match="no such account"):
        accounts.set_password(parse_address("ghost@example.test"), "x")
    with pytest.raises(AccountError, match="already exists"):
        accounts.add_domain("EXAMPLE.test")


@pytest.mark.parametrize("local", ["../etc", ".hidden", "a/b", "a..b", "x" * 65, "-dash"])
def test_unsafe_local_parts_are_refused(accounts: AccountDatabase, local: str) -> None:
    from postoffice.core.address import Address

    with pytest.raises(AccountError, match="not allowed"):
        accounts.add_user(Address(local, "example.test"), "pw")


@pytest.mark.parametrize("password", ["", "a\x00b", "x" * 1025])
def test_bad_passwords_are_refused(accounts: AccountDatabase, password: str) -> None:
    with pytest.raises(AccountError):
        accounts.add_user(ALICE, password)


def test_disabled_account_cannot_log_in(accounts: AccountDatabase) -> None:
    accounts.add_user(ALICE, "pw")
    accounts.set_enabled(ALICE, False)
    assert not accounts.verify_password(ALICE, "pw")
    assert not accounts.is_enabled(ALICE)


def test_password_change(accounts: AccountDatabase) -> None:
    accounts.add_user(ALICE, "old")
    accounts.set_password(ALICE, "new")
    assert accounts.verify_password(ALICE, "new")
    assert not accounts.verify_password(ALICE, "old")


def test_rehash_on_login_when_parameters_change(tmp_path: Path) -> None:
    path = tmp_path / "dir.sqlite3"
    weak = AccountDatabase(path, hasher=PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))
    weak.add_domain("example.test")
    weak.add_user(ALICE, "pw")
    old_hash = weak.password_hash(ALICE)
    weak.close()
    stronger = AccountDatabase(
        path, hasher=PasswordHasher(time_cost=2, memory_cost=128, parallelism=1)
    )
    assert stronger.verify_password(ALICE, "pw")
    new_hash = stronger.password_hash(ALICE)
    assert new_hash != old_hash
    assert new_hash is not None and "t=2" in new_hash
    assert stronger.verify_password(ALICE, "pw")


def test_domain_with_accounts_cannot_be_deleted(accounts: AccountDatabase) -> None:
    accounts.add_user(ALICE, "pw")
    with pytest.raises(AccountError, match="still has 1 account"):
        accounts.delete_domain("example.test")
    accounts.delete_user(ALICE)
    accounts.delete_domain("example.test")
    assert accounts.domains() == []


def test_database_is_wal_and_survives_reopen(tmp_path: Path, accounts: AccountDatabase) -> None:
    accounts.add_user(ALICE, "pw")
    accounts.close()
    with sqlite3.connect(tmp_path / "dir.sqlite3") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again = AccountDatabase(tmp_path / "dir.sqlite3")
    assert again.get(ALICE) is not None
    again.close()


def test_concurrent_adds_from_threads(accounts: AccountDatabase) -> None:
    errors: list[Exception] = []

    def add(i: int) -> None:
        try:
            accounts.add_user(parse_address(f"user{i}@example.test"), "pw")
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(accounts.users()) == 20


def test_the_domain_cache_serves_within_its_ttl_and_sees_changes(tmp_path: Path) -> None:
    path = tmp_path / "directory.sqlite3"
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    now = [0.0]
    cached = AccountDatabase(path, hasher=hasher, cache_ttl=1.0, monotonic=lambda: now[0])
    other = AccountDatabase(path, hasher=hasher)  # another process: the CLI
    try:
        assert not cached.has_domain("example.test")
        cached.add_domain("example.test")  # a change through this object: seen at once
        assert cached.has_domain("example.test")
        other.add_domain("other.test")
        assert not cached.has_domain("other.test")  # within the TTL: the cached list
        now[0] = 1.0
        assert cached.has_domain("other.test")  # seen once the TTL passed
        cached.delete_domain("example.test")
        assert not cached.has_domain("example.test")
    finally:
        cached.close()
        other.close()


def test_the_account_cache_serves_within_its_ttl_and_sees_changes(tmp_path: Path) -> None:
    path = tmp_path / "directory.sqlite3"
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    now = [0.0]
    cached = AccountDatabase(path, hasher=hasher, cache_ttl=1.0, monotonic=lambda: now[0])
    other = AccountDatabase(path, hasher=hasher)  # another process: the CLI
    alice, bob = parse_address("alice@example.test"), parse_address("bob@example.test")
    try:
        assert not cached.is_enabled(alice)
        cached.add_user(alice, "pw-alice")  # a change through this object: seen at once
        assert cached.is_enabled(alice)
        assert not cached.is_enabled(bob)
        other.add_user(bob, "pw-bob")
        other.set_enabled(alice, False)
        assert not cached.is_enabled(bob)  # within the TTL: the cached answers
        assert cached.is_enabled(alice)
        now[0] = 1.0
        assert cached.is_enabled(bob)  # seen once the TTL passed
        assert not cached.is_enabled(alice)
        cached.delete_user(bob)
        assert not cached.is_enabled(bob)
    finally:
        cached.close()
        other.close()


class CountingHasher(PasswordHasher):
    """A cheap argon2 that counts its verifications."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verified += 1
        return super().verify(hash, password)


def test_a_verified_password_skips_argon2_until_the_account_changes(tmp_path: Path) -> None:
    path = tmp_path / "directory.sqlite3"
    hasher = CountingHasher()
    now = [0.0]
    cached = AccountDatabase(path, hasher=hasher, cache_ttl=1.0, monotonic=lambda: now[0])
    other = AccountDatabase(path, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    alice = parse_address("alice@example.test")
    try:
        cached.add_user(alice, "right")
        assert cached.verify_password(alice, "right")
        assert cached.verify_password(alice, "right")
        assert hasher.verified == 1  # the second login came from the cache
        assert not cached.verify_password(alice, "wrong")
        assert hasher.verified == 2  # a wrong password always pays argon2
        other.set_password(alice, "new")  # another process changes it: at once
        assert not cached.verify_password(alice, "right")
        assert cached.verify_password(alice, "new")
        other.set_enabled(alice, False)
        assert not cached.verify_password(alice, "new")
        other.set_enabled(alice, True)
        assert cached.verify_password(alice, "new")
        verified = hasher.verified
        now[0] = 3601.0  # the cache forgets after an hour
        assert cached.verify_password(alice, "new")
        assert hasher.verified == verified + 1
    finally:
        cached.close()
        other.close()
