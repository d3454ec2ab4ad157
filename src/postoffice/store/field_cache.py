"""What the index keeps of each message so that it is not read again: part trees
and header field values.

What this module owns: the ``structures``, ``header_fields`` and ``answers``
tables of the per-user index and ``MessageCaches``, the part of
``index.MailIndex`` that writes, reads and drops their rows.

- ``structures``: a message's part tree (``mime.structure.encode_structure``),
  computed at its first FETCH or SEARCH, so that no message is parsed twice.
- ``header_fields``: the values of one top-level header field of a message,
  as ``mime.headers.header_values`` gives them (a JSON list of strings; the
  field name lower-case), computed at the first SORT, THREAD or SEARCH that
  needs them, so that a later one reads the index, not the message files
  (Dovecot keeps such fields in its cache file for the same reason). Rows
  whose name starts with ":" are not header fields but what IMAP made of the
  message, kept the same way: SORT and THREAD keys
  (``server.imap_fields.KeyKind``) and rendered FETCH items such as
  ``:fetch/envelope/0`` (``server.imap_fetch``).
- ``answers``: the last answer of one kind of command over a whole mailbox
  (a THREAD response, ``server.imap_thread``), with the digest of what it
  was computed from (the UIDVALIDITY and the messages it covered). It is
  only ever given back for the same digest: a changed mailbox computes
  again, and replaces it. An answer whose kind starts with ``KEY_SET``
  holds, in one row, the SORT or THREAD keys of many messages
  (``server.imap_fields``): a key depends on its message alone, so these
  stay when messages are expunged (they name them by UID, and a UID is never
  used again under one UIDVALIDITY), and go with a reset or the mailbox.

Invariants:

- A row describes the message stored under (mailbox_id, uid) in the
  mailbox's present UIDVALIDITY; messages never change, so a row is never
  stale while its message exists.
- A row goes with its message: expunge, a mailbox reset (new UIDVALIDITY)
  and a mailbox deletion drop it; RENAME INBOX moves it with the message
  (``index.MailIndex``, in the same transaction).
- Rows are only written for messages that exist (and, for header fields, in
  the UIDVALIDITY the reader saw), so a reader racing an expunge or a reset
  leaves nothing behind.
- Both are caches: losing them costs time only, so they are written without
  a synced commit (``durable=False``).
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Collection, Iterable, Iterator, Sequence
from json.encoder import encode_basestring_ascii
from typing import Final, cast

KEY_SET: Final = "keys/"  # the kinds of answers that hold keys by UID (module docstring)
_IN_CHUNK: Final = 500  # bound parameters per IN (...) query, under SQLite's limit
_SCAN_ABOVE: Final = 4 * _IN_CHUNK  # more UIDs than this: the mailbox's rows are scanned

_TABLES = """
CREATE TABLE IF NOT EXISTS structures(
    mailbox_id INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    blob BLOB NOT NULL,
    PRIMARY KEY(mailbox_id, uid)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS header_fields(
    mailbox_id INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY(mailbox_id, uid, field)
) WITHOUT ROWID;
-- One field of a whole mailbox (a SORT or THREAD key of 100,000 messages) without
-- reading the rows of every other field.
CREATE INDEX IF NOT EXISTS header_fields_by_field ON header_fields(mailbox_id, field);
CREATE TABLE IF NOT EXISTS answers(
    mailbox_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    digest BLOB NOT NULL,
    blob BLOB NOT NULL,
    PRIMARY KEY(mailbox_id, kind)
) WITHOUT ROWID;
"""

# (uid, lower-case field name, values): one ``header_fields`` row as callers give it
FieldRow = tuple[int, str, list[str]]


def create_tables(db: sqlite3.Connection) -> None:
    """Add the tables to an index, new or older than them (``IF NOT EXISTS``)."""
    db.executescript(_TABLES)


def _chunks(uids: Collection[int]) -> Iterator[list[int]]:
    ordered = sorted(uids)
    for start in range(0, len(ordered), _IN_CHUNK):
        yield ordered[start : start + _IN_CHUNK]


def _decoded(value: str) -> object:
    try:
        return json.loads(value)
    except ValueError:
        return None  # damaged: computed again, and the row replaced


def _encoded(values: list[str]) -> str:
    """``json.dumps(values)`` of a list of strings, each string encoded by the
    same C function, without the encoder's set-up per list (800,000 rows after
    the first SEARCH of a 100,000-message mailbox)."""
    try:
        return "[" + ", ".join(map(encode_basestring_ascii, values)) + "]"
    except TypeError:  # not all strings: as json writes them
        return json.dumps(values)


def string_lists(items: object) -> bool:
    """``items`` a list whose every item is a list of strings (a row's values,
    ``_is_values``), checked in C: a type per item, then one join of all the
    strings (100,000 rows, or a key set's references, without a call each)."""
    if type(items) is not list or not set(map(type, items)) <= {list}:
        return False
    try:
        "".join(itertools.chain.from_iterable(cast(list[list[str]], items)))
    except TypeError:
        return False
    return True


def _is_values(values: object) -> bool:
    """A list of strings (a damaged row may decode to anything else)."""
    if not isinstance(values, list):
        return False
    try:
        # Strings only: join checks each item in C, where a generator costs a
        # call per row (the rows of a FETCH of 500 messages, of a SORT of 100,000).
        "".join(values)
    except TypeError:
        return False
    return True


class MessageCaches:
    """The cache tables' part of ``MailIndex`` (see the module docstring)."""

    _db: sqlite3.Connection

    def structures(self, mailbox_id: int, uids: Collection[int]) -> dict[int, bytes]:
        """The kept part trees of those of ``uids`` that have one."""
        found: dict[int, bytes] = {}
        for chunk in _chunks(uids):
            marks = ",".join("?" * len(chunk))
            cursor = self._db.execute(
                f"SELECT uid, blob FROM structures WHERE mailbox_id = ? AND uid IN ({marks})",
                (mailbox_id, *chunk),
            )
            found.update(cursor.fetchall())
        return found

    def set_structures(self, mailbox_id: int, blobs: Sequence[tuple[int, bytes]]) -> None:
        """Keep part trees, for messages that still exist (call inside ``transaction``)."""
        self._db.executemany(
            "INSERT OR REPLACE INTO structures(mailbox_id, uid, blob) "
            "SELECT ?, ?, ? WHERE EXISTS "
            "(SELECT 1 FROM messages WHERE mailbox_id = ? AND uid = ?)",
            [(mailbox_id, uid, blob, mailbox_id, uid) for uid, blob in blobs],
        )

    def header_fields(
        self, mailbox_id: int, uids: Collection[int], fields: Iterable[str]
    ) -> dict[tuple[int, str], list[str]]:
        """The kept values of ``fields`` (lower-case names) of ``uids``, by (uid, field);
        a pair without a row is absent. One query per chunk of UIDs and field."""
        rows = list(self._field_rows(mailbox_id, uids, sorted(set(fields))))
        try:
            # One parse of all the rows' lists at once: a call per row costs more
            # than the query (100,000 messages, several fields each).
            decoded = json.loads("[" + ",".join(value for _, _, value in rows) + "]")
        except ValueError:
            decoded = [_decoded(value) for _, _, value in rows]  # some row is damaged
        if string_lists(decoded):  # as nearly always: no row to check on its own
            return dict(zip([row[:2] for row in rows], decoded, strict=True))
        return {
            (int(uid), str(field)): values
            for (uid, field, _), values in zip(rows, decoded, strict=True)
            if _is_values(values)
        }

    def _field_rows(
        self, mailbox_id: int, uids: Collection[int], names: list[str]
    ) -> Iterator[tuple[int, str, str]]:
        if not names:
            return
        if len(uids) > _SCAN_ABOVE:
            # Most of a big mailbox: one pass over its rows beats many IN lookups,
            # of the fields that have rows at all (SORT and THREAD ask for keys
            # before they are ever made: a pass for nothing took 60 ms on 800,000).
            names = [name for name in names if self._has_field(mailbox_id, name)]
            if not names:
                return
            wanted = uids if isinstance(uids, set | frozenset | range) else set(uids)
            marks = ",".join("?" * len(names))
            cursor = self._db.execute(
                "SELECT uid, field, value FROM header_fields "
                f"WHERE mailbox_id = ? AND field IN ({marks})",
                (mailbox_id, *names),
            )
            yield from (row for row in cursor if row[0] in wanted)
            return
        for field in names:
            for chunk in _chunks(uids):
                marks = ",".join("?" * len(chunk))
                yield from self._db.execute(
                    "SELECT uid, field, value FROM header_fields "
                    f"WHERE mailbox_id = ? AND field = ? AND uid IN ({marks})",
                    (mailbox_id, field, *chunk),
                )

    def _has_field(self, mailbox_id: int, name: str) -> bool:
        """Whether some message of the mailbox has a row of ``name`` (the
        ``header_fields_by_field`` index answers without a pass)."""
        return (
            self._db.execute(
                "SELECT 1 FROM header_fields WHERE mailbox_id = ? AND field = ? LIMIT 1",
                (mailbox_id, name),
            ).fetchone()
            is not None
        )

    def save_header_fields(
        self, mailbox_id: int, uidvalidity: int, rows: Sequence[FieldRow]
    ) -> None:
        """Keep header field values of messages that still exist, when the mailbox
        still has ``uidvalidity`` (the one they were read under); call inside
        ``transaction``."""
        current = self._db.execute(
            "SELECT 1 FROM mailboxes WHERE id = ? AND uidvalidity = ?", (mailbox_id, uidvalidity)
        ).fetchone()
        if current is None:
            return
        existing = self._existing(mailbox_id, {uid for uid, _, _ in rows})
        self._db.executemany(
            "INSERT OR REPLACE INTO header_fields(mailbox_id, uid, field, value) "
            "VALUES (?, ?, ?, ?)",
            [
                (mailbox_id, uid, field.lower(), _encoded(values))
                for uid, field, values in rows
                if uid in existing
            ],
        )

    def _existing(self, mailbox_id: int, uids: Collection[int]) -> set[int]:
        """Those of ``uids`` that have a message in the mailbox: looked up once per
        message, not once per row (a message has a row per field). Inside the
        caller's transaction, so no expunge comes between this and the writes."""
        if len(uids) > _SCAN_ABOVE:
            cursor = self._db.execute(
                "SELECT uid FROM messages WHERE mailbox_id = ?", (mailbox_id,)
            )
            return {uid for (uid,) in cursor if uid in uids}
        found: set[int] = set()
        for chunk in _chunks(uids):
            marks = ",".join("?" * len(chunk))
            cursor = self._db.execute(
                f"SELECT uid FROM messages WHERE mailbox_id = ? AND uid IN ({marks})",
                (mailbox_id, *chunk),
            )
            found.update(uid for (uid,) in cursor)
        return found

    def forget_header_fields(self, mailbox_id: int, uids: Collection[int] | None) -> None:
        """Drop the header field rows of ``uids`` (None: of the whole mailbox)."""
        if uids is None:
            self._db.execute("DELETE FROM header_fields WHERE mailbox_id = ?", (mailbox_id,))
            return
        self._db.executemany(
            "DELETE FROM header_fields WHERE mailbox_id = ? AND uid = ?",
            [(mailbox_id, uid) for uid in uids],
        )

    def answer(self, mailbox_id: int, kind: str, digest: bytes) -> bytes | None:
        """The kept answer of ``kind`` when it was computed from ``digest``; else None."""
        row = self._db.execute(
            "SELECT blob FROM answers WHERE mailbox_id = ? AND kind = ? AND digest = ?",
            (mailbox_id, kind, digest),
        ).fetchone()
        return None if row is None else bytes(row[0])

    def save_answer(self, mailbox_id: int, kind: str, digest: bytes, blob: bytes) -> None:
        """Keep ``blob`` as the answer of ``kind`` (replacing the one before); call
        inside ``transaction``."""
        self._db.execute(
            "INSERT OR REPLACE INTO answers(mailbox_id, kind, digest, blob) VALUES (?, ?, ?, ?)",
            (mailbox_id, kind, digest, blob),
        )

    def forget_cached(self, mailbox_id: int, uids: Collection[int] | None) -> None:
        """Drop every cached row of ``uids`` (None: of the whole mailbox): their
        messages are gone, or their UIDs mean other messages from now on. The
        mailbox's answers go too: they covered those messages (its key sets only
        with the whole mailbox: they name messages by UID)."""
        if uids is None:
            self._db.execute("DELETE FROM answers WHERE mailbox_id = ?", (mailbox_id,))
        elif uids:
            self._db.execute(
                "DELETE FROM answers WHERE mailbox_id = ? AND substr(kind, 1, ?) != ?",
                (mailbox_id, len(KEY_SET), KEY_SET),
            )
        if uids is None:
            self._db.execute("DELETE FROM structures WHERE mailbox_id = ?", (mailbox_id,))
        else:
            self._db.executemany(
                "DELETE FROM structures WHERE mailbox_id = ? AND uid = ?",
                [(mailbox_id, uid) for uid in uids],
            )
        self.forget_header_fields(mailbox_id, uids)

    def move_cached(self, from_id: int, to_id: int) -> None:
        """Re-home every cached row of one mailbox in another, UIDs kept (RENAME INBOX)."""
        for table in ("structures", "header_fields", "answers"):
            self._db.execute(
                f"UPDATE {table} SET mailbox_id = ? WHERE mailbox_id = ?", (to_id, from_id)
            )
