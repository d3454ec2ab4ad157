"""APPEND (with LITERAL+, MULTIAPPEND, UIDPLUS APPENDUID, APPENDLIMIT) and IDLE,
alone and with a second session or a delivery changing the mailbox (RFC 9051
§6.3.12, §6.3.13; RFC 3502, RFC 4315 §3, RFC 7888, RFC 7889, RFC 2177)."""

from __future__ import annotations

import asyncio

from .imap_harness import INBOX_UIDVALIDITY, ImapWorld, c_literal
from .messages import MEETING, SMALL, note


async def test_append_rfc9051_example(world: ImapWorld) -> None:
    """RFC 9051 §6.3.12 example: a synchronising literal, a flag list; the OK carries
    APPENDUID (RFC 4315 §3); the message is stored octet for octet."""
    async with world.store() as store:
        await store.create_mailbox("saved-messages")
        uidvalidity = (await store.status("saved-messages")).uidvalidity
    async with world.logged_in() as client:
        await client.converse(rf"""
            C: A003 APPEND saved-messages (\Seen) {{{len(MEETING)}}}
            S: + Ready for literal data
            {c_literal(MEETING)}
            S: A003 OK [APPENDUID {uidvalidity} 1] APPEND completed
        """)
    async with world.store() as store:
        [info] = await store.messages("saved-messages")
        assert info.flags == {"\\Seen"}
        assert await store.read("saved-messages", 1) == MEETING


async def test_append_with_flags_keywords_and_date_by_literal_plus(world: ImapWorld) -> None:
    """RFC 9051 §6.3.12 (flags and date-time SHOULD be set) with a non-synchronising
    literal (RFC 7888 §3: no continuation is waited for)."""
    async with world.logged_in() as client:
        await client.converse(rf"""
            C: a1 APPEND Drafts (\Draft $Forwarded) "15-Feb-2026 09:10:11 +0100" {{{len(SMALL)}+}}
            {c_literal(SMALL)}
            S: a1 OK [APPENDUID * 1] APPEND completed
            C: a2 EXAMINE Drafts
            S: * 1 EXISTS
            S: * 0 RECENT
            S: * FLAGS (\Answered \Deleted \Draft \Flagged \Seen $Forwarded)
            S: * OK [PERMANENTFLAGS ()] *
            S: * OK [UNSEEN 1] *
            S: * OK [UIDVALIDITY *] *
            S: * OK [UIDNEXT 2] *
            S: a2 OK [READ-ONLY] EXAMINE completed
            C: a3 FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE)
            S: * 1 FETCH (FLAGS (\Draft $Forwarded) INTERNALDATE "15-Feb-2026 08:10:11 +0000" RFC822.SIZE {len(SMALL)})
            S: a3 OK FETCH completed
        """)  # noqa: E501


async def test_multiappend(world: ImapWorld) -> None:
    """RFC 3502 §3 (MULTIAPPEND: several messages, each with its own flags, in one
    command) and RFC 4315 §3 (APPENDUID with a UID set)."""
    first, second = note(1), note(2)
    then = rf" (\Flagged) {{{len(second)}+}}"  # the command goes on after the first literal
    async with world.logged_in() as client:
        await client.converse(rf"""
            C: A003 APPEND INBOX (\Seen) {{{len(first)}}}
            S: + Ready for literal data
            {c_literal(first, then)}
            {c_literal(second)}
            S: A003 OK [APPENDUID {INBOX_UIDVALIDITY} 1:2] APPEND completed
            C: a4 STATUS INBOX (MESSAGES UNSEEN UIDNEXT)
            S: * STATUS "INBOX" (MESSAGES 2 UNSEEN 1 UIDNEXT 3)
            S: a4 OK STATUS completed
        """)
    async with world.store() as store:
        infos = await store.messages("INBOX")
        assert [(i.uid, i.flags) for i in infos] == [(1, {"\\Seen"}), (2, {"\\Flagged"})]
        assert await store.read("INBOX", 2) == second


