"""COPY, MOVE, EXPUNGE, UID EXPUNGE, CLOSE, UNSELECT and CHECK (RFC 9051 §6.4.1-§6.4.3,
§6.4.7-§6.4.9; UIDPLUS RFC 4315; MOVE RFC 6851; UNSELECT RFC 3691; CHECK RFC 3501
§6.4.1)."""

from __future__ import annotations

import re

from .imap_harness import ImapWorld
from .messages import MEETING, MIXED, SMALL, UTF8, note


async def uidvalidity(world: ImapWorld, mailbox: str) -> int:
    async with world.store() as store:
        return (await store.status(mailbox)).uidvalidity


def apply_expunges(uids: list[int], lines: list[str]) -> list[int]:
    """What a client's list of UIDs becomes after the EXPUNGE responses in ``lines``,
    each read with the numbers as they are when it arrives (RFC 9051 §7.5.1)."""
    remaining = list(uids)
    for line in lines:
        found = re.fullmatch(r"\* (\d+) EXPUNGE", line)
        if found:
            del remaining[int(found.group(1)) - 1]
    return remaining


# -- COPY -----------------------------------------------------------------------------------


async def test_copy_with_copyuid(world: ImapWorld) -> None:
    """RFC 9051 §6.4.7 / RFC 4315 §3: COPY answers COPYUID (destination UIDVALIDITY,
    source UIDs, destination UIDs); flags and internal date are kept; the source is
    unchanged."""
    await world.deliver(MEETING, MIXED, UTF8, SMALL)
    async with world.store() as store:
        await store.store_flags("INBOX", [2], ["\\Flagged"], ["$Work"])
        await store.create_mailbox("MEETING")
    destination = await uidvalidity(world, "MEETING")
    async with world.logged_in() as client:
        await client.select()
        await client.converse(rf"""
            C: A003 COPY 2:4 MEETING
            S: A003 OK [COPYUID {destination} 2:4 1:3] COPY completed
            C: A004 UID COPY 1 MEETING
            S: A004 OK [COPYUID {destination} 1 4] UID COPY completed
            C: A005 UID COPY 305:310 MEETING
            S: A005 OK UID COPY completed
            C: A006 FETCH 1:* UID
            S: * 1 FETCH (UID 1)
            S: * 2 FETCH (UID 2)
            S: * 3 FETCH (UID 3)
            S: * 4 FETCH (UID 4)
            S: A006 OK FETCH completed
            C: A007 EXAMINE MEETING
            S: * OK [CLOSED] *
            S: * 4 EXISTS
            S: * 0 RECENT
            S: * FLAGS (\Answered \Deleted \Draft \Flagged \Seen $Work)
            S: * OK [PERMANENTFLAGS ()] *
            S: * OK [UNSEEN 1] *
            S: * OK [UIDVALIDITY {destination}] *
            S: * OK [UIDNEXT 5] *
            S: A007 OK [READ-ONLY] EXAMINE completed
            C: A008 FETCH 1:4 (UID FLAGS INTERNALDATE RFC822.SIZE)
            S: * 1 FETCH (UID 1 FLAGS (\Flagged $Work) INTERNALDATE "14-Nov-2023 22:13:20 +0000" RFC822.SIZE {len(MIXED)})
            S: * 2 FETCH (UID 2 FLAGS () INTERNALDATE "14-Nov-2023 22:13:20 +0000" RFC822.SIZE {len(UTF8)})
            S: * 3 FETCH (UID 3 FLAGS () INTERNALDATE "14-Nov-2023 22:13:20 +0000" RFC822.SIZE {len(SMALL)})
            S: * 4 FETCH (UID 4 FLAGS () INTERNALDATE "14-Nov-2023 22:13:20 +0000" RFC822.SIZE {len(MEETING)})
            S: A008 OK FETCH completed
        """)  # noqa: E501


