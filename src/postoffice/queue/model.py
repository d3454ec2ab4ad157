"""What the queue holds about a message: the envelope plus per-recipient state.

Owns the values the control file (``qfID``) stores and the queue hands out:
``RecipientStatus`` (one recipient's delivery state), ``QueueEntry`` (one
message as ``load()`` and ``list()`` return it). Pure values: no I/O.

Invariants:
- A ``QueueEntry`` has exactly one ``RecipientStatus`` per envelope
  recipient, in envelope order; recipients are addressed by that index.
- ``delivered`` and ``failed`` are final: a message whose recipients are all
  final may be removed from the queue (DESIGN.md §5, at-least-once).
  ``failed`` covers both a permanent refusal and expiry after
  ``maximal_queue_lifetime``; the reply says which.
- A ``pending`` recipient has not been tried yet and is due at once; a
  ``deferred`` one is due at its ``next_attempt``.
- Reply texts are bounded (``MAX_REPLY_CHARS``): a remote server's endless
  multi-line reply is cut, so a control file always stays within its bound.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from postoffice.core.envelope import Envelope, EnvelopeRecipient
from postoffice.queue.errors import QueueStateError
from postoffice.queue.ids import QueueId

MAX_REPLY_CHARS = 2000
_CUT_MARK = " [...]"


class RecipientState(enum.Enum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    DEFERRED = "deferred"

    @property
    def is_final(self) -> bool:
        return self in (RecipientState.DELIVERED, RecipientState.FAILED)


def _check_time(name: str, value: float | None) -> None:
    if value is not None and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of seconds, not {value!r}")


@dataclass(frozen=True, slots=True)
class RecipientStatus:
    """One recipient's state in the queue.

    ``attempts`` counts delivery attempts made; ``last_attempt`` and
    ``next_attempt`` are epoch seconds; ``reply`` is the last reply seen (the
    remote one, or the local delivery's), kept for ``mailq`` and for DSNs, and
    ``remote_mta`` names the host that said it (RFC 3464 §2.3.5 Remote-MTA);
    ``delay_warned`` is set once a "delayed" DSN has gone out (RFC 3464), so
    it is sent once.
    """

    state: RecipientState = RecipientState.PENDING
    attempts: int = 0
    last_attempt: float | None = None
    next_attempt: float | None = None
    reply: str | None = None
    delay_warned: bool = False
    remote_mta: str | None = None  # the host that gave ``reply``, for mailq and DSNs

    def __post_init__(self) -> None:
        if self.attempts < 0:
            raise ValueError("attempts must not be negative")
        _check_time("last_attempt", self.last_attempt)
        _check_time("next_attempt", self.next_attempt)
        if self.reply is not None and len(self.reply) > MAX_REPLY_CHARS:
            cut = self.reply[: MAX_REPLY_CHARS - len(_CUT_MARK)] + _CUT_MARK
            object.__setattr__(self, "reply", cut)

    @classmethod
    def delivered(
        cls, reply: str, *, at: float, attempts: int = 1, remote_mta: str | None = None
    ) -> RecipientStatus:
        return cls(
            RecipientState.DELIVERED,
            attempts=attempts,
            last_attempt=at,
            reply=reply,
            remote_mta=remote_mta,
        )

    @classmethod
    def failed(
        cls, reply: str, *, at: float, attempts: int = 1, remote_mta: str | None = None
    ) -> RecipientStatus:
        return cls(
            RecipientState.FAILED,
            attempts=attempts,
            last_attempt=at,
            reply=reply,
            remote_mta=remote_mta,
        )

    @classmethod
    def deferred(
        cls,
        reply: str,
        *,
        at: float,
        attempts: int,
        next_attempt: float,
        delay_warned: bool = False,
        remote_mta: str | None = None,
    ) -> RecipientStatus:
        return cls(
            RecipientState.DEFERRED,
            attempts=attempts,
            last_attempt=at,
            next_attempt=next_attempt,
            reply=reply,
            delay_warned=delay_warned,
            remote_mta=remote_mta,
        )

    def due_at(self) -> float | None:
        """When this recipient should be tried next: None if final, -inf if at once."""
        if self.state.is_final:
            return None
        if self.state is RecipientState.PENDING or self.next_attempt is None:
            return -math.inf
        return self.next_attempt


@dataclass(frozen=True, slots=True)
class QueuedRecipient:
    index: int
    recipient: EnvelopeRecipient
    status: RecipientStatus


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """One queued message, as its control file describes it.

    ``size`` and ``sha256`` describe the data file; ``arrival`` is when the
    message was committed (epoch seconds).
    """

    id: QueueId
    envelope: Envelope
    arrival: float
    size: int
    sha256: str
    statuses: tuple[RecipientStatus, ...]
    held: bool = False

    def __post_init__(self) -> None:
        if len(self.statuses) != len(self.envelope.recipients):
            raise ValueError("one recipient status per envelope recipient is required")
        if not self.envelope.recipients:
            raise ValueError("a queued message has at least one recipient")
        if self.size < 0:
            raise ValueError("size must not be negative")
        _check_time("arrival", self.arrival)

    @property
    def recipients(self) -> tuple[QueuedRecipient, ...]:
        return tuple(
            QueuedRecipient(index, recipient, status)
            for index, (recipient, status) in enumerate(
                zip(self.envelope.recipients, self.statuses, strict=True)
            )
        )

    @property
    def sender(self) -> str:
        """The reverse-path as mailq prints it: ``a@b``, or empty for ``<>``."""
        return self.envelope.sender_text

    @property
    def is_complete(self) -> bool:
        """Every recipient is final: the message may leave the queue."""
        return all(status.state.is_final for status in self.statuses)

    def due_at(self) -> float | None:
        """The earliest instant a recipient is due; None when none is (all final)."""
        times = [t for t in (status.due_at() for status in self.statuses) if t is not None]
        return min(times) if times else None

    def is_due(self, now: float) -> bool:
        """Due for a delivery attempt: not held, and some recipient's time has come."""
        due = self.due_at()
        return not self.held and due is not None and due <= now

    def with_statuses(self, changes: Mapping[int, RecipientStatus]) -> QueueEntry:
        statuses = list(self.statuses)
        for index, status in changes.items():
            if not 0 <= index < len(statuses):
                raise QueueStateError(f"{self.id}: no recipient #{index}")
            statuses[index] = status
        return replace(self, statuses=tuple(statuses))
