"""The store contract, mailboxes: create, delete, rename, hierarchy, subscriptions;
every test here runs against Maildir and mbox (DESIGN.md §6)."""

from __future__ import annotations

import pytest

from postoffice.core.errors import StoreError
from postoffice.store import StoreFactory
from tests.store.conftest import ALICE, TRICKY

SEEN, DELETED, FLAGGED, ANSWERED, DRAFT = (
    "\\Seen",
    "\\Deleted",
    "\\Flagged",
    "\\Answered",
    "\\Draft",
)


async def test_create_delete_and_errors(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        await store.create_mailbox("Lists")
        with pytest.raises(StoreError, match="already exists"):
            await store.create_mailbox("Lists")
        with pytest.raises(StoreError, match="already exists"):
            await store.create_mailbox("inbox")
        await store.create_mailbox("Spam", special_use="\\junk")
        with pytest.raises(StoreError, match="special-use"):
            await store.create_mailbox("Odd", special_use="\\Bogus")
        boxes = {b.name: b for b in await store.list_mailboxes()}
        assert boxes["Spam"].special_use == "\\Junk"
        assert not boxes["Lists"].subscribed
        await store.append("Lists", b"x")
        await store.delete_mailbox("Lists")
        assert "Lists" not in {b.name for b in await store.list_mailboxes()}
        with pytest.raises(StoreError, match="no such mailbox"):
            await store.delete_mailbox("Lists")
        with pytest.raises(StoreError, match="INBOX cannot be deleted"):
            await store.delete_mailbox("InBox")
        with pytest.raises(StoreError, match="no such mailbox"):
            await store.status("Lists")


async def test_recreated_mailbox_gets_new_uidvalidity(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        await store.create_mailbox("Box")
        await store.append("Box", b"x")
        first = await store.status("Box")
        await store.delete_mailbox("Box")
        await store.create_mailbox("Box")
        second = await store.status("Box")
    assert second.uidvalidity > first.uidvalidity
    assert second.messages == 0 and second.uidnext == 1


async def test_hierarchy_and_rename_with_children(factory: StoreFactory) -> None:
    # Intermediate names are not mailboxes here: classic mbox cannot hold mail
    # and mailboxes under one name (test_mbox.py), Maildir++ can (test_maildir.py).
    async with await factory.open(ALICE) as store:
        await store.create_mailbox("Work/Projects/2024")
        await store.create_mailbox("Work/Notes")
        await store.append("Work/Projects/2024", TRICKY[2])
        await store.subscribe("Work/Projects/2024")
        boxes = {b.name: b for b in await store.list_mailboxes()}
        assert not boxes["Work"].selectable and boxes["Work"].has_children
        assert not boxes["Work/Projects"].selectable and boxes["Work/Projects"].has_children
        assert boxes["Work/Notes"].selectable and not boxes["Work/Notes"].has_children
        assert not boxes["Work/Projects/2024"].has_children
        before = await store.status("Work/Projects/2024")
        with pytest.raises(StoreError, match="no such mailbox"):
            await store.status("Work")

        await store.rename_mailbox("Work", "Job")
        names_now = {b.name for b in await store.list_mailboxes()}
        assert {"Job", "Job/Projects", "Job/Projects/2024", "Job/Notes"} <= names_now
        assert not any(name.startswith("Work") for name in names_now)
        after = await store.status("Job/Projects/2024")
        assert after.uidvalidity == before.uidvalidity
        assert await store.read("Job/Projects/2024", 1) == TRICKY[2]
        assert "Job/Projects/2024" in await store.subscriptions()
        assert "Work/Projects/2024" not in await store.subscriptions()

        await store.rename_mailbox("Job/Notes", "Notes")
        assert (await store.status("Notes")).messages == 0
        with pytest.raises(StoreError, match="already exists"):
            await store.rename_mailbox("Notes", "Sent")
        with pytest.raises(StoreError, match="into itself"):
            await store.rename_mailbox("Job", "Job/Inner")
        with pytest.raises(StoreError, match="no such mailbox"):
            await store.rename_mailbox("Nothing", "Something")
        with pytest.raises(StoreError, match="to INBOX"):
            await store.rename_mailbox("Notes", "INBOX")


async def test_rename_inbox_moves_its_messages(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        await store.create_mailbox("INBOX/Child")
        for data in TRICKY[:3]:
            await store.append("INBOX", data, flags=[FLAGGED])
        before = await store.status("INBOX")
        await store.rename_mailbox("INBOX", "Old Mail")
        inbox = await store.status("INBOX")
        assert inbox.messages == 0
        assert inbox.uidvalidity == before.uidvalidity
        assert inbox.uidnext == before.uidnext  # UIDs 1..3 are not given again
        moved = await store.messages("Old Mail")
        assert len(moved) == 3 and all(m.flags == {FLAGGED} for m in moved)
        for info, data in zip(moved, TRICKY[:3], strict=True):
            assert await store.read("Old Mail", info.uid) == data
        assert "INBOX/Child" in {b.name for b in await store.list_mailboxes()}
        assert await store.append("INBOX", b"new") == 4


async def test_inbox_is_case_insensitive(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        uid = await store.append("inbox", b"lower")
        assert await store.read("InBoX", uid) == b"lower"
        assert (await store.status("INBOX")).messages == 1
        await store.create_mailbox("inbox/sub")
        assert "INBOX/sub" in {b.name for b in await store.list_mailboxes()}
        # Other components keep their case and are distinct.
        await store.create_mailbox("sent")
        assert {"Sent", "sent"} <= {b.name for b in await store.list_mailboxes()}


async def test_subscriptions_are_independent_of_existence(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        await store.unsubscribe("Junk")
        await store.subscribe("Not/Yet")
        subs = await store.subscriptions()
        assert "Junk" not in subs and "Not/Yet" in subs
        boxes = {b.name: b for b in await store.list_mailboxes()}
        assert not boxes["Junk"].subscribed
        assert "Not/Yet" not in boxes
