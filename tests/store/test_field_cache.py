"""Header field values kept in the index (``field_cache``): written, read back, and
gone with their message (expunge, reset, deletion, RENAME INBOX moves them),
also in an index file made before the table was."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from postoffice.store import StoreFactory
from postoffice.store.api import DELETED, FlagMode
from postoffice.store.field_cache import KEY_SET, _encoded
from postoffice.store.index import MailIndex
from tests.store.conftest import ALICE, filled_index, index_row


def _rows(path: Path) -> list[tuple[int, int, str]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(
            "SELECT mailbox_id, uid, field FROM header_fields ORDER BY 1, 2, 3"
        ).fetchall()
    finally:
        db.close()


async def test_values_come_back_and_leave_with_their_message(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        first = await store.deliver(b"Subject: one\r\n\r\nbody\r\n")
        second = await store.deliver(b"Subject: two\r\n\r\nbody\r\n")
        validity = (await store.status("INBOX")).uidvalidity
        await store.save_header_fields(
            "INBOX",
            validity,
            [
                (first, "subject", ["one"]),
                (first, "To", []),  # names are kept lower-case
                (second, "subject", ["two", "deux \u00e9"]),
                (99, "subject", ["none"]),  # no such message: nothing kept
            ],
        )
        got = await store.header_fields("INBOX", validity, [first, second, 99], ["subject", "to"])
        assert got == {
            (first, "subject"): ["one"],
            (first, "to"): [],
            (second, "subject"): ["two", "deux \u00e9"],
        }
        # Another UIDVALIDITY: the UIDs name other messages, nothing is read or written.
        assert await store.header_fields("INBOX", validity + 1, [first], ["subject"]) == {}
        await store.save_header_fields("INBOX", validity + 1, [(first, "cc", ["x"])])
        assert await store.header_fields("INBOX", validity, [first], ["cc"]) == {}
        await store.store_flags("INBOX", [first], [DELETED], mode=FlagMode.ADD)
        await store.expunge("INBOX")
        assert await store.header_fields("INBOX", validity, [first, second], ["subject"]) == {
            (second, "subject"): ["two", "deux \u00e9"]
        }
        await store.create_mailbox("Box")
        moved = await store.append("Box", b"Subject: b\r\n\r\nx\r\n")
        box_validity = (await store.status("Box")).uidvalidity
        await store.save_header_fields("Box", box_validity, [(moved, "subject", ["b"])])
        await store.delete_mailbox("Box")
        await store.create_mailbox("Box")
        again = await store.append("Box", b"Subject: c\r\n\r\nx\r\n")
        again_validity = (await store.status("Box")).uidvalidity
        assert await store.header_fields("Box", again_validity, [again], ["subject"]) == {}
        assert await store.header_fields("Nowhere", 1, [1], ["subject"]) == {}


def test_expunge_reset_delete_and_move_in_the_index(tmp_path: Path) -> None:
    path = tmp_path / "i.sqlite3"
    index, box = filled_index(path, 4)  # UIDs 1..4
    with index.transaction():
        index.save_header_fields(box, 7, [(u, "date", [f"d{u}"]) for u in (1, 2, 3, 4)])
        index.save_header_fields(box, 7, [(1, "Subject", ["s"])])
        index.save_header_fields(box, 8, [(2, "subject", ["wrong validity"])])
    assert index.header_fields(box, [1, 2], ["subject", "date"]) == {
        (1, "subject"): ["s"],
        (1, "date"): ["d1"],
        (2, "date"): ["d2"],
    }
    # many UIDs (the scan path) and a range that must not be expanded
    assert len(index.header_fields(box, range(1, 2**32), ["date"])) == 4
    assert len(index.header_fields(box, range(1, 2**32), ["date", "nothing"])) == 4
    assert index.header_fields(box, range(1, 2**32), ["nothing"]) == {}
    assert len(index.header_fields(box, list(range(1, 5000)), ["date"])) == 4
    with index.transaction():
        index.remove_messages(box, [1, 3])
    assert _rows(path) == [(box, 2, "date"), (box, 4, "date")]
    with index.transaction():
        other = index.create_mailbox("Other", 9)
        index.move_messages(box, other.id)
    assert _rows(path) == [(other.id, 2, "date"), (other.id, 4, "date")]
    with index.transaction():
        index.reset_mailbox(other.id, 10)
    assert _rows(path) == []
    with index.transaction():
        index.add_message(box, index_row(5))
        index.save_header_fields(box, 7, [(5, "date", ["d5"])])
    assert _rows(path) == [(box, 5, "date")]
    with index.transaction():
        index.delete_mailbox(box)
    assert _rows(path) == []
    index.close()


def test_rows_of_messages_not_there_are_not_written(tmp_path: Path) -> None:
    path = tmp_path / "i.sqlite3"
    index, box = filled_index(path, 3)  # UIDs 1..3
    with index.transaction():
        index.save_header_fields(box, 7, [(u, "date", [f"d{u}"]) for u in (2, 9)])
        # more UIDs than the lookups by chunk take: the mailbox's messages are scanned
        index.save_header_fields(box, 7, [(u, "subject", ["s"]) for u in range(1, 3000)])
    assert _rows(path) == [
        (box, 1, "subject"),
        (box, 2, "date"),
        (box, 2, "subject"),
        (box, 3, "subject"),
    ]
    index.close()


def test_values_are_written_as_json_writes_them() -> None:
    for values in ([], ["a"], ["é", 'x"y', "\udcff", "tab\tnew\nline", ""], [1, "a"]):
        assert _encoded(values) == json.dumps(values)  # type: ignore[arg-type]


def test_an_older_index_gets_the_table(tmp_path: Path) -> None:
    path = tmp_path / "i.sqlite3"
    index, box = filled_index(path, 2)
    index.close()
    db = sqlite3.connect(path)  # as an index made before the table was
    db.execute("DROP TABLE header_fields")
    db.commit()
    db.close()
    index = MailIndex.open(path, durable=False)
    assert index.header_fields(box, [1, 2], ["subject"]) == {}
    with index.transaction():
        index.save_header_fields(box, 7, [(2, "subject", ["kept"])])
    index.close()
    index = MailIndex.open(path, durable=False)
    assert index.header_fields(box, [1, 2], ["subject"]) == {(2, "subject"): ["kept"]}
    index.close()


def test_a_damaged_value_is_not_returned(tmp_path: Path) -> None:
    path = tmp_path / "i.sqlite3"
    index, box = filled_index(path, 1)
    with index.transaction():
        index.save_header_fields(
            box, 7, [(1, "subject", ["s"]), (1, "to", ["t"]), (1, "cc", ["c"]), (1, "date", ["d"])]
        )
    db = sqlite3.connect(path)
    db.execute("UPDATE header_fields SET value = 'not json' WHERE field = 'subject'")
    db.execute("UPDATE header_fields SET value = '[1]' WHERE field = 'to'")
    db.execute("""UPDATE header_fields SET value = '"c"' WHERE field = 'cc'""")
    db.commit()
    db.close()
    assert index.header_fields(box, [1], ["subject", "to", "cc", "date"]) == {(1, "date"): ["d"]}
    # valid JSON all through: a list holding a number, a string for a list
    assert index.header_fields(box, [1], ["to", "date"]) == {(1, "date"): ["d"]}
    assert index.header_fields(box, [1], ["cc", "date"]) == {(1, "date"): ["d"]}
    index.close()


async def test_an_answer_comes_back_for_its_digest_only(factory: StoreFactory) -> None:
    """``answers``: the last answer of a kind, given back for the digest it was
    computed from; replaced by the next; gone with an expunge, and with a mailbox
    whose UIDVALIDITY is not the caller's."""
    async with await factory.open(ALICE) as store:
        first = await store.deliver(b"Subject: one\r\n\r\nbody\r\n")
        await store.deliver(b"Subject: two\r\n\r\nbody\r\n")
        validity = (await store.status("INBOX")).uidvalidity
        await store.save_answer("INBOX", validity, "thread/x", b"d1", b"* THREAD (1)(2)\r\n")
        assert await store.answer("INBOX", validity, "thread/x", b"d1") == b"* THREAD (1)(2)\r\n"
        assert await store.answer("INBOX", validity, "thread/x", b"d2") is None
        assert await store.answer("INBOX", validity, "thread/y", b"d1") is None
        assert await store.answer("INBOX", validity + 1, "thread/x", b"d1") is None
        await store.save_answer("INBOX", validity + 1, "thread/x", b"d9", b"other")
        assert await store.answer("INBOX", validity, "thread/x", b"d9") is None
        await store.save_answer("INBOX", validity, "thread/x", b"d2", b"* THREAD (2)(1)\r\n")
        assert await store.answer("INBOX", validity, "thread/x", b"d1") is None  # replaced
        assert await store.answer("INBOX", validity, "thread/x", b"d2") == b"* THREAD (2)(1)\r\n"
        await store.store_flags("INBOX", [first], [DELETED], mode=FlagMode.ADD)
        await store.expunge("INBOX")
        assert await store.answer("INBOX", validity, "thread/x", b"d2") is None


def test_a_key_set_stays_through_an_expunge_not_a_reset(tmp_path: Path) -> None:
    """An answer of a ``KEY_SET`` kind names messages by UID: an expunge drops the
    mailbox's other answers and keeps it; a new UIDVALIDITY takes it too."""
    keys = KEY_SET + ":thread=references/1"
    index, box = filled_index(tmp_path / "i.sqlite3", 3)  # UIDs 1..3
    with index.transaction():
        index.save_answer(box, "thread/x", b"d1", b"* THREAD (1)(2)(3)\r\n")
        index.save_answer(box, keys, b"", b'{"uids":[1,2,3],"keys":[]}')
    with index.transaction():
        index.remove_messages(box, [1])
    assert index.answer(box, "thread/x", b"d1") is None
    assert index.answer(box, keys, b"") == b'{"uids":[1,2,3],"keys":[]}'
    with index.transaction():
        index.reset_mailbox(box, 8)
    assert index.answer(box, keys, b"") is None
    index.close()
