"""The change hub on its own: filtering, bounds, and publishing from other threads."""

from __future__ import annotations

import asyncio
import threading

from postoffice.store import Change, ChangeHub, ChangeKind


async def test_filtering_and_order() -> None:
    hub = ChangeHub()
    inbox = hub.subscribe("alice", "INBOX")
    sent = hub.subscribe("alice", "Sent")
    other_user = hub.subscribe("bob")
    hub.publish(
        "alice",
        [
            Change(ChangeKind.APPENDED, "INBOX", 1, 1),
            Change(ChangeKind.APPENDED, "Sent", 1, 1),
            Change(ChangeKind.RENAMED, "Old", new_name="INBOX"),
            Change(ChangeKind.FLAGS, "INBOX", 1, 2),
        ],
    )
    got = [await anext(inbox) for _ in range(3)]
    assert [c.kind for c in got] == [ChangeKind.APPENDED, ChangeKind.RENAMED, ChangeKind.FLAGS]
    assert (await anext(sent)).mailbox == "Sent"
    assert other_user.pending() == 0 and inbox.pending() == 0
    for subscription in (inbox, sent, other_user):
        subscription.close()
    hub.publish("alice", [Change(ChangeKind.APPENDED, "INBOX", 2, 3)])
    assert inbox.pending() == 0


async def test_a_slow_watcher_gets_one_overflow() -> None:
    hub = ChangeHub(limit=3)
    async with hub.subscribe("alice") as feed:
        hub.publish("alice", [Change(ChangeKind.APPENDED, "INBOX", n, n) for n in range(1, 11)])
        got = [await anext(feed) for _ in range(4)]
        assert [c.uid for c in got[:3]] == [1, 2, 3]
        assert got[3].kind is ChangeKind.OVERFLOW
        assert feed.pending() == 0
        hub.publish("alice", [Change(ChangeKind.APPENDED, "INBOX", 11, 11)])
        assert (await anext(feed)).uid == 11


async def test_publishing_from_another_thread_wakes_the_watcher() -> None:
    hub = ChangeHub()
    feed = hub.subscribe("alice")
    waiting = asyncio.ensure_future(anext(feed))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    thread = threading.Thread(
        target=hub.publish, args=("alice", [Change(ChangeKind.APPENDED, "INBOX", 7, 7)])
    )
    thread.start()
    thread.join()
    change = await asyncio.wait_for(waiting, 5)
    assert change.uid == 7
    feed.close()
    assert [c async for c in feed] == []
