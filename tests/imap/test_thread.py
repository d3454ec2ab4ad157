"""THREAD and UID THREAD (RFC 5256 §3), ORDEREDSUBJECT and REFERENCES, over a real
session on Maildir and mbox.

The THREAD mailbox (message 0, UID 1, is expunged first, so UID = number + 1):

    n  Subject       Message-ID  References / In-Reply-To  Date (UTC)
    1  meeting       <m1@a>      -                         2025-01-01 10:00
    2  Re: meeting   <m2@a>      References <m1@a>         11:00
    3  lunch         <m3@a>      -                         09:00
    4  Re: meeting   <m4@a>      In-Reply-To <m1@a>        12:00 (written -0500)
    5  Re: lunch     <m5@a>      References <gone@a>       unreadable: internal 14:00
    6  Re: meeting   <m6@a>      References <m1@a> <m2@a>  13:00
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from postoffice.mime.threads import ThreadFacts
from postoffice.server import imap_fields, imap_thread
from postoffice.server.imap_fetch import ContentLoader
from postoffice.store.field_cache import KEY_SET
from postoffice.store.service import FileMailStore

from .imap_harness import (
    ALICE,
    ImapClient,
    ImapWorld,
    capabilities_around_login,
    select_behind_an_expunge,
)


def _message(headers: str) -> bytes:
    return headers.strip().replace("\n", "\r\n").encode() + b"\r\n\r\nbody\r\n"


MESSAGES = [
    """
Subject: meeting
Message-ID: <m1@a>
Date: Wed, 1 Jan 2025 10:00:00 +0000
""",
    """
Subject: Re: meeting
Message-ID: <m2@a>
References: <m1@a>
Date: Wed, 1 Jan 2025 11:00:00 +0000
""",
    """
Subject: lunch
Message-ID: <m3@a>
Date: Wed, 1 Jan 2025 09:00:00 +0000
""",
    """
Subject: =?UTF-8?Q?Re=3A_meeting?=
Message-ID: <m4@a>
In-Reply-To: <m1@a>
Date: Wed, 1 Jan 2025 07:00:00 -0500
""",
    """
Subject: Re: lunch
Message-ID: <m5@a>
References: <gone@a>
Date: the day after the party
""",
    """
Subject: Re: meeting
Message-ID: <m6@a>
References: <m1@a>
 <m2@a>
