"""Local delivery: the queue runner that puts accepted mail into mailboxes.

Owns what happens to a queued message's recipients on this host: each one is
routed again with the current tables (``Directory.route``, the one routing
decision), each local mailbox it resolves to gets the message with
``Return-Path:`` and ``Delivered-To:`` prepended (RFC 5321 §4.4), and the
recipient's state in the queue is updated. The queue file goes only when
every recipient is final (DESIGN.md §5: at-least-once).

Rules:
- Loops are refused, not delivered: more than ``loop_received_limit``
  ``Received:`` headers (Postfix ``hopcount_limit``) or a ``Delivered-To:``
  naming the mailbox already (Postfix local(8)) fail that delivery with
  ``554 5.4.6``.
- A mailbox that cannot take the message now (a store error) defers the
  recipient with the retry schedule; a routing error fails it.
- An alias that expands to addresses on other hosts is forwarded: the
  message is queued again for those addresses (as Postfix's local(8)
  re-submits forwarded mail), and the original recipient is done.
- A recipient whose own domain is remote waits in the queue for remote
  delivery (deferred, visible with ``postoffice queue list``).
- Each mailbox copy carries a key (queue id and original recipient) that the
  store records with it: an attempt repeated because the server died after
  the delivery and before the queue file went is recognised and not made
  again (logged ``already delivered before a restart``).
- One synchronous call per mailbox delivery (``store.cache.StoreCache``: on
  the event loop for Maildir, in a worker thread for mbox): the message's
  head is read there for the loop check (once per message), then the same
  reader delivers it; user stores stay open across deliveries
  and ``drain()`` closes them.
- ``|program`` and ``/file`` targets (only ever produced when the operator
  enabled them) are deferred with a clear reply: this version cannot run
  them, and deferring keeps the mail rather than losing it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace

from postoffice.core.address import Address
from postoffice.core.clock import Clock
from postoffice.core.envelope import Envelope, EnvelopeRecipient, OriginalRecipient
from postoffice.core.errors import PostofficeError
from postoffice.core.maillog import log_delivery, log_event
from postoffice.core.reply import Reply
from postoffice.directory.directory import Directory
from postoffice.directory.routing import (
    NULL_SENDER,
    FileDelivery,
    LocalDelivery,
    ProgramDelivery,
    RemoteDelivery,
)
from postoffice.mime.trace import (
    MAX_TRACE_SCAN,
    TraceSummary,
    delivered_to_header,
    return_path_header,
    scan_trace,
)
from postoffice.queue import (
    DEFAULT_POLICY,
    DataReader,
    Queue,
    QueueEntry,
    QueueError,
    RecipientState,
    RecipientStatus,
    RetryPolicy,
    next_attempt,
)
from postoffice.store import StoreFactory
from postoffice.store.cache import Mailbox, StoreCache

COMPONENT = "local"
LOOP_HOPS = Reply(554, "5.4.6", "Too many hops: mail forwarding loop")
LOOP_DELIVERED_TO = Reply(554, "5.4.6", "Mail forwarding loop: already delivered to this mailbox")
MAILBOX_UNAVAILABLE = Reply(451, "4.2.0", "Mailbox temporarily unavailable")
AWAITING_REMOTE = Reply(451, "4.4.1", "Queued for delivery to a remote host")
TARGET_NOT_AVAILABLE = Reply(451, "4.3.0", "Program and file delivery are not available here")
DELIVERED = Reply(250, "2.0.0", "Delivered")
ALREADY_DELIVERED = Reply(250, "2.0.0", "already delivered before a restart")
FORWARDED = Reply(250, "2.1.5", "Forwarded")
DISCARDED = Reply(250, "2.0.0", "Discarded by the access table")


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
class _Trace:
    """What the deliveries of one attempt share: the message's trace summary, once
    a delivery has read its head, and whether the attempt may repeat an earlier one."""

    summary: TraceSummary | None = None
    repeated: bool = True


@dataclass
class _Outcome:
    """What happened to one queued recipient in this attempt."""

    status: RecipientStatus
    forwards: list[EnvelopeRecipient]


class LocalDeliveryAgent:
    """Delivers queued messages to local mailboxes and runs as the queue's runner."""

    def __init__(
        self,
        *,
        queue: Queue,
        directory: Directory,
        stores: StoreFactory,
        clock: Clock,
        loop_received_limit: int = 50,
        retry_policy: RetryPolicy = DEFAULT_POLICY,
        concurrency: int = 8,
        rescan_interval: float = 60.0,
    ):
        self.queue = queue
        self.directory = directory
        self.stores = stores
        # User stores stay open across deliveries (closed when idle and by drain()).
        self.open_stores = StoreCache(stores)
        self.clock = clock
        self.loop_received_limit = loop_received_limit
        self.retry_policy = retry_policy
        self.rescan_interval = rescan_interval
        self._slots = asyncio.Semaphore(concurrency)
        self._in_flight: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()

    # -- the runner ---------------------------------------------------------------

    def notice(self, entry: QueueEntry) -> None:
        """Queue listener: a message was committed; deliver it now."""
        self._start(entry.id, fresh=True)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver what is due now, then whatever arrives or falls due, until ``stop``."""
        while not stop.is_set():
            for queue_id in await self.queue.pending(self.clock.now()):
                self._start(queue_id)
            stopping = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait({stopping}, timeout=self.rescan_interval)
            finally:
                stopping.cancel()
        await self.drain()

    async def drain(self) -> None:
        """Wait for the deliveries in progress, then close the stores they kept open.

        The agent stays usable: a later delivery opens its store again.
        """
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.open_stores.close()

    def _start(self, queue_id: str, *, fresh: bool = False) -> None:
        if queue_id in self._in_flight:
            return
        self._in_flight.add(queue_id)
        task = asyncio.ensure_future(self._guarded(queue_id, fresh))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, queue_id: str, fresh: bool) -> None:
        try:
            async with self._slots:
                await self.deliver(queue_id, fresh=fresh)
        except (PostofficeError, OSError) as exc:
            log_event(COMPONENT, f"{queue_id}: delivery attempt failed: {exc}", level=logging.ERROR)
        finally:
            self._in_flight.discard(queue_id)

    # -- one message --------------------------------------------------------------

    async def deliver(self, queue_id: str, *, fresh: bool = False) -> None:
        """One delivery attempt for every recipient of ``queue_id`` that is not final.

        The attempt holds the queue's claim on the message, so no other
        worker process delivers it meanwhile; a message claimed elsewhere (or
        gone) is left alone: whoever holds it finishes it, or a later scan
        finds it again. ``fresh``: this process committed it a moment ago, so
        no earlier attempt can have delivered it (no look on disk for one).
        """
        entry = await self.queue.claim(queue_id)
        if entry is None:
            return
        try:
            if not entry.held:
                await self._attempt(entry, _Trace(repeated=not fresh))
        finally:
            self.queue.end_claim(queue_id)

    async def _attempt(self, entry: QueueEntry, trace: _Trace) -> None:
        updates: dict[int, RecipientStatus] = {}
        forwards: list[EnvelopeRecipient] = []
        now = self.clock.now()
        for queued in entry.recipients:
            if queued.status.state in (RecipientState.DELIVERED, RecipientState.FAILED):
                continue
            due = queued.status.next_attempt
            if due is not None and due > now:
                continue
            outcome = await self._deliver_recipient(entry, queued.recipient, queued.status, trace)
            updates[queued.index] = outcome.status
            forwards.extend(outcome.forwards)
        if forwards:
            await self._forward(entry, forwards)
        if updates:
            await self.queue.finish(entry.id, updates)
        elif entry.is_complete:
            await self.queue.remove(entry.id)

    async def _deliver_recipient(
        self,
        entry: QueueEntry,
        recipient: EnvelopeRecipient,
        status: RecipientStatus,
        trace: _Trace,
    ) -> _Outcome:
        sender = entry.envelope.sender
        result = self.directory.route(
            recipient.address, sender=NULL_SENDER if sender is None else sender
        )
        if result.error is not None:
            self._log(entry, recipient.address, None, result.error, "bounced")
            return _Outcome(self._failed(result.error), [])
        if result.discard:
            self._log(entry, recipient.address, None, DISCARDED, "sent")
            return _Outcome(self._delivered(DISCARDED), [])
        temporary: Reply | None = None
        permanent: Reply | None = None
        forwards: list[EnvelopeRecipient] = []
        for target in result.deliveries:
            reply = await self._deliver_target(entry, recipient, target, trace, forwards)
            if reply.is_temporary:
                temporary = temporary or reply
            elif reply.is_permanent:
                permanent = permanent or reply
        for failure in result.failures:
            log_event(COMPONENT, f"{entry.id}: {failure.target}: {failure.reply}")
        if temporary is not None:
            return _Outcome(self._deferred(status, entry, temporary), forwards)
        if permanent is not None and len(result.deliveries) == 1:
            return _Outcome(self._failed(permanent), forwards)
        return _Outcome(self._delivered(FORWARDED if forwards else DELIVERED), forwards)

    async def _deliver_target(
        self,
        entry: QueueEntry,
        recipient: EnvelopeRecipient,
        target: LocalDelivery | RemoteDelivery | ProgramDelivery | FileDelivery,
        trace: _Trace,
        forwards: list[EnvelopeRecipient],
    ) -> Reply:
        if isinstance(target, LocalDelivery):
            # The mailbox by its canonical name, whatever case the sender wrote.
            account = Address(target.account.local_key, target.account.domain)
            return await self._to_mailbox(entry, recipient.address, account, trace)
        if isinstance(target, RemoteDelivery):
            if target.address.key == recipient.address.key:
                self._log(entry, target.address, None, AWAITING_REMOTE, "deferred")
                return AWAITING_REMOTE
            orcpt = recipient.orcpt or OriginalRecipient("rfc822", str(recipient.address))
            forwards.append(EnvelopeRecipient(target.address, recipient.notify, orcpt))
            return FORWARDED
        self._log(entry, recipient.address, None, TARGET_NOT_AVAILABLE, "deferred")
        return TARGET_NOT_AVAILABLE

    async def _to_mailbox(
        self, entry: QueueEntry, original: Address, account: Address, trace: _Trace
    ) -> Reply:
        known = None if trace.summary is None else self._loop(trace.summary, account)
        if known is not None:
            self._log(entry, account, original, known, "bounced")
            return known
        prefix = return_path_header(entry.envelope.sender) + delivered_to_header(account)
        sender = entry.envelope.sender_text

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
                source = PrefixedSource(prefix + head, reader)
                uid = mailbox.deliver(source, sender, key, repeated=trace.repeated)
                return None if uid is not None else ALREADY_DELIVERED
            finally:
                reader.close()

        # The mailbox keeps this copy's name: an attempt repeated after a crash
        # between the delivery and the queue's removal does not deliver twice.
        key = f"{entry.id}:{original.key}"
        try:
            refused = await self.open_stores.run(account, job)
        except (PostofficeError, OSError) as exc:
            reply = replace(MAILBOX_UNAVAILABLE, text=f"Mailbox temporarily unavailable: {exc}")
            self._log(entry, account, original, reply, "deferred")
            return reply
        if refused is ALREADY_DELIVERED:
            self._log(entry, account, original, refused, "sent")
            return DELIVERED
        if refused is not None:
            self._log(entry, account, original, refused, "bounced")
            return refused
        fmt = self.stores.layout.format
        self._log(entry, account, original, replace(DELIVERED, text=f"delivered to {fmt}"), "sent")
        return DELIVERED

    def _loop(self, trace: TraceSummary, account: Address) -> Reply | None:
        """The reply refusing a mail loop to ``account``, or None."""
        if trace.received_count > self.loop_received_limit:
            return LOOP_HOPS
        if account.key in trace.delivered_to:
            return LOOP_DELIVERED_TO
        return None

    async def _forward(self, entry: QueueEntry, recipients: Iterable[EnvelopeRecipient]) -> None:
        """Queue the message again for the remote addresses an alias expanded to."""
        unique = {r.address.key: r for r in recipients}
        envelope: Envelope = replace(entry.envelope, recipients=tuple(unique.values()))
        reader = await self.queue.open_data(entry.id)
        try:
            async with self.queue.begin(envelope) as incoming:
                while chunk := await asyncio.to_thread(reader.read, 1 << 16):
                    await incoming.write(chunk)
                new_id = await incoming.commit()
        except QueueError as exc:
            log_event(COMPONENT, f"{entry.id}: forwarding failed: {exc}", level=logging.ERROR)
            raise
        finally:
            reader.close()
        log_event(COMPONENT, f"{entry.id}: forwarded as {new_id} to {len(unique)} recipient(s)")

    # -- statuses and log lines -------------------------------------------------

    def _delivered(self, reply: Reply) -> RecipientStatus:
        return RecipientStatus.delivered(str(reply), at=self.clock.now())

    def _failed(self, reply: Reply) -> RecipientStatus:
        return RecipientStatus.failed(str(reply), at=self.clock.now())

    def _deferred(
        self, status: RecipientStatus, entry: QueueEntry, reply: Reply
    ) -> RecipientStatus:
        now = self.clock.now()
        attempts = status.attempts + 1
        when = next_attempt(
            attempts,
            entry.arrival,
            now,
            self.retry_policy,
            null_sender=entry.envelope.sender is None,
        )
        if when is None:
            expired = Reply(reply.code + 100, "5.4.7", f"Delivery time expired: {reply.text}")
            return RecipientStatus.failed(str(expired), at=now)
        return RecipientStatus.deferred(str(reply), at=now, attempts=attempts, next_attempt=when)

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
