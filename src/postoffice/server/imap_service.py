"""The ``imap`` and ``imaps`` roles: from accepted socket to ``ImapSession``.

Owns the per-connection setup: the connection limit per client address, the
implicit TLS of ``imaps`` (the handshake comes before the greeting, RFC 8314
§3.3), the settings each client gets (LOGIN and AUTHENTICATE without TLS
only from loopback when the config allows it; otherwise LOGINDISABLED,
RFC 9051 §6.2.3), and the connect and disconnect maillog lines.
"""

from __future__ import annotations

import ssl

from postoffice.config.model import Config
from postoffice.core.maillog import log_event
from postoffice.directory.directory import Directory
from postoffice.net.pipe import Pipe
from postoffice.protocol.imap.connection import ImapServerConnection, ImapSettings
from postoffice.protocol.imap.responses import untagged_status
from postoffice.server.imap_context import ImapContext
from postoffice.server.imap_fetch import ContentLoader
from postoffice.server.imap_session import LOGIN_COMPONENT, ImapSession
from postoffice.server.limits import ConnectionLimiter, SharedConnectionLimiter
from postoffice.server.login_penalty import LoginPenalty
from postoffice.server.mailbox_service import implicit_tls, serve_admitted
from postoffice.server.smtp_policy import is_loopback
from postoffice.server.store_pool import StorePool
from postoffice.store import StoreFactory


class ImapService:
    """Serves ``imap`` (plain, with STARTTLS) or ``imaps`` (implicit TLS) over the store."""

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
        contents: ContentLoader | None = None,
        pool: StorePool | None = None,
    ):
        if implicit_tls and tls_context is None:
            raise ValueError("imaps needs a TLS certificate")
        self.config = config
        self.implicit_tls = implicit_tls
        self.tls_context = tls_context
        imap = config.imap
        self.limiter = limiter or ConnectionLimiter(imap.max_connections_per_client)
        self.settings = ImapSettings(
            append_limit=imap.append_limit,
            max_bad_before_login=imap.max_bad_before_login,
            max_bad_after_login=imap.max_bad_after_login,
        )
        self.context = ImapContext(
            accounts=directory.accounts,
            stores=stores,
            pool=pool or StorePool(stores),
            penalty=penalty or LoginPenalty(imap.login_failure_delay, imap.login_failure_delay_max),
            tls_context=tls_context,
            primary_domain=config.primary_domain,
            hostname=config.hostname,
            idle_timeout=imap.idle_timeout,
            append_limit=imap.append_limit,
            contents=contents or ContentLoader(),
        )

    async def handle(self, pipe: Pipe) -> None:
        refusal = untagged_status("BYE", "Too many connections from your address.", "UNAVAILABLE")
        await serve_admitted(
            pipe, self.limiter, LOGIN_COMPONENT, refusal, lambda ip: self._serve(pipe, ip)
        )

    async def _serve(self, pipe: Pipe, ip: str) -> None:
        if self.implicit_tls:
            assert self.tls_context is not None
            if not await implicit_tls(
                pipe, self.tls_context, self.config.imap.idle_timeout, LOGIN_COMPONENT, ip
            ):
                return
        session = ImapSession(
            pipe=pipe,
            connection=ImapServerConnection(self.settings),
            context=self.context,
            is_tls=self.implicit_tls,
            plaintext_auth=self.config.imap.plaintext_auth_on_loopback and is_loopback(ip),
        )
        reason = await session.run()
        user = session.state.user
        if user is None:
            log_event(LOGIN_COMPONENT, f"Disconnected ({reason}): rip={ip}")
            return
        counts = ", ".join(f"{k}={v}" for k, v in sorted(session.state.counts.items()))
        log_event(f"imap({user})", f"Disconnected: {reason} {counts or 'nothing done'}: rip={ip}")
