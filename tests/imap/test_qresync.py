"""QRESYNC (RFC 7162 §3.2) over a real session, on Maildir and mbox: ENABLE QRESYNC,
SELECT/EXAMINE with the QRESYNC parameter, VANISHED in place of EXPUNGE, UID
FETCH ... (CHANGEDSINCE m VANISHED), and the BAD answers. MODSEQ arithmetic as
in ``condstore_world``: UIDs 1, 2, 3 arrive with MODSEQs 1, 2, 3."""

from __future__ import annotations

import pytest

from postoffice.store import expunged

from .condstore_world import change_flags, selected, three_messages
from .imap_harness import ImapWorld


async def _uidvalidity(world: ImapWorld) -> int:
    async with world.store() as store:
        return (await store.status("INBOX")).uidvalidity


ENABLE = """
    C: q0 ENABLE QRESYNC
    S: * ENABLED QRESYNC
    S: q0 OK ENABLE completed
"""


async def test_a_client_that_comes_back_ends_with_the_other_sessions_view(
    world: ImapWorld,
) -> None:
    """The resynchronisation of RFC 7162 §3.2.5: A remembers UIDVALIDITY,
    HIGHESTMODSEQ and its UIDs and leaves; B expunges two messages and flags the
    third; A's SELECT (QRESYNC ...) tells it exactly that, and nothing more."""
    await three_messages(world)
    validity = await _uidvalidity(world)
    async with world.logged_in() as a:
        await a.converse(f"""
            {ENABLE}
            C: a1 SELECT INBOX
            {selected()}
            S: * OK [HIGHESTMODSEQ 3] Highest
            S: a1 OK [READ-WRITE] SELECT completed
            C: a2 LOGOUT
            S: * BYE *
            S: a2 OK LOGOUT completed
        """)
    async with world.logged_in() as b:
        await b.converse(rf"""
            {ENABLE}
            C: b1 SELECT INBOX
            {selected()}
            S: * OK [HIGHESTMODSEQ 3] Highest
            S: b1 OK [READ-WRITE] SELECT completed
            C: b2 UID STORE 1,3 +FLAGS.SILENT (\Deleted)
            S: * 1 FETCH (UID 1 MODSEQ (4))
            S: * 3 FETCH (UID 3 MODSEQ (5))
            S: b2 OK UID STORE completed
            C: b3 EXPUNGE
            S: * VANISHED 1,3
            S: b3 OK [HIGHESTMODSEQ 7] EXPUNGE completed
            C: b4 UID STORE 2 +FLAGS.SILENT (\Flagged)
            S: * 1 FETCH (UID 2 MODSEQ (8))
            S: b4 OK UID STORE completed
        """)
    async with world.logged_in() as a:
        await a.converse(rf"""
            {ENABLE}
            C: a3 SELECT INBOX (QRESYNC ({validity} 3 1:3))
            {selected(1)}
            S: * OK [HIGHESTMODSEQ 8] Highest
            S: * VANISHED (EARLIER) 1,3
            S: * 1 FETCH (UID 2 MODSEQ (8) FLAGS (\Flagged))
            S: a3 OK [READ-WRITE] SELECT completed
            C: a4 EXAMINE INBOX (QRESYNC ({validity} 3))
            S: * OK [CLOSED] *
            S: * 1 EXISTS
            S: * 0 RECENT
            S: * FLAGS *
            S: * OK [PERMANENTFLAGS ()] *
            S: * OK [UNSEEN 1] *
            S: * OK [UIDVALIDITY {validity}] *
            S: * OK [UIDNEXT 4] *
            S: * OK [HIGHESTMODSEQ 8] Highest
            S: * VANISHED (EARLIER) 1,3
            S: * 1 FETCH (UID 2 MODSEQ (8) FLAGS (\Flagged))
            S: a4 OK [READ-ONLY] EXAMINE completed
            C: a5 SELECT INBOX (QRESYNC ({validity} 8 1:3 (1 2)))
            S: * OK [CLOSED] *
            {selected(1)}
            S: * OK [HIGHESTMODSEQ 8] Highest
            S: a5 OK [READ-WRITE] SELECT completed
            C: a6 SELECT INBOX (QRESYNC ({validity + 1} 3 1:3))
            S: * OK [CLOSED] *
            {selected(1)}
            S: * OK [HIGHESTMODSEQ 8] Highest
            S: a6 OK [READ-WRITE] SELECT completed
        """)


