"""Two sessions on one mailbox: what one changes, the other is told, and when
(RFC 9051 §5.2, §7.4.1 EXISTS, §7.5.1 EXPUNGE, §7.5.2 FETCH, §6.4.6 note).

The rule under test (RFC 9051 §7.5.1): an EXPUNGE response MUST NOT be sent while
answering FETCH, STORE or SEARCH (by number), since it renumbers messages; it MAY be
sent during the UID forms, and is sent at the next command that allows it (NOOP).
Until then the expunged message keeps its number in the other session.
"""

from __future__ import annotations

from .imap_harness import ImapClient, ImapWorld
from .messages import MEETING, MIXED, SMALL, note


async def expunge_elsewhere(writer: ImapClient, number: int) -> None:
    await writer.converse(rf"""
        C: w1 STORE {number} +FLAGS.SILENT (\Deleted)
        S: w1 OK STORE completed
        C: w2 EXPUNGE
        S: * {number} EXPUNGE
        S: w2 OK EXPUNGE completed
    """)


async def test_expunge_elsewhere_is_held_back_during_fetch_store_search(
    world: ImapWorld,
) -> None:
    """RFC 9051 §7.5.1: no EXPUNGE during FETCH, STORE or SEARCH; message 2 keeps its
    number until the NOOP, which reports it."""
    await world.deliver(MEETING, MIXED, SMALL)
    async with world.logged_in() as reader, world.logged_in() as writer:
        await reader.select()
        await writer.select()
        await expunge_elsewhere(writer, 2)
        await reader.converse(r"""
            C: r1 FETCH 1:3 UID
            S: * 1 FETCH (UID 1)
            S: * 2 FETCH (UID 2)
            S: * 3 FETCH (UID 3)
            S: r1 OK FETCH completed
            C: r2 STORE 3 +FLAGS (\Seen)
            S: * 3 FETCH (FLAGS (\Seen))
            S: r2 OK STORE completed
            C: r3 SEARCH UNSEEN
            S: * SEARCH 1 2
            S: r3 OK SEARCH completed
            C: r4 FETCH 3 FLAGS
            S: * 3 FETCH (FLAGS (\Seen))
            S: r4 OK FETCH completed
            C: r5 NOOP
            S: * 2 EXPUNGE
            S: r5 OK NOOP completed
            C: r6 FETCH 1:* UID
            S: * 1 FETCH (UID 1)
            S: * 2 FETCH (UID 3)
            S: r6 OK FETCH completed
            C: r7 FETCH 3 UID
            S: r7 BAD *
        """)


async def test_expunge_elsewhere_may_come_during_uid_commands(world: ImapWorld) -> None:
    """RFC 9051 §7.5.1: UID FETCH, UID STORE and UID SEARCH are other commands, during
    which EXPUNGE may be sent (after their own responses here)."""
    await world.deliver(MEETING, MIXED, SMALL)
    async with world.logged_in() as reader, world.logged_in() as writer:
        await reader.select()
        await writer.select()
        await expunge_elsewhere(writer, 1)
        await reader.converse("""
            C: r1 UID FETCH 3 UID
            S: * 3 FETCH (UID 3)
            S: * 1 EXPUNGE
            S: r1 OK UID FETCH completed
            C: r2 FETCH 1:* UID
            S: * 1 FETCH (UID 2)
            S: * 2 FETCH (UID 3)
            S: r2 OK FETCH completed
        """)


async def test_content_of_a_message_expunged_elsewhere(world: ImapWorld) -> None:
    """RFC 9051 §7.5.1 and RFC 5530 EXPUNGEISSUED: the content of a message another
    session expunged cannot be sent; the others are, and the FETCH ends NO
    [EXPUNGEISSUED] (no EXPUNGE response during FETCH)."""
    await world.deliver(MEETING, MIXED, SMALL)
    async with world.logged_in() as reader, world.logged_in() as writer:
        await reader.select()
        await writer.select()
        await expunge_elsewhere(writer, 2)
        await reader.converse("""
            C: r1 FETCH 1:3 BODY.PEEK[HEADER.FIELDS (SUBJECT)]
            S: * 1 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {30}
            S: Subject: afternoon meeting
            S:
            S: )
            S: * 3 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {19}
            S: Subject: lunch?
            S:
            S: )
            S: r1 NO [EXPUNGEISSUED] *
            C: r2 NOOP
            S: * 2 EXPUNGE
            S: r2 OK NOOP completed
        """)


async def test_store_on_a_message_expunged_elsewhere(world: ImapWorld) -> None:
    """RFC 9051 §7.5.1: STORE on a set holding a message expunged elsewhere changes
    the others; the EXPUNGE waits for the NOOP."""
    await world.deliver(MEETING, MIXED, SMALL)
    async with world.logged_in() as reader, world.logged_in() as writer:
        await reader.select()
        await writer.select()
        await expunge_elsewhere(writer, 2)
        await reader.converse(r"""
            C: r1 STORE 1:3 +FLAGS (\Answered)
            S: * 1 FETCH (FLAGS (\Answered))
            S: * 3 FETCH (FLAGS (\Answered))
            S: r1 OK STORE completed
            C: r2 NOOP
            S: * 2 EXPUNGE
            S: r2 OK NOOP completed
        """)
    async with world.store() as store:
        flags = {m.uid: m.flags for m in await store.messages("INBOX")}
        assert flags == {1: {"\\Answered"}, 3: {"\\Answered"}}


