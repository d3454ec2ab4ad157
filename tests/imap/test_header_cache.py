"""Header values kept in the index (``store.field_cache``, ``server.imap_fields``):
a second SORT, THREAD or SEARCH by header keys on the same mailbox reads no
message file, from a fresh process's point of view (the session's in-memory
caches emptied), and answers exactly as the first did; on Maildir and mbox."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from postoffice.server import imap_fields
from postoffice.server.imap_fetch import ContentLoader
from postoffice.store.layout import INDEX_FILE
from postoffice.store.service import FileMailStore

from .imap_harness import ALICE, ImapWorld


def _message(headers: str, body: str = "body") -> bytes:
    return headers.strip().replace("\n", "\r\n").encode() + b"\r\n\r\n" + body.encode() + b"\r\n"


MESSAGES = [
    _message("""
From: Zed <zed@a.test>
To: bob@b.test
Subject: meeting
Message-ID: <m1@a>
Date: Wed, 1 Jan 2025 10:00:00 +0000
X-Tag: red
"""),
    _message("""
From: amy@a.test
To: =?UTF-8?Q?=C3=89mile?= <emile@b.test>
Subject: Re: meeting
Message-ID: <m2@a>
References: <m1@a>
Date: Wed, 1 Jan 2025 11:00:00 +0000
"""),
    _message(
        """
From: "Carl" <carl@c.test>
Cc: dan@d.test
Subject: lunch
Message-ID: <m3@a>
Date: not a date
""",
        "the word pumpkin",
    ),
    _message("""
From: dan@d.test
Subject: Re: lunch
Message-ID: <m4@a>
In-Reply-To: <m3@a>
Date: Tue, 31 Dec 2024 09:00:00 -0500
X-Tag: blue
"""),
]

COMMANDS = [
    "SORT (DATE) UTF-8 ALL",
    "UID SORT (REVERSE SUBJECT FROM) UTF-8 ALL",
    "SORT (DISPLAYTO CC) UTF-8 UNSEEN",
    "THREAD REFERENCES UTF-8 ALL",
    "UID THREAD ORDEREDSUBJECT UTF-8 ALL",
    "SEARCH SUBJECT meeting",
    "SEARCH OR FROM dan HEADER X-Tag red",
    "UID SEARCH NOT TO b.test SENTSINCE 1-Jan-2025",
    "SEARCH HEADER Message-ID <m4@a> SEEN",
]


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count ``FileMailStore.read`` calls (every message octet FETCH/SEARCH/SORT reads)."""
    reads: list[int] = []
    original: Callable[..., Awaitable[bytes]] = FileMailStore.read

    async def read(self: FileMailStore, *args: Any, **kwargs: Any) -> bytes:
        reads.append(1)
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(FileMailStore, "read", read)
    return reads


