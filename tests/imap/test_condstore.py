"""CONDSTORE (RFC 7162 §3.1) over a real session, on Maildir and mbox: enabling it,
HIGHESTMODSEQ at SELECT, the MODSEQ fetch item, FETCH CHANGEDSINCE, MODSEQ in
unsolicited FETCH, and a session that never enabled it seeing none of it.
STORE UNCHANGEDSINCE, SEARCH MODSEQ and STATUS HIGHESTMODSEQ are in
``test_condstore_store``; the MODSEQ arithmetic in ``condstore_world``.
"""

from __future__ import annotations

from .condstore_world import SELECTED_3, change_flags, select_condstore, selected, three_messages
from .imap_harness import ImapWorld

# -- enabling, SELECT, EXAMINE ---------------------------------------------------------------


async def test_condstore_is_announced_and_enable_turns_it_on(world: ImapWorld) -> None:
    """RFC 7162 §3.1.1 (the capability), §3.1 (ENABLE CONDSTORE is an enabling command,
    RFC 5161) and §3.1.2.1: after it every SELECT says HIGHESTMODSEQ, and FLAGS in
    a FETCH come with MODSEQ."""
    await three_messages(world)
    async with world.logged_in() as client:
        await client.converse(f"""
            C: e1 CAPABILITY
            S: * CAPABILITY * STATUS=SIZE CONDSTORE QRESYNC *
            S: e1 OK CAPABILITY completed
            C: e2 ENABLE CONDSTORE
            S: * ENABLED CONDSTORE
            S: e2 OK ENABLE completed
            C: e3 ENABLE CONDSTORE
            S: * ENABLED
            S: e3 OK ENABLE completed
            C: e4 SELECT INBOX
            {SELECTED_3}
            S: * OK [HIGHESTMODSEQ 3] Highest
            S: e4 OK [READ-WRITE] SELECT completed
            C: e5 FETCH 1:3 (FLAGS)
            S: * 1 FETCH (MODSEQ (1) FLAGS ())
            S: * 2 FETCH (MODSEQ (2) FLAGS ())
            S: * 3 FETCH (MODSEQ (3) FLAGS ())
            S: e5 OK FETCH completed
        """)


async def test_select_and_examine_with_the_condstore_parameter(world: ImapWorld) -> None:
    """RFC 7162 §3.1.8 (its example 18): SELECT (CONDSTORE) enables CONDSTORE and
    answers with HIGHESTMODSEQ; so does EXAMINE (CONDSTORE). A mailbox that never
    had a message shows 1, never 0 (a mod-sequence-value is at least 1, §7)."""
    await three_messages(world)
    await change_flags(world, [2], "\\Answered")
    async with world.logged_in() as client:
        await select_condstore(client, 4, "A142")
        await client.converse(r"""
            C: A143 EXAMINE Drafts (CONDSTORE)
            S: * OK [CLOSED] *
            S: * 0 EXISTS
            S: * 0 RECENT
            S: * FLAGS *
            S: * OK [PERMANENTFLAGS ()] *
            S: * OK [UIDVALIDITY *] *
            S: * OK [UIDNEXT 1] *
            S: * OK [HIGHESTMODSEQ 1] Highest
            S: A143 OK [READ-ONLY] EXAMINE completed
            C: A144 EXAMINE INBOX
            S: * OK [CLOSED] *
            S: * 3 EXISTS
            S: * 0 RECENT
            S: * FLAGS *
            S: * OK [PERMANENTFLAGS ()] *
            S: * OK [UNSEEN 1] *
            S: * OK [UIDVALIDITY *] *
            S: * OK [UIDNEXT 4] *
            S: * OK [HIGHESTMODSEQ 4] Highest
            S: A144 OK [READ-ONLY] EXAMINE completed
            C: A145 FETCH 2 (FLAGS)
            S: * 2 FETCH (MODSEQ (4) FLAGS (\Answered))
            S: A145 OK FETCH completed
            C: A146 STORE 2 (UNCHANGEDSINCE 4) +FLAGS (\Seen)
            S: A146 NO [READ-ONLY] Mailbox is read-only
        """)


