"""What SORT and THREAD compare of each message, kept in the process
(``server.imap_keys``, ``imap_fields.keys_for``): a second SORT or THREAD of a
mailbox reads neither a message nor the index; a new message's keys are read
alone; an expunged message is not answered; the keys are bounded. And the
collector pause THREAD runs under (``server.gc_pause``)."""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import pytest

from postoffice.server.gc_pause import collection_paused
from postoffice.server.imap_keys import KeptAnswers, MessageKeys, answer_digest
from postoffice.store.service import FileMailStore

from .imap_harness import ImapWorld
from .test_header_cache import MESSAGES, _counting, _message

COMMANDS = [
    "SORT (DATE) UTF-8 ALL",
    "UID SORT (REVERSE SUBJECT FROM) UTF-8 ALL",
    "SORT (DISPLAYTO CC ARRIVAL) UTF-8 UNSEEN",
    "THREAD REFERENCES UTF-8 ALL",
    "UID THREAD ORDEREDSUBJECT UTF-8 ALL",
]


def _index_looks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[int], bool]]:
    """The UIDs of each index read of header values (``FileMailStore.header_fields``),
    and whether it read keys (their rows' names start with ":") or field values."""
    looks: list[tuple[list[int], bool]] = []
    original: Callable[..., Awaitable[Any]] = FileMailStore.header_fields

    async def header_fields(
        self: FileMailStore, name: str, uidvalidity: int, uids: Collection[int], fields: Any
    ) -> Any:
        names = list(fields)
        looks.append((sorted(uids), all(n.startswith(":") for n in names)))
        return await original(self, name, uidvalidity, uids, names)

    monkeypatch.setattr(FileMailStore, "header_fields", header_fields)
    return looks


