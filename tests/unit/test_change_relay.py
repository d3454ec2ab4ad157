"""``ChangeRelay``: a change published in one worker wakes the subscriptions of another.

Two relays of one group stand for two workers; each has its own hub, as each
worker process has. Real sockets (Linux abstract namespace), no mocks.
"""

from __future__ import annotations

import asyncio
import os

from postoffice.server.change_relay import ChangeRelay
from postoffice.store.api import Change, ChangeKind
from postoffice.store.changes import ChangeHub


async def _relayed_pair(group: str) -> tuple[ChangeHub, ChangeHub, ChangeRelay, ChangeRelay]:
    first_hub, second_hub = ChangeHub(), ChangeHub()
    first, second = ChangeRelay(group, 0, 2), ChangeRelay(group, 1, 2)
    first.attach(first_hub)
    second.attach(second_hub)
    return first_hub, second_hub, first, second


def test_a_change_in_one_worker_reaches_the_other() -> None:
    async def scenario() -> None:
        first_hub, second_hub, first, second = await _relayed_pair(f"t{os.getpid()}a")
        try:
            watching = second_hub.subscribe("/mail/alice", "INBOX")
            other_box = second_hub.subscribe("/mail/alice", "Sent")
            first_hub.publish("/mail/alice", [Change(ChangeKind.APPENDED, "INBOX", 7, 9)])
            change = await asyncio.wait_for(anext(watching), timeout=2)
            assert change.kind is ChangeKind.OVERFLOW  # "re-read INBOX"
            assert change.mailbox == "INBOX"
            assert other_box.pending() == 0
            # Relayed changes are not sent back: the first hub's own watchers only
            # see the original, once.
            own = first_hub.subscribe("/mail/alice", "INBOX")
            second_hub.publish("/mail/alice", [Change(ChangeKind.FLAGS, "INBOX", 7, 10)])
            echoed = await asyncio.wait_for(anext(own), timeout=2)
            assert echoed.kind is ChangeKind.OVERFLOW
            await asyncio.sleep(0.05)
            assert own.pending() == 0 and watching.pending() == 1  # its own FLAGS change
        finally:
            first.close()
            second.close()

    asyncio.run(scenario())


def test_a_single_worker_needs_no_relay_and_a_closed_one_drops_quietly() -> None:
    async def scenario() -> None:
        hub = ChangeHub()
        alone = ChangeRelay(f"t{os.getpid()}b", 0, 1)
        alone.attach(hub)
        assert hub.relay is None
        first_hub, _, first, second = await _relayed_pair(f"t{os.getpid()}c")
        second.close()  # that worker is gone: sending to it must not fail the publisher
        seen = first_hub.subscribe("/mail/bob")
        first_hub.publish("/mail/bob", [Change(ChangeKind.EXPUNGED, "INBOX", 1, 2)])
        assert (await asyncio.wait_for(anext(seen), timeout=1)).kind is ChangeKind.EXPUNGED
        first.close()
        assert first_hub.relay is None

    asyncio.run(scenario())
