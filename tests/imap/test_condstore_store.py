"""CONDSTORE (RFC 7162 §3.1) over a real session, on Maildir and mbox: STORE
UNCHANGEDSINCE with [MODIFIED] (alone and against other sessions), SEARCH
MODSEQ with its (MODSEQ n) and ESEARCH MODSEQ, STATUS HIGHESTMODSEQ. The MODSEQ
arithmetic is explained in ``condstore_world``.
"""

from __future__ import annotations

from .condstore_world import SELECTED_3, change_flags, select_condstore, selected, three_messages
from .imap_harness import ImapWorld
from .messages import note

# -- STORE UNCHANGEDSINCE ----------------------------------------------------------------------


async def test_store_unchangedsince(world: ImapWorld) -> None:
    """RFC 7162 §3.1.3 (its examples 3, 4, 10): a message whose MODSEQ is above the
    value is left alone and named in [MODIFIED] (numbers for STORE), and told with
    its present flags; the others are changed, and their FETCH carries the new
    MODSEQ, even with .SILENT (without FLAGS then). UNCHANGEDSINCE 0 fails for
    every message. A STORE that changes nothing takes no MODSEQ (§3.1.11)."""
    await three_messages(world)
    async with world.logged_in() as client:
        await select_condstore(client, 3, "s0")
        await client.converse(r"""
            C: a103 UID STORE 1:3 (UNCHANGEDSINCE 3) +FLAGS.SILENT (\Answered)
            S: * 1 FETCH (UID 1 MODSEQ (4))
            S: * 2 FETCH (UID 2 MODSEQ (5))
            S: * 3 FETCH (UID 3 MODSEQ (6))
            S: a103 OK UID STORE completed
        """)
        await change_flags(world, [2], "\\Flagged")  # MODSEQ 7, by someone else
        await client.converse(r"""
            C: d105 STORE 1:3 (UNCHANGEDSINCE 6) +FLAGS (\Seen)
            S: * 1 FETCH (UID 1 MODSEQ (8) FLAGS (\Answered \Seen))
            S: * 2 FETCH (UID 2 MODSEQ (7) FLAGS (\Answered \Flagged))
            S: * 3 FETCH (UID 3 MODSEQ (9) FLAGS (\Answered \Seen))
            S: d105 OK [MODIFIED 2] Conditional STORE failed for some messages
            C: d106 STORE 1:3 (UNCHANGEDSINCE 0) FLAGS ()
            S: * 1 FETCH (UID 1 MODSEQ (8) FLAGS (\Answered \Seen))
            S: * 2 FETCH (UID 2 MODSEQ (7) FLAGS (\Answered \Flagged))
            S: * 3 FETCH (UID 3 MODSEQ (9) FLAGS (\Answered \Seen))
            S: d106 OK [MODIFIED 1:3] Conditional STORE failed for some messages
            C: d107 STORE 2 (UNCHANGEDSINCE 7) -FLAGS.SILENT (\Flagged)
            S: * 2 FETCH (UID 2 MODSEQ (10))
            S: d107 OK STORE completed
            C: a104 STORE * (UNCHANGEDSINCE 10) +FLAGS.SILENT (\Answered)
            S: * 3 FETCH (UID 3 MODSEQ (9))
            S: a104 OK STORE completed
            C: d108 NOOP
            S: d108 OK NOOP completed
            C: d109 STORE 1 (UNCHANGEDSINCE 9223372036854775808) +FLAGS (\Draft)
            S: d109 BAD *
        """)
    async with world.store() as store:
        infos = {m.uid: (m.flags, m.modseq) for m in await store.messages("INBOX")}
    assert infos == {
        1: ({"\\Answered", "\\Seen"}, 8),
        2: ({"\\Answered"}, 10),
        3: ({"\\Answered", "\\Seen"}, 9),
    }


async def test_plain_store_once_condstore_is_on(world: ImapWorld) -> None:
    """RFC 7162 §3.1: a STORE without UNCHANGEDSINCE answers with MODSEQ too once
    CONDSTORE is on; with .SILENT the FETCH still comes, with MODSEQ alone, so the
    client's copy of the MODSEQs stays current (as §3.1.3 asks of a conditional
    STORE)."""
    await three_messages(world)
    async with world.logged_in() as client:
        await select_condstore(client, 3, "p0")
        await client.converse(r"""
            C: p1 STORE 1 +FLAGS (\Seen)
            S: * 1 FETCH (UID 1 MODSEQ (4) FLAGS (\Seen))
            S: p1 OK STORE completed
            C: p2 STORE 2 +FLAGS.SILENT (\Seen)
            S: * 2 FETCH (UID 2 MODSEQ (5))
            S: p2 OK STORE completed
            C: p3 UID STORE 3 FLAGS ($Work)
            S: * 3 FETCH (UID 3 MODSEQ (6) FLAGS ($Work))
            S: p3 OK UID STORE completed
        """)


