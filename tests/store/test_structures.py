"""Part trees kept in the index: they go with their message, and only with it.

The IMAP server computes a message's part tree once and keeps it in the
user's index (``structures`` / ``save_structures``); these tests hold the
index to what that needs, on both formats.
"""

from __future__ import annotations

from postoffice.store import StoreFactory
from postoffice.store.api import DELETED, FlagMode

from .conftest import ALICE


async def test_kept_trees_come_back_and_leave_with_their_message(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        first = await store.deliver(b"Subject: one\r\n\r\nbody\r\n")
        second = await store.deliver(b"Subject: two\r\n\r\nbody\r\n")
        await store.save_structures("INBOX", [(first, b"tree-1"), (second, b"tree-2"), (99, b"x")])
        assert await store.structures("INBOX", [first, second, 99]) == {
            first: b"tree-1",
            second: b"tree-2",
        }  # no tree is kept for a message that does not exist
        await store.store_flags("INBOX", [first], [DELETED], mode=FlagMode.ADD)
        await store.expunge("INBOX")
        assert await store.structures("INBOX", [first, second]) == {second: b"tree-2"}
        await store.save_structures("INBOX", [(second, b"tree-2b")])
        assert await store.structures("INBOX", [second]) == {second: b"tree-2b"}


async def test_trees_stay_with_their_uids_and_vanish_with_a_deleted_mailbox(
    factory: StoreFactory,
) -> None:
    async with await factory.open(ALICE) as store:
        uid = await store.deliver(b"Subject: one\r\n\r\nbody\r\n")
        await store.save_structures("INBOX", [(uid, b"tree")])
        # RFC 3501 §6.3.5: the messages move to a new mailbox under new UIDs; a
        # tree is never found under a UID of another message.
        await store.rename_mailbox("INBOX", "Old")
        assert await store.structures("INBOX", [uid]) == {}
        moved = [info.uid for info in await store.messages("Old")]
        assert len(moved) == 1
        await store.save_structures("Old", [(moved[0], b"tree")])
        assert await store.structures("Old", moved) == {moved[0]: b"tree"}
        await store.delete_mailbox("Old")
        await store.create_mailbox("Old")
        again = await store.append("Old", b"Subject: new\r\n\r\nother\r\n")
        assert await store.structures("Old", [again]) == {}
        assert await store.structures("Nowhere", [1]) == {}