async def test_a_second_sort_or_thread_reads_neither_messages_nor_the_index(
    world: ImapWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    await world.deliver(*MESSAGES)
    looks, reads = _index_looks(monkeypatch), _counting(monkeypatch)
    async with world.logged_in() as client:
        await client.select()
        first = [await client.command(f"a{n} {line}") for n, line in enumerate(COMMANDS)]
        assert all(answer[-1].startswith(f"a{n} OK") for n, answer in enumerate(first))
        assert looks and reads  # the first time, the values come from somewhere
        looks.clear()
        reads.clear()
    # As for a mailbox too big for the header values kept whole (``imap_fields``).
    world.context.contents.batches.clear()
    async with world.logged_in() as client:  # another session of the same process
        await client.select()
        for n, line in enumerate(COMMANDS):
            assert await client.command(f"a{n} {line}") == first[n], line
    assert (looks, reads) == ([], [])


async def test_new_messages_are_read_alone_and_expunged_ones_are_not_answered(
    world: ImapWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    await world.deliver(*MESSAGES)
    async with world.logged_in() as client:
        await client.select()
        assert await client.command("s1 SORT (DATE) UTF-8 ALL") == [
            "* SORT 3 4 1 2",
            "s1 OK SORT completed",
        ]
        await client.command("t1 THREAD REFERENCES UTF-8 ALL")
        looks = _index_looks(monkeypatch)
        earliest = _message(
            """
From: eve@e.test
Subject: Re: meeting
Message-ID: <m5@a>
References: <m1@a>
Date: Sun, 2 Jan 1972 00:00:00 +0000
"""
        )
        (uid,) = await world.deliver(earliest)
        world.context.contents.batches.clear()  # (as above)
        await client.command("n1 NOOP")
        assert await client.command("s2 SORT (DATE) UTF-8 ALL") == [
            "* SORT 5 3 4 1 2",
            "s2 OK SORT completed",
        ]
        assert await client.command("t2 THREAD REFERENCES UTF-8 ALL") == [
            "* THREAD (3 4)(1 (5)(2))",  # 5 replies to 1, sent before 2
            "t2 OK THREAD completed",
        ]
        # SORT's and THREAD's: the new message's key in the index, then its fields
        assert looks == [([uid], True), ([uid], False)] * 2
        await client.command("x1 STORE 1 +FLAGS (\\Deleted)")
        await client.command("x2 EXPUNGE")
        assert await client.command("s3 SORT (DATE) UTF-8 ALL") == [
            "* SORT 4 2 3 1",
            "s3 OK SORT completed",
        ]
        assert await client.command("t3 THREAD REFERENCES UTF-8 ALL") == [
            "* THREAD ((4)(1))(2 3)",  # a dummy for the expunged <m1@a> holds its replies
            "t3 OK THREAD completed",
        ]


async def test_another_process_reads_the_keys_from_the_index(
    world: ImapWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key made once is written in the index beside the header values: a worker
    that did not make it (here: the process's memory emptied) reads it there, in
    one query, and reads no header value and no message."""
    await world.deliver(*MESSAGES)
    async with world.logged_in() as client:
        await client.select()
        first = [await client.command(f"a{n} {line}") for n, line in enumerate(COMMANDS)]
    world.context.contents.__init__()  # type: ignore[misc]  # as a new process: memory empty

    async def no_kept_answer(*args: Any) -> None:
        return None  # THREAD computed again (as after a change), from the kept keys

    monkeypatch.setattr(FileMailStore, "answer", no_kept_answer)
    looks, reads = _index_looks(monkeypatch), _counting(monkeypatch)
    async with world.logged_in() as client:
        await client.select()
        for n, line in enumerate(COMMANDS):
            assert await client.command(f"a{n} {line}") == first[n], line
    # one look a kind of key: DATE; SUBJECT, FROM; DISPLAYTO, CC (of UNSEEN); two THREADs
    assert [keys for _, keys in looks] == [True] * 7
    assert reads == []


def test_kept_keys_are_bounded_least_recently_used_first() -> None:
    keys = MessageKeys(limit=5)
    a, b, c = ("u", "A", 1), ("u", "B", 1), ("u", "C", 1)
    keys.keep(a, "DATE", {1: 1.0, 2: 2.0})
    keys.keep(b, "DATE", {1: 3.0, 2: 4.0})
    assert keys.kept(a, "DATE") == {1: 1.0, 2: 2.0}  # a is now the most recent
    keys.keep(c, "DATE", {1: 5.0, 2: 6.0})  # 6 keys: b, the least recent, goes
    assert keys.kept(b, "DATE") == {}
    assert keys.kept(a, "DATE") == {1: 1.0, 2: 2.0} and keys.size() == 4
    keys.keep(a, "SUBJECT", dict.fromkeys(range(10), "x"))  # a mailbox over the bound
    assert keys.size() == 0
    assert keys.kept(("u", "A", 2), "DATE") == {}  # another UIDVALIDITY: nothing kept


def test_the_collector_pause_restores_what_it_found() -> None:
    assert gc.isenabled()
    with pytest.raises(ValueError), collection_paused():
        assert not gc.isenabled()
        raise ValueError
    assert gc.isenabled()
    gc.disable()
    try:
        with collection_paused():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()


async def test_sort_keeps_its_keys_not_the_values_they_were_made_of(world: ImapWorld) -> None:
    """The header values kept whole per mailbox (``imap_fields``) are SEARCH's: a
    SORT or THREAD keeps its keys, and adds no values there to push them out."""
    await world.deliver(*MESSAGES)
    async with world.logged_in() as client:
        await client.select()
        await client.command("s1 SEARCH SUBJECT meeting")
        (kept,) = world.context.contents.batches.values()
        before = dict(kept)
        assert {field for _, field in before} == {"subject"}
        await client.command("s2 SORT (DATE FROM) UTF-8 ALL")
        await client.command("s3 THREAD REFERENCES UTF-8 ALL")
        (kept,) = world.context.contents.batches.values()
        assert kept == before


def test_answer_digests_and_the_bound_of_kept_answers() -> None:
    digest = answer_digest(5, [1, 2, 3], [2, 3, 7])
    assert answer_digest(5, range(1, 4), (2, 3, 7)) == digest  # any sequences
    assert answer_digest(6, [1, 2, 3], [2, 3, 7]) != digest  # another UIDVALIDITY
    assert answer_digest(5, [1, 2, 3], [2, 3, 8]) != digest  # another message
    assert answer_digest(5, [1, 2, 4], [2, 3, 7]) != digest  # another numbering
    assert answer_digest(5, [1, 2], [2, 3]) != digest
    assert answer_digest(5, [1, 2, 3], [4, 5, 6]) != answer_digest(5, [1, 2, 3, 4], [5, 6])
    answers = KeptAnswers(limit=100)
    answers.keep("alice", "INBOX", "thread/references/number", digest, b"x" * 60)
    assert answers.get("alice", "INBOX", "thread/references/number", digest) == b"x" * 60
    assert answers.get("alice", "INBOX", "thread/references/number", b"other") is None
    assert answers.get("alice", "INBOX", "thread/references/uid", digest) is None
    assert answers.get("bob", "INBOX", "thread/references/number", digest) is None
    answers.keep("alice", "Sent", "thread/references/number", digest, b"y" * 60)  # over: oldest out
    assert answers.get("alice", "INBOX", "thread/references/number", digest) is None
    assert answers.get("alice", "Sent", "thread/references/number", digest) == b"y" * 60
    answers.keep("alice", "Sent", "thread/references/number", b"d2", b"z" * 10)  # replaces
    assert answers.get("alice", "Sent", "thread/references/number", digest) is None
    answers.keep("alice", "Big", "thread/references/number", digest, b"w" * 101)  # too big
    assert answers.get("alice", "Big", "thread/references/number", digest) is None
    assert answers.get("alice", "Sent", "thread/references/number", b"d2") == b"z" * 10
