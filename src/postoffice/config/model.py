"""The typed configuration of postoffice: one TOML file, these models.

Every section forbids unknown keys, so a misspelt key is an error that names
the key, never a silently ignored setting. Paths are stored as written; the
loader resolves relative paths against ``data_dir`` (which itself is resolved
against the config file's folder) and records the result in ``Paths``.

Only settings that some code reads live here: later issues add their keys.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from postoffice.core.address import canonical_domain
from postoffice.core.errors import AddressError

PROTOCOLS = ("smtp", "submission", "submissions", "pop3", "pop3s", "imap", "imaps", "http")
Protocol = Literal["smtp", "submission", "submissions", "pop3", "pop3s", "imap", "imaps", "http"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_endpoint(text: str) -> tuple[str, int]:
    """``127.0.0.1:2525`` or ``[::1]:2525`` -> (host, port); ValueError otherwise."""
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise ValueError(f"expected [IPv6]:PORT, got {text!r}")
        ipaddress.IPv6Address(host)
    else:
        host, sep, port = text.rpartition(":")
        if not sep or not host:
            raise ValueError(f"expected HOST:PORT, got {text!r}")
    # Port 0 asks the system for any free port (the maillog names the one chosen).
    if not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"port must be 0-65535, got {port!r}")
    return host, int(port)


class ListenConfig(_Section):
    """Listeners by protocol role, each a list of ``HOST:PORT`` endpoints."""

    smtp: list[str] = Field(default_factory=list)
    submission: list[str] = Field(default_factory=list)
    submissions: list[str] = Field(default_factory=list)
    pop3: list[str] = Field(default_factory=list)
    pop3s: list[str] = Field(default_factory=list)
    imap: list[str] = Field(default_factory=list)
    imaps: list[str] = Field(default_factory=list)
    http: list[str] = Field(default_factory=list)

    @field_validator("*")
    @classmethod
    def _endpoints(cls, value: list[str]) -> list[str]:
        for endpoint in value:
            parse_endpoint(endpoint)
        return value

    def endpoints(self) -> list[tuple[str, str, int]]:
        """Every (protocol, host, port), in protocol order."""
        out = []
        for proto in PROTOCOLS:
            for endpoint in getattr(self, proto):
                host, port = parse_endpoint(endpoint)
                out.append((proto, host, port))
        return out


class TlsConfig(_Section):
    cert: str = "etc/tls/cert.pem"
    key: str = "etc/tls/key.pem"


class StoreConfig(_Section):
    format: Literal["maildir", "mbox"] = "maildir"
    fsync: bool = True


class TablesConfig(_Section):
    dir: str = "etc/mail"


class AliasesConfig(_Section):
    """Whether alias targets may run programs or write files (sendmail ``|cmd``, ``/file``)."""

    allow_program_targets: bool = False
    allow_file_targets: bool = False
    max_depth: int = Field(default=20, ge=1, le=100)
    max_fanout: int = Field(default=1000, ge=1, le=100_000)


class RelayConfig(_Section):
    """Trusted networks (DESIGN.md §5: default is the host itself)."""

    mynetworks: list[str] = Field(default_factory=lambda: ["127.0.0.1/32", "::1/128"])

    @field_validator("mynetworks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for net in value:
            ipaddress.ip_network(net, strict=False)
        return value


class LogConfig(_Section):
    maillog: str = "log/maillog"
    level: Literal["debug", "info", "warning", "error"] = "info"


class SmtpConfig(_Section):
    """SMTP server limits and policy; defaults follow Postfix's (postconf(5))."""

    max_message_size: int = Field(default=10 * 1024 * 1024, ge=1024)  # message_size_limit
    max_line_length: int = Field(default=2048, ge=512, le=65536)  # line_length_limit
    max_recipients: int = Field(default=1000, ge=1, le=100_000)  # smtpd_recipient_limit
    max_connections_per_client: int = Field(default=50, ge=1, le=65535)  # ..._count_limit
    max_errors: int = Field(default=20, ge=1)  # smtpd_hard_error_limit
    tarpit_after_errors: int = Field(default=10, ge=1)  # smtpd_soft_error_limit
    tarpit_delay: float = Field(default=1.0, ge=0, le=60)  # smtpd_error_sleep_time
    idle_timeout: float = Field(default=300.0, gt=0)  # smtpd_timeout
    min_data_rate: int = Field(default=500, ge=0)  # smtpd_min_data_rate, octets/s
    max_received_headers: int = Field(default=100, ge=10)  # refused at receipt
    loop_received_headers: int = Field(default=50, ge=5)  # hopcount_limit: loop at delivery
    vrfy_enabled: bool = True  # VRFY answers 252; false: 502
    expn_for_trusted: bool = False  # EXPN for mynetworks clients; others always get 502
    relay_denied_temporary: bool = False  # true: 454 4.7.1 instead of 554 5.7.1
    # A local mailbox over quota: 452 4.2.2 ("defer") or 552 5.2.2 ("reject"), at RCPT
    # and at delivery (RFC 3463 X.2.2 "mailbox full").
    over_quota: Literal["defer", "reject"] = "defer"
    plaintext_auth_on_loopback: bool = False  # AUTH without TLS from 127.0.0.0/8 and ::1
    login_failure_delay: float = Field(default=2.0, ge=0, le=60)  # a failed AUTH waits...
    login_failure_delay_max: float = Field(default=15.0, ge=0, le=600)  # ...doubling to this
    # The Received: header of an authenticated submission names the client's
    # HELO, reverse name and address ("full"), or withholds them ("withhold").
    submission_received: Literal["full", "withhold"] = "full"


