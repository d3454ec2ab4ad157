"""The retry schedule: tables of (attempts, times) -> next attempt, expiry, delay warning."""

from __future__ import annotations

import pytest

from postoffice.queue import (
    DEFAULT_POLICY,
    RetryPolicy,
    backoff,
    delay_warning_at,
    delay_warning_due,
    expires_at,
    next_attempt,
)

T0 = 1_700_000_000.0
DAY = 86400.0


def test_defaults_are_postfix_defaults() -> None:
    assert DEFAULT_POLICY.minimal_backoff == 300
    assert DEFAULT_POLICY.maximal_backoff == 4000
    assert DEFAULT_POLICY.maximal_queue_lifetime == 5 * DAY
    assert DEFAULT_POLICY.bounce_queue_lifetime == 5 * DAY
    assert DEFAULT_POLICY.delay_warning is None


@pytest.mark.parametrize(
    ("attempts", "expected"),
    [
        (-1, 0),
        (0, 0),
        (1, 300),
        (2, 600),
        (3, 1200),
        (4, 2400),
        (5, 4000),
        (6, 4000),
        (10**6, 4000),
    ],
)
def test_backoff_doubles_between_the_bounds(attempts: int, expected: float) -> None:
    assert backoff(attempts) == expected


@pytest.mark.parametrize(
    ("attempts", "now", "expected"),
    [
        (0, T0, T0),  # never tried: due now
        (1, T0, T0 + 300),
        (2, T0 + 300, T0 + 900),
        (3, T0 + 900, T0 + 2100),
        (4, T0 + 2100, T0 + 4500),
        (5, T0 + 4500, T0 + 8500),
        (9, T0 + DAY, T0 + DAY + 4000),
        (40, T0 + 5 * DAY - 1000, T0 + 5 * DAY),  # last try exactly at expiry
        (41, T0 + 5 * DAY, None),  # expired: bounce
        (41, T0 + 6 * DAY, None),
        (0, T0 + 5 * DAY, None),
    ],
)
def test_next_attempt_table(attempts: int, now: float, expected: float | None) -> None:
    assert next_attempt(attempts, T0, now) == expected


@pytest.mark.parametrize(
    ("policy", "attempts", "now", "expected"),
    [
        (RetryPolicy(minimal_backoff=1000, maximal_backoff=4000), 1, T0, T0 + 1000),
        (RetryPolicy(minimal_backoff=1000, maximal_backoff=4000), 3, T0, T0 + 4000),
        (RetryPolicy(maximal_queue_lifetime=0), 1, T0, None),  # Postfix: bounce after 1st try
        (RetryPolicy(maximal_queue_lifetime=3600), 1, T0 + 3500, T0 + 3600),
        (RetryPolicy(minimal_backoff=60, maximal_backoff=60), 7, T0, T0 + 60),
    ],
)
def test_next_attempt_with_policies(
    policy: RetryPolicy, attempts: int, now: float, expected: float | None
) -> None:
    assert next_attempt(attempts, T0, now, policy) == expected


def test_null_sender_uses_the_bounce_lifetime() -> None:
    policy = RetryPolicy(bounce_queue_lifetime=DAY)
    assert next_attempt(1, T0, T0 + DAY, policy, null_sender=True) is None
    assert next_attempt(1, T0, T0 + DAY, policy) == T0 + DAY + 300
    assert expires_at(T0, policy, null_sender=True) == T0 + DAY


def test_schedule_is_monotonic() -> None:
    now = T0
    previous = 0.0
    for attempts in range(1, 500):
        due = next_attempt(attempts, T0, now)
        if due is None:
            break
        assert due - now >= previous or due == expires_at(T0, DEFAULT_POLICY)
        previous = due - now
        now = due
    else:
        pytest.fail("never expired")
    assert now == T0 + 5 * DAY


@pytest.mark.parametrize(
    ("delay", "now", "sent", "due"),
    [
        (None, T0 + 10 * DAY, False, False),  # off by default, as in Postfix
        (0.0, T0 + 10 * DAY, False, False),  # 0 means off
        (4 * 3600.0, T0 + 4 * 3600 - 1, False, False),
        (4 * 3600.0, T0 + 4 * 3600, False, True),
        (4 * 3600.0, T0 + 5 * 3600, True, False),  # sent once only
    ],
)
def test_delay_warning_table(delay: float | None, now: float, sent: bool, due: bool) -> None:
    policy = RetryPolicy(delay_warning=delay)
    assert delay_warning_due(T0, now, policy, already_sent=sent) is due
    expected_at = None if not delay else T0 + delay
    assert delay_warning_at(T0, policy) == expected_at


@pytest.mark.parametrize(
    "kwargs",
    [
        {"minimal_backoff": -1},
        {"maximal_backoff": 10, "minimal_backoff": 20},
        {"maximal_queue_lifetime": float("inf")},
        {"bounce_queue_lifetime": -5},
        {"delay_warning": float("nan")},
    ],
)
def test_bad_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)
