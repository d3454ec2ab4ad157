"""The ``smtp`` role (the MX front door) and the ``submission``/``submissions`` roles
(RFC 6409, RFC 8314: mail from logged-in users), from accepted socket to ``SmtpSession``.

Owns the per-connection setup: the connection limit per client address, the
settings each client gets (EXPN for trusted networks, plaintext AUTH only
from loopback when the config allows it, STARTTLS when a certificate is
loaded), the ``Connect:`` access check, and the connect/disconnect maillog
lines.
"""

from __future__ import annotations

import logging
import ssl

from postoffice.config.model import Config
from postoffice.core.envelope import ClientInfo
from postoffice.core.maillog import log_event
from postoffice.core.reply import Reply
from postoffice.delivery.quota import QuotaGuard
from postoffice.directory.directory import Directory
from postoffice.net.pipe import Pipe
from postoffice.protocol.smtp import SmtpServerConnection, SmtpServerSettings
from postoffice.queue import Queue
from postoffice.server.limits import ConnectionLimiter, SharedConnectionLimiter
from postoffice.server.login_penalty import LoginPenalty
from postoffice.server.mailbox_service import implicit_tls
from postoffice.server.smtp_policy import ClientFacts, SmtpPolicy, is_loopback
from postoffice.server.smtp_session import COMPONENT, SmtpLimits, SmtpSession

TOO_MANY_CONNECTIONS = Reply(421, "4.7.0", "Error: too many connections from your address")


def greeting_refusal(reply: Reply) -> Reply:
    """A refusal as the greeting may say it: 554, or 421 for a temporary one.

    RFC 5321 §4.3.2 allows only 220 and 554 (and §3.8 421) at connection
    establishment, so an access ``REJECT`` (550) or ``ERROR:`` reply keeps its
    enhanced code and text under the code a client expects there.
    """
    if reply.code in (421, 554):
        return reply
    return Reply(554 if reply.code >= 500 else 421, reply.enhanced, reply.text)


class SmtpService:
    """Serves the ``smtp`` role over one directory and one queue."""

    def __init__(
        self,
        *,
        config: Config,
        directory: Directory,
        queue: Queue,
        tls_context: ssl.SSLContext | None,
        limiter: ConnectionLimiter | SharedConnectionLimiter | None = None,
        role: str = "smtp",
        penalty: LoginPenalty | None = None,
        quota: QuotaGuard | None = None,
    ):
        if role == "submissions" and tls_context is None:
            raise ValueError("submissions needs a TLS certificate")
        self.role = role
        # RFC 6409: the submission roles take mail only from logged-in users,
        # for senders of their own; submissions speaks TLS from the start (RFC 8314).
        self.submission = role in ("submission", "submissions")
        self.implicit_tls = role == "submissions"
        self.config = config
        self.directory = directory
        self.queue = queue
        self.tls_context = tls_context
        self.policy = SmtpPolicy(directory, config, quota)  # quota: refusals at RCPT
        self.penalty = penalty or LoginPenalty(
            config.smtp.login_failure_delay, config.smtp.login_failure_delay_max
        )
        # One process counts alone; the workers of one server share their counts.
        self.limiter = limiter or ConnectionLimiter(config.smtp.max_connections_per_client)
        self._settings: dict[tuple[bool, bool], SmtpServerSettings] = {}
        smtp = config.smtp
        self.limits = SmtpLimits(
            idle_timeout=smtp.idle_timeout,
            min_data_rate=smtp.min_data_rate,
            max_received_headers=smtp.max_received_headers,
            withhold_submission_client=smtp.submission_received == "withhold",
        )

    def settings_for(self, client: ClientFacts) -> SmtpServerSettings:
        """The connection's settings; one frozen object for each kind of client,
        made once (they depend only on the config and these two facts)."""
        smtp = self.config.smtp
        loopback_auth = smtp.plaintext_auth_on_loopback and is_loopback(client.ip)
        expn = smtp.expn_for_trusted and client.trusted
        kind = (loopback_auth, expn)
        settings = self._settings.get(kind)
        if settings is None:
            settings = self._settings[kind] = self._make_settings(loopback_auth, expn)
        return settings

    def _make_settings(self, loopback_auth: bool, expn: bool) -> SmtpServerSettings:
        smtp = self.config.smtp
        return SmtpServerSettings(
            hostname=self.config.hostname,
            max_message_size=smtp.max_message_size,
            max_line_length=smtp.max_line_length,
            max_recipients=smtp.max_recipients,
            max_errors=smtp.max_errors,
            tarpit_after_errors=smtp.tarpit_after_errors,
            tarpit_delay=smtp.tarpit_delay,
            starttls_available=self.tls_context is not None,
            auth_mechanisms=("PLAIN", "LOGIN", "SCRAM-SHA-256"),
            auth_requires_tls=not loopback_auth,
            auth_required=self.submission,
            is_tls=self.implicit_tls,
            vrfy_enabled=smtp.vrfy_enabled,
            expn_enabled=expn,
            postmaster_domain=self.config.primary_domain,
        )

    async def handle(self, pipe: Pipe) -> None:
        ip, port = pipe.peer
        client = ClientFacts(ip=ip, trusted=self.policy.is_trusted(ip), submission=self.submission)
        admitted = self.limiter.admit(ip)
        try:
            await self._serve(pipe, client, port, admitted)
        except Exception as exc:  # one broken session must never take the server down
            log_event(COMPONENT, f"unknown[{ip}]: session error: {exc!r}", level=logging.ERROR)
            pipe.close()
        finally:
            if admitted:
                self.limiter.release(ip)

    async def _serve(self, pipe: Pipe, client: ClientFacts, port: int, admitted: bool) -> None:
        info = ClientInfo(address=client.ip, port=port)
        if self.implicit_tls:
            assert self.tls_context is not None
            tls = await implicit_tls(
                pipe, self.tls_context, self.config.smtp.idle_timeout, COMPONENT, client.ip
            )
            if tls is None:
                return
            info = ClientInfo(
                address=client.ip, port=port, tls_version=tls.version, tls_cipher=tls.cipher
            )
        log_event(COMPONENT, f"connect from unknown[{client.ip}]")
        reject = self.policy.on_connect(client) if admitted else TOO_MANY_CONNECTIONS
        if reject is not None:
            reject = greeting_refusal(reject)
            log_event(COMPONENT, f"NOQUEUE: reject: CONNECT from unknown[{client.ip}]: {reject}")
        connection = SmtpServerConnection(self.settings_for(client), info)
        session = SmtpSession(
            pipe=pipe,
            connection=connection,
            client=client,
            policy=self.policy,
            queue=self.queue,
            accounts=self.directory.accounts,
            tls_context=self.tls_context,
            hostname=self.config.hostname,
            limits=self.limits,
            penalty=self.penalty,
        )
        reason = await session.run(reject)
        log_event(
            COMPONENT,
            f"disconnect from unknown[{client.ip}] messages={session.messages} ({reason})",
        )