class Pop3Config(_Section):
    """POP3 server limits and policy; defaults follow Dovecot's (and RFC 1939)."""

    # RFC 1939 §3: the autologout timer "MUST be of at least 10 minutes"; a
    # shorter one is allowed for tests and for hosts that accept the risk.
    idle_timeout: float = Field(default=600.0, gt=0)
    max_line_length: int = Field(default=1024, ge=255, le=65536)  # RFC 2449 §4: 255 at least
    max_connections_per_client: int = Field(default=10, ge=1, le=65535)
    max_errors: int = Field(default=20, ge=1)
    plaintext_auth_on_loopback: bool = False  # USER/PASS and AUTH without TLS from loopback
    login_failure_delay: float = Field(default=2.0, ge=0, le=60)  # auth_failure_delay
    login_failure_delay_max: float = Field(default=15.0, ge=0, le=600)
    expire: str | None = None  # CAPA EXPIRE (RFC 2449 §6.7): "NEVER" or days; None: not said
    login_delay: int | None = Field(default=None, ge=0)  # CAPA LOGIN-DELAY seconds

    @field_validator("expire")
    @classmethod
    def _expire(cls, value: str | None) -> str | None:
        if value is not None and value != "NEVER" and not value.isdigit():
            raise ValueError('expire must be "NEVER" or a number of days')
        return value


class ImapConfig(_Section):
    """IMAP server limits and policy; defaults follow Dovecot's and the issue's figures."""

    # RFC 9051 §5.4: an autologout timer of at least 30 minutes outside IDLE.
    idle_timeout: float = Field(default=1800.0, gt=0)
    max_connections_per_client: int = Field(default=10, ge=1, le=65535)  # per user and address
    plaintext_auth_on_loopback: bool = False  # LOGIN / AUTHENTICATE without TLS from loopback
    login_failure_delay: float = Field(default=2.0, ge=0, le=60)
    login_failure_delay_max: float = Field(default=15.0, ge=0, le=600)
    append_limit: int = Field(default=50 * 1024 * 1024, ge=1024)  # RFC 7889 APPENDLIMIT
    max_bad_before_login: int = Field(default=3, ge=1)
    max_bad_after_login: int = Field(default=20, ge=1)


class QueueConfig(_Section):
    """The retry schedule of deferred mail, in seconds (Postfix's names and defaults)."""

    minimal_backoff: float = Field(default=300.0, ge=0)  # minimal_backoff_time
    maximal_backoff: float = Field(default=4000.0, ge=0)  # maximal_backoff_time
    maximal_queue_lifetime: float = Field(default=5 * 86400.0, ge=0)  # ... then it bounces
    bounce_queue_lifetime: float = Field(default=5 * 86400.0, ge=0)  # for mail from <>
    delay_warning: float = Field(default=0.0, ge=0)  # delay_warning_time; 0: no warning
    bounce_size_limit: int = Field(default=50_000, ge=0)  # larger returns send headers only
    max_deliveries: int = Field(default=32, ge=1, le=1000)  # messages in delivery at once