async def test_uid_store_unchangedsince_names_uids(world: ImapWorld) -> None:
    """RFC 7162 §3.1.3: [MODIFIED] holds UIDs for UID STORE, numbers for STORE (here
    they differ: UID 1 was expunged, so UIDs 2, 3, 4 are messages 1, 2, 3)."""
    await world.deliver(note(1), note(2), note(3), note(4))  # MODSEQs 1-4
    async with world.store() as store:
        await store.store_flags("INBOX", [1], ["\\Deleted"])  # 5
        await store.expunge("INBOX")  # 6
    async with world.logged_in() as client:
        await select_condstore(client, 6, "u0", answer=selected(uidnext=5))
        await change_flags(world, [3], "\\Flagged")  # 7
        await client.converse(r"""
            C: u1 UID STORE 2:4 (UNCHANGEDSINCE 6) +FLAGS.SILENT (\Seen)
            S: * 1 FETCH (UID 2 MODSEQ (8))
            S: * 2 FETCH (UID 3 MODSEQ (7) FLAGS (\Flagged))
            S: * 3 FETCH (UID 4 MODSEQ (9))
            S: u1 OK [MODIFIED 3] Conditional UID STORE failed for some messages
            C: u2 STORE 1:3 (UNCHANGEDSINCE 8) +FLAGS.SILENT (\Draft)
            S: * 1 FETCH (UID 2 MODSEQ (10))
            S: * 2 FETCH (UID 3 MODSEQ (11))
            S: * 3 FETCH (UID 4 MODSEQ (9) FLAGS (\Seen))
            S: u2 OK [MODIFIED 3] Conditional STORE failed for some messages
            C: u3 UID STORE 4 (UNCHANGEDSINCE 9) FLAGS (\Seen \Draft)
            S: * 3 FETCH (UID 4 MODSEQ (12) FLAGS (\Draft \Seen))
            S: u3 OK UID STORE completed
        """)


async def test_a_conditional_store_after_a_change_in_another_session(world: ImapWorld) -> None:
    """RFC 7162 §3.1.3 across sessions: B changes message 2 after A learned the
    MODSEQs; A's STORE (UNCHANGEDSINCE) changes messages 1 and 3 and reports exactly
    2 as MODIFIED; A's retry with the MODSEQ now known passes (example 9's flow). B,
    CONDSTORE-aware, is told A's changes with UID and MODSEQ; C, which never
    enabled CONDSTORE, the same without MODSEQ."""
    await three_messages(world)
    async with (
        world.logged_in() as a,
        world.logged_in() as b,
        world.logged_in() as c,
    ):
        await c.select()
        await select_condstore(a, 3, "a0")
        await select_condstore(b, 3, "b0")
        await a.converse("""
            C: a1 FETCH 1:3 (MODSEQ)
            S: * 1 FETCH (MODSEQ (1))
            S: * 2 FETCH (MODSEQ (2))
            S: * 3 FETCH (MODSEQ (3))
            S: a1 OK FETCH completed
        """)
        await b.converse(r"""
            C: b1 STORE 2 +FLAGS (\Flagged)
            S: * 2 FETCH (UID 2 MODSEQ (4) FLAGS (\Flagged))
            S: b1 OK STORE completed
        """)
        await a.converse(r"""
            C: a2 STORE 1:3 (UNCHANGEDSINCE 3) +FLAGS (\Seen)
            S: * 1 FETCH (UID 1 MODSEQ (5) FLAGS (\Seen))
            S: * 2 FETCH (UID 2 MODSEQ (4) FLAGS (\Flagged))
            S: * 3 FETCH (UID 3 MODSEQ (6) FLAGS (\Seen))
            S: a2 OK [MODIFIED 2] Conditional STORE failed for some messages
            C: a3 STORE 2 (UNCHANGEDSINCE 4) +FLAGS (\Seen)
            S: * 2 FETCH (UID 2 MODSEQ (7) FLAGS (\Flagged \Seen))
            S: a3 OK STORE completed
            C: a4 NOOP
            S: a4 OK NOOP completed
        """)
        await b.converse(r"""
            C: b2 NOOP
            S: * 1 FETCH (UID 1 MODSEQ (5) FLAGS (\Seen))
            S: * 2 FETCH (UID 2 MODSEQ (7) FLAGS (\Flagged \Seen))
            S: * 3 FETCH (UID 3 MODSEQ (6) FLAGS (\Seen))
            S: b2 OK NOOP completed
        """)
        await c.converse(r"""
            C: c1 NOOP
            S: * 1 FETCH (UID 1 FLAGS (\Seen))
            S: * 2 FETCH (UID 2 FLAGS (\Flagged \Seen))
            S: * 3 FETCH (UID 3 FLAGS (\Seen))
            S: c1 OK NOOP completed
        """)


