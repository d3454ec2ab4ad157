"""FETCH of ENVELOPE, BODYSTRUCTURE and RFC822.SIZE once a message's part tree is
known: the server then reads only the top-level header (``imap_fetch.header_is_enough``),
and the answers must be the same as the first time, when it read the whole message.

An encapsulated message (message/rfc822) has its ENVELOPE inside the body
(RFC 9051 §7.5.2 body-type-msg), so for it the whole message is read again.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection

import pytest

from postoffice.server.imap_fetch import ContentLoader, MessageContent
from postoffice.store.service import FileMailStore

from .imap_harness import ImapClient, ImapWorld, crlf
from .messages import MEETING, MIXED

FORWARD = crlf("""
From: Ann <ann@remote.test>
To: alice@example.test
Subject: fwd: the plan
Date: Thu, 5 Feb 2026 09:00:00 +0000
Message-ID: <fwd@remote.test>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="B"

--B
Content-Type: text/plain

see below
--B
Content-Type: message/rfc822

From: Bob <bob@inner.test>
To: ann@remote.test
Subject: the plan
Date: Wed, 4 Feb 2026 08:00:00 +0000
Message-ID: <plan@inner.test>

step one
step two
--B--
""")

ITEMS = "(ENVELOPE BODYSTRUCTURE RFC822.SIZE BODY)"


async def fetch_lines(client: ImapClient, tag: str, numbers: str) -> list[str]:
    lines = await client.command(f"{tag} FETCH {numbers} {ITEMS}")
    assert lines[-1] == f"{tag} OK FETCH completed", lines
    return lines[:-1]


async def test_the_second_fetch_answers_as_the_first(world: ImapWorld) -> None:
    await world.deliver(MEETING, MIXED, FORWARD)
    async with world.logged_in() as client:
        await client.select()
        first = await fetch_lines(client, "a1", "1:3")
        second = await fetch_lines(client, "a2", "1:3")
    async with world.logged_in() as other:  # another session: the trees come from the index
        await other.select()
        third = await fetch_lines(other, "b1", "1:3")
    assert second == first
    assert third == first
    sizes = [len(MEETING), len(MIXED), len(FORWARD)]
    for line, size in zip(first, sizes, strict=True):
        assert f"RFC822.SIZE {size} " in line
    # the encapsulated message's own envelope, from inside the body
    assert '"the plan" (("Bob" NIL "bob" "inner.test"))' in first[2]
    assert '"<plan@inner.test>"' in first[2]


async def test_answers_made_whole_from_kept_ones_are_the_first_answers(world: ImapWorld) -> None:
    """Without RFC822.SIZE, a message whose structure answers are all kept is
    answered in one line from them (``ContentLoader.line_renderer``), flags
    and UID from the index: the same octets as the first time."""
    await world.deliver(MEETING, MIXED, FORWARD)
    items = "(UID FLAGS ENVELOPE BODYSTRUCTURE BODY)"
    async with world.logged_in() as client:
        await client.select()
        first = await client.command(f"a1 FETCH 1:3 {items}")
        second = await client.command(f"a2 FETCH 1:3 {items}")
        await client.command("a3 STORE 2 +FLAGS (\\Flagged)")
        third = await client.command(f"a4 FETCH 1:3 {items}")
    async with world.logged_in() as other:  # another session: the answers come from the index
        await other.select()
        fourth = await other.command(f"b1 FETCH 1:3 {items}")
    assert first[-1] == "a1 OK FETCH completed" and len(first) == 4
    assert second[:-1] == first[:-1]
    assert third[1].replace("FLAGS (\\Flagged)", "FLAGS ()") == first[1] != third[1]
    assert third[0] == first[0] and third[2] == first[2]
    assert fourth[:-1] == third[:-1]


RAW_UTF8 = crlf("""
From: Jörg <joerg@remote.test>
To: alice@example.test
Subject: Grüße
Date: Wed, 4 Feb 2026 12:00:00 +0100

