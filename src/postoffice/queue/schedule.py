"""The retry schedule, as pure functions of (attempts, times, policy).

Owns when a deferred message is tried again, when it expires (and bounces),
and when a "delayed" DSN is due. No clock is read here: callers pass ``now``
(DESIGN.md §6, schedules are pure functions).

Sources:
- RFC 5321 §4.5.4.1: retry until a give-up time of "at least 4-5 days",
  with intervals that grow, and a first retry interval of "at least 30
  minutes" (a recommendation Postfix trades for faster first retries).
- Postfix postconf(5) defaults, used here: ``minimal_backoff_time = 300s``
  and ``maximal_backoff_time = 4000s`` (between which the queue manager
  doubles the delay after each deferral), ``maximal_queue_lifetime = 5d``,
  ``bounce_queue_lifetime = 5d`` (for mail from ``<>``: bounces that cannot
  be delivered), ``delay_warning_time = 0h`` (no "delayed" DSN by default).

Invariants:
- ``backoff(n)`` is non-decreasing in ``n`` and stays within
  [minimal_backoff, maximal_backoff].
- ``next_attempt`` never schedules past the expiry instant: the last try
  happens at expiry, and after it ``next_attempt`` returns None (bounce).
- A lifetime of 0 means "bounce after the first failed attempt", as in
  Postfix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MINUTE = 60.0
DAY = 86400.0
_MAX_DOUBLINGS = 60  # beyond this the product only overflows; the cap rules anyway


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retry parameters in seconds (names follow Postfix's main.cf)."""

    minimal_backoff: float = 300.0  # minimal_backoff_time
    maximal_backoff: float = 4000.0  # maximal_backoff_time
    maximal_queue_lifetime: float = 5 * DAY  # maximal_queue_lifetime
    bounce_queue_lifetime: float = 5 * DAY  # bounce_queue_lifetime (sender <>)
    delay_warning: float | None = None  # delay_warning_time; None or 0: off

    def __post_init__(self) -> None:
        for name in ("minimal_backoff", "maximal_backoff", "maximal_queue_lifetime"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a non-negative number of seconds")
        if not math.isfinite(self.bounce_queue_lifetime) or self.bounce_queue_lifetime < 0:
            raise ValueError("bounce_queue_lifetime must be a non-negative number of seconds")
        if self.maximal_backoff < self.minimal_backoff:
            raise ValueError("maximal_backoff must not be less than minimal_backoff")
        if self.delay_warning is not None and (
            not math.isfinite(self.delay_warning) or self.delay_warning < 0
        ):
            raise ValueError("delay_warning must be a non-negative number of seconds")


DEFAULT_POLICY = RetryPolicy()


def backoff(attempts: int, policy: RetryPolicy = DEFAULT_POLICY) -> float:
    """The wait after the ``attempts``-th failed attempt: doubling, clamped (0 before any)."""
    if attempts <= 0:
        return 0.0
    doubled = policy.minimal_backoff * 2.0 ** min(attempts - 1, _MAX_DOUBLINGS)
    return min(max(doubled, policy.minimal_backoff), policy.maximal_backoff)


def expires_at(first_attempt_at: float, policy: RetryPolicy, *, null_sender: bool = False) -> float:
    """When the message (arrived or first tried at ``first_attempt_at``) gives up."""
    lifetime = policy.bounce_queue_lifetime if null_sender else policy.maximal_queue_lifetime
    return first_attempt_at + lifetime


def next_attempt(
    attempts: int,
    first_attempt_at: float,
    now: float,
    policy: RetryPolicy = DEFAULT_POLICY,
    *,
    null_sender: bool = False,
) -> float | None:
    """When to try again after ``attempts`` failed attempts; None: expired, bounce it.

    ``first_attempt_at`` is the message's arrival (the queue lifetime counts
    from it, as in Postfix); ``now`` is the time of the attempt that just
    failed. With ``attempts == 0`` (never tried) the answer is ``now``.
    """
    expiry = expires_at(first_attempt_at, policy, null_sender=null_sender)
    if now >= expiry:
        return None
    if attempts <= 0:
        return now
    return min(now + backoff(attempts, policy), expiry)


def delay_warning_at(arrival: float, policy: RetryPolicy = DEFAULT_POLICY) -> float | None:
    """When a "delayed" DSN (RFC 3464, action=delayed) becomes due; None when off."""
    if not policy.delay_warning:
        return None
    return arrival + policy.delay_warning


def delay_warning_due(
    arrival: float, now: float, policy: RetryPolicy = DEFAULT_POLICY, *, already_sent: bool = False
) -> bool:
    """True when a still-undelivered recipient should now get its one "delayed" DSN."""
    due = delay_warning_at(arrival, policy)
    return not already_sent and due is not None and now >= due
