"""What IMAP command handlers share: the service's context, one session's state, a reply.

What this module owns: ``ImapContext`` (what every session of one service
shares: accounts, stores, the login penalty, TLS, limits, the structure
cache), ``SessionState`` (one session: its connection object, its user's
store, its selected mailbox, what the client enabled), ``Reply`` (the tagged
end of a command) and the translation of store errors to IMAP response
codes (RFC 5530), so the handlers in ``imap_mailboxes`` and
``imap_selected`` and the driver in ``imap_session`` agree on them.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from postoffice.core.errors import (
    MailboxExists,
    MailboxNameError,
    MailboxNotFound,
    MailboxNotPossible,
    StoreError,
)
from postoffice.directory.accounts import AccountDatabase
from postoffice.protocol.imap.connection import ImapServerConnection
from postoffice.server.imap_fetch import ContentLoader
from postoffice.server.imap_view import MailboxView
from postoffice.server.login_penalty import LoginPenalty
from postoffice.server.store_pool import StorePool
from postoffice.store import StoreFactory
from postoffice.store.service import FileMailStore


class Reply(NamedTuple):
    """The tagged response that ends a command."""

    status: str  # OK, NO or BAD
    text: str
    code: str | None = None


@dataclass(frozen=True)
class ImapContext:
    """What every session of one service shares."""

    accounts: AccountDatabase
    stores: StoreFactory
    penalty: LoginPenalty
    tls_context: ssl.SSLContext | None
    primary_domain: str
    hostname: str
    idle_timeout: float
    append_limit: int
    contents: ContentLoader = field(default_factory=ContentLoader)
    idle_check_interval: float = 30.0  # IDLE re-reads the mailbox at least this often
    # (user, mailbox) -> time.monotonic() of the last look at the disk by any session
    disk_checks: dict[tuple[str, str], float] = field(default_factory=dict)
    pool: StorePool = None  # type: ignore[assignment]  # made from ``stores`` if not given

    def __post_init__(self) -> None:
        if self.pool is None:
            object.__setattr__(self, "pool", StorePool(self.stores))


async def _no_flush() -> None:
    return None


@dataclass
class SessionState:
    """One session, as the handlers see it. ``flush`` writes out what the
    connection holds (long FETCH answers call it as they go)."""

    conn: ImapServerConnection
    ctx: ImapContext
    flush: Callable[[], Awaitable[None]] = _no_flush
    user: str | None = None
    store: FileMailStore | None = None
    view: MailboxView | None = None
    rev2: bool = False  # ENABLE IMAP4rev2 (RFC 9051 §6.3.1)
    condstore: bool = False  # a CONDSTORE enabling command was given (RFC 7162 §3.1)
    qresync: bool = False  # ENABLE QRESYNC (RFC 7162 §3.2.3): VANISHED, not EXPUNGE
    saved: list[int] = field(default_factory=list)  # $ (RFC 5182), as UIDs
    enabled: set[str] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=dict)  # for the logout maillog line

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n


def store_failure(exc: Exception, *, missing_code: str = "NONEXISTENT") -> Reply:
    """A store error as a tagged NO with the RFC 5530 code that fits."""
    if isinstance(exc, MailboxNotFound):
        return Reply("NO", "Mailbox doesn't exist", missing_code)
    if isinstance(exc, MailboxExists):
        return Reply("NO", "Mailbox already exists", "ALREADYEXISTS")
    if isinstance(exc, MailboxNotPossible):
        return Reply("NO", str(exc), "CANNOT")
    if isinstance(exc, MailboxNameError):
        return Reply("NO", f"Invalid mailbox name: {exc}", "CANNOT")
    if isinstance(exc, StoreError):
        return Reply("NO", str(exc) or "Operation failed")
    return Reply("NO", "Operation failed; try again later", "UNAVAILABLE")