async def test_a_message_expunged_elsewhere_fails_the_test(world: ImapWorld) -> None:
    """A message another session expunged keeps its number until it may be told
    (RFC 9051 §7.5.1: not during STORE); a conditional STORE names it MODIFIED,
    and the EXPUNGE comes at the NOOP."""
    await three_messages(world)
    async with world.logged_in() as client:
        await select_condstore(client, 3, "x0")
        async with world.store() as store:
            await store.store_flags("INBOX", [2], ["\\Deleted"])  # 4
            await store.expunge("INBOX")  # 5
        await client.converse(r"""
            C: x1 STORE 1:3 (UNCHANGEDSINCE 5) +FLAGS.SILENT (\Seen)
            S: * 1 FETCH (UID 1 MODSEQ (6))
            S: * 3 FETCH (UID 3 MODSEQ (7))
            S: x1 OK [MODIFIED 2] Conditional STORE failed for some messages
            C: x2 NOOP
            S: * 2 EXPUNGE
            S: x2 OK NOOP completed
        """)


# -- SEARCH MODSEQ ---------------------------------------------------------------------------


async def search_setup(world: ImapWorld) -> None:
    """Messages 1, 2, 3 with MODSEQs 1, 4 (\\Flagged), 5 (\\Seen)."""
    await three_messages(world)
    await change_flags(world, [2], "\\Flagged")
    await change_flags(world, [3], "\\Seen")


async def test_search_modseq(world: ImapWorld) -> None:
    """RFC 7162 §3.1.5 and §3.1.6 (examples 15, 16): MODSEQ n matches a MODSEQ of n or
    more, whatever flag entry it names (the server keeps one MODSEQ per message,
    which §3.1.5 allows); a non-empty answer ends with (MODSEQ highest found)."""
    await search_setup(world)
    async with world.logged_in() as client:
        await client.select()
        await client.converse(r"""
            C: s1 SEARCH MODSEQ 4
            S: * SEARCH 2 3 (MODSEQ 5)
            S: * OK [HIGHESTMODSEQ 5] Highest
            S: s1 OK SEARCH completed
            C: a UID SEARCH MODSEQ "/flags/\\draft" all 5
            S: * SEARCH 3 (MODSEQ 5)
            S: a OK UID SEARCH completed
            C: s3 SEARCH MODSEQ 6
            S: * SEARCH
            S: s3 OK SEARCH completed
            C: t SEARCH OR NOT MODSEQ 5 LARGER 50000
            S: * SEARCH 1 2 (MODSEQ 4)
            S: t OK SEARCH completed
            C: s5 SEARCH MODSEQ "/flags/$Work" priv 0 UNSEEN
            S: * SEARCH 1 2 (MODSEQ 4)
            S: s5 OK SEARCH completed
            C: s6 SEARCH FLAGGED
            S: * SEARCH 2
            S: s6 OK SEARCH completed
            C: s7 SEARCH MODSEQ 9223372036854775808
            S: s7 BAD *
            C: s8 SEARCH MODSEQ "/flags/\\seen" 4
            S: s8 BAD *
        """)


