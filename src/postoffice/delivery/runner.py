"""The queue runner: every attempt to deliver a queued message starts here.

Owns the loop that finds due messages (each commit at once, and a rescan of
the queue every ``rescan_interval`` for deferred mail), one attempt per
message under the queue's claim, and what an attempt decides per recipient:

- each recipient is routed again with the current tables
  (``Directory.route``, the one routing decision);
- local mailboxes get the message through ``LocalDeliveryAgent``;
- an alias that expands to addresses on other hosts is forwarded: the
  message is queued again for those addresses (as Postfix's local(8)
  re-submits forwarded mail), and the original recipient is done;
- a recipient whose own domain is remote goes to the ``RemoteDeliveryAgent``,
  all such recipients of one destination in one SMTP transaction; without a
  remote agent they wait in the queue, deferred;
- the outcome becomes the recipient's queue state: 2xx delivered, 5xx
  failed, 4xx deferred by the retry schedule (``queue.schedule``) until the
  queue lifetime runs out, when it fails with ``5.4.7``;
- recipients that failed in this attempt get one delivery status
  notification (``Bouncer``), committed to the queue before their failure is
  recorded: a crash in between sends a second one, never none. A "delayed"
  notice goes once per recipient when ``delay_warning`` is configured, and
  a success notice (delivered, expanded, or relayed to a host without DSN)
  when the recipient asked for one with NOTIFY=SUCCESS (RFC 3461 §6.2.4).

The queue file goes only when every recipient is final (DESIGN.md §5:
at-least-once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from postoffice.core.address import Address
from postoffice.core.clock import Clock
from postoffice.core.envelope import Envelope, EnvelopeRecipient, OriginalRecipient
from postoffice.core.errors import PostofficeError
from postoffice.core.maillog import log_delivery, log_event
from postoffice.core.reply import Reply
from postoffice.delivery.local import DELIVERED, DeliveryTrace, LocalDeliveryAgent
from postoffice.directory.directory import Directory
from postoffice.directory.routing import NULL_SENDER, LocalDelivery, RemoteDelivery
from postoffice.directory.tables.mailertable import MailertableRoute
from postoffice.queue import (
    DEFAULT_POLICY,
    Queue,
    QueuedRecipient,
    QueueEntry,
    QueueError,
    RecipientStatus,
    RetryPolicy,
    next_attempt,
)
from postoffice.queue.schedule import delay_warning_due

COMPONENT = "qmgr"
STOP_GRACE = 10.0  # seconds a stopping server lets deliveries in progress finish
AWAITING_REMOTE = Reply(451, "4.4.1", "Queued for delivery to a remote host")
TARGET_NOT_AVAILABLE = Reply(451, "4.3.0", "Program and file delivery are not available here")
FORWARDED = Reply(250, "2.1.5", "Forwarded")
DISCARDED = Reply(250, "2.0.0", "Discarded by the access table")


@dataclass(frozen=True, slots=True)
class RemoteOutcome:
    """What the remote side said about one recipient, and which host said it."""

    reply: Reply
    remote_mta: str | None = None
    passed_on_dsn: bool = False  # the host offered DSN: success reports are its job


@dataclass(frozen=True, slots=True)
class RemoteRecipient:
    """A recipient handed to remote delivery: its index in the queue entry."""

    index: int
    recipient: EnvelopeRecipient


class RemoteSender(Protocol):
    """Delivery to another mail host (``delivery.remote``)."""

    async def deliver(
        self,
        entry: QueueEntry,
        domain: str,
        route: MailertableRoute | None,
        recipients: Sequence[RemoteRecipient],
    ) -> dict[int, RemoteOutcome]: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Notice:
    """One recipient to report on in a delivery status notification."""

    index: int
    recipient: EnvelopeRecipient
    status: RecipientStatus
    reply: Reply


class NoticeSender(Protocol):
    """Delivery status notifications (``delivery.bounce``)."""

    async def notify(self, entry: QueueEntry, action: str, notices: Sequence[Notice]) -> None: ...


@dataclass
class _Attempt:
    """What one attempt at one message gathers before it is recorded."""

    updates: dict[int, RecipientStatus]
    forwards: list[EnvelopeRecipient]
    remote: dict[tuple[str, MailertableRoute | None], list[RemoteRecipient]]
    failed: list[Notice]
    delayed: list[Notice]
    succeeded: dict[str, list[Notice]] = field(default_factory=dict)  # by DSN action
    forwarded: list[int] = field(default_factory=list)  # recipients done by forwarding


class QueueRunner:
    """Runs delivery attempts for the queue (see the module docstring)."""

    def __init__(
        self,
        *,
        queue: Queue,
        directory: Directory,
        local: LocalDeliveryAgent,
        clock: Clock,
        remote: RemoteSender | None = None,
        notices: NoticeSender | None = None,
        retry_policy: RetryPolicy = DEFAULT_POLICY,
        concurrency: int = 32,  # messages in delivery at once (per process)
        rescan_interval: float = 60.0,
    ):
        self.queue = queue
        self.directory = directory
        self.local = local
        self.remote = remote
        self.notices = notices
        self.clock = clock
        self.retry_policy = retry_policy
        self.rescan_interval = rescan_interval
        self._slots = asyncio.Semaphore(concurrency)
        self._in_flight: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._holds: dict[asyncio.Task[Any] | None, list[bool]] = {}  # task -> [holds a slot]
        self._wake = asyncio.Event()

    # -- the loop -----------------------------------------------------------------

    def notice(self, entry: QueueEntry) -> None:
        """Queue listener: a message was committed; deliver it now."""
        self._start(entry.id, fresh=True)

    def wake(self) -> None:
        """Scan the queue now (``postoffice queue flush``, SIGHUP)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver what is due now, then whatever arrives or falls due, until ``stop``."""
        while not stop.is_set():
            self._wake.clear()  # before the scan: a flush asked during it scans again
            for queue_id in await self.queue.pending(self.clock.now()):
                self._start(queue_id)
            waits = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())}
            try:
                await asyncio.wait(
                    waits, timeout=self.rescan_interval, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for wait in waits:
                    wait.cancel()
        await self.drain(grace=STOP_GRACE)

    async def drain(self, grace: float | None = None) -> None:
        """Wait for the attempts in progress, then close what they kept open.

        With ``grace``, attempts still running after that many seconds (a slow
        remote host) are cancelled: their claims end and their messages stay
        queued as they were, to be tried again (at-least-once).
        """
        if grace is not None and self._tasks:
            _, late = await asyncio.wait(list(self._tasks), timeout=grace)
            for task in late:
                task.cancel()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.local.close()
        if self.remote is not None:
            await self.remote.close()

    def _start(self, queue_id: str, *, fresh: bool = False) -> None:
        if queue_id in self._in_flight:
            return
        self._in_flight.add(queue_id)
        task = asyncio.ensure_future(self._guarded(queue_id, fresh))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _without_slot(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work()`` with this task's slot given back meanwhile."""
        holds = self._holds.get(asyncio.current_task())
        if holds is None or not holds[0]:  # deliver() called directly (tests)
            await work()
            return
        holds[0] = False
        self._slots.release()
        try:
            await work()
        finally:
            await self._slots.acquire()  # if cancelled here, the slot is not ours
            holds[0] = True

    async def _guarded(self, queue_id: str, fresh: bool) -> None:
        task = asyncio.current_task()
        holds = [False]  # whether this task holds a slot now
        try:
            await self._slots.acquire()
            holds[0] = True
            self._holds[task] = holds
            await self.deliver(queue_id, fresh=fresh)
        except (PostofficeError, OSError) as exc:
            log_event(COMPONENT, f"{queue_id}: delivery attempt failed: {exc}", level=logging.ERROR)
        except Exception as exc:  # a bug must not end the runner; the message stays queued
            log_event(
                COMPONENT, f"{queue_id}: delivery attempt failed: {exc!r}", level=logging.ERROR
            )
        finally:
            self._holds.pop(task, None)
            if holds[0]:
                self._slots.release()
            self._in_flight.discard(queue_id)

    # -- one message --------------------------------------------------------------

    async def deliver(self, queue_id: str, *, fresh: bool = False) -> None:
        """One delivery attempt for every recipient of ``queue_id`` that is due.

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
                await self._attempt(entry, DeliveryTrace(repeated=not fresh))
        finally:
            self.queue.end_claim(queue_id)

    async def _attempt(self, entry: QueueEntry, trace: DeliveryTrace) -> None:
        attempt = _Attempt({}, [], {}, [], [])
        now = self.clock.now()
        for queued in entry.recipients:
            if queued.status.state.is_final:
                continue
            due = queued.status.next_attempt
            if due is not None and due > now:
                continue
            await self._route_recipient(entry, queued, trace, attempt)
        if attempt.remote:
            # The slot is not held while other hosts are talked to: a slow
            # destination must not stop local delivery (the remote agent has
            # its own limits, per destination).
            await self._without_slot(lambda: self._deliver_remotes(entry, attempt))
        if attempt.forwards:
            try:
                await self._forward(entry, attempt.forwards)
            except (PostofficeError, OSError):
                # Not forwarded: those recipients stay as they were, for the next try.
                for index in attempt.forwarded:
                    attempt.updates.pop(index, None)
        try:
            await self._send_notices(entry, attempt)
        except (PostofficeError, OSError) as exc:
            # No report queued: the failures are not recorded either, so the next
            # attempt reports them; what was delivered is recorded (no resend).
            log_event(COMPONENT, f"{entry.id}: notices not queued: {exc}", level=logging.ERROR)
            for notice in (*attempt.failed, *attempt.delayed):
                attempt.updates.pop(notice.index, None)
        if attempt.updates:
            await self.queue.finish(entry.id, attempt.updates)
        elif entry.is_complete:
            await self.queue.remove(entry.id)

    async def _route_recipient(
        self, entry: QueueEntry, queued: QueuedRecipient, trace: DeliveryTrace, attempt: _Attempt
    ) -> None:
        recipient = queued.recipient
        sender = entry.envelope.sender
        result = self.directory.route(
            recipient.address, sender=NULL_SENDER if sender is None else sender
        )
        if result.error is not None:
            self._log(entry, recipient.address, result.error, "bounced", relay="none")
            self._record(entry, queued, attempt, result.error)
            return
        if result.discard:
            self._log(entry, recipient.address, DISCARDED, "sent", relay="none")
            self._record(entry, queued, attempt, DISCARDED)
            return
        deliveries = result.deliveries
        if (
            len(deliveries) == 1
            and isinstance(deliveries[0], RemoteDelivery)
            and deliveries[0].address.key == recipient.address.key
        ):
            if self.remote is None:
                self._log(entry, recipient.address, AWAITING_REMOTE, "deferred", relay="none")
                self._record(entry, queued, attempt, AWAITING_REMOTE)
                return
            key = (recipient.address.domain, deliveries[0].route)
            attempt.remote.setdefault(key, []).append(RemoteRecipient(queued.index, recipient))
            return
        temporary: Reply | None = None
        permanent: Reply | None = None
        forwarded = False
        for target in deliveries:
            if isinstance(target, LocalDelivery):
                # The mailbox by its canonical name, whatever case the sender wrote.
                account = Address(target.account.local_key, target.account.domain)
                reply = await self.local.to_mailbox(entry, recipient.address, account, trace)
            elif isinstance(target, RemoteDelivery):
                orcpt = recipient.orcpt or OriginalRecipient("rfc822", str(recipient.address))
                attempt.forwards.append(EnvelopeRecipient(target.address, recipient.notify, orcpt))
                forwarded = True
                continue
            else:
                self._log(entry, recipient.address, TARGET_NOT_AVAILABLE, "deferred", relay="none")
                reply = TARGET_NOT_AVAILABLE
            if reply.is_temporary:
                temporary = temporary or reply
            elif reply.is_permanent:
                permanent = permanent or reply
        for failure in result.failures:
            log_event(COMPONENT, f"{entry.id}: {failure.target}: {failure.reply}")
        if temporary is not None:
            self._record(entry, queued, attempt, temporary)
        elif permanent is not None and len(deliveries) == 1:
            self._record(entry, queued, attempt, permanent)
        else:
            # RFC 3461 §6.2.4: a list's expansion is "expanded", a mailbox "delivered".
            success = "expanded" if forwarded else "delivered"
            if forwarded:
                attempt.forwarded.append(queued.index)
            self._record(
                entry, queued, attempt, FORWARDED if forwarded else DELIVERED, success=success
            )

    async def _deliver_remotes(self, entry: QueueEntry, attempt: _Attempt) -> None:
        for (domain, route), batch in attempt.remote.items():
            await self._deliver_remote(entry, domain, route, batch, attempt)

    async def _deliver_remote(
        self,
        entry: QueueEntry,
        domain: str,
        route: MailertableRoute | None,
        batch: list[RemoteRecipient],
        attempt: _Attempt,
    ) -> None:
        assert self.remote is not None
        outcomes = await self.remote.deliver(entry, domain, route, batch)
        by_index = {queued.index: queued for queued in entry.recipients}
        for member in batch:
            outcome = outcomes.get(member.index)
            if outcome is None:  # the agent said nothing: try again later
                outcome = RemoteOutcome(AWAITING_REMOTE)
            self._record(
                entry,
                by_index[member.index],
                attempt,
                outcome.reply,
                remote_mta=outcome.remote_mta,
                # RFC 3461 §6.2.4: a host that speaks DSN reports success itself;
                # one that does not gets the message "relayed" in our report.
                success=None if outcome.passed_on_dsn else "relayed",
            )

    def _record(
        self,
        entry: QueueEntry,
        queued: QueuedRecipient,
        attempt: _Attempt,
        reply: Reply,
        *,
        remote_mta: str | None = None,
        success: str | None = None,
    ) -> None:
        """The recipient's new state after ``reply``, and any notice it calls for
        (``success``: the DSN action a 2xx reports, for NOTIFY=SUCCESS)."""
        if not 200 <= reply.code < 600 or reply.code // 100 == 3:
            # Only a 2xx says delivered (RFC 5321 §4.2.1); anything odd is tried again.
            reply = Reply(451, "4.5.0", f"unexpected reply: {reply}")
        now = self.clock.now()
        attempts = queued.status.attempts + 1
        if reply.is_temporary:
            when = next_attempt(
                attempts,
                entry.arrival,
                now,
                self.retry_policy,
                null_sender=entry.envelope.sender is None,
            )
            if when is not None:
                warn = delay_warning_due(
                    entry.arrival, now, self.retry_policy, already_sent=queued.status.delay_warned
                )
                status = RecipientStatus.deferred(
                    str(reply),
                    at=now,
                    attempts=attempts,
                    next_attempt=when,
                    delay_warned=queued.status.delay_warned or warn,
                    remote_mta=remote_mta,
                )
                attempt.updates[queued.index] = status
                if warn:
                    attempt.delayed.append(Notice(queued.index, queued.recipient, status, reply))
                return
            # RFC 3463 X.4.7; the last reply stays in the text for the sender.
            reply = Reply(554, "5.4.7", f"Delivery time expired, the last attempt got: {reply}")
            self._log(entry, queued.recipient.address, reply, "expired", relay="none")
        if reply.is_permanent:
            status = RecipientStatus.failed(
                str(reply), at=now, attempts=attempts, remote_mta=remote_mta
            )
            attempt.failed.append(Notice(queued.index, queued.recipient, status, reply))
        else:
            status = RecipientStatus.delivered(
                str(reply), at=now, attempts=attempts, remote_mta=remote_mta
            )
            if success is not None:
                notice = Notice(queued.index, queued.recipient, status, reply)
                attempt.succeeded.setdefault(success, []).append(notice)
        attempt.updates[queued.index] = status

    async def _send_notices(self, entry: QueueEntry, attempt: _Attempt) -> None:
        if self.notices is None:
            return
        if attempt.failed:
            await self.notices.notify(entry, "failed", attempt.failed)
        if attempt.delayed:
            await self.notices.notify(entry, "delayed", attempt.delayed)
        for action, notices in attempt.succeeded.items():
            await self.notices.notify(entry, action, notices)

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

    def _log(
        self, entry: QueueEntry, recipient: Address, reply: Reply, status: str, *, relay: str
    ) -> None:
        log_delivery(
            COMPONENT,
            entry.id,
            recipient=str(recipient),
            relay=relay,
            delay=max(0.0, self.clock.now() - entry.arrival),
            dsn=reply.enhanced or "",
            status=status,
            detail=str(reply),
        )
