"""Expunged UIDs remembered with their MODSEQ (RFC 7162 §3.2, for QRESYNC's VANISHED):
the index's ``expunged`` tables, and ``vanished_since`` on Maildir and mbox."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from postoffice.store import StoreFactory, expunged
from postoffice.store.index import MailIndex
from tests.store.conftest import ALICE, filled_index, index_row, message

DELETED = "\\Deleted"


def test_each_expunge_is_kept_with_its_modseq(tmp_path: Path) -> None:
    index, box = filled_index(tmp_path / "i.sqlite3", 5)  # MODSEQs 1..5
    with index.transaction():
        assert index.remove_messages(box, [2, 4]) == [(2, 6), (4, 7)]
    with index.transaction():
        assert index.remove_messages(box, [5]) == [(5, 8)]
    assert index.expunged_since(box, 0).uids == [2, 4, 5]
    assert index.expunged_since(box, 6).uids == [4, 5]
    assert index.expunged_since(box, 7).uids == [5]
    since = index.expunged_since(box, 8)
    assert since.uids == [] and since.complete
    index.close()


def test_only_the_newest_are_kept_and_the_floor_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(expunged, "KEEP_PER_MAILBOX", 3)
    monkeypatch.setattr(expunged, "TRIM_EVERY", 1)  # the cap checked at every expunge
    index, box = filled_index(tmp_path / "i.sqlite3", 6)  # MODSEQs 1..6
    with index.transaction():
        index.remove_messages(box, [1, 2, 3, 4, 5])  # MODSEQs 7..11; 7 and 8 forgotten
    newest = index.expunged_since(box, 8)
    assert newest.uids == [3, 4, 5] and newest.complete
    older = index.expunged_since(box, 7)
    assert older.uids == [3, 4, 5] and not older.complete
    assert not index.expunged_since(box, 0).complete
    index.close()


def test_a_reset_or_a_deletion_forgets_the_history(tmp_path: Path) -> None:
    index, box = filled_index(tmp_path / "i.sqlite3", 3)
    with index.transaction():
        index.remove_messages(box, [1])
        index.reset_mailbox(box, 99)
    assert index.expunged_since(box, 0) == expunged.ExpungedSince([], True)
    with index.transaction():
        index.add_message(box, index_row(1))
        index.remove_messages(box, [1])
        index.delete_mailbox(box)
        again = index.create_mailbox("Other", 5)  # SQLite may give the same id again
    assert index.expunged_since(again.id, 0) == expunged.ExpungedSince([], True)
    index.close()


def test_an_older_index_gets_the_tables_with_its_present_modseq_as_floor(
    tmp_path: Path,
) -> None:
    path = tmp_path / "i.sqlite3"
    index, box = filled_index(path, 4)  # HIGHESTMODSEQ 4
    index.close()
    db = sqlite3.connect(path)  # as an index made before the tables were
    db.execute("DROP TABLE expunged")
    db.execute("DROP TABLE expunged_floor")
    db.commit()
    db.close()
    index = MailIndex.open(path, durable=False)
    assert not index.expunged_since(box, 3).complete
    assert index.expunged_since(box, 4).complete
    with index.transaction():
        assert index.remove_messages(box, [2]) == [(2, 5)]
    assert index.expunged_since(box, 4) == expunged.ExpungedSince([2], True)
    index.close()
    index = MailIndex.open(path, durable=False)  # opened again: the floor stays
    assert not index.expunged_since(box, 0).complete
    index.close()


async def test_vanished_since_on_both_formats(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        for n in range(4):
            await store.append("INBOX", message(n))  # UIDs 1..4, MODSEQs 1..4
        await store.store_flags("INBOX", [1, 3], [DELETED])  # MODSEQs 5, 6
        assert await store.expunge("INBOX") == [1, 3]  # MODSEQs 7, 8
        await store.move("INBOX", [4], "Archive")  # MODSEQ 9 in INBOX
        assert (await store.vanished_since("INBOX", 0)).uids == [1, 3, 4]
        assert (await store.vanished_since("INBOX", 7)).uids == [3, 4]
        late = await store.vanished_since("INBOX", 9)
        assert late.uids == [] and late.complete
        assert (await store.status("INBOX")).highestmodseq == 9
    async with await factory.open(ALICE) as store:  # it is in the index, not in memory
        assert (await store.vanished_since("INBOX", 8)).uids == [4]
        assert (await store.vanished_since("Archive", 0)).uids == []


def test_the_cap_is_looked_at_once_every_trim_every_modseqs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(expunged, "KEEP_PER_MAILBOX", 2)
    monkeypatch.setattr(expunged, "TRIM_EVERY", 10)
    index, box = filled_index(tmp_path / "i.sqlite3", 6)  # MODSEQs 1..6
    with index.transaction():
        index.remove_messages(box, [1, 2, 3])  # MODSEQs 7..9: no multiple of 10 crossed
    assert index.expunged_since(box, 6).uids == [1, 2, 3]  # over the cap, for now
    with index.transaction():
        index.remove_messages(box, [4])  # MODSEQ 10: trimmed to the newest 2
    since = index.expunged_since(box, 6)
    assert since.uids == [3, 4] and not since.complete
    index.close()


async def test_changed_since_names_the_expunges_and_lists_every_uid_only_when_forgotten(
    factory: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await factory.open(ALICE) as store:
        for n in range(6):
            await store.append("INBOX", message(n))  # UIDs 1..6, MODSEQs 1..6
        await store.store_flags("INBOX", [2, 5], [DELETED])  # MODSEQs 7, 8
        await store.expunge("INBOX")  # MODSEQs 9, 10
        changes = await store.changed_since("INBOX", 6)
        assert changes.expunged == [2, 5] and changes.uids is None
        assert [info.uid for info in changes.changed] == []  # 2 and 5 are gone
        assert (await store.changed_since("INBOX", 9)).expunged == [5]
        monkeypatch.setattr(expunged, "KEEP_PER_MAILBOX", 1)
        monkeypatch.setattr(expunged, "TRIM_EVERY", 1)
        await store.store_flags("INBOX", [6], [DELETED])  # MODSEQ 11
        await store.expunge("INBOX")  # MODSEQ 12; the expunges before it are forgotten
        forgotten = await store.changed_since("INBOX", 6)
        assert forgotten.expunged is None and forgotten.uids == [1, 3, 4]
        assert (await store.changed_since("INBOX", 11)).expunged == [6]


async def test_renaming_inbox_counts_as_expunging_what_it_held(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        for n in range(3):
            await store.append("INBOX", message(n))  # UIDs 1..3, MODSEQs 1..3
        await store.rename_mailbox("INBOX", "Old")
        # RFC 9051 §6.3.6: the messages move; for INBOX's sessions they went.
        assert (await store.vanished_since("INBOX", 3)).uids == [1, 2, 3]
        changes = await store.changed_since("INBOX", 3)
        assert changes.expunged == [1, 2, 3]
        assert [info.uid for info in await store.messages("Old")] == [1, 2, 3]
