"""IMAP QUOTA (RFC 9208): GETQUOTA, GETQUOTAROOT, SETQUOTA, and the OVERQUOTA refusals.

What this module owns: carrying out the QUOTA commands against the
account's limits (``AccountDatabase.quota``) and its store's usage
(``FileMailStore.usage``, one aggregate query on the index), and the check
APPEND and COPY make before they write (``append_refusal``,
``copy_refusal``): ``NO [OVERQUOTA]`` (RFC 9208 §4.3, RFC 5530) and nothing
written.

Decisions:
- One quota root per user, named "" (as Dovecot's "User quota" is one root
  per user): every mailbox of the account has it (RFC 9208 §3.1), and its
  resources are STORAGE (the messages' sizes, reported in units of 1024
  octets, rounded up, RFC 9208 §5.1) and MESSAGE (the number of messages,
  §5.2), over all the user's mailboxes together.
- A resource with no limit (0 in the account) is left out of ``* QUOTA``;
  an account with no limit at all has no quota root: GETQUOTAROOT answers
  ``* QUOTAROOT mailbox`` with no root (the grammar allows none, and a
  ``* QUOTA`` must list at least one resource), GETQUOTA "" answers
  ``NO [NONEXISTENT]``.
- SETQUOTA is not offered (no QUOTASET capability): quotas are the
  administrator's (``postoffice user quota``); it is answered
  ``NO [NOPERM]``.
- MOVE never changes the usage of the one root, so it is never refused for
  quota (``Quota.exceeded_by``): an over-quota user can still move mail to
  Trash and expunge it.
- The check and the write are not one transaction: two sessions appending
  at the same moment may together pass a limit by one message each, as
  with Dovecot's quota plugin; the next addition is refused.
"""

from __future__ import annotations

from collections.abc import Collection

from postoffice.core.address import Address, parse_address
from postoffice.core.errors import AddressError, StoreError
from postoffice.core.quota import Quota, Usage
from postoffice.protocol.imap.mutf7 import encode_mutf7
from postoffice.protocol.imap.quota_commands import (
    GetQuota,
    GetQuotaRoot,
    SetQuota,
    quota_response,
    quotaroot_response,
)
from postoffice.protocol.imap.responses import encode_astring
from postoffice.server.imap_context import Reply, SessionState, store_failure

QUOTA_ROOT = ""  # the one root of every user (module docstring)
QuotaCommand = GetQuota | GetQuotaRoot | SetQuota
QUOTA_COMMANDS = (GetQuota, GetQuotaRoot, SetQuota)
CAPABILITIES = ("QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE")  # RFC 9208 §3.1, §5


def kib_up(octets: int) -> int:
    """Octets in units of 1024, rounded up (RFC 9208 §5.1 STORAGE usage)."""
    return -(-octets // 1024)


def _account(state: SessionState) -> Address | None:
    try:
        return parse_address(state.user) if state.user else None
    except AddressError:
        return None


def quota_of(state: SessionState) -> Quota:
    """The logged-in account's limits (cached by the account database)."""
    account = _account(state)
    return Quota() if account is None else state.ctx.accounts.quota(account)


def resources(quota: Quota, usage: Usage) -> list[tuple[str, int, int]]:
    """(name, usage, limit) of each limited resource, as ``* QUOTA`` lists them."""
    listed: list[tuple[str, int, int]] = []
    if quota.octets:  # RFC 9208 §5.1: STORAGE in units of 1024 octets
        listed.append(("STORAGE", kib_up(usage.octets), quota.octets // 1024))
    if quota.messages:  # RFC 9208 §5.2
        listed.append(("MESSAGE", usage.messages, quota.messages))
    return listed


async def do_quota(state: SessionState, command: QuotaCommand) -> Reply:
    """GETQUOTA, GETQUOTAROOT or SETQUOTA."""
    if isinstance(command, GetQuotaRoot):
        return await do_getquotaroot(state, command)
    if isinstance(command, GetQuota):
        return await do_getquota(state, command)
    return await do_setquota(state, command)


async def do_getquotaroot(state: SessionState, command: GetQuotaRoot) -> Reply:
    """RFC 9208 §4.1.2."""
    assert state.store is not None
    utf8 = state.conn.utf8  # the mailbox name as the client reads it (as LIST says it)
    name = encode_astring(command.mailbox if utf8 else encode_mutf7(command.mailbox), utf8=utf8)
    try:
        await state.store.status(command.mailbox, sync=False)  # it must exist
        quota = quota_of(state)
        usage = await state.store.usage() if quota.limited else Usage()
    except (StoreError, OSError) as exc:
        return store_failure(exc)
    if not quota.limited:
        state.conn.send(quotaroot_response(name, ()))
        return Reply("OK", "GETQUOTAROOT completed")
    state.conn.send(quotaroot_response(name, (QUOTA_ROOT,)))
    state.conn.send(quota_response(QUOTA_ROOT, resources(quota, usage)))
    return Reply("OK", "GETQUOTAROOT completed")


async def do_getquota(state: SessionState, command: GetQuota) -> Reply:
    """RFC 9208 §4.1.1."""
    assert state.store is not None
    quota = quota_of(state)
    if command.root != QUOTA_ROOT or not quota.limited:
        return Reply("NO", "No such quota root", "NONEXISTENT")
    try:
        usage = await state.store.usage()
    except (StoreError, OSError) as exc:
        return store_failure(exc)
    state.conn.send(quota_response(QUOTA_ROOT, resources(quota, usage)))
    return Reply("OK", "GETQUOTA completed")


async def do_setquota(state: SessionState, command: SetQuota) -> Reply:
    """RFC 9208 §4.1.3: not offered here (module docstring)."""
    return Reply("NO", "Quotas are set by the administrator", "NOPERM")


async def _refusal(state: SessionState, quota: Quota, octets: int, messages: int) -> Reply | None:
    assert state.store is not None
    usage = await state.store.usage()
    resource = quota.exceeded_by(usage, octets, messages)
    if resource is None:
        return None
    what = "storage" if resource == "STORAGE" else "message count"
    return Reply("NO", f"Quota exceeded ({what})", "OVERQUOTA")  # RFC 9208 §4.3


async def append_refusal(state: SessionState, sizes: Collection[int]) -> Reply | None:
    """``NO [OVERQUOTA]`` when messages of ``sizes`` octets would not fit; else None.
    Store errors pass to the caller."""
    quota = quota_of(state)
    if not quota.limited:
        return None
    return await _refusal(state, quota, sum(sizes), len(sizes))


async def copy_refusal(state: SessionState, mailbox: str, uids: Collection[int]) -> Reply | None:
    """The same for copies of ``uids`` of ``mailbox`` (their sizes from the index)."""
    quota = quota_of(state)
    if not quota.limited:
        return None
    assert state.store is not None
    wanted = set(uids)
    infos = await state.store.messages(mailbox, sync=False)
    sizes = [info.size for info in infos if info.uid in wanted]
    return await _refusal(state, quota, sum(sizes), len(sizes))