hallo
""")


async def plain_and_rev2(plain: ImapClient, rev2: ImapClient) -> None:
    """Two sessions on INBOX: one IMAP4rev1, one that enabled IMAP4rev2 (UTF-8)."""
    await plain.login()
    await plain.select()
    await rev2.login()
    await rev2.command("e1 ENABLE IMAP4rev2")
    await rev2.select()


async def test_kept_answers_are_per_utf8_mode(world: ImapWorld) -> None:
    """A raw UTF-8 header is a literal to a rev1 client and may be quoted after
    ENABLE IMAP4rev2 (RFC 9051 §6.3.1): each mode gets its own kept answer."""
    await world.deliver(RAW_UTF8)
    async with world.connect() as plain, world.connect() as rev2:
        await plain_and_rev2(plain, rev2)
        before = await fetch_lines(plain, "a1", "1")
        wide = await fetch_lines(rev2, "b1", "1")
        after = await fetch_lines(plain, "a2", "1")
        again = await fetch_lines(rev2, "b2", "1")
    assert after == before and again == wide
    assert "{" in before[0] and '"Grüße"' not in before[0]  # a literal, 8-bit octets
    assert '"Grüße"' in wide[0]


async def test_a_process_that_never_saw_the_messages_answers_from_the_index(
    world: ImapWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rendered ENVELOPE, BODYSTRUCTURE and BODY are kept in the index per
    UTF8 mode: a fresh process (a new ``ContentLoader``: another worker, or a
    restart) answers them with no message read, the same octets as the first."""
    await world.deliver(MEETING, MIXED, FORWARD, RAW_UTF8)
    async with world.connect() as plain, world.connect() as rev2:
        await plain_and_rev2(plain, rev2)
        first = await fetch_lines(plain, "a1", "1:4")
        wide = await fetch_lines(rev2, "b1", "1:4")
    cold = ContentLoader()
    world.context = dataclasses.replace(world.context, contents=cold)
    loads: list[int] = []

    async def counted_load(*args: object, **kwargs: object) -> MessageContent:
        loads.append(1)
        return await ContentLoader.load(cold, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(cold, "load", counted_load)
    async with world.connect() as plain, world.connect() as rev2:
        await plain_and_rev2(plain, rev2)
        again = await fetch_lines(plain, "c1", "1:4")
        wide_again = await fetch_lines(rev2, "d1", "1:4")
        assert loads == []  # not one message read
        # An item the index does not hold rendered reads the message again.
        lines = await plain.command("c2 FETCH 4 (ENVELOPE BODY.PEEK[HEADER.FIELDS (TO)])")
        assert lines[-1] == "c2 OK FETCH completed", lines
    assert again == first
    assert wide_again == wide
    assert loads == [1]


async def test_without_rfc822_size_no_part_tree_is_read(
    world: ImapWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENVELOPE and BODYSTRUCTURE kept rendered need nothing else: a fresh process
    reads no part tree from the index for them (RFC822.SIZE would need it: the
    size sent is the tree's end)."""
    await world.deliver(MEETING, MIXED, FORWARD)
    items = "(ENVELOPE BODYSTRUCTURE)"
    async with world.logged_in() as client:
        await client.select()
        first = await client.command(f"a1 FETCH 1:3 {items}")
    world.context = dataclasses.replace(world.context, contents=ContentLoader())
    trees: list[list[int]] = []
    structures = FileMailStore.structures

    async def counted(self: FileMailStore, name: str, uids: Collection[int]) -> dict[int, bytes]:
        trees.append(sorted(uids))
        return await structures(self, name, uids)

    monkeypatch.setattr(FileMailStore, "structures", counted)
    async with world.logged_in() as client:
        await client.select()
        again = await client.command(f"b1 FETCH 1:3 {items}")
        assert again[:-1] == first[:-1]
        assert trees == []
        sized = await client.command("b2 FETCH 2 (ENVELOPE RFC822.SIZE)")
        assert f"RFC822.SIZE {len(MIXED)}" in sized[0]
        assert trees == [[2]]


async def test_a_damaged_kept_answer_is_rendered_again(world: ImapWorld) -> None:
    """A kept row that cannot be the octets of an answer (a character past Latin-1)
    is not sent: the message is read and the answer made again."""
    await world.deliver(MEETING)
    async with world.logged_in() as client:
        await client.select()
        first = await fetch_lines(client, "a1", "1")
    async with world.store() as store:
        validity = (await store.status("INBOX")).uidvalidity
        await store.save_header_fields("INBOX", validity, [(1, ":fetch/envelope/0", ["\u0100"])])
    world.context = dataclasses.replace(world.context, contents=ContentLoader())
    async with world.logged_in() as client:
        await client.select()
        assert await fetch_lines(client, "b1", "1") == first


async def test_an_index_only_fetch_names_the_messages_every_form_of_set_names(
    world: ImapWorld,
) -> None:
    """An index-only FETCH goes by position ranges (``target_slices``), with no
    list of (number, UID) pairs; every form of set gives the messages it names:
    numbers, UIDs with gaps, ``$`` (RFC 5182) and CHANGEDSINCE (RFC 7162)."""
    await world.deliver(*[MEETING] * 8)
    async with world.logged_in() as client:
        await client.select()
        for command in ("a1 STORE 3,5 +FLAGS.SILENT (\\Deleted)", "a2 EXPUNGE"):
            assert (await client.command(command))[-1].split()[1] == "OK"  # UIDs 1 2 4 6 7 8
        modseqs = await client.command("a3 FETCH 1:* (MODSEQ)")
        before = max(
            int(line.split("MODSEQ (")[1].rstrip(")")) for line in modseqs if "MODSEQ (" in line
        )
        await client.command("a4 UID STORE 7 +FLAGS.SILENT (\\Flagged)")

        async def uids_of(command: str) -> list[str]:
            lines = await client.command(command)
            assert lines[-1].split()[1] == "OK", lines
            return [
                f"UID {found[1]}" for found in map(re.compile(r"UID (\d+)").search, lines) if found
            ]

        assert await uids_of("b1 FETCH 2:3,6 (UID FLAGS)") == ["UID 2", "UID 4", "UID 8"]
        assert await uids_of("b2 UID FETCH 3:7 (FLAGS)") == ["UID 4", "UID 6", "UID 7"]
        assert await uids_of("b3 UID FETCH 8:* (UID FLAGS)") == ["UID 8"]
        await client.command("b4 UID SEARCH RETURN (SAVE) UID 8,1,6:7")
        assert await uids_of("b5 UID FETCH $ (UID FLAGS)") == [
            "UID 1",
            "UID 6",
            "UID 7",
            "UID 8",
        ]
        lines = await client.command(f"b6 FETCH 1:* (UID FLAGS) (CHANGEDSINCE {before})")
        fetched = [line for line in lines if line.startswith("* ")]
        assert len(fetched) == 1 and fetched[0].startswith("* 5 FETCH (UID 7 ")
        assert "FLAGS (\\Flagged)" in fetched[0]
