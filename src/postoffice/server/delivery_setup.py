"""The queue runner of a serving process, built from the configuration.

Owns ``build_queue_runner``: local delivery, remote delivery (the resolver
from ``[delivery] nameservers``, the SMTP client's policy, the smart host),
DKIM signing from ``[dkim]``, bounces and the retry schedule from
``[queue]``, put together as one ``QueueRunner``.

This host's own names and addresses (the RFC 5321 §5.1 MX loop check) are
its hostname and the addresses its ``smtp`` listeners are bound to.
"""

from __future__ import annotations

import ipaddress
import logging

from postoffice.config.loader import LoadedConfig
from postoffice.config.model import Config, parse_endpoint
from postoffice.core.clock import Clock
from postoffice.core.maillog import log_event
from postoffice.delivery.bounce import Bouncer
from postoffice.delivery.local import LocalDeliveryAgent
from postoffice.delivery.outgoing import OutgoingPreparer
from postoffice.delivery.remote import RemoteDeliveryAgent, RemotePolicy
from postoffice.delivery.resolver import (
    DnsError,
    DnsPythonResolver,
    Resolver,
    UnavailableResolver,
)
from postoffice.delivery.runner import QueueRunner
from postoffice.directory.directory import Directory
from postoffice.directory.tables.mailertable import parse_relay_hosts
from postoffice.mailauth.dkim_sign import DkimSigner
from postoffice.queue import Queue, RetryPolicy
from postoffice.store import StoreFactory

COMPONENT = "master"


def retry_policy(config: Config) -> RetryPolicy:
    settings = config.queue
    return RetryPolicy(
        minimal_backoff=settings.minimal_backoff,
        maximal_backoff=max(settings.maximal_backoff, settings.minimal_backoff),
        maximal_queue_lifetime=settings.maximal_queue_lifetime,
        bounce_queue_lifetime=settings.bounce_queue_lifetime,
        delay_warning=settings.delay_warning or None,
    )


def remote_policy(config: Config, smtp_addresses: set[str]) -> RemotePolicy:
    """``[delivery]`` as the remote agent's policy; ``ConfigError`` for a bad relayhost."""
    settings = config.delivery
    relayhost = (
        parse_relay_hosts(settings.relayhost, source="[delivery] relayhost")
        if settings.relayhost
        else ()
    )
    addresses = set(smtp_addresses)
    if settings.bind_address:
        addresses.add(settings.bind_address)
    addresses = {a for a in addresses if not _unspecified(a)}
    return RemotePolicy(
        helo_name=settings.helo_name or config.hostname,
        smtp_port=settings.smtp_port,
        tls=settings.tls,
        tls_must_domains=frozenset(settings.tls_must_domains),
        connect_timeout=settings.connect_timeout,
        command_timeout=settings.command_timeout,
        bind_address=settings.bind_address or None,
        max_per_destination=settings.max_per_destination,
        max_messages_per_connection=settings.max_messages_per_connection,
        max_mx_addresses=settings.max_mx_addresses,
        relayhost=relayhost,
        relay_username=settings.relayhost_username or None,
        relay_password=settings.relayhost_password or None,
        my_names=frozenset({config.hostname}),
        my_addresses=frozenset(addresses),
    )


def _unspecified(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_unspecified
    except ValueError:
        return True


def build_queue_runner(
    loaded: LoadedConfig,
    *,
    queue: Queue,
    directory: Directory,
    stores: StoreFactory,
    clock: Clock,
    smtp_addresses: set[str] | None = None,
) -> QueueRunner:
    config, paths = loaded.config, loaded.paths
    if smtp_addresses is None:
        smtp_addresses = {parse_endpoint(e)[0] for e in config.listen.smtp}
    policy = retry_policy(config)
    local = LocalDeliveryAgent(
        queue=queue,
        stores=stores,
        clock=clock,
        loop_received_limit=config.smtp.loop_received_headers,
        accounts=directory.accounts,  # quotas at delivery (delivery.quota)
        over_quota_reject=config.smtp.over_quota == "reject",
    )
    nameservers = [parse_endpoint(e) for e in config.delivery.nameservers] or None
    # Answers are kept for their TTL: a busy queue asks once per domain, not per message.
    resolver: Resolver
    try:
        resolver = DnsPythonResolver(
            nameservers=nameservers, timeout=config.delivery.dns_timeout, cache=True
        )
    except DnsError as exc:  # the server still serves and delivers locally
        log_event(COMPONENT, f"remote delivery has no DNS: {exc}", level=logging.ERROR)
        resolver = UnavailableResolver(str(exc))
    signer = DkimSigner(paths.dkim_keys_dir, config.dkim.selector) if config.dkim.sign else None
    remote = RemoteDeliveryAgent(
        resolver=resolver,
        policy=remote_policy(config, smtp_addresses),
        preparer=OutgoingPreparer(queue=queue, directory=directory, signer=signer),
        clock=clock,
    )
    bouncer = Bouncer(
        queue=queue,
        hostname=config.hostname,
        clock=clock,
        size_limit=config.queue.bounce_size_limit,
        retry_policy=policy,
    )
    return QueueRunner(
        queue=queue,
        directory=directory,
        local=local,
        remote=remote,
        notices=bouncer,
        clock=clock,
        retry_policy=policy,
        concurrency=config.queue.max_deliveries,
    )
