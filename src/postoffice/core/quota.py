"""Quotas as values: an account's limits (``Quota``), what it uses (``Usage``), the verdict.

What this module owns: the one rule every caller (IMAP APPEND/COPY, SMTP
RCPT, local delivery) applies to decide whether an addition fits. The
quota is the account's, over all its mailboxes together (one quota root,
RFC 9208 §3.1); a limit of 0 means "no limit" for that resource.

Invariants:
- ``Quota.exceeded_by`` refuses an addition only when it raises a limited
  resource above its limit: an addition of nothing (a MOVE inside the one
  quota root) is never refused, even when the account is over its quota
  already (a lowered limit), so that the user can always clean up;
- an account with no limits costs nothing: callers test ``Quota.limited``
  before they ask the store for its usage.
"""

from __future__ import annotations

from typing import NamedTuple


class Usage(NamedTuple):
    """What an account's mailboxes hold: octets (the messages' sizes) and messages."""

    octets: int = 0
    messages: int = 0


class Quota(NamedTuple):
    """An account's limits: octets and messages, 0 for no limit."""

    octets: int = 0
    messages: int = 0

    @property
    def limited(self) -> bool:
        return self.octets > 0 or self.messages > 0

    def exceeded_by(self, usage: Usage, octets: int, messages: int) -> str | None:
        """The resource that adding ``octets`` in ``messages`` messages to ``usage``
        would take over its limit ("STORAGE" or "MESSAGE", RFC 9208 §5), or None."""
        if self.octets and octets > 0 and usage.octets + octets > self.octets:
            return "STORAGE"
        if self.messages and messages > 0 and usage.messages + messages > self.messages:
            return "MESSAGE"
        return None


NO_QUOTA = Quota()
