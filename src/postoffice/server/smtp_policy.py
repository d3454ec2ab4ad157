"""Who may send what through the ``smtp`` role: the answers to MAIL, RCPT, VRFY, EXPN.

Owns the relay decision and the sendmail ``access`` meanings at connect,
MAIL and RCPT (DESIGN.md §5, issue 3):
- mail for local domains is accepted from anyone; an unknown local
  recipient is refused at RCPT (``550 5.1.1``), so nothing is ever bounced
  later to a forged sender;
- relaying to other domains only for trusted networks (``mynetworks``),
  ``access`` RELAY entries and authenticated sessions; everyone else gets
  ``554 5.7.1 Relay access denied`` (or ``454 4.7.1`` by config);
- the relay check reads the same ``RoutingResult`` the router produced for
  the same parsed address, so the two cannot disagree;
- a recipient that is one local mailbox, over its quota, is refused at RCPT
  (``on_rcpt_quota``: 452 4.2.2, or 552 5.2.2 by config), so the sender
  keeps the message rather than the queue holding it; an alias that fans
  out is accepted (local delivery refuses the full member's copy alone);
- ``access`` REJECT and ERROR refuse with their reply; DISCARD accepts and
  drops (the session remembers which recipients, or all of them after a
  DISCARD at connect or MAIL).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from postoffice.config.model import Config
from postoffice.core.address import Address, parse_address
from postoffice.core.errors import AddressError
from postoffice.core.reply import Replies, Reply
from postoffice.delivery.quota import QuotaGuard
from postoffice.directory.directory import Directory
from postoffice.directory.routing import NULL_SENDER, LocalDelivery, RemoteDelivery
from postoffice.directory.tables.access import AccessAction
from postoffice.mime.submission import header_senders

RECIPIENT_OK = Reply(250, "2.1.5", "Ok")
# RFC 6409 §4.3 and §5.1 (the MSA may refuse a sender the user may not use)
SENDER_NOT_OWNED = Reply(553, "5.7.1", "Sender address rejected: not owned by the logged in user")
FROM_NOT_OWNED = Reply(553, "5.7.1", "From: header address not owned by the logged in user")
SENDER_OK = Reply(250, "2.1.0", "Ok")
RELAY_DENIED_TEMPORARY = Reply(454, "4.7.1", "Relay access denied")
LOOPBACK_V4 = ipaddress.ip_network("127.0.0.0/8")
LOOPBACK_V6 = ipaddress.ip_network("::1/128")


@dataclass
class ClientFacts:
    """What the policy knows about the client of one session."""

    ip: str
    hostname: str | None = None
    trusted: bool = False
    authenticated_as: str | None = None
    discard_all: bool = False  # an access DISCARD at connect or MAIL
    submission: bool = False  # the submission roles: senders must be the user's own


@dataclass(frozen=True, slots=True)
class Verdict:
    reply: Reply
    discard: bool = False
    mailboxes: tuple[Address, ...] = ()  # local accounts with a quota to check (``quota``)


def is_loopback(ip: str) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return address in LOOPBACK_V4 or address in LOOPBACK_V6


class SmtpPolicy:
    """The decisions of the ``smtp`` role, over one ``Directory``."""

    def __init__(self, directory: Directory, config: Config, quota: QuotaGuard | None = None):
        self.directory = directory
        self.config = config
        self.quota = quota
        self.networks = [ipaddress.ip_network(n, strict=False) for n in config.relay.mynetworks]

    def is_trusted(self, ip: str) -> bool:
        """In ``mynetworks`` (DESIGN.md §5: by default this host only)."""
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def on_connect(self, client: ClientFacts) -> Reply | None:
        """``Connect:`` access rules; a reply refuses the whole session (554 greeting)."""
        rule = self.directory.tables.snapshot().access.check_connect(client.ip, client.hostname)
        if rule is None:
            return None
        if rule.refuses and rule.reply is not None:
            return rule.reply
        if rule.action is AccessAction.DISCARD:
            client.discard_all = True
        return None

    def on_mail(self, client: ClientFacts, sender: Address | None) -> Reply:
        """``From:`` access rules at MAIL (sendmail check_mail); on the submission
        roles, only a sender the logged-in user owns (``owns``)."""
        if client.submission and not self.owns(client.authenticated_as, sender):
            return SENDER_NOT_OWNED
        rule = self.directory.tables.snapshot().access.check_from(
            sender, self.config.directory.detail_separator
        )
        if rule is not None and rule.refuses and rule.reply is not None:
            return rule.reply
        if rule is not None and rule.action is AccessAction.DISCARD:
            client.discard_all = True
        return SENDER_OK

    def on_header(self, client: ClientFacts, head: bytes) -> Reply | None:
        """Submission: every ``From:`` author must be the logged-in user's own (as the
        envelope sender must); the refusal, or None. ``head`` is the message's start."""
        if not client.submission:
            return None
        for text in header_senders(head):
            try:
                author = parse_address(text, default_domain=self.config.primary_domain)
            except AddressError:
                return FROM_NOT_OWNED
            if not self.owns(client.authenticated_as, author):
                return FROM_NOT_OWNED
        return None

    def on_rcpt(self, client: ClientFacts, sender: Address | None, recipient: Address) -> Verdict:
        """Access, routing and relay permission for one recipient (sendmail check_rcpt)."""
        result = self.directory.route(
            recipient,
            sender=NULL_SENDER if sender is None else sender,
            client_ip=client.ip,
            client_hostname=client.hostname,
        )
        local = self.directory.is_local_domain(recipient.domain)
        if not local and not (
            client.trusted or client.authenticated_as or result.relay_allowed_by_access
        ):
            if self.config.smtp.relay_denied_temporary:
                return Verdict(RELAY_DENIED_TEMPORARY)
            return Verdict(Replies.RELAY_DENIED)
        if result.error is not None:
            return Verdict(result.error)
        if result.discard or client.discard_all:
            return Verdict(RECIPIENT_OK, discard=True)
        if self.quota is not None and len(result.deliveries) == 1:
            # Only a recipient that is one local mailbox: an alias that fans out is
            # accepted, and local delivery defers or bounces the full member's copy
            # alone (refused here, it would hold the mail back from every member).
            (only,) = result.deliveries
            if isinstance(only, LocalDelivery):
                mailbox = Address(only.account.local_key, only.account.domain)
                return Verdict(RECIPIENT_OK, mailboxes=(mailbox,))
        return Verdict(RECIPIENT_OK)

    async def on_rcpt_quota(self, verdict: Verdict, declared_size: int | None) -> Verdict:
        """An accepted recipient whose mailbox is full: ``452 4.2.2`` (or ``552 5.2.2``
        by ``[smtp] over_quota``, ``delivery.quota``); other verdicts pass unchanged."""
        if self.quota is None or not verdict.mailboxes or verdict.reply.code // 100 != 2:
            return verdict
        full = await self.quota.rcpt_refusal(verdict.mailboxes, declared_size)
        return verdict if full is None else Verdict(full)

    def owns(self, login: str | None, sender: Address | None) -> bool:
        """Whether the user ``login`` (an address key) may send as ``sender``: their own
        address, or one that the aliases or virtusertable deliver to them (and to
        others, for a list they are on). The null sender is anyone's."""
        if login is None:
            return False
        if sender is None or sender.key == login:
            return True
        result = self.directory.route(sender)
        return any(
            isinstance(delivery, LocalDelivery) and delivery.account.key == login
            for delivery in result.deliveries
        )

    def login_address(self, username: str) -> Address | None:
        """The account a SASL user name names (a bare name is in the primary domain)."""
        try:
            return parse_address(username, default_domain=self.config.primary_domain)
        except AddressError:
            return None

    def on_expand(self, client: ClientFacts, text: str) -> Reply:
        """EXPN for trusted clients: the mailboxes a local name expands to (RFC 5321 §3.5.2)."""
        try:
            address = parse_address(
                text.strip().removeprefix("<").removesuffix(">"),
                default_domain=self.config.primary_domain,
            )
        except AddressError:
            return Reply(501, "5.5.4", "Syntax: EXPN list")
        result = self.directory.route(address, client_ip=client.ip, client_hostname=client.hostname)
        if result.error is not None:
            return result.error
        names = []
        for delivery in result.deliveries:
            if isinstance(delivery, LocalDelivery):
                names.append(f"<{delivery.account}>")
            elif isinstance(delivery, RemoteDelivery):
                names.append(f"<{delivery.address}>")
        if not names:
            return Reply(550, "5.1.1", "No such mailing list")
        return Reply(250, "2.1.5", "\n".join(names))
