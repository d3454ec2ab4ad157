"""The POP3 session driver: its order of work at QUIT (RFC 1939 §6), the facts and
listings a worker keeps of maildrops.

The maildrop's lock must be gone before the client can read the +OK of
QUIT: a client that logs in again the moment it has it must not be told
``[IN-USE]`` (seen under load before the order was fixed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

from postoffice.protocol.pop3 import Authenticate, Pop3ServerConnection, Pop3Settings, Update
from postoffice.server.pop3_session import Pop3Context, Pop3Session


class FakeMaildrop:
    def __init__(self, conn: Pop3ServerConnection) -> None:
        self.conn = conn
        self.updated: tuple[Sequence[int], Sequence[int]] | None = None
        self.closed_before_answer: bool | None = None
        self.listing = [("UID1", 10)]

    async def update(self, deleted: Sequence[int], retrieved: Sequence[int]) -> None:
        self.updated = (deleted, retrieved)

    async def close(self) -> None:
        self.closed_before_answer = not self.conn.closed


class FakePipe:
    peer = ("127.0.0.1", 1100)


def test_the_lock_goes_before_the_answer_to_quit() -> None:
    conn = Pop3ServerConnection(Pop3Settings(plaintext_auth=True))
    conn.start()
    conn.receive_data(b"USER demo\r\nPASS pw\r\n")
    assert isinstance(conn.next_event(), Authenticate)
    conn.login_accepted([("UID1", 10)])
    conn.receive_data(b"DELE 1\r\nQUIT\r\n")
    event = conn.next_event()
    assert isinstance(event, Update) and event.deleted == (0,)
    context = cast(Pop3Context, None)
    session = Pop3Session(pipe=cast(Any, FakePipe()), connection=conn, context=context)
    maildrop = FakeMaildrop(conn)
    session.maildrop = cast(Any, maildrop)
    session.user = "demo@example.test"
    asyncio.run(session._update(event))
    assert maildrop.updated == ((0,), ())
    assert maildrop.closed_before_answer is True
    assert session.maildrop is None
    assert conn.closed and conn.data_to_send().startswith(b"+OK")


def test_uidls_come_from_the_octets_and_stay_unique() -> None:
    from postoffice.server.pop3_maildrop import message_facts, uidls

    size, digest, dots = message_facts(b"Subject: a\r\n\r\nbody\r\n")
    assert size == 20 and len(digest) == 32 and dots == ()
    # The same message stored with LF line ends, or without its last newline
    # (mbox after a rebuild cannot tell), has the same UIDL.
    assert message_facts(b"Subject: a\n\nbody\n")[1:] == (digest, None)
    assert message_facts(b"Subject: a\r\n\r\nbody")[1:] == (digest, None)
    assert message_facts(b"Subject: b\r\n\r\nbody\r\n")[1] != digest
    assert uidls([digest, "f" * 32, digest, digest]) == [
        digest,
        "f" * 32,
        f"{digest}-2",
        f"{digest}-3",
    ]


def test_a_kept_listing_is_given_only_at_its_version_and_within_the_bound() -> None:
    from postoffice.server.pop3_maildrop import Facts, Listing, MessageFacts

    def listing(count: int) -> Listing:
        facts = tuple(Facts(10, f"{n:032x}", ()) for n in range(count))
        entries = tuple((f.digest, f.size) for f in facts)
        return Listing(tuple(range(1, count + 1)), facts, entries, frozenset(), {})

    known = MessageFacts(capacity=5)
    first, second = listing(3), listing(2)
    known.keep_listing("/a", (1, 4, 9), first)
    assert known.listing("/a", (1, 4, 9)) is first
    assert known.listing("/a", (1, 4, 10)) is None  # the mailbox changed since
    assert known.listing("/b", (1, 4, 9)) is None
    known.keep_listing("/b", (7, 3, 2), second)
    assert known.listing("/a", (1, 4, 9)) is first  # 5 messages: both fit
    known.keep_listing("/c", (1, 2, 3), listing(1))  # 6: the least recently used goes
    assert known.listing("/b", (7, 3, 2)) is None
    assert known.listing("/a", (1, 4, 9)) is first
    known.keep_listing("/a", (1, 5, 11), second)  # a new version replaces the old
    assert known.listing("/a", (1, 4, 9)) is None
    assert known.listing("/a", (1, 5, 11)) is second
