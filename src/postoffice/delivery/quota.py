"""Quota refusals for mail coming in: at SMTP RCPT and at local delivery.

What this module owns: ``QuotaGuard``, the one place that turns an
account's quota (``AccountDatabase.quota``, cached per address) and its
usage (one aggregate query on the user's index, through the open stores of
``StoreCache``) into the SMTP reply for a mailbox that is full:
``452 4.2.2 Mailbox full`` by default (the sender keeps the message and
retries; the queue defers it), or ``552 5.2.2`` with ``[smtp] over_quota =
"reject"`` (refused at RCPT; failed, and bounced through the DSN path, at
delivery). RFC 3463 §3.3: X.2.2 "mailbox full"; RFC 5321 §4.2.2 allows a
452 at RCPT for the same.

Rules:
- An account with no limit costs nothing: no usage is read, no store opened.
- At RCPT the message's size is not known yet: a recipient is refused when
  its mailbox could not take one more message of the size MAIL FROM
  declared (RFC 1870 SIZE), or of one octet without it. At delivery the
  size is exact: the queued message with the headers delivery adds.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from postoffice.core.address import Address
from postoffice.core.quota import Quota, Usage
from postoffice.core.reply import Reply
from postoffice.directory.accounts import AccountDatabase
from postoffice.store.cache import Mailbox, StoreCache

MAILBOX_FULL_TEMPORARY = Reply(452, "4.2.2", "Mailbox full")
MAILBOX_FULL = Reply(552, "5.2.2", "Mailbox full")


class QuotaGuard:
    """See the module docstring; ``reject`` picks 552 5.2.2 over 452 4.2.2."""

    def __init__(self, accounts: AccountDatabase, stores: StoreCache, *, reject: bool = False):
        self.accounts = accounts
        self.stores = stores
        self.reply = MAILBOX_FULL if reject else MAILBOX_FULL_TEMPORARY

    def quota(self, account: Address) -> Quota:
        return self.accounts.quota(account)

    def refusal(self, quota: Quota, usage: Usage, octets: int) -> Reply | None:
        """The reply when one message of ``octets`` does not fit; else None."""
        return None if quota.exceeded_by(usage, max(octets, 1), 1) is None else self.reply

    def refusal_in(self, mailbox: Mailbox, quota: Quota, octets: int) -> Reply | None:
        """The same inside a ``StoreCache`` job (synchronous: delivery's own call)."""
        if not quota.limited:
            return None
        return self.refusal(quota, mailbox.usage(), octets)

    async def rcpt_refusal(self, accounts: Iterable[Address], declared: int | None) -> Reply | None:
        """For SMTP RCPT: the reply when a mailbox the recipient delivers to is full."""
        for account in accounts:
            quota = self.quota(account)
            if not quota.limited:
                continue
            size = declared or 1
            full = await self.stores.run(
                account, functools.partial(self.refusal_in, quota=quota, octets=size)
            )
            if full is not None:
                return full
        return None