class DeliveryConfig(_Section):
    """Delivery to other mail hosts: DNS, the SMTP client, TLS and the smart host."""

    # A smart host for all remote mail, mailertable syntax: "[smart.test]:587"
    # (no MX lookup) or "relay.test" (its MX). Empty: deliver by MX.
    relayhost: str = ""
    relayhost_username: str = ""
    relayhost_password: str = ""
    smtp_port: int = Field(default=25, ge=1, le=65535)  # where MX hosts are reached
    bind_address: str = ""  # local address for outgoing connections; empty: any
    helo_name: str = ""  # EHLO name; empty: the hostname
    nameservers: list[str] = Field(default_factory=list)  # "127.0.0.1:5353"; empty: the system's
    dns_timeout: float = Field(default=10.0, gt=0)
    connect_timeout: float = Field(default=30.0, gt=0)  # smtp_connect_timeout
    command_timeout: float = Field(default=300.0, gt=0)  # the longest wait for one reply
    tls: Literal["none", "may", "must"] = "may"  # STARTTLS: never, when offered, required
    tls_must_domains: list[str] = Field(default_factory=list)  # "must" for these domains
    max_per_destination: int = Field(default=20, ge=1, le=1000)  # default_destination_..._limit
    max_messages_per_connection: int = Field(default=100, ge=1)  # connection reuse
    max_mx_addresses: int = Field(default=5, ge=1, le=50)  # RFC 5321 §5.1: tried per attempt

    @field_validator("nameservers")
    @classmethod
    def _nameservers(cls, value: list[str]) -> list[str]:
        for endpoint in value:
            host, _ = parse_endpoint(endpoint)
            ipaddress.ip_address(host)
        return value

    @field_validator("tls_must_domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        try:
            return [canonical_domain(domain) for domain in value]
        except AddressError as exc:
            raise ValueError(str(exc)) from exc


class DkimConfig(_Section):
    """DKIM signing of mail leaving for other hosts (RFC 6376)."""

    sign: bool = True  # sign when the sender's domain has a key in keys_dir
    selector: str = Field(default="postoffice", pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$")
    keys_dir: str = "etc/dkim"  # DOMAIN.key (PEM, RSA) per signing domain


class ServerConfig(_Section):
    """The serving processes."""

    # Worker processes that accept connections and deliver (each with its own
    # event loop); 0: one per CPU core; 1: everything in the one process.
    workers: int = Field(default=0, ge=0, le=64)
    # The event loop of each serving process (``server.event_loop``): "asyncio",
    # "uvloop" (must be installed), or "auto" (uvloop when installed).
    event_loop: Literal["asyncio", "uvloop", "auto"] = "asyncio"


class DirectoryConfig(_Section):
    database: str = "lib/postoffice/directory.sqlite3"
    detail_separator: str = Field(default="+", min_length=1, max_length=1)


class Config(_Section):
    """The whole file. ``hostname`` is this mail host's name (HELO, Received)."""

    hostname: str
    primary_domain: str
    data_dir: str = "."
    listen: ListenConfig = Field(default_factory=ListenConfig)
    tls: TlsConfig = Field(default_factory=TlsConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    tables: TablesConfig = Field(default_factory=TablesConfig)
    aliases: AliasesConfig = Field(default_factory=AliasesConfig)
    relay: RelayConfig = Field(default_factory=RelayConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    directory: DirectoryConfig = Field(default_factory=DirectoryConfig)
    smtp: SmtpConfig = Field(default_factory=SmtpConfig)
    pop3: Pop3Config = Field(default_factory=Pop3Config)
    imap: ImapConfig = Field(default_factory=ImapConfig)
    queue: QueueConfig = Field(default_factory=QueueConfig)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    dkim: DkimConfig = Field(default_factory=DkimConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)

    @field_validator("hostname", "primary_domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        try:
            return canonical_domain(value)
        except AddressError as exc:
            raise ValueError(str(exc)) from exc


class Paths(BaseModel):
    """Absolute paths derived from a loaded config (relative ones are under ``data_dir``)."""

    model_config = ConfigDict(frozen=True)

    config_file: Path
    data_dir: Path
    tables_dir: Path
    tls_cert: Path
    tls_key: Path
    maillog: Path
    directory_db: Path
    mail_dir: Path
    spool_mail_dir: Path
    queue_dir: Path
    dkim_keys_dir: Path
    maildrop_dir: Path  # where ``sendmail`` leaves mail for the server (queue.maildrop)
