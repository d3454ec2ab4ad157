"""Accounts and domains, kept in SQLite (WAL) under the data directory.

Owns the ``accounts`` and ``domains`` tables. An account is a mailbox owner
identified by its full address (``Address.key``: local part folded to lower
case); it has an argon2 password hash, an enabled flag and a quota: octets
(``quota_bytes``) and messages (``quota_messages``), 0 = no limit, and the
SCRAM-SHA-256 keys of its password (``scram_sha256``, RFC 5802 §3). A database
made before a column existed gets it when it is opened (``_migrate``: existing
accounts have no message limit, and their SCRAM keys are made at their next
password login). A domain in the table is a local domain; ``Directory`` adds
the ``local-host-names`` file to that set. The ``meta`` table keeps the
database's secret for the salts shown to unknown users in SCRAM.

Invariants:
- a password is stored only as an argon2 hash and as SCRAM-SHA-256 keys
  (PBKDF2, 4096 rounds: a thief of the file can guess passwords against them
  faster than against argon2, the price of a mechanism that never sends the
  password); a hash made with older parameters is replaced on the next
  successful login (``check_needs_rehash``);
- an account's local part is safe to use as a path component (it names the
  user's mail folder): letters, digits, ``.``, ``_`` and ``-``, starting with a
  letter or digit;
- checking the password of an unknown or disabled account costs the same as a
  wrong password, so timing does not tell which accounts exist.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from postoffice.core.address import Address, canonical_domain
from postoffice.core.errors import AccountError, AddressError
from postoffice.core.quota import Quota
from postoffice.protocol.scram import ScramKeys, derive_scram_keys, unknown_user_keys

_COLUMNS = "address, enabled, quota_bytes, created, quota_messages"
_SAFE_LOCAL = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    address       TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    enabled       INTEGER NOT NULL DEFAULT 1,
    quota_bytes   INTEGER NOT NULL DEFAULT 0,
    created       REAL NOT NULL,
    quota_messages INTEGER NOT NULL DEFAULT 0,
    scram_sha256  TEXT
);
CREATE TABLE IF NOT EXISTS domains (
    name    TEXT PRIMARY KEY,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
# Columns added after the first release: (name, definition) for ALTER TABLE.
_ADDED_COLUMNS = (
    ("quota_messages", "INTEGER NOT NULL DEFAULT 0"),
    ("scram_sha256", "TEXT"),
)


@dataclass(frozen=True, slots=True)
class Account:
    address: Address
    enabled: bool
    quota_bytes: int
    created: float
    quota_messages: int = 0

    @property
    def quota(self) -> Quota:
        return Quota(self.quota_bytes, self.quota_messages)


def validate_account_local(local: str) -> str:
    """The lower-cased local part, if it is safe as a mailbox owner's name."""
    folded = local.lower()
    if not _SAFE_LOCAL.fullmatch(folded) or ".." in folded:
        raise AccountError(
            f"local part {local!r} is not allowed for an account: use letters, digits, "
            "'.', '_' and '-', starting with a letter or digit, at most 64 characters"
        )
    return folded


ENABLED_CACHE_SIZE = 10_000
# A password found right stays known for this long (Dovecot's auth_cache_ttl).
VERIFIED_CACHE_SECONDS = 3600.0