async def test_append_to_a_missing_mailbox_asks_to_create_it(world: ImapWorld) -> None:
    """RFC 9051 §6.3.12: the server MUST NOT create the mailbox, and sends
    NO [TRYCREATE]; once the client creates it the APPEND works."""
    async with world.logged_in() as client:
        await client.converse(rf"""
            C: a1 APPEND blurdybloop {{{len(SMALL)}+}}
            {c_literal(SMALL)}
            S: a1 NO [TRYCREATE] *
            C: a2 LIST "" blurdybloop
            S: a2 OK LIST completed
            C: a3 CREATE blurdybloop
            S: a3 OK CREATE completed
            C: a4 APPEND blurdybloop {{{len(SMALL)}+}}
            {c_literal(SMALL)}
            S: a4 OK [APPENDUID * 1] APPEND completed
        """)


async def test_append_over_the_limit_gets_no_continuation(world: ImapWorld) -> None:
    """RFC 7889 §3-§4 (APPENDLIMIT=100000 advertised; a bigger message is refused with
    NO [TOOBIG]) and RFC 9051 §7.5: the refusal comes instead of the ``+``, so the
    client sends nothing more and the session goes on."""
    async with world.logged_in() as client:
        await client.converse("""
            C: a1 APPEND INBOX {100001}
            S: a1 NO [TOOBIG] *
            C: a2 NOOP
            S: a2 OK NOOP completed
            C: a3 STATUS INBOX (MESSAGES)
            S: * STATUS "INBOX" (MESSAGES 0)
            S: a3 OK STATUS completed
        """)


async def test_non_synchronising_literal_over_the_limit_ends_the_session(
    world: ImapWorld,
) -> None:
    """RFC 7888 §4 with RFC 7889: a LITERAL+ literal over the limit cannot be skipped
    without reading it; the server refuses (NO [TOOBIG]) and says BYE."""
    async with world.logged_in() as client:
        await client.converse("""
            C: a1 APPEND INBOX {100001+}
            S: a1 NO [TOOBIG] *
            S: * BYE *
        """)
        assert await client.at_eof()


async def test_append_errors(world: ImapWorld) -> None:
    """RFC 9051 §6.3.12 / §9: an empty message is refused (NO), a malformed date-time
    is a syntax error (BAD)."""
    async with world.logged_in() as client:
        await client.converse(rf"""
            C: a1 APPEND INBOX {{0+}}
            C:
            S: a1 NO *
            C: a2 APPEND INBOX "31-Foo-2026 09:10:11 +0100" {{{len(SMALL)}+}}
            {c_literal(SMALL)}
            S: a2 BAD *
            C: a3 STATUS INBOX (MESSAGES)
            S: * STATUS "INBOX" (MESSAGES 0)
            S: a3 OK STATUS completed
        """)


async def test_append_to_the_selected_mailbox_reports_exists(world: ImapWorld) -> None:
    """RFC 9051 §6.3.12: appending to the selected mailbox SHOULD be followed by the
    untagged EXISTS at once."""
    await world.deliver(MEETING)
    async with world.logged_in() as client:
        await client.select()
        await client.converse(rf"""
            C: a1 APPEND INBOX {{{len(SMALL)}+}}
            {c_literal(SMALL)}
            S: * 2 EXISTS
            S: a1 OK [APPENDUID {INBOX_UIDVALIDITY} 2] APPEND completed
        """)


# -- IDLE -----------------------------------------------------------------------------------


async def test_idle_and_done(world: ImapWorld) -> None:
    """RFC 9051 §6.3.13 / RFC 2177 §3: ``+`` while idling, DONE ends it with the
    tagged OK; IDLE works in the authenticated state too."""
    async with world.logged_in() as client:
        await client.converse("""
            C: a001 IDLE
            S: + idling
            C: DONE
            S: a001 OK IDLE terminated
        """)
        await client.select()
        await client.converse("""
            C: a002 IDLE
            S: + idling
            C: DONE
            S: a002 OK IDLE terminated
        """)