Date: Wed, 1 Jan 2025 13:00:00 +0000
""",
]


async def threading(world: ImapWorld, client: ImapClient) -> None:
    day = datetime(2025, 1, 1, 14, tzinfo=UTC)
    await select_behind_an_expunge(world, client, [(_message(h), day) for h in MESSAGES])


async def test_thread_is_announced_after_login_only(world: ImapWorld) -> None:
    """RFC 5256 §3: each algorithm is a THREAD= capability."""
    before, words = await capabilities_around_login(world)
    assert "THREAD=REFERENCES" not in before
    assert "THREAD=ORDEREDSUBJECT" in words and "THREAD=REFERENCES" in words


async def test_both_algorithms(world: ImapWorld) -> None:
    """REFERENCES links by References and In-Reply-To and gathers a reply to a
    missing message under its subject's thread; ORDEREDSUBJECT groups by base
    subject only. Threads and siblings go by sent date (RFC 5256 §2.2)."""
    async with world.connect() as client:
        await threading(world, client)
        await client.converse("""
            C: t1 THREAD REFERENCES UTF-8 ALL
            S: * THREAD (3 5)(1 (2 6)(4))
            S: t1 OK THREAD completed
            C: t2 THREAD ORDEREDSUBJECT US-ASCII ALL
            S: * THREAD (3 5)(1 (2)(4)(6))
            S: t2 OK THREAD completed
            C: t3 UID THREAD REFERENCES UTF-8 ALL
            S: * THREAD (4 6)(2 (3 7)(5))
            S: t3 OK UID THREAD completed
            C: t4 uid thread orderedsubject utf-8 all
            S: * THREAD (4 6)(2 (3)(5)(7))
            S: t4 OK UID THREAD completed
        """)


async def test_search_criteria_choose_the_messages(world: ImapWorld) -> None:
    """The search criteria are SEARCH's, ``$`` too (RFC 5182); a message not
    searched is a missing parent (a dummy, RFC 5256 §3 REFERENCES); nothing
    found is a bare ``* THREAD`` (RFC 5256 §4)."""
    async with world.connect() as client:
        await threading(world, client)
        await client.converse("""
            C: k1 THREAD REFERENCES UTF-8 NOT SUBJECT lunch
            S: * THREAD (1 (2 6)(4))
            S: k1 OK THREAD completed
            C: k2 THREAD REFERENCES UTF-8 2:6
            S: * THREAD (3 5)((2 6)(4))
            S: k2 OK THREAD completed
            C: k3 UID THREAD ORDEREDSUBJECT UTF-8 UID 2:4
            S: * THREAD (4)(2 3)
            S: k3 OK UID THREAD completed
            C: k4 UID THREAD REFERENCES UTF-8 SUBJECT meeting SENTBEFORE 2-Jan-2025 6
            S: * THREAD (7)
            S: k4 OK UID THREAD completed
            C: k5 THREAD REFERENCES UTF-8 SUBJECT nothing-like-this
            S: * THREAD
            S: k5 OK THREAD completed
            C: k6 SEARCH RETURN (SAVE) SUBJECT lunch
            S: k6 OK SEARCH completed, result saved
            C: k7 THREAD ORDEREDSUBJECT UTF-8 $
            S: * THREAD (3 5)
            S: k7 OK THREAD completed
        """)


async def test_refusals(world: ImapWorld) -> None:
    """RFC 5256 §3: an unknown charset is a tagged NO with BADCHARSET; an unknown
    algorithm or malformed criteria are BAD; THREAD needs a selected mailbox."""
    async with world.logged_in() as client:
        await client.converse("""
            C: e0 THREAD REFERENCES UTF-8 ALL
            S: e0 BAD *
        """)
        await client.select()
        await client.converse("""
            C: e1 THREAD REFERENCES KOI8-R ALL
            S: e1 NO [BADCHARSET (US-ASCII UTF-8)] *
            C: e2 THREAD REFS UTF-8 ALL
            S: e2 BAD *
            C: e3 THREAD REFERENCES UTF-8
            S: e3 BAD *
            C: e4 UID THREAD UTF-8 ALL
            S: e4 BAD *
            C: e5 THREAD REFERENCES UTF-8 ALL
            S: * THREAD
            S: e5 OK THREAD completed
        """)


async def test_expunge_elsewhere_waits_for_uid_thread(world: ImapWorld) -> None:
    """RFC 9051 §7.5.1, as for SEARCH and SORT: THREAD answers with numbers, so an
    EXPUNGE made by another session is held back; UID THREAD may report it. The
    message gone keeps its number meanwhile and threads with empty values (it
    is read for the first time after it went): alone, first by its internal date."""
    for headers in MESSAGES[:3]:
        await world.append("INBOX", _message(headers))
    async with world.logged_in() as reader, world.logged_in() as writer:
        await reader.select()
        await writer.select()
        await writer.converse(r"""
            C: w1 STORE 1 +FLAGS.SILENT (\Deleted)
            S: w1 OK STORE completed
            C: w2 EXPUNGE
            S: * 1 EXPUNGE
            S: w2 OK EXPUNGE completed
        """)
        await reader.converse("""
            C: r1 THREAD REFERENCES UTF-8 ALL
            S: * THREAD (1)(3)(2)
            S: r1 OK THREAD completed
            C: r2 UID THREAD REFERENCES UTF-8 ALL
            S: * THREAD (1)(3)(2)
            S: * 1 EXPUNGE
            S: r2 OK UID THREAD completed
        """)


async def test_an_answer_is_kept_until_the_messages_change(
    world: ImapWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same THREAD over the same messages is answered from what was kept: in
    the process, and in the index for a process that never threaded them; a new
    message makes it computed again, with that message in it."""
    computed: list[str] = []
    compute = imap_thread._threads

    async def counted(*args: Any) -> bytes:
        computed.append(args[1].name)
        return await compute(*args)

    monkeypatch.setattr(imap_thread, "_threads", counted)
    async with world.connect() as client:
        await threading(world, client)
        first = await client.command("a1 THREAD REFERENCES UTF-8 ALL")
        again = await client.command("a2 THREAD REFERENCES UTF-8 ALL")
        by_uid = await client.command("a3 UID THREAD REFERENCES UTF-8 ALL")
    assert first[0] == "* THREAD (3 5)(1 (2 6)(4))"
    assert again[:-1] == first[:-1]
    assert by_uid[0] == "* THREAD (4 6)(2 (3 7)(5))"  # UIDs: an answer of its own
    assert computed == ["INBOX", "INBOX"]
    world.context = dataclasses.replace(world.context, contents=ContentLoader())
    async with world.logged_in() as client:
        await client.select()
        cold = await client.command("b1 THREAD REFERENCES UTF-8 ALL")
        assert cold[:-1] == first[:-1]
        assert len(computed) == 2  # from the index: not computed again
        reply = _message("""
Subject: Re: lunch
Message-ID: <m7@a>
References: <m3@a>
Date: Wed, 1 Jan 2025 15:00:00 +0000
""")
        await world.deliver(reply)
        await client.command("b2 NOOP")
        after = await client.command("b3 THREAD REFERENCES UTF-8 ALL")
    assert len(computed) == 3
    assert after[0] == "* THREAD (3 (5)(7))(1 (2 6)(4))"