class AccountDatabase:
    """Accounts and the domain table in one SQLite file; safe to share between threads.

    With ``cache_ttl`` > 0 (the server) ``has_domain`` answers from a set of
    the domain names read at most ``cache_ttl`` seconds ago, and
    ``is_enabled`` and ``quota`` from a per-address row at most that old (monotonic
    clock): no SQLite query per recipient on the event loop. Changes made
    through this object drop the caches at once; a change by another process
    (``postoffice user add`` beside the server) is seen within the TTL.

    With a cache, a password that was verified stays known for
    ``VERIFIED_CACHE_SECONDS`` as a keyed BLAKE2b digest (the key is random
    per process and never stored), tied to the stored hash it was checked
    against: the next login with it skips argon2 (about 0.1 s of CPU each,
    by design), and a changed password or a disabled account takes effect at
    once, since every check still reads the account's row. Wrong passwords
    always pay the full argon2 cost, as unknown users do (``_dummy_hash``).
    """

    def __init__(
        self,
        path: Path,
        *,
        hasher: PasswordHasher | None = None,
        cache_ttl: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.path = path
        self.cache_ttl = cache_ttl
        self._monotonic = monotonic
        self._domain_cache: tuple[float, frozenset[str]] | None = None  # (expiry, names)
        self._account_cache: dict[str, tuple[float, Account | None]] = {}  # key -> (expiry, row)
        # key -> (expiry, stored hash, keyed digest of the password that matched it)
        self._verified: dict[str, tuple[float, str, bytes]] = {}
        self._digest_key = secrets.token_bytes(32)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._scram_secret = b""
        self._migrate()
        self._hasher = hasher or PasswordHasher()
        self._dummy_hash = self._hasher.hash("postoffice: timing equaliser")

    def _migrate(self) -> None:
        """Bring a database made by an older version up to ``_SCHEMA``."""
        with self._lock:
            for name, definition in _ADDED_COLUMNS:
                columns = {row[1] for row in self._db.execute("PRAGMA table_info(accounts)")}
                if name in columns:
                    continue
                try:
                    self._db.execute(f"ALTER TABLE accounts ADD COLUMN {name} {definition}")
                except sqlite3.OperationalError:
                    # Another process (the workers open the directory at once) added it
                    # between the look and the ALTER: only then is the error no error.
                    columns = {row[1] for row in self._db.execute("PRAGMA table_info(accounts)")}
                    if name not in columns:
                        raise
            query = "SELECT value FROM meta WHERE name = 'scram_secret'"
            row = self._db.execute(query).fetchone()
            if row is None:  # the first open: made once (by whichever process wins)
                self._db.execute(
                    "INSERT OR IGNORE INTO meta (name, value) VALUES ('scram_secret', ?)",
                    (secrets.token_hex(32),),
                )
                row = self._db.execute(query).fetchone()
            self._scram_secret = bytes.fromhex(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            # Any change through this object is seen by the next lookup at once.
            self._domain_cache = None
            self._account_cache.clear()

    # -- domains --------------------------------------------------------------

    def add_domain(self, name: str) -> str:
        domain = _domain(name)
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM domains WHERE name = ?", (domain,)).fetchone():
                raise AccountError(f"domain {domain} already exists")
            db.execute("INSERT INTO domains VALUES (?, ?)", (domain, time.time()))
        return domain

    def delete_domain(self, name: str) -> None:
        domain = _domain(name)
        with self._transaction() as db:
            users = db.execute(
                "SELECT count(*) FROM accounts WHERE address LIKE ? ESCAPE '\\'",
                ("%@" + domain.replace("_", "\\_").replace("%", "\\%"),),
            ).fetchone()[0]
            if users:
                raise AccountError(
                    f"domain {domain} still has {users} account(s); delete them first"
                )
            if db.execute("DELETE FROM domains WHERE name = ?", (domain,)).rowcount == 0:
                raise AccountError(f"no such domain: {domain}")

    def domains(self) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT name FROM domains ORDER BY name").fetchall()
        return [row[0] for row in rows]

    def has_domain(self, domain: str) -> bool:
        if self.cache_ttl > 0:
            return domain in self._cached_domains()
        with self._lock:
            row = self._db.execute("SELECT 1 FROM domains WHERE name = ?", (domain,)).fetchone()
        return row is not None

    def _cached_domains(self) -> frozenset[str]:
        cached = self._domain_cache
        now = self._monotonic()
        if cached is not None and now < cached[0]:
            return cached[1]
        with self._lock:
            rows = self._db.execute("SELECT name FROM domains").fetchall()
        names = frozenset(row[0] for row in rows)
        self._domain_cache = (now + self.cache_ttl, names)
        return names

    # -- accounts -------------------------------------------------------------

    def add_user(
        self, address: Address, password: str, *, quota_bytes: int = 0, quota_messages: int = 0
    ) -> Account:
        validate_account_local(address.local)
        _check_password(password)
        digest = self._hasher.hash(password)
        scram = derive_scram_keys(password).text()
        created = time.time()
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM accounts WHERE address = ?", (address.key,)).fetchone():
                raise AccountError(f"account {address.key} already exists")
            db.execute(
                "INSERT INTO accounts (address, password_hash, enabled, quota_bytes, created,"
                " quota_messages, scram_sha256) VALUES (?, ?, 1, ?, ?, ?, ?)",
                (address.key, digest, quota_bytes, created, quota_messages, scram),
            )
        who = Address(address.local_key, address.domain)
        return Account(who, True, quota_bytes, created, quota_messages)

    def delete_user(self, address: Address) -> None:
        with self._transaction() as db:
            if db.execute("DELETE FROM accounts WHERE address = ?", (address.key,)).rowcount == 0:
                raise AccountError(f"no such account: {address.key}")

    def set_password(self, address: Address, password: str) -> None:
        _check_password(password)
        digest = self._hasher.hash(password)
        scram = derive_scram_keys(password).text()
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE accounts SET password_hash = ?, scram_sha256 = ? WHERE address = ?",
                (digest, scram, address.key),
            )
            if cursor.rowcount == 0:
                raise AccountError(f"no such account: {address.key}")

    def set_enabled(self, address: Address, enabled: bool) -> None:
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE accounts SET enabled = ? WHERE address = ?", (int(enabled), address.key)
            )
            if cursor.rowcount == 0:
                raise AccountError(f"no such account: {address.key}")

    def set_quota(
        self, address: Address, *, octets: int | None = None, messages: int | None = None
    ) -> Account:
        """Change the account's limits (None: leave that one as it is; 0: no limit)."""
        if (octets is not None and octets < 0) or (messages is not None and messages < 0):
            raise AccountError("a quota is 0 (no limit) or more")
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE accounts SET quota_bytes = coalesce(?, quota_bytes), "
                "quota_messages = coalesce(?, quota_messages) WHERE address = ?",
                (octets, messages, address.key),
            )
            if cursor.rowcount == 0:
                raise AccountError(f"no such account: {address.key}")
            row = db.execute(
                f"SELECT {_COLUMNS} FROM accounts WHERE address = ?", (address.key,)
            ).fetchone()
        return _account(row)

    def get(self, address: Address) -> Account | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM accounts WHERE address = ?", (address.key,)
            ).fetchone()
        return _account(row) if row else None

    def users(self, domain: str | None = None) -> list[Account]:
        with self._lock:
            query = f"SELECT {_COLUMNS} FROM accounts ORDER BY address"
            rows = self._db.execute(query).fetchall()
        accounts = [_account(row) for row in rows]
        if domain is not None:
            accounts = [a for a in accounts if a.address.domain == _domain(domain)]
        return accounts

    def lookup(self, address: Address) -> Account | None:
        """``get``, answered from a per-address cache at most ``cache_ttl`` old."""
        if self.cache_ttl <= 0:
            return self.get(address)
        now = self._monotonic()
        cached = self._account_cache.get(address.key)
        if cached is not None and now < cached[0]:
            return cached[1]
        account = self.get(address)
        if len(self._account_cache) >= ENABLED_CACHE_SIZE:
            self._account_cache.clear()  # bounded: an address flood costs queries, not memory
        self._account_cache[address.key] = (now + self.cache_ttl, account)
        return account

    def is_enabled(self, address: Address) -> bool:
        account = self.lookup(address)
        return account is not None and account.enabled

    def quota(self, address: Address) -> Quota:
        """The account's limits (no limits for an unknown account), from the cache."""
        account = self.lookup(address)
        return Quota() if account is None else account.quota

    def verify_password(self, address: Address, password: str) -> bool:
        """True when ``password`` is right for an enabled account (rehashing if needed)."""
        with self._lock:
            row = self._db.execute(
                "SELECT password_hash, enabled, scram_sha256 IS NULL FROM accounts"
                " WHERE address = ?",
                (address.key,),
            ).fetchone()
        stored, enabled = (row[0], bool(row[1])) if row else (self._dummy_hash, False)
        digest = b""
        if self.cache_ttl > 0 and row and enabled:
            digest = hashlib.blake2b(
                password.encode("utf-8", "surrogatepass"), key=self._digest_key
            ).digest()
            known = self._verified.get(address.key)
            if (
                known is not None
                and known[0] > self._monotonic()
                and known[1] == stored
                and hmac.compare_digest(known[2], digest)
            ):
                return True
        try:
            self._hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        if not row or not enabled:
            return False
        if digest:
            if len(self._verified) >= ENABLED_CACHE_SIZE:
                self._verified.clear()
            expiry = self._monotonic() + VERIFIED_CACHE_SECONDS
            self._verified[address.key] = (expiry, stored, digest)
        if self._hasher.check_needs_rehash(stored):
            fresh = self._hasher.hash(password)
            with self._transaction() as db:
                db.execute(
                    "UPDATE accounts SET password_hash = ? WHERE address = ? AND password_hash = ?",
                    (fresh, address.key, stored),
                )
        if row[2]:  # an account from before SCRAM: its keys, now that the password is known
            with self._transaction() as db:
                db.execute(
                    "UPDATE accounts SET scram_sha256 = ? WHERE address = ? AND password_hash = ?"
                    " AND scram_sha256 IS NULL",
                    (derive_scram_keys(password).text(), address.key, stored),
                )
        return True

    def scram_keys(self, address: Address) -> ScramKeys | None:
        """The SCRAM-SHA-256 keys of an enabled account; None for an unknown or
        disabled account, or one whose keys are not made yet (or unreadable)."""
        with self._lock:
            row = self._db.execute(
                "SELECT scram_sha256, enabled FROM accounts WHERE address = ?", (address.key,)
            ).fetchone()
        if row is None or row[0] is None or not row[1]:
            return None
        try:
            return ScramKeys.parse(row[0])
        except ValueError:
            return None

    def unknown_scram_keys(self, username: str) -> ScramKeys:
        """What SCRAM shows for a user without keys: the same salt every time
        (from this database's secret), keys that match no proof."""
        return unknown_user_keys(self._scram_secret, username)

    def login_scram_keys(self, address: Address | None, username: str) -> ScramKeys:
        """The keys a SCRAM exchange for ``username`` (``address`` when it parses)
        goes on with: the account's, else made-up ones that fail at its end."""
        keys = None if address is None else self.scram_keys(address)
        return keys or self.unknown_scram_keys(username)

    def password_hash(self, address: Address) -> str | None:
        """The stored hash (for tests and for the rehash check); None for no account."""
        with self._lock:
            row = self._db.execute(
                "SELECT password_hash FROM accounts WHERE address = ?", (address.key,)
            ).fetchone()
        return str(row[0]) if row else None


def _account(row: tuple[str, int, int, float, int]) -> Account:
    local, _, domain = row[0].rpartition("@")
    return Account(Address(local, domain), bool(row[1]), int(row[2]), float(row[3]), int(row[4]))


def _domain(name: str) -> str:
    try:
        return canonical_domain(name)
    except AddressError as exc:
        raise AccountError(str(exc)) from exc


def _check_password(password: str) -> None:
    if not password:
        raise AccountError("the password must not be empty")
    if len(password.encode("utf-8")) > 1024:
        raise AccountError("the password is longer than 1024 octets")
    if any(ord(c) < 0x20 for c in password):
        raise AccountError("the password must not contain control characters")
