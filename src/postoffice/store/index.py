"""The per-user SQLite index: mailboxes, UIDs, flags, MODSEQ and on-disk locators.

One file per user (``layout.INDEX_FILE``), WAL mode, a busy timeout so that
several processes can share it. This module is synchronous; the async
service runs it in worker threads. It owns these invariants:

- ``uidnext`` only grows; a UID is handed out once per UIDVALIDITY
  (RFC 3501 §2.3.1.1). ``reset_mailbox`` is the only way to start again, and
  it takes a new UIDVALIDITY.
- ``highestmodseq`` only grows; every arrival, flag change and expunge takes
  the next value (RFC 7162 §3.1).
- Writes happen inside ``transaction()`` (``BEGIN IMMEDIATE``), so that a
  reader never sees half an operation and two writers serialise.
- ``append_intents`` holds at most one row per mailbox: an mbox append in
  progress (``AppendIntent``). It is committed on its own before the first
  octet is written and deleted in the transaction that adds the message's
  row, so a row found under the locks is an append that never completed
  (``mboxrecovery``). With ``durable`` the index runs ``synchronous=FULL``:
  every commit, the intent's included, is on disk when it returns.

Locator columns: Maildir rows use ``locator`` (the unique base name, the part
before ``:``) and ``filename`` (``new/NAME`` or ``cur/NAME:2,FLAGS``); mbox
rows use ``offset`` (of the ``From`` line), ``data_offset`` (first octet of
the message), ``stored_size`` (octets on disk, quoted), ``quoted`` (lines
un-quoted on read) and ``locator`` (``mboxrd.message_tag``, to recognise the
message after another program touched the file); a message's region on
disk ends where the next one's ``offset`` (or the file) begins.

What the index keeps of each message besides (part trees, header field
values) is ``field_cache``'s, mixed in as ``MessageCaches``; its rows go
with their message in the same transactions as the ``messages`` rows.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Collection, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

from postoffice.core.errors import StoreError
from postoffice.store import field_cache
from postoffice.store.api import SEEN_BIT
from postoffice.store.expunged import ExpungedLog, create_tables
from postoffice.store.field_cache import MessageCaches

SCHEMA_VERSION = "1"
# A queued message is retried for 5 days at most; its delivery keys outlive that.
DELIVERY_KEY_DAYS = 10
DELIVERY_KEY_PRUNE_EVERY = 256  # UIDs: how often old keys are deleted
BUSY_TIMEOUT_MS = 30_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS mailboxes(
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    uidvalidity INTEGER NOT NULL,
    uidnext INTEGER NOT NULL,
    highestmodseq INTEGER NOT NULL,
    special_use TEXT,
    sync_state TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS messages(
    mailbox_id INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    flags INTEGER NOT NULL,
    keywords TEXT NOT NULL,
    internal_date REAL NOT NULL,
    size INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    locator TEXT NOT NULL,
    filename TEXT NOT NULL,
    offset INTEGER NOT NULL,
    data_offset INTEGER NOT NULL,
    stored_size INTEGER NOT NULL,
    quoted INTEGER NOT NULL,
    PRIMARY KEY(mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS messages_by_locator ON messages(mailbox_id, locator);
-- What changed since a MODSEQ (an IMAP session catching up, RFC 7162's CHANGEDSINCE).
CREATE INDEX IF NOT EXISTS messages_by_modseq ON messages(mailbox_id, modseq);
CREATE TABLE IF NOT EXISTS subscriptions(name TEXT PRIMARY KEY);
-- Keys of the local deliveries made (queue id and recipient), so that one
-- repeated after a crash is recognised; kept DELIVERY_KEY_DAYS days.
CREATE TABLE IF NOT EXISTS deliveries(
    key TEXT PRIMARY KEY,
    mailbox_id INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    at REAL NOT NULL
) WITHOUT ROWID;
-- ``structures`` and ``header_fields`` (kept part trees and header values) are
-- made by ``field_cache.create_tables``.
CREATE TABLE IF NOT EXISTS append_intents(
    mailbox_id INTEGER PRIMARY KEY,
    inode TEXT NOT NULL,  -- st_ino may not fit SQLite's signed 64 bits
    start INTEGER NOT NULL,
    head BLOB NOT NULL,
    later BLOB NOT NULL
);
"""

_MESSAGE_COLUMNS = (
    "uid, flags, keywords, internal_date, size, modseq, locator, filename, "
    "offset, data_offset, stored_size, quoted"
)


