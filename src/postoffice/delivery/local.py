"""Local delivery: putting a queued message into a local mailbox.

Owns ``LocalDeliveryAgent.to_mailbox``: one copy of a queued message into one
account's mailbox, with ``Return-Path:`` and ``Delivered-To:`` prepended
(RFC 5321 §4.4). The queue runner (``delivery.runner``) decides which
recipients come here and records the reply this gives.

Rules:
- Loops are refused, not delivered: more than ``loop_received_limit``
  ``Received:`` headers (Postfix ``hopcount_limit``) or a ``Delivered-To:``
  naming the mailbox already (Postfix local(8)) fail that delivery with
  ``554 5.4.6``.
- A mailbox that cannot take the message now (a store error) gives a 4xx
  reply: the runner defers the recipient.
- With ``accounts``, a message that would take the account over its quota
  is not delivered: ``452 4.2.2`` (deferred) or, with ``over_quota_reject``,
  ``552 5.2.2`` (failed, so bounced) (``delivery.quota``); an account with
  no quota costs nothing more.
- Each mailbox copy carries a key (queue id and original recipient) that the
  store records with it: an attempt repeated because the server died after
  the delivery and before the queue file went is recognised and not made
  again (logged ``already delivered before a restart``).
- A Maildir copy (with the store's fsync on) is synced as part of a group:
  the store writes it without its own fsyncs, and the copy counts as
  delivered only after a file-system sync that started after it
  (``delivery.mailbox_sync``); mbox copies sync themselves under their lock.
- One synchronous call per mailbox delivery (``store.cache.StoreCache``: on
  the event loop for Maildir, in a worker thread for mbox): the message's
  head is read there for the loop check (once per message), then the same
  reader delivers it; user stores stay open across deliveries
  and ``close()`` closes them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from postoffice.core.address import Address
from postoffice.core.clock import Clock
from postoffice.core.errors import PostofficeError
from postoffice.core.maillog import log_delivery
from postoffice.core.quota import NO_QUOTA
from postoffice.core.reply import Reply
from postoffice.delivery.mailbox_sync import MailboxSync
from postoffice.delivery.quota import QuotaGuard
from postoffice.directory.accounts import AccountDatabase
from postoffice.mime.trace import (
    MAX_TRACE_SCAN,
    TraceSummary,
    delivered_to_header,
    return_path_header,
    scan_trace,
)
from postoffice.queue import DataReader, Queue, QueueEntry
from postoffice.store import StoreFactory
from postoffice.store.cache import Mailbox, StoreCache

COMPONENT = "local"
LOOP_HOPS = Reply(554, "5.4.6", "Too many hops: mail forwarding loop")
LOOP_DELIVERED_TO = Reply(554, "5.4.6", "Mail forwarding loop: already delivered to this mailbox")
MAILBOX_UNAVAILABLE = Reply(451, "4.2.0", "Mailbox temporarily unavailable")
DELIVERED = Reply(250, "2.0.0", "Delivered")
ALREADY_DELIVERED = Reply(250, "2.0.0", "already delivered before a restart")


class PrefixedSource:
    """A readable message: ``prefix`` octets, then everything ``body`` gives."""

    def __init__(self, prefix: bytes, body: DataReader):
        self._prefix = prefix
        self._body = body

    def read(self, size: int = -1, /) -> bytes:
        if self._prefix:
            if size < 0 or size >= len(self._prefix):
                head, self._prefix = self._prefix, b""
                rest = self._body.read(-1 if size < 0 else size - len(head))
                return head + rest
            head, self._prefix = self._prefix[:size], self._prefix[size:]
            return head
        return self._body.read(size)


@dataclass
class DeliveryTrace:
    """What the deliveries of one attempt share: the message's trace summary, once
    a delivery has read its head, and whether the attempt may repeat an earlier one."""

    summary: TraceSummary | None = None
    repeated: bool = True


class LocalDeliveryAgent:
    """Delivers queued messages into local mailboxes (see the module docstring)."""

    def __init__(
        self,
        *,
        queue: Queue,
        stores: StoreFactory,
        clock: Clock,
        loop_received_limit: int = 50,
        accounts: AccountDatabase | None = None,
        over_quota_reject: bool = False,
    ):
        self.queue = queue
        self.stores = stores
        # User stores stay open across deliveries (closed when idle and by close()).
        self.open_stores = StoreCache(stores)
        self.clock = clock
        self.loop_received_limit = loop_received_limit
        # Quotas are checked only with the account database (module docstring).
        self.quota: QuotaGuard | None = None
        if accounts is not None:
            self.quota = QuotaGuard(accounts, self.open_stores, reject=over_quota_reject)
        layout = stores.layout
        # Maildir copies share file-system syncs (module docstring); mbox
        # appends fsync under the mbox lock, and without fsync nothing syncs.
        self.mailbox_sync: MailboxSync | None = None
        if layout.fsync and layout.format == "maildir":
            self.mailbox_sync = MailboxSync()

    async def close(self) -> None:
        """Close the stores kept open; a later delivery opens its store again."""
        await self.open_stores.close()
        if self.mailbox_sync is not None:
            await self.mailbox_sync.close()
            self.mailbox_sync = MailboxSync()  # a later delivery syncs again

    async def to_mailbox(
        self, entry: QueueEntry, original: Address, account: Address, trace: DeliveryTrace
    ) -> Reply:
        """Deliver ``entry`` to ``account`` (for recipient ``original``); the reply."""
        known = None if trace.summary is None else self._loop(trace.summary, account)
        if known is not None:
            self._log(entry, account, original, known, "bounced")
            return known
        prefix = return_path_header(entry.envelope.sender) + delivered_to_header(account)
        sender = entry.envelope.sender_text
        quota = NO_QUOTA if self.quota is None else self.quota.quota(account)

        def job(mailbox: Mailbox) -> Reply | None:
            # One synchronous call: open the message, the loop check on its head
            # (read once per message, from the reader that then delivers it) and
            # the delivery.
            reader = self.queue.open_entry_data(entry)
            try:
                head = b""
                if trace.summary is None:
                    head = reader.read(MAX_TRACE_SCAN)
                    trace.summary = scan_trace(head)
                loop = self._loop(trace.summary, account)
                if loop is not None:
                    return loop
                if quota.limited and self.quota is not None:
                    full = self.quota.refusal_in(mailbox, quota, len(prefix) + entry.size)
                    if full is not None:
                        # A repeat after a crash whose copy is in (and filled) the
                        # mailbox: delivered, not refused (no bounce for it).
                        if trace.repeated and mailbox.delivered(key):
                            return ALREADY_DELIVERED
                        return full
                source = PrefixedSource(prefix + head, reader)
                uid = mailbox.deliver(
                    source, sender, key, repeated=trace.repeated, synced_later=synced_later
                )
                return None if uid is not None else ALREADY_DELIVERED
            finally:
                reader.close()

        # The mailbox keeps this copy's name: an attempt repeated after a crash
        # between the delivery and the queue's removal does not deliver twice.
        key = f"{entry.id}:{original.key}"
        synced_later = self.mailbox_sync is not None
        try:
            refused = await self.open_stores.run(account, job)
            if self.mailbox_sync is not None and refused in (None, ALREADY_DELIVERED):
                # Delivered, or found from an attempt before a crash: durable
                # only after this sync (a found copy may not have been synced).
                await self.mailbox_sync.sync(self._mail_dir(account))
        except (PostofficeError, OSError) as exc:
            reply = replace(MAILBOX_UNAVAILABLE, text=f"Mailbox temporarily unavailable: {exc}")
            self._log(entry, account, original, reply, "deferred")
            return reply
        if refused is ALREADY_DELIVERED:
            self._log(entry, account, original, refused, "sent")
            return DELIVERED
        if refused is not None:
            status = "deferred" if refused.is_temporary else "bounced"  # a full mailbox
            self._log(entry, account, original, refused, status)
            return refused
        fmt = self.stores.layout.format
        self._log(entry, account, original, replace(DELIVERED, text=f"delivered to {fmt}"), "sent")
        return DELIVERED

    def _mail_dir(self, account: Address) -> Path:
        return self.stores.layout.user(account).mail_dir

    def _loop(self, trace: TraceSummary, account: Address) -> Reply | None:
        """The reply refusing a mail loop to ``account``, or None."""
        if trace.received_count > self.loop_received_limit:
            return LOOP_HOPS
        if account.key in trace.delivered_to:
            return LOOP_DELIVERED_TO
        return None

    def _log(
        self,
        entry: QueueEntry,
        recipient: Address,
        original: Address | None,
        reply: Reply,
        status: str,
    ) -> None:
        log_delivery(
            COMPONENT,
            entry.id,
            recipient=str(recipient),
            orig_to=str(original) if original is not None else None,
            relay="local",
            delay=max(0.0, self.clock.now() - entry.arrival),
            dsn=reply.enhanced or "",
            status=status,
            detail=str(reply) if status != "sent" else reply.text,
        )
