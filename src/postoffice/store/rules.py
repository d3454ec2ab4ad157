"""Pure rules of the store that need no disk: the mailbox listing and flag arithmetic.

Owns how the index's mailbox rows become the ``list_mailboxes`` answer
(parents that exist only because a child does are listed as not selectable,
IMAP ``\\Noselect``, RFC 3501 §7.2.2; INBOX first) and how STORE's modes
combine flags (RFC 3501 §6.4.6: FLAGS, +FLAGS, -FLAGS).
"""

from __future__ import annotations

from collections.abc import Iterable

from postoffice.store import names
from postoffice.store.api import FlagMode, MailboxInfo
from postoffice.store.convert import keywords_of
from postoffice.store.index import MailboxRow, MessageRow


def mailbox_listing(rows: Iterable[MailboxRow], subscribed: set[str]) -> list[MailboxInfo]:
    """Every mailbox and every implied parent, INBOX first, then by name."""
    real = {row.name: row for row in rows}
    every = set(real)
    for name in real:
        every.update(names.parent_names(name))
    result = []
    for name in sorted(every, key=lambda n: (n != names.INBOX, n)):
        row = real.get(name)
        result.append(
            MailboxInfo(
                name=name,
                special_use=row.special_use if row else None,
                subscribed=name in subscribed,
                has_children=any(names.is_inferior(other, name) for other in every),
                selectable=row is not None,
            )
        )
    return result


def combine_flags(
    row: MessageRow, bits: int, keywords: frozenset[str], mode: FlagMode
) -> tuple[int, frozenset[str]]:
    """The flags and keywords of ``row`` after a STORE in ``mode``."""
    present = keywords_of(row.keywords)
    if mode is FlagMode.ADD:
        return row.flags | bits, present | keywords
    if mode is FlagMode.REMOVE:
        return row.flags & ~bits, present - keywords
    return bits, keywords