async def test_known_uids_limit_what_vanished_says(world: ImapWorld) -> None:
    """RFC 7162 §3.2.5: only UIDs of the known set are reported; seq-match-data is
    taken (§3.2.5.2)."""
    await three_messages(world)
    validity = await _uidvalidity(world)
    async with world.store() as store:
        await store.store_flags("INBOX", [1, 2], ["\\Deleted"])  # 4, 5
        await store.expunge("INBOX")  # 6, 7
    async with world.logged_in() as client:
        await client.converse(f"""
            {ENABLE}
            C: s1 SELECT INBOX (QRESYNC ({validity} 3 2:3 (1:2 1:2)))
            {selected(1, unseen=True)}
            S: * OK [HIGHESTMODSEQ 7] Highest
            S: * VANISHED (EARLIER) 2
            S: s1 OK [READ-WRITE] SELECT completed
        """)


async def test_forgotten_expunges_are_answered_with_every_missing_uid(
    world: ImapWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the store no longer reaches back to the client's MODSEQ, every known UID
    below UIDNEXT that names no message is reported (RFC 7162 §3.2.5.1 allows UIDs
    that were never there); above what the store remembers, the exact answer."""
    monkeypatch.setattr(expunged, "KEEP_PER_MAILBOX", 1)
    monkeypatch.setattr(expunged, "TRIM_EVERY", 1)  # the cap checked at every expunge
    await three_messages(world)
    validity = await _uidvalidity(world)
    async with world.store() as store:
        await store.store_flags("INBOX", [1, 2], ["\\Deleted"])  # 4, 5
        await store.expunge("INBOX", [1])  # 6
        await store.expunge("INBOX", [2])  # 7; the expunge of UID 1 is forgotten
    async with world.logged_in() as client:
        await client.converse(f"""
            {ENABLE}
            C: s1 SELECT INBOX (QRESYNC ({validity} 3 1:10))
            {selected(1)}
            S: * OK [HIGHESTMODSEQ 7] Highest
            S: * VANISHED (EARLIER) 1:2
            S: s1 OK [READ-WRITE] SELECT completed
            C: s2 SELECT INBOX (QRESYNC ({validity} 6 1:10))
            S: * OK [CLOSED] *
            {selected(1)}
            S: * OK [HIGHESTMODSEQ 7] Highest
            S: * VANISHED (EARLIER) 2
            S: s2 OK [READ-WRITE] SELECT completed
        """)


async def test_vanished_replaces_expunge_everywhere(world: ImapWorld) -> None:
    """RFC 7162 §3.2.10: once QRESYNC is enabled no EXPUNGE is sent: UID EXPUNGE,
    MOVE, another session's expunge (after a command and while idling) all give
    VANISHED, which lowers the client's message count."""
    await world.deliver(*([b"Subject: m\r\n\r\nbody\r\n"] * 6))
    async with world.logged_in() as client:
        await client.converse(rf"""
            {ENABLE}
            C: v1 SELECT INBOX
            {selected(6, 7)}
            S: * OK [HIGHESTMODSEQ 6] Highest
            S: v1 OK [READ-WRITE] SELECT completed
            C: v2 UID STORE 1:2 +FLAGS.SILENT (\Deleted)
            S: * 1 FETCH (UID 1 MODSEQ (7))
            S: * 2 FETCH (UID 2 MODSEQ (8))
            S: v2 OK UID STORE completed
            C: v3 UID EXPUNGE 1:2
            S: * VANISHED 1:2
            S: v3 OK [HIGHESTMODSEQ 10] UID EXPUNGE completed
            C: v4 UID MOVE 3 Trash
            S: * OK [COPYUID *] *
            S: * VANISHED 3
            S: v4 OK UID MOVE completed
        """)
        async with world.store() as store:
            await store.store_flags("INBOX", [4], ["\\Deleted"])
            await store.expunge("INBOX")
        await client.converse(r"""
            C: v5 NOOP
            S: * VANISHED 4
            S: v5 OK NOOP completed
            C: v6 IDLE
            S: + idling
        """)
        async with world.store() as store:
            await store.move("INBOX", [5], "Trash")
        await client.converse(r"""
            S: * VANISHED 5
            C: DONE
            S: v6 OK IDLE terminated
            C: v7 FETCH 1 (UID)
            S: * 1 FETCH (UID 6)
            S: v7 OK FETCH completed
        """)


async def test_uid_fetch_changedsince_vanished(world: ImapWorld) -> None:
    """RFC 7162 §3.2.6: VANISHED (EARLIER) for the UIDs of the set expunged since the
    MODSEQ, before the FETCH responses of the messages changed since."""
    await three_messages(world)
    async with world.logged_in() as client:
        await client.converse(f"""
            {ENABLE}
            C: f1 SELECT INBOX
            {selected()}
            S: * OK [HIGHESTMODSEQ 3] Highest
            S: f1 OK [READ-WRITE] SELECT completed
        """)
        async with world.store() as store:
            await store.store_flags("INBOX", [1], ["\\Deleted"])  # 4
            await store.expunge("INBOX")  # 5
        await change_flags(world, [3], "\\Seen")  # 6
        await client.converse(r"""
            C: f2 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 3 VANISHED)
            S: * VANISHED 1
            S: * 2 FETCH (UID 3 MODSEQ (6) FLAGS (\Seen))
            S: f2 OK UID FETCH completed
            C: f3 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 3 VANISHED)
            S: * VANISHED (EARLIER) 1
            S: * 2 FETCH (UID 3 MODSEQ (6) FLAGS (\Seen))
            S: f3 OK UID FETCH completed
            C: f4 UID FETCH 2:3 (FLAGS) (CHANGEDSINCE 5 VANISHED)
            S: * 2 FETCH (UID 3 MODSEQ (6) FLAGS (\Seen))
            S: f4 OK UID FETCH completed
        """)


async def test_bad_uses_of_qresync(world: ImapWorld) -> None:
    """RFC 7162 §3.2.5 and §3.2.6: the QRESYNC parameter and the VANISHED modifier
    need ENABLE QRESYNC first; VANISHED needs CHANGEDSINCE and UID FETCH."""
    await three_messages(world)
    async with world.logged_in() as client:
        await client.converse("""
            C: x1 SELECT INBOX (QRESYNC (1 1))
            S: x1 BAD *
            C: x2 SELECT INBOX
            S: * 3 EXISTS
            S: * 0 RECENT
            S: * FLAGS *
            S: * OK [PERMANENTFLAGS *] *
            S: * OK [UNSEEN 1] *
            S: * OK [UIDVALIDITY *] *
            S: * OK [UIDNEXT 4] *
            S: x2 OK [READ-WRITE] SELECT completed
            C: x3 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)
            S: x3 BAD *
            C: x4 UID FETCH 1:* (FLAGS) (VANISHED)
            S: x4 BAD *
            C: x5 FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)
            S: x5 BAD *
            C: x6 SELECT INBOX (QRESYNC (1 1 1:* ))
            S: x6 BAD *
        """)


async def test_an_expunge_held_back_keeps_the_resync_point_below_it(world: ImapWorld) -> None:
    """No VANISHED while answering FETCH by number (RFC 9051 §7.5.1), but a newer
    MODSEQ goes out with it: the session then says a HIGHESTMODSEQ from before the
    held-back expunge, so a client that disconnects now still hears of it when it
    resynchronises (RFC 7162 §3.2.10, RFC 5162 erratum 1810)."""
    await three_messages(world)
    async with world.logged_in() as a, world.logged_in() as b:
        for session, tag in ((a, "a"), (b, "b")):
            await session.converse(f"""
                {ENABLE.replace("q0", tag + "0")}
                C: {tag}1 SELECT INBOX
                {selected()}
                S: * OK [HIGHESTMODSEQ 3] Highest
                S: {tag}1 OK [READ-WRITE] SELECT completed
            """)
        await b.converse(r"""
            C: b2 UID STORE 1 +FLAGS.SILENT (\Deleted)
            S: * 1 FETCH (UID 1 MODSEQ (4))
            S: b2 OK UID STORE completed
            C: b3 EXPUNGE
            S: * VANISHED 1
            S: b3 OK [HIGHESTMODSEQ 5] EXPUNGE completed
            C: b4 UID STORE 3 +FLAGS.SILENT (\Flagged)
            S: * 2 FETCH (UID 3 MODSEQ (6))
            S: b4 OK UID STORE completed
        """)
        await a.converse(r"""
            C: a2 FETCH 3 (FLAGS)
            S: * 3 FETCH (MODSEQ (3) FLAGS ())
            S: * 3 FETCH (UID 3 MODSEQ (6) FLAGS (\Flagged))
            S: * OK [HIGHESTMODSEQ 3] Highest
            S: a2 OK FETCH completed
            C: a3 NOOP
            S: * VANISHED 1
            S: a3 OK NOOP completed
        """)