async def test_copy_to_a_missing_mailbox(world: ImapWorld) -> None:
    """RFC 9051 §6.4.7: the server MUST NOT create the destination and sends
    NO [TRYCREATE]; nothing is copied."""
    await world.deliver(MEETING)
    async with world.logged_in() as client:
        await client.select()
        await client.converse("""
            C: a1 COPY 1 blurdybloop
            S: a1 NO [TRYCREATE] *
            C: a2 MOVE 1 blurdybloop
            S: a2 NO [TRYCREATE] *
            C: a3 LIST "" blurdybloop
            S: a3 OK LIST completed
            C: a4 FETCH 1 UID
            S: * 1 FETCH (UID 1)
            S: a4 OK FETCH completed
            C: a5 COPY 2 Trash
            S: a5 BAD *
        """)


async def test_copy_into_the_selected_mailbox(world: ImapWorld) -> None:
    """RFC 9051 §6.4.7 with §7.4.1: copies into the selected mailbox are new messages
    there, announced with EXISTS."""
    await world.deliver(MEETING)
    async with world.logged_in() as client:
        await client.select()
        await client.converse("""
            C: a1 COPY 1 INBOX
            S: * 2 EXISTS
            S: a1 OK [COPYUID 1700000000 1 2] COPY completed
        """)


async def test_copy_from_an_examined_mailbox(world: ImapWorld) -> None:
    """RFC 9051 §6.3.3: EXAMINE forbids changing the mailbox, not reading it: COPY out
    of it works; MOVE (which removes from it) is refused."""
    await world.deliver(MEETING)
    async with world.logged_in() as client:
        await client.command("S1 EXAMINE INBOX")
        await client.converse("""
            C: a1 COPY 1 Archive
            S: a1 OK [COPYUID * 1 1] COPY completed
            C: a2 MOVE 1 Archive
            S: a2 NO [READ-ONLY] *
            C: a3 FETCH 1 UID
            S: * 1 FETCH (UID 1)
            S: a3 OK FETCH completed
        """)


# -- MOVE -----------------------------------------------------------------------------------


async def test_move(world: ImapWorld) -> None:
    """RFC 9051 §6.4.8 / RFC 6851 §4.3: COPYUID comes in an untagged OK before the
    EXPUNGEs; no \\Deleted is set; flags and internal date are kept."""
    await world.deliver(MEETING, MIXED, UTF8, SMALL)
    async with world.store() as store:
        await store.store_flags("INBOX", [3], ["\\Answered"])
    junk = await uidvalidity(world, "Junk")
    async with world.logged_in() as client:
        await client.select()
        await client.converse(rf"""
            C: a1 MOVE 2:3 Junk
            S: * OK [COPYUID {junk} 2:3 1:2] *
            S: * 3 EXPUNGE
            S: * 2 EXPUNGE
            S: a1 OK MOVE completed
            C: a2 FETCH 1:* UID
            S: * 1 FETCH (UID 1)
            S: * 2 FETCH (UID 4)
            S: a2 OK FETCH completed
            C: a3 STATUS Junk (MESSAGES UIDNEXT)
            S: * STATUS "Junk" (MESSAGES 2 UIDNEXT 3)
            S: a3 OK STATUS completed
        """)
    async with world.store() as store:
        moved = await store.messages("Junk")
        assert [(m.uid, m.flags) for m in moved] == [(1, set()), (2, {"\\Answered"})]
        assert await store.read("Junk", 1) == MIXED


async def test_uid_move(world: ImapWorld) -> None:
    """RFC 6851 §3.3 example (UID MOVE) adapted: UIDs in, sequence numbers in the
    EXPUNGEs; UIDs that do not exist are ignored, and n:* always takes the last
    message (RFC 9051 §6.4.9)."""
    await world.deliver(*(note(n) for n in range(1, 7)))
    archive = await uidvalidity(world, "Archive")
    async with world.logged_in() as client:
        await client.select()
        lines = await client.converse(rf"""
            C: a UID MOVE 2:4,6,42:69 Archive
            S: * OK [COPYUID {archive} 2:4,6 1:4] *
            S: * * EXPUNGE
            S: * * EXPUNGE
            S: * * EXPUNGE
            S: * * EXPUNGE
            S: a OK UID MOVE completed
        """)
        assert apply_expunges([1, 2, 3, 4, 5, 6], lines) == [1, 5]
        await client.converse(f"""
            C: b UID MOVE 42:69 Archive
            S: b OK UID MOVE completed
            C: c UID MOVE 42:* Archive
            S: * OK [COPYUID {archive} 5 5] *
            S: * 2 EXPUNGE
            S: c OK UID MOVE completed
        """)


