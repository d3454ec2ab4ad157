"""Connection limits per client address (DESIGN.md §5: connections per client are bounded).

Owns the count of open connections by client IP for one listener role and
the decision to refuse one more. Pure bookkeeping, no I/O: the listener asks
``admit`` when a connection arrives and calls ``release`` when it ends.
"""

from __future__ import annotations

from collections import Counter


class ConnectionLimiter:
    """At most ``per_client`` simultaneous connections from one address."""

    def __init__(self, per_client: int):
        if per_client < 1:
            raise ValueError("per_client must be at least 1")
        self.per_client = per_client
        self._open: Counter[str] = Counter()

    def admit(self, client: str) -> bool:
        """Count the connection and say True, or say False and count nothing."""
        if self._open[client] >= self.per_client:
            return False
        self._open[client] += 1
        return True

    def release(self, client: str) -> None:
        self._open[client] -= 1
        if self._open[client] <= 0:
            del self._open[client]

    def open_from(self, client: str) -> int:
        return self._open[client]

    @property
    def total(self) -> int:
        return sum(self._open.values())
