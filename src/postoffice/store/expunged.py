"""The index's memory of expunged messages: which UIDs left a mailbox, at which MODSEQ.

What this module owns: the ``expunged`` and ``expunged_floor`` tables of the
per-user index and ``ExpungedLog``, the part of ``index.MailIndex`` that
writes and reads them. IMAP QRESYNC (RFC 7162 §3.2) asks the server to
associate the MODSEQ an expunge took with the UIDs it removed, so that a
client coming back after weeks learns which of its messages vanished
(``VANISHED (EARLIER)``, RFC 7162 §3.2.5 and §3.2.6).

Invariants:

- Every expunge the index records (``index.remove_messages``) leaves one row
  ``(mailbox_id, uid, modseq)`` here, in the same transaction.
- At most ``KEEP_PER_MAILBOX`` rows are kept per mailbox, the newest; when
  older ones are dropped, ``expunged_floor`` keeps the highest MODSEQ dropped.
  The rows are complete for every MODSEQ above the floor: an answer for a
  MODSEQ at or above it lists every UID expunged since; below it the answer
  says it is incomplete, and the caller reports more UIDs than that (RFC 7162
  §3.2.5.1 lets the server send UIDs that need not be reported).
- A mailbox that existed before this table did has its floor set to its
  HIGHESTMODSEQ of that moment: what was expunged earlier is not known.
- Deleting a mailbox or giving it a new UIDVALIDITY forgets its rows (UIDs of
  another UIDVALIDITY mean nothing to a client).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Final

from postoffice.store.api import ExpungedSince

KEEP_PER_MAILBOX: Final = 100_000  # expunged UIDs remembered per mailbox, the newest
TRIM_EVERY: Final = 1024  # the cap is enforced every this many MODSEQs (then exact)

_TABLES = """
CREATE TABLE IF NOT EXISTS expunged(
    mailbox_id INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    PRIMARY KEY(mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS expunged_by_modseq ON expunged(mailbox_id, modseq);
CREATE TABLE IF NOT EXISTS expunged_floor(
    mailbox_id INTEGER PRIMARY KEY,
    modseq INTEGER NOT NULL
);
"""


def create_tables(db: sqlite3.Connection) -> None:
    """Add the tables to an index (new or older than them), in one transaction; the
    mailboxes already there get their HIGHESTMODSEQ as floor (module docstring).
    ``mailboxes`` must exist."""
    db.execute("BEGIN IMMEDIATE")
    try:
        exists = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'expunged'"
        ).fetchone()
        if exists is None:
            for statement in _TABLES.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(
                "INSERT OR REPLACE INTO expunged_floor(mailbox_id, modseq) "
                "SELECT id, highestmodseq FROM mailboxes"
            )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


class ExpungedLog:
    """The ``expunged`` tables' part of ``MailIndex`` (see the module docstring)."""

    _db: sqlite3.Connection

    def record_expunged(self, mailbox_id: int, removed: Sequence[tuple[int, int]]) -> None:
        """Remember (uid, modseq) pairs just expunged; call inside the index transaction."""
        if not removed:
            return
        self._db.executemany(
            "INSERT OR REPLACE INTO expunged(mailbox_id, uid, modseq) VALUES (?, ?, ?)",
            [(mailbox_id, uid, modseq) for uid, modseq in removed],
        )
        # The newest KEEP_PER_MAILBOX rows stay; the MODSEQ of the next one is the
        # floor. Looking for it reads the mailbox's rows, so it is done once every
        # TRIM_EVERY MODSEQs (when this batch crosses a multiple), not per expunge.
        low, high = min(m for _, m in removed), max(m for _, m in removed)
        if high // TRIM_EVERY == (low - 1) // TRIM_EVERY:
            return
        over = self._db.execute(
            "SELECT modseq FROM expunged WHERE mailbox_id = ? ORDER BY modseq DESC "
            "LIMIT 1 OFFSET ?",
            (mailbox_id, KEEP_PER_MAILBOX),
        ).fetchone()
        if over is None:
            return
        floor = int(over[0])
        # Expunges that share a MODSEQ go together: all of the floor's are dropped.
        self._db.execute(
            "DELETE FROM expunged WHERE mailbox_id = ? AND modseq <= ?", (mailbox_id, floor)
        )
        self._db.execute(
            "INSERT INTO expunged_floor(mailbox_id, modseq) VALUES (?, ?) "
            "ON CONFLICT(mailbox_id) DO UPDATE SET modseq = max(modseq, excluded.modseq)",
            (mailbox_id, floor),
        )

    def forget_expunged(self, mailbox_id: int) -> None:
        """Drop a mailbox's history (it is deleted, or starts again under a new
        UIDVALIDITY: its next expunges are all recorded, so the floor is 0)."""
        self._db.execute("DELETE FROM expunged WHERE mailbox_id = ?", (mailbox_id,))
        self._db.execute("DELETE FROM expunged_floor WHERE mailbox_id = ?", (mailbox_id,))

    def expunged_since(self, mailbox_id: int, modseq: int) -> ExpungedSince:
        """UIDs expunged with a MODSEQ above ``modseq``, and whether that is all of them."""
        rows = self._db.execute(
            # By the MODSEQ index, then sorted (not a walk of every row in UID order).
            "SELECT uid FROM expunged INDEXED BY expunged_by_modseq "
            "WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
            (mailbox_id, modseq),
        ).fetchall()
        floor = self._db.execute(
            "SELECT modseq FROM expunged_floor WHERE mailbox_id = ?", (mailbox_id,)
        ).fetchone()
        complete = floor is None or modseq >= int(floor[0])
        return ExpungedSince([int(r[0]) for r in rows], complete)