async def test_a_session_that_never_enabled_condstore_sees_no_modseq(
    world: ImapWorld,
) -> None:
    """RFC 7162 §3.1: MODSEQ is for CONDSTORE-aware clients only: without an enabling
    command no HIGHESTMODSEQ at SELECT and no MODSEQ in any FETCH response (asked,
    answering STORE or the \\Seen a FETCH set, or told unasked), and SEARCH as ever."""
    await three_messages(world)
    async with world.logged_in() as plain, world.logged_in() as aware:
        await plain.converse(f"""
            C: p1 SELECT INBOX
            {SELECTED_3}
            S: p1 OK [READ-WRITE] SELECT completed
            C: p2 FETCH 1:2 (UID FLAGS)
            S: * 1 FETCH (UID 1 FLAGS ())
            S: * 2 FETCH (UID 2 FLAGS ())
            S: p2 OK FETCH completed
            C: p3 STORE 1 +FLAGS (\\Seen)
            S: * 1 FETCH (FLAGS (\\Seen))
            S: p3 OK STORE completed
            C: p4 UID STORE 2 +FLAGS.SILENT (\\Seen)
            S: p4 OK UID STORE completed
            C: p5 FETCH 3 (BODY[HEADER.FIELDS (SUBJECT)])
            S: * 3 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {{19}}
            S: Subject: lunch?
            S:
            S:  FLAGS (\\Seen))
            S: p5 OK FETCH completed
            C: p6 SEARCH SEEN
            S: * SEARCH 1 2 3
            S: p6 OK SEARCH completed
        """)
        await select_condstore(aware, 6, "a1", answer=selected(unseen=False))
        await aware.converse(r"""
            C: a2 STORE 3 FLAGS (\Flagged)
            S: * 3 FETCH (UID 3 MODSEQ (7) FLAGS (\Flagged))
            S: a2 OK STORE completed
        """)
        await plain.converse(r"""
            C: p7 NOOP
            S: * 3 FETCH (UID 3 FLAGS (\Flagged))
            S: p7 OK NOOP completed
            C: p8 STATUS INBOX (MESSAGES)
            S: * STATUS "INBOX" (MESSAGES 3)
            S: p8 OK STATUS completed
        """)


# -- FETCH MODSEQ and CHANGEDSINCE ------------------------------------------------------------


async def test_fetch_modseq_enables_condstore_in_the_selected_mailbox(
    world: ImapWorld,
) -> None:
    """RFC 7162 §3.1.4.2 (its example 13): FETCH (MODSEQ). Being the first enabling
    command, with a mailbox selected whose SELECT said no HIGHESTMODSEQ, it is
    followed by one; from then on FLAGS go with MODSEQ (after UID when UID leads),
    also for the \\Seen a FETCH of a body sets (RFC 7162 §3.1)."""
    await three_messages(world)
    async with world.logged_in() as client:
        await client.select()
        await client.converse(r"""
            C: a FETCH 1:3 (MODSEQ)
            S: * 1 FETCH (MODSEQ (1))
            S: * 2 FETCH (MODSEQ (2))
            S: * 3 FETCH (MODSEQ (3))
            S: * OK [HIGHESTMODSEQ 3] Highest
            S: a OK FETCH completed
            C: b FETCH 2 (FLAGS)
            S: * 2 FETCH (MODSEQ (2) FLAGS ())
            S: b OK FETCH completed
            C: c UID FETCH 2:3 (FLAGS)
            S: * 2 FETCH (UID 2 MODSEQ (2) FLAGS ())
            S: * 3 FETCH (UID 3 MODSEQ (3) FLAGS ())
            S: c OK UID FETCH completed
            C: d FETCH 3 (FLAGS MODSEQ UID)
            S: * 3 FETCH (FLAGS () MODSEQ (3) UID 3)
            S: d OK FETCH completed
            C: e FETCH 1 (BODY[HEADER.FIELDS (SUBJECT)])
            S: * 1 FETCH (UID 1 MODSEQ (4) BODY[HEADER.FIELDS (SUBJECT)] {30}
            S: Subject: afternoon meeting
            S:
            S:  FLAGS (\Seen))
            S: e OK FETCH completed
            C: f FETCH 1:2 (UID RFC822.SIZE)
            S: * 1 FETCH (UID 1 RFC822.SIZE 326)
            S: * 2 FETCH (UID 2 RFC822.SIZE *)
            S: f OK FETCH completed
        """)


