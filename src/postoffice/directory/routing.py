"""The routing decision: where mail for one recipient goes. Nothing else decides it.

Owns ``route()``, a pure function of (recipient, sender, client, parsed table
snapshot, directory view, policy) and its result types. Every protocol (SMTP
RCPT, ``sendmail`` on the command line, ``postoffice explain``) calls it.

The order, after sendmail (cf/README "ANTI-SPAM CONFIGURATION CONTROL",
"FEATURES" virtusertable, aliases(5)):
1. access: ``Connect:`` for the client, ``From:`` for the sender, ``To:`` for
   the recipient. REJECT/ERROR refuse the recipient, DISCARD discards it,
   RELAY (``Connect:``, or ``To:`` with a domain or full-address key) is
   recorded as ``relay_allowed_by_access`` for the SMTP layer, which alone
   decides relaying (DESIGN.md §5). OK only accepts: "OK allows less than
   RELAY" (cf/README). A ``user@`` key never grants relaying: cf/README's
   RELAY names "the indicated domain (or address if `relaytofulladdress' is
   set)", and ``To:postmaster@ RELAY`` would otherwise relay to postmaster at
   every domain on the Internet.
2. local domain (``view.is_local_domain``): virtusertable, then aliases (keyed
   by the local part, the same for every local domain), then the account
   (``view.has_account``), else 550 5.1.1. With ``user+detail``: each of the
   virtusertable's own detail forms; aliases ``user+detail``, then the account
   ``user+detail``, then aliases ``user+*`` and ``user`` (cf/README "Plussed
   users") and the account ``user``; the detail is kept for local delivery
   through one-to-one rewrites (virtusertable, one-target aliases, the
   self-reference), and dropped by a list alias of several targets.
3. other domain: remote delivery with the mailertable route (None = MX lookup).

Expansion rules:
- A bare local name (``alice``) is qualified with ``policy.primary_domain`` and
  routed again; an address is routed again from step 2. ``%1``..``%3`` fill
  in the local part of a virtusertable target only (``tables/template.py``).
- Self-reference (``alice: alice, alice@remote.test``) and ``\\alice`` deliver
  to the account without further aliasing (aliases(5)).
- A cycle or a depth beyond ``max_alias_depth`` fails that branch with
  554 5.4.6; more than ``max_fanout`` final targets refuse the whole recipient
  with 552 5.5.3 (RFC 3463 §3.6: "too many recipients").
- ``|program`` and ``/file`` run only when the policy allows them AND the
  line is in the main aliases file: never from an ``:include:`` file, never
  from the virtusertable, never from text derived from the recipient.

Result invariants: deliveries are deduplicated; ``error`` is set when the
recipient as a whole is refused (by access, by the fan-out limit, or because
no branch delivered); ``failures`` name the branches that failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, NamedTuple

from postoffice.core.address import Address, canonical_domain, fold_local
from postoffice.core.errors import AddressError
from postoffice.core.reply import Replies, Reply
from postoffice.directory.tables.access import AccessAction, AccessKeyKind, AccessRule
from postoffice.directory.tables.aliases import AliasEntry, AliasTarget, AliasTargetKind
from postoffice.directory.tables.lines import Origin
from postoffice.directory.tables.mailertable import MailertableRoute
from postoffice.directory.tables.tableset import TableSnapshot
from postoffice.directory.view import DirectoryView

NullSender = Literal["<>"]
NULL_SENDER: Final[NullSender] = "<>"


class RoutingReplies:
    """The replies the routing decision gives (RFC 3463 enhanced codes)."""

    NO_SUCH_USER: Final = Replies.NO_SUCH_USER
    ALIAS_LOOP: Final = Replies.ALIAS_LOOP  # 5.4.6 routing loop detected
    TOO_MANY_RECIPIENTS: Final = Replies.TOO_MANY_RECIPIENTS  # 5.5.3
    PROGRAM_REFUSED: Final = Reply(550, "5.7.1", "Delivery to a program is not permitted here")
    FILE_REFUSED: Final = Reply(550, "5.7.1", "Delivery to a file is not permitted here")
    UNSAFE_TARGET: Final = Reply(550, "5.7.1", "Refused: target derived from the address")
    BAD_TARGET: Final = Reply(550, "5.1.3", "Bad destination mailbox address syntax")


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    primary_domain: str
    allow_program_targets: bool = False
    allow_file_targets: bool = False
    max_alias_depth: int = 20
    max_fanout: int = 1000
    detail_separator: str = "+"


@dataclass(frozen=True, slots=True)
class LocalDelivery:
    account: Address
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class RemoteDelivery:
    address: Address
    route: MailertableRoute | None = None  # None: look up the MX of the domain


@dataclass(frozen=True, slots=True)
class ProgramDelivery:
    command: str
    alias: str
    origin: Origin


@dataclass(frozen=True, slots=True)
class FileDelivery:
    path: str
    alias: str
    origin: Origin


Delivery = LocalDelivery | RemoteDelivery | ProgramDelivery | FileDelivery


class RoutingFailure(NamedTuple):
    """One branch that failed: the address (or target text) and the reply."""

    target: str
    reply: Reply


@dataclass(frozen=True, slots=True)
class TraceStep:
    """One step of the decision, for ``postoffice explain``."""

    source: str  # access, domain, virtusertable, aliases, account, mailertable, limit
    location: str | None  # "file:line" of the entry that matched
    matched: str
    result: str
    depth: int = 0


@dataclass(frozen=True, slots=True)
class RoutingResult:
    recipient: Address
    deliveries: tuple[Delivery, ...]
    failures: tuple[RoutingFailure, ...]
    error: Reply | None
    discard: bool
    relay_allowed_by_access: bool
    trace: tuple[TraceStep, ...]

    @property
    def accepted(self) -> bool:
        """True when the recipient may be accepted (delivered or silently discarded)."""
        return self.error is None


def route(
    recipient: Address,
    *,
    tables: TableSnapshot,
    view: DirectoryView,
    policy: RoutingPolicy,
    sender: Address | NullSender | None = None,
    client_ip: str | None = None,
    client_hostname: str | None = None,
) -> RoutingResult:
    """Decide where mail for ``recipient`` goes (see module doc). Pure: no I/O.

    ``sender`` is the envelope sender, ``"<>"`` for the null sender, None when
    unknown; ``client_ip``/``client_hostname`` describe the SMTP client.
    """
    router = _Router(tables, view, policy)
    early = router.check_access(recipient, sender, client_ip, client_hostname)
    if early is not None:
        return router.result(recipient, error=early[0], discard=early[1])
    router.expand(recipient, depth=0, chain=(), detail=None)
    return router.finish(recipient)


_DeliveryKey = tuple[str, str, str | None]


class _Router:
    """The mutable state of one ``route()`` call; never outlives it."""

    def __init__(self, tables: TableSnapshot, view: DirectoryView, policy: RoutingPolicy):
        self.tables = tables
        self.view = view
        self.policy = policy
        self.primary = canonical_domain(policy.primary_domain)
        self.sep = policy.detail_separator
        self.deliveries: dict[_DeliveryKey, Delivery] = {}
        self.failures: list[RoutingFailure] = []
        self.trace: list[TraceStep] = []
        self.relay_allowed = False
        self.visits = 0
        # Bound the work as well as the result: a wide alias tree whose
        # branches all end in the same few mailboxes is still bounded.
        self.max_visits = 4 * policy.max_fanout + 100
        self.overflow = False

    # -- access ---------------------------------------------------------------

    def check_access(
        self,
        recipient: Address,
        sender: Address | NullSender | None,
        client_ip: str | None,
        client_hostname: str | None,
    ) -> tuple[Reply | None, bool] | None:
        access = self.tables.access
        checks: list[tuple[str, str, AccessRule | None]] = []
        if client_ip is not None:
            client = f"{client_hostname} [{client_ip}]" if client_hostname else client_ip
            checks.append(("Connect", client, access.check_connect(client_ip, client_hostname)))
        if sender is not None:
            sender_address = None if sender == NULL_SENDER else sender
            shown = "<>" if sender_address is None else str(sender_address)
            checks.append(("From", shown, access.check_from(sender_address, self.sep)))
        checks.append(("To", str(recipient), access.check_to(recipient, self.sep)))
        for tag, subject, rule in checks:
            if rule is None or rule.action is AccessAction.SKIP:
                continue
            where = str(rule.origin)
            if rule.refuses and rule.reply is not None:
                self.step("access", where, f"{tag} {subject}: {rule.describe()}", str(rule.reply))
                return rule.reply, False
            if rule.action is AccessAction.DISCARD:
                self.step("access", where, f"{tag} {subject}: {rule.describe()}", "discard")
                return None, True
            if rule.action is AccessAction.RELAY and _grants_relay(tag, rule):
                self.relay_allowed = True
                outcome = "relaying allowed by access"
            else:
                outcome = "accepted by access (no relay permission)"
            self.step("access", where, f"{tag} {subject}: {rule.describe()}", outcome)
        return None

    # -- expansion --------------------------------------------------------------

    def tick(self) -> bool:
        """Count one unit of work; False (and ``overflow``) once the bound is passed."""
        self.visits += 1
        if self.visits > self.max_visits or len(self.deliveries) > self.policy.max_fanout:
            self.overflow = True
        return not self.overflow

    def expand(
        self, address: Address, *, depth: int, chain: tuple[str, ...], detail: str | None
    ) -> None:
        """Route ``address`` (a recipient or an expansion of one) from the top."""
        if not self.tick():
            return
        if depth > self.policy.max_alias_depth:
            self.fail(
                address,
                RoutingReplies.ALIAS_LOOP,
                depth,
                "limit",
                f"deeper than {self.policy.max_alias_depth} expansions",
            )
            return
        if address.key in chain:
            loop = " -> ".join([*chain[chain.index(address.key) :], address.key])
            self.fail(address, RoutingReplies.ALIAS_LOOP, depth, "limit", f"loop: {loop}")
            return
        chain = (*chain, address.key)
        if not self.view.is_local_domain(address.domain):
            self.remote(address, depth, chain, detail)
            return
        self.step("domain", None, str(address), f"{address.domain} is a local domain", depth)
        if self.virtual_user(address, depth, chain, detail):
            return
        self.alias_or_account(address, depth, chain, detail)

    def virtual_user(
        self, address: Address, depth: int, chain: tuple[str, ...], detail: str | None
    ) -> bool:
        """Apply the virtusertable; False when it has no entry (or points to itself)."""
        match = self.tables.virtusertable.lookup(address, self.sep)
        if match is None:
            return False
        where = str(match.entry.origin)
        shown = f"{match.entry.key} {match.entry.target}"
        if match.reply is not None:
            self.step("virtusertable", where, shown, str(match.reply), depth)
            self.failures.append(RoutingFailure(str(address), match.reply))
            return True
        target = match.target or ""
        try:
            new = match.address(default_domain=self.primary)
        except AddressError:
            self.fail(
                address,
                RoutingReplies.BAD_TARGET,
                depth,
                "virtusertable",
                f"{shown} gave {target!r}",
                where,
            )
            return True
        if new.local.lower().startswith(("|", "/", "\\", ":include:")):
            # Only %1..%3 can produce these: text from the network never runs
            # (it would only name a mailbox, but say plainly that it is refused).
            self.fail(
                address,
                RoutingReplies.UNSAFE_TARGET,
                depth,
                "virtusertable",
                f"{shown} gave {target!r}",
                where,
            )
            return True
        if new.key == address.key:
            # sendmail's "stop one level recursion": an entry that maps an
            # address to itself hands it on to the aliases and the mailbox.
            self.step("virtusertable", where, shown, f"{new} (itself: no further lookup)", depth)
            return False
        self.step("virtusertable", where, shown, str(new), depth)
        inherited = None if match.target_uses_detail else (match.stripped_detail or detail)
        self.expand(new, depth=depth + 1, chain=chain, detail=inherited)
        return True

    def alias_or_account(
        self, address: Address, depth: int, chain: tuple[str, ...], detail: str | None
    ) -> None:
        user, own_detail = address.split_detail(self.sep)
        entry = self.tables.aliases.lookup(address.local_key)
        if entry is not None:
            self.expand_alias(entry, address, depth, chain, detail)
            return
        if self.deliver_to_mailbox(address, detail, depth, fail=own_detail is None):
            return
        if own_detail is None:
            return
        # cf/README "Plussed users": user+detail, then user+*, then user.
        for name in (f"{fold_local(user)}+*", fold_local(user)):
            entry = self.tables.aliases.lookup(name)
            if entry is not None:
                self.expand_alias(entry, address, depth, chain, own_detail)
                return
        self.deliver_to_mailbox(
            address.with_local(user), own_detail, depth, fail=True, shown=address
        )

    def deliver_to_mailbox(
        self,
        address: Address,
        detail: str | None,
        depth: int,
        *,
        fail: bool,
        shown: Address | None = None,
    ) -> bool:
        """Deliver to the account ``address`` if there is one; else fail if asked to."""
        if self.view.has_account(address):
            self.add(LocalDelivery(address, detail))
            suffix = f" (detail {detail!r})" if detail else ""
            self.step("account", None, str(address), f"deliver to mailbox{suffix}", depth)
            return True
        if fail:
            self.fail(
                shown or address,
                RoutingReplies.NO_SUCH_USER,
                depth,
                "account",
                "no virtusertable entry, alias or account",
            )
        return False

    def expand_alias(
        self,
        entry: AliasEntry,
        address: Address,
        depth: int,
        chain: tuple[str, ...],
        detail: str | None,
    ) -> None:
        shown = ", ".join(str(target) for target in entry.targets[:5])
        if len(entry.targets) > 5:
            shown += f", ... ({len(entry.targets)} targets)"
        self.step("aliases", str(entry.origin), f"{entry.name}:", shown, depth)
        # The detail survives a one-to-one alias (a rename of the mailbox) and a
        # self-reference; a list distributes to other mailboxes and drops it.
        passed = detail if len(entry.targets) == 1 else None
        for target in entry.targets:
            if self.overflow:
                return
            self.alias_target(entry, target, address, depth, chain, detail, passed)

    def alias_target(
        self,
        entry: AliasEntry,
        target: AliasTarget,
        address: Address,
        depth: int,
        chain: tuple[str, ...],
        detail: str | None,
        passed: str | None,
    ) -> None:
        where = str(target.origin)
        if target.kind in (AliasTargetKind.PROGRAM, AliasTargetKind.FILE):
            # These end here without expand(): count them, or a long list of
            # refused programs would cost unbounded work on every RCPT.
            if self.tick():
                self.program_or_file(entry, target, depth)
            return
        if target.kind is AliasTargetKind.ADDRESS and target.address is not None:
            new = target.address
            itself = new.key == address.key or (
                new.local_key == entry.name and self.view.is_local_domain(new.domain)
            )
        else:
            new = Address(target.text, self.primary)
            itself = target.no_alias or fold_local(target.text) == entry.name
        if itself:
            if not self.tick():
                return
            # aliases(5): a name in its own list (or \name) is the mailbox itself.
            self.step("aliases", where, str(target), f"{new}: the mailbox itself", depth + 1)
            self.deliver_to_mailbox(new, detail, depth + 1, fail=True)
            return
        self.expand(new, depth=depth + 1, chain=chain, detail=passed)

    def program_or_file(self, entry: AliasEntry, target: AliasTarget, depth: int) -> None:
        is_program = target.kind is AliasTargetKind.PROGRAM
        allowed = (
            self.policy.allow_program_targets if is_program else self.policy.allow_file_targets
        )
        where = str(target.origin)
        reply = RoutingReplies.PROGRAM_REFUSED if is_program else RoutingReplies.FILE_REFUSED
        kind = "program" if is_program else "file"
        if not allowed:
            reason = f"{kind} targets are disabled by the routing policy"
        elif target.from_include:
            reason = f"{kind} targets are not honoured from :include: files"
        else:
            delivery: Delivery = (
                ProgramDelivery(target.text, entry.name, target.origin)
                if is_program
                else FileDelivery(target.text, entry.name, target.origin)
            )
            self.add(delivery)
            self.step("aliases", where, str(target), f"deliver to {kind}", depth + 1)
            return
        self.step("aliases", where, str(target), f"refused: {reason}: {reply}", depth + 1)
        self.failures.append(RoutingFailure(str(target), reply))

    def remote(
        self, address: Address, depth: int, chain: tuple[str, ...], detail: str | None
    ) -> None:
        route_ = self.tables.mailertable.lookup(address.domain)
        if route_ is None:
            self.add(RemoteDelivery(address, None))
            self.step("domain", None, str(address), "remote: deliver by MX lookup", depth)
            return
        where = str(route_.origin)
        shown = f"{route_.key} {route_}"
        if route_.reply is not None:
            self.step("mailertable", where, shown, str(route_.reply), depth)
            self.failures.append(RoutingFailure(str(address), route_.reply))
            return
        if route_.mailer == "local":
            new = Address(route_.local_user or address.local, self.primary)
            self.step("mailertable", where, shown, f"local: {new}", depth)
            self.expand(new, depth=depth + 1, chain=chain, detail=detail)
            return
        self.add(RemoteDelivery(address, route_))
        self.step("mailertable", where, shown, f"remote via {route_}", depth)

    # -- bookkeeping ------------------------------------------------------------

    def add(self, delivery: Delivery) -> None:
        key: _DeliveryKey
        if isinstance(delivery, LocalDelivery):
            key = ("local", delivery.account.key, delivery.detail)
        elif isinstance(delivery, RemoteDelivery):
            key = ("remote", delivery.address.key, None)
        elif isinstance(delivery, ProgramDelivery):
            key = ("program", delivery.command, None)
        else:
            key = ("file", delivery.path, None)
        self.deliveries.setdefault(key, delivery)

    def fail(
        self,
        address: Address,
        reply: Reply,
        depth: int,
        source: str,
        why: str,
        where: str | None = None,
    ) -> None:
        self.failures.append(RoutingFailure(str(address), reply))
        self.step(source, where, str(address), f"{why}: {reply}", depth)

    def step(
        self, source: str, where: str | None, matched: str, result: str, depth: int = 0
    ) -> None:
        self.trace.append(TraceStep(source, where, matched, result, depth))

    def finish(self, recipient: Address) -> RoutingResult:
        if self.overflow or len(self.deliveries) > self.policy.max_fanout:
            reply = RoutingReplies.TOO_MANY_RECIPIENTS
            self.step(
                "limit",
                None,
                str(recipient),
                f"more than {self.policy.max_fanout} targets: {reply}",
            )
            self.deliveries.clear()
            return self.result(recipient, error=reply, discard=False)
        error = None
        if not self.deliveries and self.failures:
            error = self.failures[0].reply
        return self.result(recipient, error=error, discard=False)

    def result(self, recipient: Address, *, error: Reply | None, discard: bool) -> RoutingResult:
        return RoutingResult(
            recipient=recipient,
            deliveries=tuple(self.deliveries.values()),
            failures=tuple(self.failures),
            error=error,
            discard=discard,
            relay_allowed_by_access=self.relay_allowed,
            trace=tuple(self.trace),
        )


def _grants_relay(tag: str, rule: AccessRule) -> bool:
    """Whether a RELAY rule found for ``tag`` lets the client relay (module doc, step 1)."""
    if tag == "Connect":
        return True
    # cf/README: RELAY "Accept mail addressed to the indicated domain (or address
    # if `relaytofulladdress' is set)"; a "user@" key is only a username check.
    return tag == "To" and rule.key.kind in (AccessKeyKind.HOST, AccessKeyKind.ADDRESS)