class IndexCorrupt(StoreError):
    """The index file cannot be used; the caller rebuilds it from disk."""


# SQLite result codes that mean the file itself is damaged or is no database
# (sqlite.org/rescode.html). Anything else (out of descriptors, permissions,
# a busy database, a full disk) is transient: rebuilding the index then would
# throw away every flag, keyword and UID for nothing.
_CORRUPT_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})


def _is_corruption(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", None) in _CORRUPT_CODES


class MailboxRow(NamedTuple):
    id: int
    name: str
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    special_use: str | None
    sync_state: str


class MessageRow(NamedTuple):
    uid: int
    flags: int
    keywords: str
    internal_date: float
    size: int
    modseq: int
    locator: str = ""
    filename: str = ""
    offset: int = 0
    data_offset: int = 0
    stored_size: int = 0
    quoted: int = 0


# A ``MessageRow`` from a row of ``_MESSAGE_COLUMNS`` made in C: ``_make`` checks the
# length in Python, a tenth of the time of listing 100,000 messages.
_message_row: Callable[[tuple[Any, ...]], MessageRow] = partial(tuple.__new__, MessageRow)


class NewMessage(NamedTuple):
    """A message to register: everything but the UID and MODSEQ, which the index gives."""

    flags: int
    keywords: str
    internal_date: float
    size: int
    locator: str = ""
    filename: str = ""
    offset: int = 0
    data_offset: int = 0
    stored_size: int = 0
    quoted: int = 0


class AppendIntent(NamedTuple):
    """An mbox append about to start: the file (inode), its size before the append,
    the octets the append writes first (a line break if the file does not end
    in one, then the ``From`` line), and for a batch (COPY) the ``From`` lines
    of the messages after the first, one after the other."""

    inode: int
    start: int
    head: bytes
    later: bytes = b""


class MailIndex(ExpungedLog, MessageCaches):
    """One user's index (see the module docstring). Not thread-safe: callers serialise."""

    def __init__(self, connection: sqlite3.Connection, *, durable: bool = True):
        self._db = connection
        self._depth = 0
        self._durable = durable  # commits are synced (synchronous = FULL)

    @classmethod
    def open(cls, path: Path, *, durable: bool = True) -> MailIndex:
        """Open or create the index at ``path``; ``IndexCorrupt`` when it is unusable."""
        try:
            db = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            kind = IndexCorrupt if _is_corruption(exc) else StoreError
            raise kind(f"cannot open index {path}: {exc}") from exc
        try:
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA journal_mode = WAL")
            # FULL: a committed UID survives power loss, so it is never handed out twice.
            db.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
            check = db.execute("PRAGMA quick_check").fetchone()
            if check is None or check[0] != "ok":
                raise IndexCorrupt(f"index {path} failed its integrity check: {check}")
            db.executescript(_SCHEMA)
            create_tables(db)  # expunged UIDs (``expunged``), also in an older index
            field_cache.create_tables(db)  # kept trees and header values, likewise
            version = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if version is None:
                db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            elif version[0] != SCHEMA_VERSION:
                raise IndexCorrupt(f"index {path} has unknown schema version {version[0]}")
        except sqlite3.Error as exc:
            db.close()
            kind = IndexCorrupt if _is_corruption(exc) else StoreError
            raise kind(f"index {path} is unreadable: {exc}") from exc
        except IndexCorrupt:
            db.close()
            raise
        return cls(db, durable=durable)

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[None]:
        """A write transaction (``BEGIN IMMEDIATE``); nested calls join the outer one.

        ``durable=False`` (flag changes and expunges, which lose no mail when a
        power cut undoes them, as Dovecot's ``fsync_mode = optimized``): the
        commit is not synced to disk by itself (``synchronous = NORMAL``; WAL
        keeps the index consistent, and the next durable commit syncs it too).
        """
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        lazy = not durable and self._durable
        if lazy:
            self._db.execute("PRAGMA synchronous = NORMAL")
        try:
            with self._outer_transaction():
                yield
        finally:
            if lazy:
                self._db.execute("PRAGMA synchronous = FULL")

    @contextlib.contextmanager
    def _outer_transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self._db.execute("ROLLBACK")
            raise
        self._depth = 0
        try:
            self._db.execute("COMMIT")
        except BaseException:
            # A failed COMMIT may leave the transaction open (SQLITE_BUSY does,
            # sqlite.org/lang_transaction.html); it must not be committed later
            # together with unrelated work.
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    # -- mailboxes -----------------------------------------------------------

    def mailboxes(self) -> list[MailboxRow]:
        rows = self._db.execute(
            "SELECT id, name, uidvalidity, uidnext, highestmodseq, special_use, sync_state "
            "FROM mailboxes ORDER BY name"
        ).fetchall()
        return [MailboxRow(*row) for row in rows]

    def mailbox(self, name: str) -> MailboxRow | None:
        row = self._db.execute(
            "SELECT id, name, uidvalidity, uidnext, highestmodseq, special_use, sync_state "
            "FROM mailboxes WHERE name = ?",
            (name,),
        ).fetchone()
        return MailboxRow(*row) if row else None

    def create_mailbox(
        self, name: str, uidvalidity: int, special_use: str | None = None
    ) -> MailboxRow:
        self._db.execute(
            "INSERT INTO mailboxes(name, uidvalidity, uidnext, highestmodseq, special_use) "
            "VALUES (?, ?, 1, 0, ?)",
            (name, uidvalidity, special_use),
        )
        row = self.mailbox(name)
        assert row is not None
        return row

    def delete_mailbox(self, mailbox_id: int) -> None:
        self._db.execute("DELETE FROM append_intents WHERE mailbox_id = ?", (mailbox_id,))
        self._db.execute("DELETE FROM messages WHERE mailbox_id = ?", (mailbox_id,))
        self.forget_cached(mailbox_id, None)
        self._db.execute("DELETE FROM mailboxes WHERE id = ?", (mailbox_id,))
        self.forget_expunged(mailbox_id)  # an id may be used again

    def rename_mailbox(self, mailbox_id: int, new_name: str) -> None:
        self._db.execute("UPDATE mailboxes SET name = ? WHERE id = ?", (new_name, mailbox_id))

    def set_special_use(self, mailbox_id: int, special_use: str | None) -> None:
        self._db.execute(
            "UPDATE mailboxes SET special_use = ? WHERE id = ?", (special_use, mailbox_id)
        )

    def set_sync_state(self, mailbox_id: int, state: str) -> None:
        self._db.execute("UPDATE mailboxes SET sync_state = ? WHERE id = ?", (state, mailbox_id))

    def set_uidnext(self, mailbox_id: int, uidnext: int) -> None:
        """Raise UIDNEXT to at least ``uidnext`` (it never goes down)."""
        self._db.execute(
            "UPDATE mailboxes SET uidnext = max(uidnext, ?) WHERE id = ?", (uidnext, mailbox_id)
        )

    def reset_mailbox(self, mailbox_id: int, uidvalidity: int) -> None:
        """Forget every message and start UIDs again under a new UIDVALIDITY."""
        self._db.execute("DELETE FROM messages WHERE mailbox_id = ?", (mailbox_id,))
        self.forget_cached(mailbox_id, None)
        self.forget_expunged(mailbox_id)
        self._db.execute(
            "UPDATE mailboxes SET uidvalidity = ?, uidnext = 1, sync_state = '' WHERE id = ?",
            (uidvalidity, mailbox_id),
        )

    # -- messages ------------------------------------------------------------

    def messages(self, mailbox_id: int) -> list[MessageRow]:
        """Every message of a mailbox, in UID order."""
        cursor = self._db.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE mailbox_id = ? ORDER BY uid",
            (mailbox_id,),
        )
        return list(map(_message_row, cursor))

    def summaries(self, mailbox_id: int) -> list[tuple[int, int, str, float, int, int]]:
        """(uid, flags, keywords, internal_date, size, modseq) of every message, in UID
        order: what a listing needs, without the locator columns."""
        return self._db.execute(
            "SELECT uid, flags, keywords, internal_date, size, modseq FROM messages "
            "WHERE mailbox_id = ? ORDER BY uid",
            (mailbox_id,),
        ).fetchall()

    def filenames(self, mailbox_id: int) -> set[str]:
        """The ``filename`` of every message of a mailbox (a Maildir's names)."""
        cursor = self._db.execute(
            "SELECT filename FROM messages WHERE mailbox_id = ?", (mailbox_id,)
        )
        return {row[0] for row in cursor}

    def uids(self, mailbox_id: int) -> list[int]:
        """Every UID of a mailbox, ascending."""
        cursor = self._db.execute(
            "SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid", (mailbox_id,)
        )
        return [row[0] for row in cursor]

    def summaries_since(
        self, mailbox_id: int, modseq: int
    ) -> list[tuple[int, int, str, float, int, int]]:
        """``summaries`` of the messages whose MODSEQ is above ``modseq``, in UID order."""
        # By the MODSEQ index, then sorted: SQLite would otherwise walk the whole
        # mailbox in UID order to skip the sort (3.4 ms at 20,000 messages, against
        # 0.04 ms for the few changes a session catches up with after a command).
        return self._db.execute(
            "SELECT uid, flags, keywords, internal_date, size, modseq FROM messages "
            "INDEXED BY messages_by_modseq WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
            (mailbox_id, modseq),
        ).fetchall()

    def message(self, mailbox_id: int, uid: int) -> MessageRow | None:
        row = self._db.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE mailbox_id = ? AND uid = ?",
            (mailbox_id, uid),
        ).fetchone()
        return MessageRow._make(row) if row else None

    def messages_by_uid(self, mailbox_id: int, uids: Collection[int]) -> list[MessageRow]:
        """The existing messages among ``uids``, in UID order (unknown UIDs are skipped).

        A large collection (such as ``range(1, 2**32)`` for IMAP's ``1:*``) is
        not expanded: the mailbox's rows are filtered by membership instead.
        """
        if len(uids) > 1000:
            return [row for row in self.messages(mailbox_id) if row.uid in uids]
        wanted = sorted({int(uid) for uid in uids})
        found: list[MessageRow] = []
        for start in range(0, len(wanted), 500):
            batch = wanted[start : start + 500]
            marks = ",".join("?" * len(batch))
            cursor = self._db.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages "
                f"WHERE mailbox_id = ? AND uid IN ({marks}) ORDER BY uid",
                (mailbox_id, *batch),
            )
            found.extend(map(_message_row, cursor))
        return found

    def by_locator(self, mailbox_id: int, locator: str) -> MessageRow | None:
        row = self._db.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE mailbox_id = ? AND locator = ?",
            (mailbox_id, locator),
        ).fetchone()
        return MessageRow._make(row) if row else None

    def add_message(self, mailbox_id: int, message: NewMessage) -> tuple[int, int]:
        """Register a message; returns its (uid, modseq). Call inside ``transaction()``."""
        row = self._db.execute(
            "UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1 "
            "WHERE id = ? RETURNING uidnext - 1, highestmodseq",
            (mailbox_id,),
        ).fetchone()
        if row is None:
            raise StoreError("mailbox vanished from the index")
        uid, modseq = int(row[0]), int(row[1])
        self._db.execute(
            f"INSERT INTO messages(mailbox_id, {_MESSAGE_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                mailbox_id,
                uid,
                message.flags,
                message.keywords,
                message.internal_date,
                message.size,
                modseq,
                message.locator,
                message.filename,
                message.offset,
                message.data_offset,
                message.stored_size,
                message.quoted,
            ),
        )
        return uid, modseq

    def next_modseq(self, mailbox_id: int) -> int:
        """Take the next MODSEQ of a mailbox. Call inside ``transaction()``."""
        row = self._db.execute(
            "UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ? "
            "RETURNING highestmodseq",
            (mailbox_id,),
        ).fetchone()
        if row is None:
            raise StoreError("mailbox vanished from the index")
        return int(row[0])

    def set_flags(
        self, mailbox_id: int, uid: int, flags: int, keywords: str, filename: str | None = None
    ) -> int:
        """Store new flags for one message with a fresh MODSEQ; returns the MODSEQ."""
        modseq = self.next_modseq(mailbox_id)
        if filename is None:
            self._db.execute(
                "UPDATE messages SET flags = ?, keywords = ?, modseq = ? "
                "WHERE mailbox_id = ? AND uid = ?",
                (flags, keywords, modseq, mailbox_id, uid),
            )
        else:
            self._db.execute(
                "UPDATE messages SET flags = ?, keywords = ?, modseq = ?, filename = ? "
                "WHERE mailbox_id = ? AND uid = ?",
                (flags, keywords, modseq, filename, mailbox_id, uid),
            )
        return modseq

    def set_filename(self, mailbox_id: int, uid: int, filename: str) -> None:
        self._db.execute(
            "UPDATE messages SET filename = ? WHERE mailbox_id = ? AND uid = ?",
            (filename, mailbox_id, uid),
        )

    def set_mbox_locations(self, mailbox_id: int, moves: Sequence[tuple[int, int, int]]) -> None:
        """Update (uid, offset, data_offset) after an mbox rewrite."""
        self._db.executemany(
            "UPDATE messages SET offset = ?, data_offset = ? WHERE mailbox_id = ? AND uid = ?",
            [(offset, data, mailbox_id, uid) for uid, offset, data in moves],
        )

    def remove_messages(self, mailbox_id: int, uids: Collection[int]) -> list[tuple[int, int]]:
        """Delete messages; returns (uid, modseq) for each, one new MODSEQ per expunge."""
        removed: list[tuple[int, int]] = []
        for uid in sorted(uids):
            cursor = self._db.execute(
                "DELETE FROM messages WHERE mailbox_id = ? AND uid = ?", (mailbox_id, uid)
            )
            if cursor.rowcount:
                removed.append((uid, self.next_modseq(mailbox_id)))
        self.forget_cached(mailbox_id, [uid for uid, _ in removed])
        self.record_expunged(mailbox_id, removed)  # RFC 7162 §3.2: kept for VANISHED
        return removed

    def move_messages(self, from_id: int, to_id: int) -> None:
        """Re-home every message of one mailbox in another, keeping UIDs (for RENAME INBOX).

        For the mailbox left empty they are expunges: remembered like any other
        (``record_expunged``), so a session or a QRESYNC client learns they went."""
        moved = self.uids(from_id)
        self._db.execute(
            "UPDATE messages SET mailbox_id = ? WHERE mailbox_id = ?", (to_id, from_id)
        )
        self.move_cached(from_id, to_id)
        # Both listings changed: each takes a new MODSEQ (the invariant above, which
        # ``listing_cache`` relies on).
        modseq = self.next_modseq(from_id)
        self.record_expunged(from_id, [(uid, modseq) for uid in moved])
        self.next_modseq(to_id)

    def totals(self, mailbox_id: int) -> tuple[int, int, int]:
        """(messages, unseen, octets) of a mailbox, computed by SQLite."""
        row = self._db.execute(
            "SELECT count(*), coalesce(sum((flags & ?) = 0), 0), coalesce(sum(size), 0) "
            "FROM messages WHERE mailbox_id = ?",
            (SEEN_BIT, mailbox_id),
        ).fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    # -- mbox append intents (module docstring) --------------------------------

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    def set_append_intent(self, mailbox_id: int, intent: AppendIntent) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO append_intents VALUES (?, ?, ?, ?, ?)",
            (mailbox_id, str(intent.inode), intent.start, intent.head, intent.later),
        )

    def append_intent(self, mailbox_id: int) -> AppendIntent | None:
        row = self._db.execute(
            "SELECT inode, start, head, later FROM append_intents WHERE mailbox_id = ?",
            (mailbox_id,),
        ).fetchone()
        if row is None:
            return None
        return AppendIntent(int(row[0]), int(row[1]), bytes(row[2]), bytes(row[3]))

    # -- delivery keys ------------------------------------------------------------------

    def delivered(self, key: str) -> int | None:
        """The UID a delivery with ``key`` was given, if it was made."""
        row = self._db.execute("SELECT uid FROM deliveries WHERE key = ?", (key,)).fetchone()
        return None if row is None else int(row[0])

    def record_delivery(self, key: str, mailbox_id: int, uid: int, at: float) -> None:
        """Remember a delivery (inside the append's ``transaction()``); forget old ones."""
        self._db.execute(
            "INSERT OR REPLACE INTO deliveries VALUES (?, ?, ?, ?)", (key, mailbox_id, uid, at)
        )
        if uid % DELIVERY_KEY_PRUNE_EVERY == 0:
            cutoff = at - DELIVERY_KEY_DAYS * 86400
            self._db.execute("DELETE FROM deliveries WHERE at < ?", (cutoff,))

    def clear_append_intent(self, mailbox_id: int) -> None:
        self._db.execute("DELETE FROM append_intents WHERE mailbox_id = ?", (mailbox_id,))

    def pending_appends(self) -> list[str]:
        """Names of the mailboxes with an outstanding append intent."""
        return [
            row[0]
            for row in self._db.execute(
                "SELECT name FROM mailboxes JOIN append_intents ON id = mailbox_id ORDER BY name"
            )
        ]

    # -- subscriptions (RFC 3501 §6.3.6: independent of the mailbox's existence) --

    def subscriptions(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT name FROM subscriptions ORDER BY name")]

    def subscribe(self, name: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO subscriptions VALUES (?)", (name,))

    def unsubscribe(self, name: str) -> None:
        self._db.execute("DELETE FROM subscriptions WHERE name = ?", (name,))