async def test_a_second_sort_thread_or_search_reads_no_message(
    world: ImapWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    await world.deliver(*MESSAGES)
    async with world.logged_in() as client:
        await client.select()
        first = [await client.command(f"a{n} {line}") for n, line in enumerate(COMMANDS)]
        assert all(answer[-1].startswith(f"a{n} OK") for n, answer in enumerate(first))
    world.context.contents.__init__()  # type: ignore[misc]  # as a new process: memory empty
    reads = _counting(monkeypatch)
    async with world.logged_in() as client:
        await client.select()
        for n, line in enumerate(COMMANDS):
            again = await client.command(f"a{n} {line}")
            assert again == first[n], line
            assert reads == [], f"{line} read a message file"
        # The counter counts: a body search does read the messages.
        body = await client.command("b1 SEARCH BODY pumpkin")
        assert body[0] == "* SEARCH 3"
        assert reads


async def test_the_answers_are_those_of_an_index_without_kept_values(world: ImapWorld) -> None:
    """The same answers whether the values come from the messages or from the index:
    the first session computes them, the second reads them (module docstring)."""
    await world.deliver(*MESSAGES)
    async with world.logged_in() as client:
        await client.select()
        assert await client.command("s1 SORT (DATE) UTF-8 ALL") == [
            "* SORT 3 4 1 2",
            "s1 OK SORT completed",
        ]
    world.context.contents.__init__()  # type: ignore[misc]
    async with world.logged_in() as client:
        await client.select()
        assert await client.command("s1 SORT (DATE) UTF-8 ALL") == [
            "* SORT 3 4 1 2",
            "s1 OK SORT completed",
        ]
        assert await client.command("s2 SEARCH SENTBEFORE 1-Jan-2025") == [
            "* SEARCH 4",
            "s2 OK SEARCH completed",
        ]


async def test_after_a_first_search_by_subject_sort_and_thread_read_no_message(
    world: ImapWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message read for one of the fields SORT and THREAD read gets all of them
    written (``imap_fields.READ_TOGETHER``): after only a SEARCH SUBJECT, a new
    process sorts and threads from the index, with the answers a process that
    read the messages gives."""
    await world.deliver(*MESSAGES)
    later = [
        "s1 SORT (DATE) UTF-8 ALL",
        "s2 SORT (CC FROM) UTF-8 ALL",
        "t1 THREAD REFERENCES UTF-8 ALL",
    ]
    async with world.logged_in() as client:
        await client.select()
        assert (await client.command("a1 SEARCH SUBJECT lunch"))[0] == "* SEARCH 3 4"
    world.context.contents.__init__()  # type: ignore[misc]  # as a new process: memory empty
    reads = _counting(monkeypatch)
    async with world.logged_in() as client:
        await client.select()
        answers = [await client.command(line) for line in later]
    assert reads == []
    monkeypatch.undo()
    # The same answers from the messages themselves: the index's values dropped.
    (index,) = world.root.rglob(INDEX_FILE)
    db = sqlite3.connect(index)
    with db:
        db.execute("DELETE FROM header_fields")
        db.execute("DELETE FROM answers")
    db.close()
    world.context.contents.__init__()  # type: ignore[misc]
    reads = _counting(monkeypatch)
    async with world.logged_in() as client:
        await client.select()
        assert [await client.command(line) for line in later] == answers
    assert reads  # (read from the messages this time)


_HEAD = imap_fields.HEAD_OCTETS
_AT_THE_EDGE = b"Subject: edge\r\nX-Pad: " + b"p" * (_HEAD - 26) + b"\r\n\r\nbody\r\n"
TRICKY = [
    (b"Subject: plain\r\nX-Probe: one\r\n\r\nbody\r\n", True),
    (b"Subject: bare lf\nX-Probe: two\n\nbody\n", True),
    (b"Subject: bare cr\rX-Probe: three\r\n\r\nbody\r\n", True),  # CR ends a line too
    (b"Subject: no body\r\nX-Probe: four\r\n", True),
    (b"Subject: big body\r\nX-Probe: five\r\n\r\n" + b"line\r\n" * 8000, True),
    (b"Subject: long\r\nX-Long: " + b"a" * (_HEAD + 100) + b"\r\nX-Probe: six\r\n\r\nb\r\n", False),
    (_AT_THE_EDGE, False),  # the empty line ends just where the first read does
]


async def test_a_header_read_alone_gives_the_values_of_the_whole_message(
    world: ImapWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no part tree known, a header is read from the first ``HEAD_OCTETS``
    of its message alone when it ends inside them (else from the whole message),
    and its values are those the whole message, parsed, gives."""
    assert _AT_THE_EDGE.index(b"\r\n\r\n") + 4 == _HEAD
    uids = await world.deliver(*(message for message, _ in TRICKY))
    names = ["subject", "x-probe", "x-long"]
    async with world.store(ALICE) as store:
        validity = (await store.status("INBOX")).uidvalidity
        sizes = {info.uid: info.size for info in await store.messages("INBOX")}
        reads: list[tuple[int, int | None]] = []
        original = FileMailStore.read

        async def read(self: FileMailStore, name: str, uid: int, *args: Any) -> bytes:
            reads.append((uid, args[1] if len(args) > 1 else None))
            return await original(self, name, uid, *args)

        monkeypatch.setattr(FileMailStore, "read", read)
        fast = await imap_fields.fields_for(
            ContentLoader(), store, "INBOX", validity, uids, ALICE, names, sizes
        )
        monkeypatch.undo()
        whole = ContentLoader()
        for uid, (_, head_alone) in zip(uids, TRICKY, strict=True):
            for name in names:
                assert fast[(uid, name)] == await whole.header_values(
                    store, "INBOX", validity, uid, ALICE, name, stored_size=sizes[uid]
                ), (uid, name)
            assert (
                reads.count((uid, _HEAD)) == len([r for r in reads if r[0] == uid])
            ) == head_alone
    assert [fast[(uid, "x-probe")] for uid in uids[:3]] == [["one"], ["two"], ["three"]]