async def test_idle_reports_a_delivery_at_once(world: ImapWorld) -> None:
    """RFC 9051 §6.3.13 example: while idling, new mail is announced with an untagged
    EXISTS without waiting for DONE (the store's change feed wakes the session)."""
    await world.deliver(MEETING)
    async with world.logged_in() as client:
        await client.select()
        await client.converse("""
            C: A002 IDLE
            S: + idling
        """)
        await world.deliver(note(1))
        await client.converse("""
            S: * 2 EXISTS
        """)
        await world.deliver(note(2))
        await client.converse("""
            S: * 3 EXISTS
        """)
        await client.converse("""
            C: DONE
            S: A002 OK IDLE terminated
        """)


async def test_idle_sees_an_append_by_another_session(world: ImapWorld) -> None:
    """RFC 9051 §6.3.13 and §7.4.1: a message appended in a second session reaches the
    idling first one as ``* n EXISTS``."""
    await world.deliver(MEETING)
    async with world.logged_in() as watcher, world.logged_in() as writer:
        await watcher.select()
        await watcher.converse("""
            C: w1 IDLE
            S: + idling
        """)
        await writer.converse(rf"""
            C: a1 APPEND INBOX {{{len(SMALL)}+}}
            {c_literal(SMALL)}
            S: a1 OK [APPENDUID * 2] APPEND completed
        """)
        await watcher.converse("""
            S: * 2 EXISTS
            C: DONE
            S: w1 OK IDLE terminated
            C: w2 FETCH 2 BODY.PEEK[HEADER.FIELDS (SUBJECT)]
            S: * 2 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {19}
            S: Subject: lunch?
            S:
            S: )
            S: w2 OK FETCH completed
        """)


async def test_idle_sees_flags_and_expunges_of_another_session(world: ImapWorld) -> None:
    """RFC 9051 §7.5.2 and §6.3.13 (an unsolicited FETCH while idling MUST include
    UID) and §7.5.1 (EXPUNGE may be sent while idling: no command by number is in
    progress)."""
    await world.deliver(MEETING, SMALL, note(1))
    async with world.logged_in() as watcher, world.logged_in() as writer:
        await watcher.select()
        await writer.select()
        await watcher.converse("""
            C: w1 IDLE
            S: + idling
        """)
        await writer.converse(r"""
            C: b1 STORE 1 +FLAGS.SILENT (\Flagged)
            S: b1 OK STORE completed
        """)
        await watcher.converse(r"""
            S: * 1 FETCH (UID 1 FLAGS (\Flagged))
        """)
        await writer.converse(r"""
            C: b2 STORE 2 +FLAGS.SILENT (\Deleted)
            S: b2 OK STORE completed
            C: b3 EXPUNGE
            S: * 2 EXPUNGE
            S: b3 OK EXPUNGE completed
        """)
        # the \Deleted flag may or may not be seen before the expunge; the EXPUNGE is
        lines = await watcher.read_until("* 2 EXPUNGE")
        assert all(line == r"* 2 FETCH (UID 2 FLAGS (\Deleted))" for line in lines[:-1])
        await watcher.converse("""
            C: DONE
            S: w1 OK IDLE terminated
            C: w2 FETCH 1:* UID
            S: * 1 FETCH (UID 1)
            S: * 2 FETCH (UID 3)
            S: w2 OK FETCH completed
        """)


async def test_idle_ended_by_something_other_than_done(world: ImapWorld) -> None:
    """RFC 2177 §3: the only valid answer to ``+ idling`` is DONE; anything else ends
    the IDLE with a BAD (and the session goes on)."""
    async with world.logged_in() as client:
        await client.converse("""
            C: a1 IDLE
            S: + idling
            C: a2 NOOP
            S: a1 BAD *
            C: a3 NOOP
            S: a3 OK NOOP completed
        """)


async def test_idle_in_another_session_does_not_block_this_one(world: ImapWorld) -> None:
    """IDLE holds one session; another of the same user is served meanwhile."""
    async with world.logged_in() as idler, world.logged_in() as other:
        await idler.converse("""
            C: i1 IDLE
            S: + idling
        """)
        await asyncio.wait_for(
            other.converse("""
                C: o1 STATUS INBOX (MESSAGES)
                S: * STATUS "INBOX" (MESSAGES 0)
                S: o1 OK STATUS completed
            """),
            timeout=5,
        )
        await idler.converse("""
            C: DONE
            S: i1 OK IDLE terminated
        """)