# -- EXPUNGE --------------------------------------------------------------------------------


async def test_expunge_rfc9051_example(world: ImapWorld) -> None:
    """RFC 9051 §6.4.3 example: messages 3, 4, 7 and 11 have \\Deleted; each EXPUNGE
    carries the number as it is when sent (§7.5.1), so whatever the order the
    client's view ends right; a second EXPUNGE finds nothing."""
    await world.deliver(*(note(n) for n in range(1, 12)))
    async with world.logged_in() as client:
        await client.select()
        await client.converse(r"""
            C: a1 STORE 3:4,7,11 +FLAGS.SILENT (\Deleted)
            S: a1 OK STORE completed
        """)
        lines = await client.converse("""
            C: A202 EXPUNGE
            S: * * EXPUNGE
            S: * * EXPUNGE
            S: * * EXPUNGE
            S: * * EXPUNGE
            S: A202 OK EXPUNGE completed
        """)
        assert apply_expunges(list(range(1, 12)), lines) == [1, 2, 5, 6, 8, 9, 10]
        await client.converse("""
            C: A203 EXPUNGE
            S: A203 OK EXPUNGE completed
            C: A204 FETCH 1:* UID
            S: * 1 FETCH (UID 1)
            S: * 2 FETCH (UID 2)
            S: * 3 FETCH (UID 5)
            S: * 4 FETCH (UID 6)
            S: * 5 FETCH (UID 8)
            S: * 6 FETCH (UID 9)
            S: * 7 FETCH (UID 10)
            S: A204 OK FETCH completed
            C: A205 NOOP
            S: A205 OK NOOP completed
        """)


async def test_uid_expunge_of_a_subset(world: ImapWorld) -> None:
    """RFC 4315 §2.1 / RFC 9051 §6.4.9: UID EXPUNGE removes only the \\Deleted messages
    whose UIDs it names."""
    await world.deliver(*(note(n) for n in range(1, 6)))
    async with world.logged_in() as client:
        await client.select()
        await client.converse(r"""
            C: a1 STORE 1:4 +FLAGS.SILENT (\Deleted)
            S: a1 OK STORE completed
            C: A003 UID EXPUNGE 2:3,5
            S: * 3 EXPUNGE
            S: * 2 EXPUNGE
            S: A003 OK UID EXPUNGE completed
            C: a4 FETCH 1:* (UID FLAGS)
            S: * 1 FETCH (UID 1 FLAGS (\Deleted))
            S: * 2 FETCH (UID 4 FLAGS (\Deleted))
            S: * 3 FETCH (UID 5 FLAGS ())
            S: a4 OK FETCH completed
            C: a5 UID EXPUNGE 99
            S: a5 OK UID EXPUNGE completed
        """)


async def test_expunge_in_an_examined_mailbox(world: ImapWorld) -> None:
    """RFC 9051 §6.3.3: nothing may be removed from a mailbox opened with EXAMINE."""
    await world.deliver(MEETING)
    async with world.store() as store:
        await store.store_flags("INBOX", [1], ["\\Deleted"])
    async with world.logged_in() as client:
        await client.command("S1 EXAMINE INBOX")
        await client.converse("""
            C: a1 EXPUNGE
            S: a1 NO [READ-ONLY] *
            C: a2 UID EXPUNGE 1
            S: a2 NO [READ-ONLY] *
        """)
    async with world.store() as store:
        assert (await store.status("INBOX")).messages == 1


