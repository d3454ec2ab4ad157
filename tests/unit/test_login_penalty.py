"""LoginPenalty: the failed-login delay per client address (Dovecot's auth penalty)."""

from __future__ import annotations

import os

import pytest

from postoffice.server.login_penalty import LocalFailures, LoginPenalty, SharedFailures


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["local", "shared"])
def table(request: pytest.FixtureRequest) -> LocalFailures | SharedFailures:
    return LocalFailures() if request.param == "local" else SharedFailures(slots=64)


def test_the_delay_doubles_per_failure_up_to_the_ceiling(
    table: LocalFailures | SharedFailures,
) -> None:
    penalty = LoginPenalty(2.0, 15.0, table=table, clock=Ticks())
    assert [penalty.failed("192.0.2.1") for _ in range(5)] == [2.0, 4.0, 8.0, 15.0, 15.0]
    assert penalty.failed("192.0.2.2") == 2.0  # another address starts afresh
    assert penalty.failures("192.0.2.1") == 5


def test_a_success_or_a_quiet_hour_forgets_the_failures(
    table: LocalFailures | SharedFailures,
) -> None:
    ticks = Ticks()
    penalty = LoginPenalty(1.0, 60.0, forget_after=3600, table=table, clock=ticks)
    penalty.failed("a")
    penalty.failed("a")
    penalty.succeeded("a")
    assert penalty.failed("a") == 1.0
    ticks.now += 3601
    assert penalty.failures("a") == 0
    assert penalty.failed("a") == 1.0


def test_local_memory_is_bounded_and_a_zero_base_never_waits() -> None:
    table = LocalFailures(capacity=3)
    penalty = LoginPenalty(0.0, 15.0, table=table, clock=Ticks())
    for n in range(10):
        assert penalty.failed(f"10.0.0.{n}") == 0.0
    assert len(table) == 3
    assert penalty.failures("10.0.0.9") == 1  # the most recent are the ones kept


def test_the_shared_table_counts_the_failures_of_every_worker() -> None:
    table = SharedFailures(slots=64)
    penalty = LoginPenalty(1.0, 60.0, table=table)
    penalty.failed("198.51.100.7")
    pid = os.fork()
    if pid == 0:  # a worker: two more failures from the same address
        try:
            penalty.failed("198.51.100.7")
            penalty.failed("198.51.100.7")
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert status == 0
    assert penalty.failed("198.51.100.7") == 8.0  # the fourth failure, wherever counted
    table.close()
