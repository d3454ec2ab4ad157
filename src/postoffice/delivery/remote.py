"""Remote delivery: queued mail to the mail hosts of other domains.

Owns ``RemoteDeliveryAgent``, the runner's ``RemoteSender``: for the
recipients of one message at one domain, it finds the next hops (a
mailertable route, else the smart host, else the domain's MX hosts, RFC 5321
§5.1), prepares the outgoing octets once (``delivery.outgoing``: sender
rewriting and DKIM), and runs one SMTP transaction with the first host that
takes the connection, reusing open connections to the same host.

Rules:
- Hosts are tried in order (MX preference, random among equals, at most
  ``max_mx_addresses`` addresses an attempt) until one gets as far as MAIL;
  a host that refuses the connection, the greeting, EHLO or TLS gives way to
  the next. What the chosen host says at MAIL, RCPT and the final dot is
  final for this attempt: 2xx delivered, 5xx bounced, 4xx deferred.
- A message the host cannot take unchanged is bounced, never sent broken:
  8-bit content to a host without 8BITMIME (RFC 6152 §3: ``554 5.6.3``), a
  UTF-8 address to a host without SMTPUTF8 (RFC 6531 §3.2: ``553 5.6.7``).
- At most ``max_per_destination`` connections to one destination at a time;
  an idle connection is kept ``IDLE_SECONDS`` for the next message to the
  same host, up to ``max_messages_per_connection`` transactions.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from postoffice.core.address import Address
from postoffice.core.clock import Clock
from postoffice.core.envelope import BodyType
from postoffice.core.maillog import log_delivery
from postoffice.core.reply import Reply
from postoffice.delivery.mx import MailTarget, RouteFailure, mail_hosts, relay_hosts
from postoffice.delivery.outgoing import OutgoingPreparer
from postoffice.delivery.resolver import Resolver
from postoffice.delivery.runner import RemoteOutcome, RemoteRecipient
from postoffice.delivery.smtp_session import SessionFailed, SessionPolicy, SmtpSession
from postoffice.directory.tables.mailertable import MailertableRoute, RelayHost
from postoffice.protocol.smtp.client import (
    ServerExtensions,
    Transaction,
    TransactionRecipient,
    needs_smtputf8,
)
from postoffice.queue import QueueEntry

COMPONENT = "smtp"
_BODY: dict[BodyType, Literal["7BIT", "8BITMIME", "BINARYMIME"]] = {
    BodyType.SEVEN_BIT: "7BIT",
    BodyType.EIGHT_BIT_MIME: "8BITMIME",
    BodyType.BINARY_MIME: "BINARYMIME",
}
IDLE_SECONDS = 5.0
TARGETS_SECONDS = 30.0  # how long found mail hosts are used without asking DNS again
MAX_KNOWN = 10_000  # destinations remembered at once
NO_8BITMIME = Reply(554, "5.6.3", "8-bit message content, and {host} does not support 8BITMIME")
NO_SMTPUTF8 = Reply(553, "5.6.7", "UTF-8 address, and {host} does not support SMTPUTF8")
NO_BINARYMIME = Reply(554, "5.6.3", "Binary content, and {host} does not support BINARYMIME")
SETUP_TIMEOUTS = 4  # greeting, EHLO, STARTTLS and AUTH: this many command timeouts at most
TRANSACTION_TIMEOUTS = 3  # a whole transaction, data included (Postfix: 300 s + 600 s)


@dataclass(frozen=True, slots=True)
class RemotePolicy:
    """The settings of remote delivery (``[delivery]``)."""

    helo_name: str
    smtp_port: int = 25
    tls: str = "may"
    tls_must_domains: frozenset[str] = frozenset()
    connect_timeout: float = 30.0
    command_timeout: float = 300.0
    bind_address: str | None = None
    max_per_destination: int = 20
    max_messages_per_connection: int = 100
    max_mx_addresses: int = 5
    relayhost: tuple[RelayHost, ...] = ()
    relay_username: str | None = None
    relay_password: str | None = None
    my_names: frozenset[str] = frozenset()
    my_addresses: frozenset[str] = frozenset()


@dataclass
class _Idle:
    """Open connections to one host waiting for their next message."""

    sessions: list[tuple[SmtpSession, float]] = field(default_factory=list)


class RemoteDeliveryAgent:
    """Sends queued messages to other mail hosts (see the module docstring)."""

    def __init__(
        self,
        *,
        resolver: Resolver,
        policy: RemotePolicy,
        preparer: OutgoingPreparer,
        clock: Clock,
        rng: random.Random | None = None,
    ):
        self.resolver = resolver
        self.policy = policy
        self.preparer = preparer
        self.clock = clock
        self.rng = rng or random.Random()
        # destination -> (its connection limit, one entry per delivery using it)
        self._limits: dict[str, tuple[asyncio.Semaphore, list[int]]] = {}
        self._idle: dict[tuple[str, int, str], _Idle] = {}
        self._closing: set[asyncio.Task[None]] = set()
        # (domain, route) -> (until, destination, hosts): found hosts, kept a while.
        self._known: dict[
            tuple[str, MailertableRoute | None], tuple[float, str, tuple[MailTarget, ...]]
        ] = {}
        self.connections = 0  # opened so far (tests and benchmarks read it)

    async def close(self) -> None:
        """QUIT every idle connection."""
        idle, self._idle = self._idle, {}
        sessions = [session for pool in idle.values() for session, _ in pool.sessions]
        await asyncio.gather(*(session.quit() for session in sessions), *self._closing)

    # -- one message, one destination -------------------------------------------------

    async def deliver(
        self,
        entry: QueueEntry,
        domain: str,
        route: MailertableRoute | None,
        recipients: Sequence[RemoteRecipient],
    ) -> dict[int, RemoteOutcome]:
        """A reply for every recipient in ``recipients`` (all at ``domain``)."""
        destination, targets = await self._targets(domain, route)
        if isinstance(targets, RouteFailure):
            return self._all(entry, recipients, targets.reply, None, relay="none")
        limit = self._limits.get(destination)
        if limit is None:
            if len(self._limits) >= MAX_KNOWN:  # forget destinations nobody is sending to
                for name, (_, users) in list(self._limits.items()):
                    if not users:
                        del self._limits[name]
            limit = self._limits[destination] = (
                asyncio.Semaphore(self.policy.max_per_destination),
                [],
            )
        semaphore, users = limit
        users.append(1)
        try:
            async with semaphore:
                return await self._deliver(entry, domain, route, recipients, targets)
        finally:
            users.pop()

    async def _targets(
        self, domain: str, route: MailertableRoute | None
    ) -> tuple[str, tuple[MailTarget, ...] | RouteFailure]:
        """The destination's name and its hosts; found hosts are remembered for
        ``TARGETS_SECONDS`` (a busy queue asks DNS once a while per domain)."""
        key = (domain, route)
        known = self._known.get(key)
        now = self.clock.monotonic()
        if known is not None and known[0] > now:
            return known[1], known[2]
        destination, found = await self._look_up(domain, route)
        if not isinstance(found, RouteFailure):
            if len(self._known) >= MAX_KNOWN:
                self._known.clear()
            self._known[key] = (now + TARGETS_SECONDS, destination, found)
        return destination, found

    async def _look_up(
        self, domain: str, route: MailertableRoute | None
    ) -> tuple[str, tuple[MailTarget, ...] | RouteFailure]:
        policy = self.policy
        if route is not None or policy.relayhost:
            hosts = route.hosts if route is not None else policy.relayhost
            destination = "relay:" + ",".join(str(host) for host in hosts)
            found = await relay_hosts(
                hosts,
                self.resolver,
                default_port=policy.smtp_port,
                max_addresses=policy.max_mx_addresses,
                rng=self.rng,
            )
        else:
            destination = domain
            found = await mail_hosts(
                domain,
                self.resolver,
                my_names=set(policy.my_names),
                my_addresses=set(policy.my_addresses),
                max_addresses=policy.max_mx_addresses,
                rng=self.rng,
                port=policy.smtp_port,
            )
        if isinstance(found, RouteFailure):
            return destination, found
        return destination, found.targets

    async def _deliver(
        self,
        entry: QueueEntry,
        domain: str,
        route: MailertableRoute | None,
        recipients: Sequence[RemoteRecipient],
        targets: tuple[MailTarget, ...],
    ) -> dict[int, RemoteOutcome]:
        message = await self.preparer.prepare(entry)
        eight_bit = not message.isascii()
        session_policy = self._session_policy(domain, route)
        last = Reply(451, "4.4.1", f"no mail host for {domain} could be reached")
        for target in targets:
            try:
                async with asyncio.timeout(SETUP_TIMEOUTS * self.policy.command_timeout):
                    session = await self._session(target, session_policy)
            except SessionFailed as failure:
                last = failure.reply
                continue
            except TimeoutError:
                last = Reply(451, "4.4.2", f"no usable session with {target.host} in time")
                continue
            extensions = session.extensions
            assert extensions is not None
            try:
                transaction = self._transaction(entry, recipients, len(message), extensions)
            except ValueError as exc:  # an envelope value no command may carry
                self._release(session)
                reply = Reply(554, "5.6.0", f"the envelope cannot be sent: {exc}")
                return self._all(entry, recipients, reply, None, relay="none")
            refusal: Reply | None = None
            if eight_bit and not extensions.eight_bit_mime:
                refusal = NO_8BITMIME
            elif entry.envelope.body is BodyType.BINARY_MIME and transaction.body is None:
                refusal = NO_BINARYMIME  # RFC 3030 §3: never sent by DATA, never changed
            elif needs_smtputf8(transaction) and not extensions.smtputf8:
                refusal = NO_SMTPUTF8
            if refusal is not None:
                self._release(session)
                reply = Reply(refusal.code, refusal.enhanced, refusal.text.format(host=target.host))
                return self._all(entry, recipients, reply, target.host, relay=session.where)
            indexes = [member.index for member in recipients]
            try:
                # The whole transaction is bounded too: a host that drips one
                # octet per command timeout would otherwise never time out.
                async with asyncio.timeout(TRANSACTION_TIMEOUTS * self.policy.command_timeout):
                    result = await session.send(transaction, indexes, message)
            except TimeoutError:
                session.abort()
                reply = Reply(451, "4.4.2", f"conversation with {session.where} took too long")
                return self._all(entry, recipients, reply, target.host, relay=session.where)
            except BaseException:
                session.abort()  # nothing half-used goes back to the pool
                raise
            if result.reusable:
                self._release(session)
            outcomes: dict[int, RemoteOutcome] = {}
            by_index = {member.index: member for member in recipients}
            for index, reply in result.replies.items():
                outcomes[index] = RemoteOutcome(reply, session.remote_mta, extensions.dsn)
                self._log(entry, by_index[index].recipient.address, reply, session.where)
            return outcomes
        return self._all(entry, recipients, last, None, relay="none")

    def _transaction(
        self,
        entry: QueueEntry,
        recipients: Sequence[RemoteRecipient],
        size: int,
        extensions: ServerExtensions,
    ) -> Transaction:
        envelope = entry.envelope
        body = None if envelope.body is None else _BODY[envelope.body]
        if not extensions.accepts_body(body):
            body = None  # BINARYMIME without CHUNKING: sent as DATA, checked as 8-bit
        sender = self.preparer.envelope_sender(entry)
        return Transaction(
            sender="" if sender is None else str(sender),
            recipients=tuple(
                TransactionRecipient(
                    address=str(member.recipient.address),
                    notify=(
                        None
                        if member.recipient.notify is None
                        else tuple(sorted(n.value for n in member.recipient.notify))
                    ),
                    orcpt=None if member.recipient.orcpt is None else str(member.recipient.orcpt),
                )
                for member in recipients
            ),
            size=size,
            body=body,
            smtputf8=envelope.smtputf8,
            ret=None if envelope.ret is None else envelope.ret.value,
            envid=envelope.envid,
        )

    def _session_policy(self, domain: str, route: MailertableRoute | None) -> SessionPolicy:
        policy = self.policy
        tls = "must" if domain in policy.tls_must_domains else policy.tls
        smart = route is None and bool(policy.relayhost)
        return SessionPolicy(
            helo_name=policy.helo_name,
            tls=tls,
            connect_timeout=policy.connect_timeout,
            command_timeout=policy.command_timeout,
            bind_address=policy.bind_address,
            username=policy.relay_username if smart else None,
            password=policy.relay_password if smart else None,
        )

    # -- connections ----------------------------------------------------------------------

    async def _session(self, target: MailTarget, policy: SessionPolicy) -> SmtpSession:
        key = _pool_key(target.address, target.port, policy)
        pool = self._idle.get(key)
        now = self.clock.now()
        while pool is not None and pool.sessions:
            session, since = pool.sessions.pop()
            if not pool.sessions:
                del self._idle[key]
            if now - since < IDLE_SECONDS and not session.closed and not session.pipe.ready():
                return session  # ready(): the host said something (421) or hung up
            self._quit_later(session)
        self.connections += 1
        return await SmtpSession.open(target.host, target.address, target.port, policy)

    def _release(self, session: SmtpSession) -> None:
        """Keep ``session`` for the next message to its host, or close it."""
        if session.closed:
            return
        if session.transactions >= self.policy.max_messages_per_connection:
            self._quit_later(session)
            return
        key = _pool_key(session.address, session.port, session.policy)
        pool = self._idle.setdefault(key, _Idle())
        since = self.clock.now()
        pool.sessions.append((session, since))
        loop = asyncio.get_running_loop()
        loop.call_later(IDLE_SECONDS, self._expire, key, session, since)

    def _expire(self, key: tuple[str, int, str], session: SmtpSession, since: float) -> None:
        """Close ``session`` if it is still idle since ``since`` (not reused meanwhile)."""
        pool = self._idle.get(key)
        if pool is None:
            return
        for index, (held, idle_since) in enumerate(pool.sessions):
            if held is session and idle_since == since:
                del pool.sessions[index]
                if not pool.sessions:
                    del self._idle[key]
                self._quit_later(session)
                return

    def _quit_later(self, session: SmtpSession) -> None:
        task = asyncio.ensure_future(session.quit())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    # -- outcomes and log lines ---------------------------------------------------------------

    def _all(
        self,
        entry: QueueEntry,
        recipients: Sequence[RemoteRecipient],
        reply: Reply,
        remote_mta: str | None,
        *,
        relay: str,
    ) -> dict[int, RemoteOutcome]:
        for member in recipients:
            self._log(entry, member.recipient.address, reply, relay)
        return {member.index: RemoteOutcome(reply, remote_mta) for member in recipients}

    def _log(self, entry: QueueEntry, recipient: Address, reply: Reply, relay: str) -> None:
        status = "sent" if reply.code < 400 else "deferred" if reply.code < 500 else "bounced"
        log_delivery(
            COMPONENT,
            entry.id,
            recipient=str(recipient),
            relay=relay,
            delay=max(0.0, self.clock.now() - entry.arrival),
            dsn=reply.enhanced or f"{reply.code // 100}.0.0",
            status=status,
            detail=str(reply),
        )


def _pool_key(address: str, port: int, policy: SessionPolicy) -> tuple[str, int, str]:
    """Idle connections are shared by host address, port, TLS policy and login."""
    return (address, port, policy.tls + (policy.username or ""))