async def test_a_new_process_reads_the_keys_from_one_row(
    world: ImapWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys made for more than ``KEY_SET_ABOVE`` messages are written as one key
    set: a process that never threaded the mailbox reads them from it and makes
    only a new message's, also after an expunge (which keeps the key set); a
    damaged key set is passed over (the keys it held are made again)."""
    monkeypatch.setattr(imap_fields, "KEY_SET_ABOVE", 2)
    made: list[list[int]] = []
    derive = imap_fields._derive_keys

    async def counted(*args: Any) -> Any:
        if args[2]:
            made.append(list(args[2]))
        return await derive(*args)

    monkeypatch.setattr(imap_fields, "_derive_keys", counted)
    row_reads: list[list[int]] = []  # the UIDs whose key rows were asked for
    header_fields = FileMailStore.header_fields

    async def reads(self: FileMailStore, name: str, validity: int, uids: Any, fields: Any) -> Any:
        if any(field.startswith(":thread") for field in fields):
            row_reads.append(list(uids))
        return await header_fields(self, name, validity, uids, fields)

    monkeypatch.setattr(FileMailStore, "header_fields", reads)
    async with world.connect() as client:
        await threading(world, client)
        first = await client.command("a1 THREAD REFERENCES UTF-8 ALL")
    assert first[0] == "* THREAD (3 5)(1 (2 6)(4))"
    assert made == [[2, 3, 4, 5, 6, 7]]  # UID = number + 1
    world.context = dataclasses.replace(world.context, contents=ContentLoader())
    [new] = await world.deliver(
        _message("""
Subject: Re: lunch
Message-ID: <m7@a>
References: <m3@a>
Date: Wed, 1 Jan 2025 15:00:00 +0000
""")
    )
    async with world.logged_in() as client:
        await client.select()
        after = await client.command("b1 THREAD REFERENCES UTF-8 ALL")
        assert after[0] == "* THREAD (3 (5)(7))(1 (2 6)(4))"
        assert made == [[2, 3, 4, 5, 6, 7], [new]]  # the six from the key set
        assert row_reads == [[2, 3, 4, 5, 6, 7], [new]]
        await client.command("b2 STORE 2 +FLAGS.SILENT (\\Deleted)")
        await client.command("b3 EXPUNGE")
    world.context = dataclasses.replace(world.context, contents=ContentLoader())
    async with world.logged_in() as client:
        await client.select()
        # <m2@a> gone: 6 (now 5) is 1's child, beside 4 (now 3)
        expunged = await client.command("c1 THREAD REFERENCES UTF-8 ALL")
        assert expunged[0] == "* THREAD (2 (4)(6))(1 (3)(5))"
        assert len(made) == 2  # from the key set and the new message's row
        assert row_reads[2:] == [[new]]
    async with await world.factory.open(ALICE) as store:
        validity = (await store.status("INBOX")).uidvalidity
        kind = KEY_SET + ":thread=references/2"
        broken = b'{"uids":[2],"columns":[[1.0],[null],[[5]],["s"],[false]]}'  # 5: no msg-id
        await store.save_answer("INBOX", validity, kind, b"", broken)
    world.context = dataclasses.replace(world.context, contents=ContentLoader())
    async with world.logged_in() as client:
        await client.select()
        # UID THREAD: an answer of its own, so the keys are needed again
        damaged = await client.command("d1 UID THREAD REFERENCES UTF-8 ALL")
    assert damaged[0] == "* THREAD (4 (6)(8))(2 (5)(7))"  # UIDs 2, 4-8
    # Keys that went into a key set have no row of their own: made again. The
    # new message's was made alone, so it has its row.
    assert made[2:] == [[2, 4, 5, 6, 7]]
    assert row_reads[3:] == [[2, 4, 5, 6, 7, new]]


_FACTS = [
    ThreadFacts(1.5, "<a@b>", ("<c@d>", "<e@f>"), "subject", True),
    ThreadFacts(-2.0, None, (), "", False),
]


def _thread_kind() -> imap_fields.KeyKind[ThreadFacts]:
    return imap_fields.KeyKind(
        "THREAD=REFERENCES",
        (),
        lambda uid, values: _FACTS[0],
        imap_thread._encoded,
        imap_thread._decoded,
        imap_thread._columns,
        imap_thread._of_columns,
    )


def test_thread_facts_come_back_from_a_key_set() -> None:
    kind = _thread_kind()
    blob = imap_fields._key_set_blob([7, 9], _FACTS, kind)
    assert imap_fields._key_set_keys(blob, {7, 9, 11}, kind) == {7: _FACTS[0], 9: _FACTS[1]}
    assert imap_fields._key_set_keys(blob, {9}, kind) == {9: _FACTS[1]}
    [back] = imap_fields._key_set_keys(blob, {9}, kind).values()
    assert type(back) is ThreadFacts and type(back.references) is tuple
    empty = imap_fields._key_set_blob([], [], kind)
    assert imap_fields._key_set_keys(empty, {1}, kind) == {}


@pytest.mark.parametrize(
    "blob",
    [
        b"not json",
        b"[]",
        b'{"uids":[7]}',
        b'{"uids":[7],"columns":[[1.5],["<a@b>"],[[]],["s"]]}',  # a column short
        b'{"uids":[7,9],"columns":[[1.5],["<a@b>"],[[]],["s"],[true]]}',  # a key short
        b'{"uids":["7"],"columns":[[1.5],["<a@b>"],[[]],["s"],[true]]}',  # a UID as text
        b'{"uids":[true],"columns":[[1.5],["<a@b>"],[[]],["s"],[true]]}',  # a UID as bool
        b'{"uids":[7],"columns":[[1],["<a@b>"],[[]],["s"],[true]]}',  # an integer date
        b'{"uids":[7],"columns":[[1.5],[3],[[]],["s"],[true]]}',  # a number for a msg-id
        b'{"uids":[7],"columns":[[1.5],["<a@b>"],["<c@d>"],["s"],[true]]}',  # no list
        b'{"uids":[7],"columns":[[1.5],["<a@b>"],[[null]],["s"],[true]]}',  # null reference
        b'{"uids":[7],"columns":[[1.5],["<a@b>"],[[]],[null],[true]]}',  # no subject
        b'{"uids":[7],"columns":[[1.5],["<a@b>"],[[]],["s"],[1]]}',  # 1 for true
        b'{"uids":[7],"columns":{"a":1,"b":2,"c":3,"d":4,"e":5}}',
    ],
)
def test_a_damaged_key_set_gives_no_keys(blob: bytes) -> None:
    assert imap_fields._key_set_keys(blob, {7, 9}, _thread_kind()) == {}


@pytest.mark.parametrize(
    ("kind", "keys", "damaged"),
    [
        (float, [1.5, -3.0], b'{"uids":[1,2],"columns":[[1.5,"x"]]}'),
        (str, ["a", ""], b'{"uids":[1,2],"columns":[["a",2]]}'),
    ],
)
def test_sort_keys_come_back_from_a_key_set(kind: type, keys: list[Any], damaged: bytes) -> None:
    sort_kind: imap_fields.KeyKind[Any] = imap_fields.KeyKind(
        "DATE",
        (),
        lambda uid, values: keys[0],
        lambda key: [str(key)],
        lambda strings: strings[0],
        imap_fields.one_column,
        imap_fields.column_of(kind),
    )
    blob = imap_fields._key_set_blob([1, 2], keys, sort_kind)
    assert imap_fields._key_set_keys(blob, {1, 2}, sort_kind) == {1: keys[0], 2: keys[1]}
    assert imap_fields._key_set_keys(damaged, {1, 2}, sort_kind) == {}
    two = b'{"uids":[1,2],"columns":[[1.5,2.5],[1.5,2.5]]}'  # one column too many
    assert imap_fields._key_set_keys(two, {1, 2}, sort_kind) == {}
