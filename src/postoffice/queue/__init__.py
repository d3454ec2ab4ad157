"""The durable queue: sendmail's ``dfID``/``qfID`` spool and the retry schedule.

What the SMTP driver and the delivery runner use::

    queue = await Queue.open(config.queue_dir, clock)      # recovery runs here
    incoming = queue.begin(envelope)                       # IncomingMessage
    await incoming.write(chunk)  ...                       # streamed, never whole in memory
    queue_id = await incoming.commit()                     # durable: now answer 250
    await queue.update(queue_id, {0: RecipientStatus.delivered("250 ok", at=now)})
    await queue.remove(queue_id)                           # all recipients final

Modules: ``ids`` (queue ids), ``model`` (entries and recipient states),
``qffile`` (the control file format), ``layout`` (file names), ``durable``
(fsync, locks, group commit), ``incoming`` (acceptance), ``recovery`` (open),
``reader`` (verified data stream), ``spool`` (the ``Queue``), ``schedule``
(the retry schedule, pure functions).
"""

from postoffice.queue.durable import FsHooks
from postoffice.queue.errors import CorruptQueueFile, QueueError, QueueStateError, UnknownQueueId
from postoffice.queue.ids import QueueId, QueueIdGenerator, is_queue_id
from postoffice.queue.incoming import IncomingMessage
from postoffice.queue.model import QueuedRecipient, QueueEntry, RecipientState, RecipientStatus
from postoffice.queue.reader import DataReader
from postoffice.queue.recovery import RecoveryReport
from postoffice.queue.schedule import (
    DEFAULT_POLICY,
    RetryPolicy,
    backoff,
    delay_warning_at,
    delay_warning_due,
    expires_at,
    next_attempt,
)
from postoffice.queue.spool import Queue, QueueStats

__all__ = [
    "DEFAULT_POLICY",
    "CorruptQueueFile",
    "DataReader",
    "FsHooks",
    "IncomingMessage",
    "Queue",
    "QueueEntry",
    "QueueError",
    "QueueId",
    "QueueIdGenerator",
    "QueueStateError",
    "QueueStats",
    "QueuedRecipient",
    "RecipientState",
    "RecipientStatus",
    "RecoveryReport",
    "RetryPolicy",
    "UnknownQueueId",
    "backoff",
    "delay_warning_at",
    "delay_warning_due",
    "expires_at",
    "is_queue_id",
    "next_attempt",
]