async def test_flags_changed_elsewhere_come_as_untagged_fetch(world: ImapWorld) -> None:
    """RFC 9051 §7.5.2 and the note of §6.4.6: a flag change made by another session is
    sent as an unsolicited FETCH with the new FLAGS, also during FETCH and STORE."""
    await world.deliver(MEETING, MIXED, SMALL)
    async with world.logged_in() as reader, world.logged_in() as writer:
        await reader.select()
        await writer.select()
        await writer.converse(r"""
            C: w1 STORE 1 +FLAGS.SILENT (\Flagged $Urgent)
            S: w1 OK STORE completed
        """)
        await reader.converse(r"""
            C: r1 NOOP
            S: * 1 FETCH (*FLAGS (\Flagged $Urgent))
            S: r1 OK NOOP completed
            C: r2 NOOP
            S: r2 OK NOOP completed
        """)
        await writer.converse(r"""
            C: w2 STORE 2 FLAGS.SILENT (\Seen)
            S: w2 OK STORE completed
        """)
        await reader.converse(r"""
            C: r3 STORE 3 +FLAGS.SILENT (\Draft)
            S: * 2 FETCH (*FLAGS (\Seen))
            S: r3 OK STORE completed
        """)
        await writer.converse(r"""
            C: w3 STORE 2 -FLAGS.SILENT (\Seen)
            S: * 3 FETCH (*FLAGS (\Draft))
            S: w3 OK STORE completed
        """)
        await reader.converse(r"""
            C: r4 FETCH 3 FLAGS
            S: * 3 FETCH (FLAGS (\Draft))
            S: * 2 FETCH (*FLAGS ())
            S: r4 OK FETCH completed
        """)


async def test_new_mail_and_expunges_elsewhere_at_noop(world: ImapWorld) -> None:
    """RFC 9051 §7.4.1 and §7.5.1: at NOOP the EXPUNGEs come, then EXISTS with the new
    count (the RFC 9051 §6.1.2 NOOP example)."""
    await world.deliver(MEETING, MIXED, SMALL)
    async with world.logged_in() as reader, world.logged_in() as writer:
        await reader.select()
        await writer.select()
        await expunge_elsewhere(writer, 1)
        await world.deliver(note(1), note(2))
        await reader.converse("""
            C: a047 NOOP
            S: * 1 EXPUNGE
            S: * 4 EXISTS
            S: a047 OK NOOP completed
            C: a048 FETCH 1:* UID
            S: * 1 FETCH (UID 2)
            S: * 2 FETCH (UID 3)
            S: * 3 FETCH (UID 4)
            S: * 4 FETCH (UID 5)
            S: a048 OK FETCH completed
        """)


async def test_new_mail_is_announced_after_any_command(world: ImapWorld) -> None:
    """RFC 9051 §7.4.1 / §5.2: new messages are told with EXISTS at the next command,
    FETCH included (EXISTS does not renumber)."""
    await world.deliver(MEETING)
    async with world.logged_in() as client:
        await client.select()
        await world.deliver(SMALL)
        await client.converse("""
            C: a1 FETCH 1 UID
            S: * 1 FETCH (UID 1)
            S: * 2 EXISTS
            S: a1 OK FETCH completed
            C: a2 FETCH 2 UID
            S: * 2 FETCH (UID 2)
            S: a2 OK FETCH completed
        """)


async def test_own_changes_are_not_reported_twice(world: ImapWorld) -> None:
    """RFC 9051 §7.5.1/§7.5.2: a session's own STORE and EXPUNGE are answered once, by
    the command; the following NOOP has nothing to add."""
    await world.deliver(MEETING, MIXED)
    async with world.logged_in() as client:
        await client.select()
        await client.converse(r"""
            C: a1 STORE 1 +FLAGS (\Deleted)
            S: * 1 FETCH (FLAGS (\Deleted))
            S: a1 OK STORE completed
            C: a2 NOOP
            S: a2 OK NOOP completed
            C: a3 EXPUNGE
            S: * 1 EXPUNGE
            S: a3 OK EXPUNGE completed
            C: a4 NOOP
            S: a4 OK NOOP completed
        """)


async def test_the_selected_mailbox_deleted_elsewhere(world: ImapWorld) -> None:
    """RFC 9051 §7.1.5: when the selected mailbox is deleted by another session the
    session cannot go on with it; it is ended with BYE (as Dovecot does)."""
    await world.append("Drafts", MEETING)
    async with world.logged_in() as reader, world.logged_in() as writer:
        await reader.select("Drafts")
        await writer.converse("""
            C: w1 DELETE Drafts
            S: w1 OK DELETE completed
        """)
        await reader.converse("""
            C: r1 NOOP
            S: * BYE *
        """)
        assert await reader.at_eof()


async def test_own_expunge_with_expunges_from_elsewhere(world: ImapWorld) -> None:
    """RFC 9051 §7.5.1: EXPUNGE reports the session's own removals and those made
    elsewhere, each number as it is when its response is sent."""
    await world.deliver(*(note(n) for n in range(1, 6)))
    async with world.logged_in() as reader, world.logged_in() as writer:
        await reader.select()
        await writer.select()
        await expunge_elsewhere(writer, 2)
        await reader.converse(r"""
            C: r1 STORE 4 +FLAGS.SILENT (\Deleted)
            S: r1 OK STORE completed
        """)
        lines = await reader.converse("""
            C: r2 EXPUNGE
            S: * * EXPUNGE
            S: * * EXPUNGE
            S: r2 OK EXPUNGE completed
        """)
        remaining = [1, 2, 3, 4, 5]
        for line in lines[:2]:
            del remaining[int(line.split()[1]) - 1]
        assert remaining == [1, 3, 5]
        await reader.converse("""
            C: r3 FETCH 1:* UID
            S: * 1 FETCH (UID 1)
            S: * 2 FETCH (UID 3)
            S: * 3 FETCH (UID 5)
            S: r3 OK FETCH completed
        """)
