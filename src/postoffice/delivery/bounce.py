"""Bounces: the delivery status notifications the queue sends back to senders.

Owns ``Bouncer``, the runner's ``NoticeSender``: for recipients that failed
(or, once, are delayed) in an attempt, it builds one RFC 3464 report
(``mime.dsn``) covering exactly those recipients and queues it durably,
from the null reverse-path ``<>`` to the original envelope sender.

Rules:
- Mail from ``<>`` is never answered with a notification (RFC 5321 §4.5.5,
  RFC 3461 §6.2): that is how bounce loops are avoided. The failure is
  logged instead.
- The recipient's NOTIFY decides (RFC 3461 §4.1): NEVER gets nothing,
  FAILURE, DELAY or SUCCESS must be asked for when NOTIFY was given, and
  without NOTIFY failures and delays are reported (successes never).
- RET (RFC 3461 §4.3) decides whether the whole message or only its header
  goes back; a message over ``size_limit`` returns its header only
  (Postfix's ``bounce_size_limit``).
- The notification is in the queue before the runner records the failure:
  a crash in between sends it twice, never zero times.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from postoffice.core.clock import Clock
from postoffice.core.envelope import ClientInfo, Envelope, EnvelopeRecipient, Notify
from postoffice.core.maillog import log_event
from postoffice.delivery.runner import Notice
from postoffice.mime.dsn import (
    ACTIONS,
    DsnAction,
    DsnRecipient,
    DsnReport,
    build_dsn,
    wants_dsn,
)
from postoffice.queue import DEFAULT_POLICY, Queue, QueueEntry, QueueError, RetryPolicy
from postoffice.queue.schedule import expires_at

COMPONENT = "bounce"
_ACTIONS: dict[str, DsnAction] = {action: action for action in ACTIONS}


class Bouncer:
    """Queues delivery status notifications (see the module docstring)."""

    def __init__(
        self,
        *,
        queue: Queue,
        hostname: str,
        clock: Clock,
        size_limit: int = 50_000,
        retry_policy: RetryPolicy = DEFAULT_POLICY,
    ):
        self.queue = queue
        self.retry_policy = retry_policy
        self.hostname = hostname
        self.clock = clock
        self.size_limit = size_limit
        self.sent = 0

    async def notify(self, entry: QueueEntry, action: str, notices: Sequence[Notice]) -> None:
        """Queue one notification of ``action`` for ``notices``, if anyone should get it."""
        kind: DsnAction = _ACTIONS.get(action, "failed")
        wanted = [n for n in notices if wants_dsn(n.recipient.notify, kind)]
        if not wanted:
            return
        sender = entry.envelope.sender
        if sender is None:
            names = ", ".join(str(n.recipient.address) for n in wanted)
            log_event(COMPONENT, f"{entry.id}: not notified, the sender is <> ({kind}: {names})")
            return
        until = expires_at(entry.arrival, self.retry_policy)
        report = DsnReport(
            reporting_mta=self.hostname,
            queue_id=entry.id,
            arrival=entry.arrival,
            envid=entry.envelope.envid,
            sender=sender,
            recipients=tuple(self._recipient(n, kind, until) for n in wanted),
            ret=entry.envelope.ret,
            postmaster=f"MAILER-DAEMON@{self.hostname}",
        )
        # The notification itself asks for no notification (RFC 3461 §6.2).
        envelope = Envelope(
            None,
            (EnvelopeRecipient(sender, frozenset({Notify.NEVER})),),
            client=ClientInfo(protocol="local"),
        )
        incoming = self.queue.begin(envelope)
        message_id = f"<{incoming.queue_id}@{self.hostname}>"
        reader = self.queue.open_entry_data(entry)
        try:
            data = await asyncio.to_thread(
                build_dsn,
                report,
                reader,
                now=self.clock.now(),
                message_id=message_id,
                size_limit=self.size_limit,
                original_size=entry.size,
            )
            await incoming.write(data)
            new_id = await incoming.commit()
        except (QueueError, OSError) as exc:
            await incoming.abort()
            log_event(COMPONENT, f"{entry.id}: notification not queued: {exc}", level=logging.ERROR)
            raise
        finally:
            reader.close()
        self.sent += 1
        what = {"failed": "non-delivery", "delayed": "delay"}.get(kind, "success")
        log_event(COMPONENT, f"{entry.id}: sender {what} notification: {new_id}")

    @staticmethod
    def _recipient(notice: Notice, action: DsnAction, until: float) -> DsnRecipient:
        reply = notice.reply
        status = reply.enhanced or f"{reply.code // 100}.0.0"
        return DsnRecipient(
            final_recipient=str(notice.recipient.address),
            action=action,
            status=status,
            original_recipient=notice.recipient.orcpt,
            remote_mta=notice.status.remote_mta,
            diagnostic=str(reply),
            last_attempt=notice.status.last_attempt,
            will_retry_until=until if action == "delayed" else None,
        )