async def test_esearch_modseq(world: ImapWorld) -> None:
    """RFC 7162 §3.1.10 with RFC 4731 §3.2: ESEARCH carries MODSEQ, the highest of the
    messages it returns: all found for ALL or COUNT, the MIN and/or MAX one alone
    otherwise; none when nothing was found; SAVE alone answers nothing."""
    await search_setup(world)
    async with world.logged_in() as client:
        await select_condstore(client, 5, "e0")
        await client.converse(r"""
            C: e1 SEARCH RETURN (MIN) MODSEQ 1
            S: * ESEARCH (TAG "e1") MIN 1 MODSEQ 1
            S: e1 OK SEARCH completed
            C: e2 SEARCH RETURN (MAX) MODSEQ 1
            S: * ESEARCH (TAG "e2") MAX 3 MODSEQ 5
            S: e2 OK SEARCH completed
            C: e3 SEARCH RETURN (MIN MAX) NOT MODSEQ 5
            S: * ESEARCH (TAG "e3") MIN 1 MAX 2 MODSEQ 4
            S: e3 OK SEARCH completed
            C: e4 UID SEARCH RETURN (COUNT) MODSEQ 2
            S: * ESEARCH (TAG "e4") UID COUNT 2 MODSEQ 5
            S: e4 OK UID SEARCH completed
            C: e5 SEARCH RETURN () MODSEQ 1
            S: * ESEARCH (TAG "e5") ALL 1:3 MODSEQ 5
            S: e5 OK SEARCH completed
            C: e6 SEARCH RETURN (COUNT) MODSEQ 6
            S: * ESEARCH (TAG "e6") COUNT 0
            S: e6 OK SEARCH completed
            C: e7 SEARCH RETURN (MIN) UNSEEN
            S: * ESEARCH (TAG "e7") MIN 1
            S: e7 OK SEARCH completed
            C: e8 SEARCH RETURN (SAVE) MODSEQ 5
            S: e8 OK SEARCH completed, result saved
            C: e9 FETCH $ (UID)
            S: * 3 FETCH (UID 3)
            S: e9 OK FETCH completed
        """)


async def test_imap4rev2_search_modseq_answers_with_esearch(world: ImapWorld) -> None:
    """RFC 9051 has no untagged SEARCH: an IMAP4rev2 client's SEARCH MODSEQ is
    answered by ESEARCH ALL with MODSEQ."""
    await search_setup(world)
    async with world.logged_in() as client:
        await client.command("r0 ENABLE IMAP4rev2")
        await client.select()
        await client.converse("""
            C: r1 SEARCH MODSEQ 4
            S: * ESEARCH (TAG "r1") ALL 2:3 MODSEQ 5
            S: * OK [HIGHESTMODSEQ 5] Highest
            S: r1 OK SEARCH completed
        """)


# -- STATUS HIGHESTMODSEQ ---------------------------------------------------------------------


async def test_status_highestmodseq(world: ImapWorld) -> None:
    """RFC 7162 §3.1.7 (its example 17): STATUS HIGHESTMODSEQ is the mailbox's value
    (1 for one that never had a message, not 0, which would mean "no MODSEQ");
    it is an enabling command, so the SELECT after it says HIGHESTMODSEQ; LIST
    RETURN (STATUS (...)) takes the item too (RFC 5819)."""
    await three_messages(world)
    await change_flags(world, [1], "\\Seen")  # MODSEQ 4
    async with world.logged_in() as client:
        await client.converse(f"""
            C: A042 STATUS INBOX (UIDNEXT MESSAGES HIGHESTMODSEQ)
            S: * STATUS "INBOX" (UIDNEXT 4 MESSAGES 3 HIGHESTMODSEQ 4)
            S: A042 OK STATUS completed
            C: t2 STATUS Drafts (HIGHESTMODSEQ)
            S: * STATUS "Drafts" (HIGHESTMODSEQ 1)
            S: t2 OK STATUS completed
            C: t3 SELECT INBOX
            {SELECTED_3}
            S: * OK [HIGHESTMODSEQ 4] Highest
            S: t3 OK [READ-WRITE] SELECT completed
            C: t4 LIST "" INBOX RETURN (STATUS (HIGHESTMODSEQ MESSAGES))
            S: * LIST (*) "/" *
            S: * STATUS "INBOX" (HIGHESTMODSEQ 4 MESSAGES 3)
            S: t4 OK LIST completed
            C: t5 LIST "" INBOX RETURN (STATUS (HIGHESTMODSEQ BLURDY))
            S: t5 BAD Unknown STATUS item BLURDY
        """)


async def test_status_highestmodseq_with_a_mailbox_selected(world: ImapWorld) -> None:
    """STATUS (HIGHESTMODSEQ) as the first enabling command while a mailbox is
    selected: the selected mailbox's HIGHESTMODSEQ follows."""
    await three_messages(world)
    await world.append("Drafts", note(1))
    async with world.logged_in() as client:
        await client.select()
        await client.converse("""
            C: t1 STATUS Drafts (HIGHESTMODSEQ)
            S: * STATUS "Drafts" (HIGHESTMODSEQ 1)
            S: * OK [HIGHESTMODSEQ 3] Highest
            S: t1 OK STATUS completed
            C: t2 STATUS INBOX (HIGHESTMODSEQ)
            S: * STATUS "INBOX" (HIGHESTMODSEQ 3)
            S: t2 OK STATUS completed
        """)
