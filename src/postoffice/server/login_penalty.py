"""Failed-login delays per client address, for every protocol that takes a password.

Owns ``LoginPenalty``: how long the answer to a failed login waits. The
first failure from an address waits ``base`` seconds, each further one twice
as long as the one before, up to ``ceiling`` (Dovecot's auth penalty:
``auth_failure_delay`` 2 s, doubling per failure from one IP, at most 15 s).
A successful login from the address clears its count; an address that
stayed quiet for ``forget_after`` seconds starts again from the first step.

The delay is the same whether the user exists or not, and the answer is the
same: the caller must not tell an unknown user from a wrong password (the
password check itself costs the same for both, see ``AccountDatabase``).

Bounded: at most ``capacity`` addresses are remembered, the longest quiet
first out. Counts are per process (each server worker keeps its own).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

DEFAULT_CAPACITY = 10_000
FORGET_AFTER = 3600.0


class LoginPenalty:
    """Failure counts by client address and the delay each failure earns."""

    def __init__(
        self,
        base: float = 2.0,
        ceiling: float = 15.0,
        *,
        forget_after: float = FORGET_AFTER,
        capacity: int = DEFAULT_CAPACITY,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.base = base
        self.ceiling = max(base, ceiling)
        self.forget_after = forget_after
        self.capacity = capacity
        self._clock = clock
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def failures(self, address: str) -> int:
        """Failures counted for ``address`` (0 once forgotten)."""
        entry = self._failures.get(address)
        if entry is None or self._clock() - entry[1] > self.forget_after:
            return 0
        return entry[0]

    def failed(self, address: str) -> float:
        """Count a failure from ``address``; the seconds its answer must wait."""
        count = self.failures(address) + 1
        self._failures[address] = (count, self._clock())
        self._failures.move_to_end(address)
        while len(self._failures) > self.capacity:
            self._failures.popitem(last=False)
        if self.base <= 0:
            return 0.0
        return float(min(self.ceiling, self.base * 2 ** min(count - 1, 32)))

    def succeeded(self, address: str) -> None:
        """A login from ``address`` succeeded: its count starts again."""
        self._failures.pop(address, None)
