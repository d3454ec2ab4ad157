"""What the CONDSTORE transcripts share (``test_condstore``, ``test_condstore_store``):
a mailbox of three messages with known MODSEQs, flag changes made through
another store, and the SELECT answers to expect.

MODSEQ values follow from the store: each arrival, flag change and expunge of
a mailbox takes the next one, from 1 (``MailStore`` docstring); a mailbox
that has had none shows HIGHESTMODSEQ 1 (``imap_view.shown_modseq``).
"""

from __future__ import annotations

from .imap_harness import ImapClient, ImapWorld
from .messages import MEETING, MIXED, SMALL


def selected(exists: int = 3, uidnext: int = 4, *, unseen: bool = True) -> str:
    """The untagged answer of a SELECT of INBOX, up to UIDNEXT."""
    return f"""
        S: * {exists} EXISTS
        S: * 0 RECENT
        S: * FLAGS *
        S: * OK [PERMANENTFLAGS *] *
        {"S: * OK [UNSEEN *] *" if unseen else ""}
        S: * OK [UIDVALIDITY *] *
        S: * OK [UIDNEXT {uidnext}] *
    """


SELECTED_3 = selected()


async def three_messages(world: ImapWorld) -> None:
    """INBOX with MEETING, MIXED, SMALL: UIDs 1, 2, 3 and MODSEQs 1, 2, 3."""
    await world.deliver(MEETING, MIXED, SMALL)


async def change_flags(world: ImapWorld, uids: list[int], *flags: str) -> None:
    """A flag change (system flags and keywords added) made through another store:
    another session's or another process's."""
    system = [flag for flag in flags if flag.startswith("\\")]
    keywords = [flag for flag in flags if not flag.startswith("\\")]
    async with world.store() as store:
        await store.store_flags("INBOX", uids, system, keywords)


async def select_condstore(
    client: ImapClient, highest: int, tag: str = "c0", *, answer: str = SELECTED_3
) -> None:
    await client.converse(
        f"""
        C: {tag} SELECT INBOX (CONDSTORE)
        {answer}
        S: * OK [HIGHESTMODSEQ {highest}] Highest
        S: {tag} OK [READ-WRITE] SELECT completed
        """
    )
