"""The SCRAM-SHA-256 keys of accounts: made with every password, made at the next
login for accounts from before them, and the stable made-up salt of unknown users."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from argon2 import PasswordHasher

from postoffice.core.address import parse_address
from postoffice.directory.accounts import AccountDatabase
from postoffice.protocol.scram import ScramKeys, derive_scram_keys

ALICE = parse_address("alice@example.test")
HASHER = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)

# The accounts table as versions before SCRAM made it.
OLD_SCHEMA = """
CREATE TABLE accounts (
    address       TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    enabled       INTEGER NOT NULL DEFAULT 1,
    quota_bytes   INTEGER NOT NULL DEFAULT 0,
    created       REAL NOT NULL,
    quota_messages INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE domains (name TEXT PRIMARY KEY, created REAL NOT NULL);
"""


def proves(keys: ScramKeys | None, password: str) -> bool:
    """Whether ``keys`` are the keys of ``password`` (same salt and count)."""
    return (
        keys is not None
        and derive_scram_keys(password, salt=keys.salt, iterations=keys.iterations) == keys
    )


def test_keys_follow_the_password_and_the_enabled_flag(tmp_path: Path) -> None:
    db = AccountDatabase(tmp_path / "dir.sqlite3", hasher=HASHER)
    db.add_user(ALICE, "first")
    keys = db.scram_keys(ALICE)
    assert proves(keys, "first") and not proves(keys, "second")
    assert keys is not None and keys.iterations == 4096 and len(keys.salt) == 16
    db.set_password(ALICE, "second")
    changed = db.scram_keys(ALICE)
    assert proves(changed, "second") and changed is not None and changed.salt != keys.salt
    db.set_enabled(ALICE, False)
    assert db.scram_keys(ALICE) is None
    assert db.scram_keys(parse_address("nobody@example.test")) is None
    row = sqlite3.connect(tmp_path / "dir.sqlite3").execute("SELECT scram_sha256 FROM accounts")
    assert row.fetchone()[0].startswith("SCRAM-SHA-256$4096:")


def test_unknown_users_see_the_same_salt_from_every_process(tmp_path: Path) -> None:
    one = AccountDatabase(tmp_path / "dir.sqlite3", hasher=HASHER)
    two = AccountDatabase(tmp_path / "dir.sqlite3", hasher=HASHER)  # another worker
    other = AccountDatabase(tmp_path / "other.sqlite3", hasher=HASHER)
    assert one.unknown_scram_keys("ghost").salt == two.unknown_scram_keys("ghost").salt
    assert one.unknown_scram_keys("ghost").salt != one.unknown_scram_keys("spook").salt
    assert one.unknown_scram_keys("ghost").salt != other.unknown_scram_keys("ghost").salt


def test_an_account_from_before_scram_gets_keys_at_its_next_login(tmp_path: Path) -> None:
    path = tmp_path / "dir.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(OLD_SCHEMA)
    old.execute("INSERT INTO accounts VALUES (?, ?, 1, 0, 1.0, 0)", (ALICE.key, HASHER.hash("pw")))
    old.commit()
    old.close()
    db = AccountDatabase(path, hasher=HASHER, cache_ttl=60)
    assert db.scram_keys(ALICE) is None  # no keys until the password is seen
    assert not db.verify_password(ALICE, "wrong")
    assert db.scram_keys(ALICE) is None
    assert db.verify_password(ALICE, "pw")
    assert proves(db.scram_keys(ALICE), "pw")
    first = db.scram_keys(ALICE)
    assert db.verify_password(ALICE, "pw")  # made once, not at every login
    assert db.scram_keys(ALICE) == first
    columns = [row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(accounts)")]
    assert columns.count("scram_sha256") == 1


def test_unreadable_stored_keys_are_no_keys(tmp_path: Path) -> None:
    db = AccountDatabase(tmp_path / "dir.sqlite3", hasher=HASHER)
    db.add_user(ALICE, "pw")
    with sqlite3.connect(tmp_path / "dir.sqlite3") as raw:
        raw.execute("UPDATE accounts SET scram_sha256 = 'SCRAM-SHA-256$1:x$y:z'")
    assert db.scram_keys(ALICE) is None
    assert db.verify_password(ALICE, "pw")  # the password itself still works