async def test_fetch_changedsince(world: ImapWorld) -> None:
    """RFC 7162 §3.1.4.1 (its example 12): only messages with a MODSEQ above the
    value, and MODSEQ in each response though not asked for; 0 (as iOS Mail sends
    it) means every message; a value past 63 bits is BAD."""
    await three_messages(world)
    await change_flags(world, [1], "\\Seen")  # MODSEQ 4
    await change_flags(world, [3], "\\Deleted")  # MODSEQ 5
    async with world.logged_in() as client:
        await select_condstore(client, 5, "s0")
        await client.converse(r"""
            C: s100 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 3)
            S: * 1 FETCH (UID 1 MODSEQ (4) FLAGS (\Seen))
            S: * 3 FETCH (UID 3 MODSEQ (5) FLAGS (\Deleted))
            S: s100 OK UID FETCH completed
            C: s101 FETCH 1:* (FLAGS) (CHANGEDSINCE 4)
            S: * 3 FETCH (MODSEQ (5) FLAGS (\Deleted))
            S: s101 OK FETCH completed
            C: s102 FETCH 1:* (UID) (CHANGEDSINCE 5)
            S: s102 OK FETCH completed
            C: s103 FETCH 2 (UID) (CHANGEDSINCE 0)
            S: * 2 FETCH (UID 2 MODSEQ (2))
            S: s103 OK FETCH completed
            C: s104 FETCH 1:2 (MODSEQ) (CHANGEDSINCE 1)
            S: * 1 FETCH (MODSEQ (4))
            S: * 2 FETCH (MODSEQ (2))
            S: s104 OK FETCH completed
            C: s105 FETCH 1 (FLAGS) (CHANGEDSINCE 9223372036854775808)
            S: s105 BAD *
            C: s106 FETCH 2 (BODY.PEEK[HEADER.FIELDS (SUBJECT)]) (CHANGEDSINCE 1)
            S: * 2 FETCH (MODSEQ (2) BODY[HEADER.FIELDS (SUBJECT)] {23}
            S: Subject: the report
            S:
            S: )
            S: s106 OK FETCH completed
        """)


async def test_changedsince_as_the_first_enabling_command(world: ImapWorld) -> None:
    """FETCH CHANGEDSINCE enables CONDSTORE (RFC 7162 §3.1), after a plain SELECT."""
    await three_messages(world)
    await change_flags(world, [2], "$Work")  # MODSEQ 4
    async with world.logged_in() as client:
        await client.select()
        await client.converse(r"""
            C: f1 FETCH 1:* (FLAGS) (CHANGEDSINCE 3)
            S: * 2 FETCH (MODSEQ (4) FLAGS ($Work))
            S: * OK [HIGHESTMODSEQ 4] Highest
            S: f1 OK FETCH completed
        """)


# -- news told unasked ----------------------------------------------------------------------


async def test_unsolicited_flag_changes_carry_modseq(world: ImapWorld) -> None:
    """RFC 7162 §3.1: once enabled, every untagged FETCH carries MODSEQ, also the ones
    telling changes made elsewhere (after a command, and while idling, where UID
    is there too, RFC 9051 §6.3.13)."""
    await three_messages(world)
    async with world.logged_in() as watcher:
        await select_condstore(watcher, 3, "w0")
        await change_flags(world, [1], "\\Flagged")  # 4
        await watcher.converse(r"""
            C: w1 NOOP
            S: * 1 FETCH (UID 1 MODSEQ (4) FLAGS (\Flagged))
            S: w1 OK NOOP completed
            C: w2 IDLE
            S: + idling
        """)
        await change_flags(world, [3], "$Label1")  # 5
        await watcher.converse(r"""
            S: * 3 FETCH (UID 3 MODSEQ (5) FLAGS ($Label1))
            C: DONE
            S: w2 OK IDLE terminated
        """)


async def test_bad_commands_do_not_enable_condstore(world: ImapWorld) -> None:
    """A command refused as BAD (a mod-sequence past 63 bits, RFC 7162 §7) is not
    carried out, and so enables nothing."""
    await three_messages(world)
    async with world.logged_in() as client:
        await client.select()
        await client.converse(r"""
            C: b1 FETCH 1 (FLAGS) (CHANGEDSINCE 9223372036854775808)
            S: b1 BAD *
            C: b2 STORE 1 (UNCHANGEDSINCE 18446744073709551615) +FLAGS (\Seen)
            S: b2 BAD *
            C: b3 SEARCH MODSEQ 9223372036854775808
            S: b3 BAD *
            C: b4 FETCH 1 (FLAGS MODSEQ (1))
            S: b4 BAD *
            C: b5 FETCH 1 (FLAGS)
            S: * 1 FETCH (FLAGS ())
            S: b5 OK FETCH completed
        """)
