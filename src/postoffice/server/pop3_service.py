"""The ``pop3`` and ``pop3s`` roles: from accepted socket to ``Pop3Session``.

Owns the per-connection setup: the connection limit per client address, the
implicit TLS of ``pop3s`` (the handshake comes before the greeting, RFC 8314
§3.3), the settings each client gets (STLS when a certificate is loaded;
USER/PASS and AUTH without TLS only from loopback when the config allows
it), and the connect and disconnect maillog lines.
"""

from __future__ import annotations

import ssl

from postoffice.config.model import Config
from postoffice.core.maillog import log_event
from postoffice.directory.directory import Directory
from postoffice.net.pipe import Pipe
from postoffice.protocol.pop3 import Pop3ServerConnection, Pop3Settings
from postoffice.server.limits import ConnectionLimiter, SharedConnectionLimiter
from postoffice.server.login_penalty import LoginPenalty
from postoffice.server.mailbox_service import implicit_tls, serve_admitted
from postoffice.server.pop3_maildrop import MessageFacts
from postoffice.server.pop3_session import LOGIN_COMPONENT, Pop3Context, Pop3Session
from postoffice.server.smtp_policy import is_loopback
from postoffice.store import StoreFactory


class Pop3Service:
    """Serves ``pop3`` (plain, with STLS) or ``pop3s`` (implicit TLS) over the store."""

    def __init__(
        self,
        *,
        config: Config,
        directory: Directory,
        stores: StoreFactory,
        tls_context: ssl.SSLContext | None,
        implicit_tls: bool = False,
        limiter: ConnectionLimiter | SharedConnectionLimiter | None = None,
        penalty: LoginPenalty | None = None,
        facts: MessageFacts | None = None,
    ):
        if implicit_tls and tls_context is None:
            raise ValueError("pop3s needs a TLS certificate")
        self.config = config
        self.implicit_tls = implicit_tls
        self.tls_context = tls_context
        pop3 = config.pop3
        self.limiter = limiter or ConnectionLimiter(pop3.max_connections_per_client)
        self.context = Pop3Context(
            accounts=directory.accounts,
            stores=stores,
            facts=facts or MessageFacts(),
            penalty=penalty or LoginPenalty(pop3.login_failure_delay, pop3.login_failure_delay_max),
            tls_context=tls_context,
            primary_domain=config.primary_domain,
            idle_timeout=pop3.idle_timeout,
        )

    def settings_for(self, ip: str, *, is_tls: bool) -> Pop3Settings:
        pop3 = self.config.pop3
        return Pop3Settings(
            hostname=self.config.hostname,
            is_tls=is_tls,
            tls_available=self.tls_context is not None,
            plaintext_auth=pop3.plaintext_auth_on_loopback and is_loopback(ip),
            max_line_length=pop3.max_line_length,
            max_errors=pop3.max_errors,
            expire=pop3.expire,
            login_delay=pop3.login_delay,
        )

    async def handle(self, pipe: Pipe) -> None:
        refusal = b"-ERR [SYS/TEMP] Too many connections from your address.\r\n"
        await serve_admitted(
            pipe, self.limiter, LOGIN_COMPONENT, refusal, lambda ip: self._serve(pipe, ip)
        )

    async def _serve(self, pipe: Pipe, ip: str) -> None:
        if self.implicit_tls:
            assert self.tls_context is not None
            if not await implicit_tls(
                pipe, self.tls_context, self.config.pop3.idle_timeout, LOGIN_COMPONENT, ip
            ):
                return
        connection = Pop3ServerConnection(self.settings_for(ip, is_tls=self.implicit_tls))
        session = Pop3Session(pipe=pipe, connection=connection, context=self.context)
        reason = await session.run()
        if session.user is not None and reason != "quit":
            log_event(
                f"pop3({session.user})",
                f"Disconnected: {reason}, nothing deleted: rip={ip}",
            )
        elif session.user is None:
            log_event(LOGIN_COMPONENT, f"Disconnected ({reason}): rip={ip}")