# -- CLOSE / UNSELECT / CHECK ---------------------------------------------------------------


async def test_close_expunges_silently(world: ImapWorld) -> None:
    """RFC 9051 §6.4.1: CLOSE removes the \\Deleted messages with no EXPUNGE responses
    and returns to the authenticated state."""
    await world.deliver(MEETING, MIXED, SMALL)
    async with world.logged_in() as client:
        await client.select()
        await client.converse(r"""
            C: a1 STORE 2 +FLAGS.SILENT (\Deleted)
            S: a1 OK STORE completed
            C: A341 CLOSE
            S: A341 OK CLOSE completed
            C: a2 FETCH 1 UID
            S: a2 BAD *
            C: a3 STATUS INBOX (MESSAGES)
            S: * STATUS "INBOX" (MESSAGES 2)
            S: a3 OK STATUS completed
        """)


async def test_close_of_an_examined_mailbox_removes_nothing(world: ImapWorld) -> None:
    """RFC 9051 §6.4.1: with EXAMINE no messages are removed, and no error is given."""
    await world.deliver(MEETING)
    async with world.store() as store:
        await store.store_flags("INBOX", [1], ["\\Deleted"])
    async with world.logged_in() as client:
        await client.command("S1 EXAMINE INBOX")
        await client.converse("""
            C: a1 CLOSE
            S: a1 OK CLOSE completed
            C: a2 STATUS INBOX (MESSAGES DELETED)
            S: * STATUS "INBOX" (MESSAGES 1 DELETED 1)
            S: a2 OK STATUS completed
        """)


async def test_unselect_removes_nothing(world: ImapWorld) -> None:
    """RFC 3691 §2 / RFC 9051 §6.4.2: UNSELECT is CLOSE without the expunge."""
    await world.deliver(MEETING, MIXED)
    async with world.logged_in() as client:
        await client.select()
        await client.converse(r"""
            C: a1 STORE 1 +FLAGS.SILENT (\Deleted)
            S: a1 OK STORE completed
            C: A342 UNSELECT
            S: A342 OK UNSELECT completed
            C: a2 FETCH 1 UID
            S: a2 BAD *
            C: a3 STATUS INBOX (MESSAGES DELETED)
            S: * STATUS "INBOX" (MESSAGES 2 DELETED 1)
            S: a3 OK STATUS completed
            C: a4 UNSELECT
            S: a4 BAD *
            C: a5 CLOSE
            S: a5 BAD *
        """)


async def test_check(world: ImapWorld) -> None:
    """RFC 3501 §6.4.1: CHECK is valid in the selected state only (IMAP4rev2 drops it,
    RFC 9051 Appendix E, but IMAP4rev1 clients still send it)."""
    async with world.logged_in() as client:
        await client.converse("""
            C: a1 CHECK
            S: a1 BAD *
        """)
        await client.select()
        await client.converse("""
            C: FXXZ CHECK
            S: FXXZ OK CHECK completed
        """)


async def test_selected_state_commands_are_bad_when_nothing_is_selected(
    world: ImapWorld,
) -> None:
    """RFC 9051 §6.4: FETCH, STORE, SEARCH, COPY, MOVE, EXPUNGE and the UID forms are
    valid only in the selected state."""
    async with world.logged_in() as client:
        await client.converse(r"""
            C: a1 FETCH 1 FLAGS
            S: a1 BAD *
            C: a2 STORE 1 +FLAGS (\Seen)
            S: a2 BAD *
            C: a3 SEARCH ALL
            S: a3 BAD *
            C: a4 COPY 1 Trash
            S: a4 BAD *
            C: a5 UID MOVE 1 Trash
            S: a5 BAD *
            C: a6 EXPUNGE
            S: a6 BAD *
            C: a7 UID EXPUNGE 1
            S: a7 BAD *
            C: a8 NOOP
            S: a8 OK NOOP completed
        """)
