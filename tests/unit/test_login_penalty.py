"""LoginPenalty: the failed-login delay per client address (Dovecot's auth penalty)."""

from __future__ import annotations

from postoffice.server.login_penalty import LoginPenalty


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_delay_doubles_per_failure_up_to_the_ceiling() -> None:
    penalty = LoginPenalty(2.0, 15.0, clock=Ticks())
    assert [penalty.failed("192.0.2.1") for _ in range(5)] == [2.0, 4.0, 8.0, 15.0, 15.0]
    assert penalty.failed("192.0.2.2") == 2.0  # another address starts afresh
    assert penalty.failures("192.0.2.1") == 5


def test_a_success_or_a_quiet_hour_forgets_the_failures() -> None:
    ticks = Ticks()
    penalty = LoginPenalty(1.0, 60.0, forget_after=3600, clock=ticks)
    penalty.failed("a")
    penalty.failed("a")
    penalty.succeeded("a")
    assert penalty.failed("a") == 1.0
    ticks.now += 3601
    assert penalty.failures("a") == 0
    assert penalty.failed("a") == 1.0


def test_memory_is_bounded_and_a_zero_base_never_waits() -> None:
    penalty = LoginPenalty(0.0, 15.0, capacity=3, clock=Ticks())
    for n in range(10):
        assert penalty.failed(f"10.0.0.{n}") == 0.0
    assert sum(penalty.failures(f"10.0.0.{n}") for n in range(10)) == 3
    assert penalty.failures("10.0.0.9") == 1  # the most recent are the ones kept
