"""One outgoing SMTP connection: the asyncio driver of ``SmtpClientConnection``.

Owns the socket side of the SMTP client: connecting (from the configured
local address, within ``connect_timeout``), the greeting and EHLO, STARTTLS
by policy, AUTH with the smart host's credentials, one or more transactions
(connection reuse), and QUIT. The protocol decisions are the sans-IO
client's (``protocol.smtp.client``); what to do with a refusal is the
agent's (``delivery.remote``).

Rules:
- Every wait for a reply is bounded by ``command_timeout``; a silent or
  vanished server is a ``SessionFailed`` with a 4xx reply, so the message is
  deferred, never lost.
- STARTTLS: with policy ``may`` it is used when offered, and a failed
  handshake falls back to no connection (the agent tries the next host;
  Postfix does the same); with ``must`` a server without STARTTLS is a
  temporary failure (RFC 3207 §4: "the client ... MAY ... retry later").
  Certificates are not verified (opportunistic TLS, RFC 7435). Input
  buffered before the handshake is dropped both by the protocol object and
  by the pipe (RFC 3207 §4.2: response injection).
- Outgoing message lines are CRLF and dot-stuffed by the protocol object,
  whatever the stored message holds.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable
from dataclasses import dataclass

from postoffice.core.reply import Reply
from postoffice.net.pipe import Pipe, connect
from postoffice.protocol.smtp import client_events as ev
from postoffice.protocol.smtp.client import (
    ClientSettings,
    ServerExtensions,
    SmtpClientConnection,
    Transaction,
)

CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """How to talk to one next hop."""

    helo_name: str
    tls: str = "may"  # none | may | must
    connect_timeout: float = 30.0
    command_timeout: float = 300.0
    bind_address: str | None = None
    username: str | None = None  # AUTH to a smart host
    password: str | None = None


class SessionFailed(Exception):
    """The connection cannot be used: ``reply`` is what the recipients get.

    ``before_mail``: nothing of a transaction was sent yet, so the next host
    may be tried for the same recipients.
    """

    def __init__(self, reply: Reply, *, before_mail: bool = True):
        super().__init__(str(reply))
        self.reply = reply
        self.before_mail = before_mail


@dataclass(frozen=True, slots=True)
class TransactionResult:
    """What one transaction got: a reply per recipient index (the sender's refusal or
    the message's reply for those accepted at RCPT)."""

    replies: dict[int, Reply]
    reusable: bool


def _client_tls_context() -> ssl.SSLContext:
    # Opportunistic TLS (RFC 7435): encrypt, do not authenticate the server.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


_TLS_CONTEXT: ssl.SSLContext | None = None


def client_tls_context() -> ssl.SSLContext:
    global _TLS_CONTEXT  # noqa: PLW0603 - one context for every connection of the process
    if _TLS_CONTEXT is None:
        _TLS_CONTEXT = _client_tls_context()
    return _TLS_CONTEXT


class SmtpSession:
    """One connection to one mail host (see the module docstring)."""

    def __init__(self, pipe: Pipe, host: str, address: str, port: int, policy: SessionPolicy):
        self.pipe = pipe
        self.host = host
        self.address = address
        self.port = port
        self.policy = policy
        self.conn = SmtpClientConnection(ClientSettings(helo_name=policy.helo_name))
        self.extensions: ServerExtensions | None = None
        self.tls = False
        self.transactions = 0
        self.closed = False

    @property
    def remote_mta(self) -> str:
        """The name a DSN's Remote-MTA field gives (RFC 3464 §2.3.5)."""
        return self.host

    @property
    def where(self) -> str:
        """``host[address]:port``, as the maillog's relay= shows it."""
        return f"{self.host}[{self.address}]:{self.port}"

    @classmethod
    async def open(cls, host: str, address: str, port: int, policy: SessionPolicy) -> SmtpSession:
        """Connect, read the greeting, say EHLO, start TLS and authenticate as needed."""
        where = f"{host}[{address}]:{port}"
        try:
            pipe = await connect(
                address, port, timeout=policy.connect_timeout, bind_address=policy.bind_address
            )
        except TimeoutError:
            raise SessionFailed(Reply(451, "4.4.1", f"connect to {where}: timed out")) from None
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise SessionFailed(Reply(451, "4.4.1", f"connect to {where}: {reason}")) from None
        session = cls(pipe, host, address, port, policy)
        try:
            await session._start()
        except BaseException:
            session.abort()
            raise
        return session

    async def _start(self) -> None:
        event = await self._event()
        if not isinstance(event, ev.Greeting) or event.reply.code != 220:
            raise self._failure(event, "greeting")
        await self._hello()
        assert self.extensions is not None
        if self.policy.tls != "none" and self.extensions.starttls:
            await self._starttls()
        elif self.policy.tls == "must":
            raise SessionFailed(
                Reply(451, "4.7.4", f"TLS is required, but {self.host} did not offer STARTTLS")
            )
        if self.policy.username is not None:
            await self._authenticate()

    async def _hello(self) -> None:
        self.conn.hello()
        event = await self._event()
        if not isinstance(event, ev.HelloDone):
            raise self._failure(event, "EHLO")
        self.extensions = event.extensions

    async def _starttls(self) -> None:
        self.conn.starttls()
        event = await self._event()
        if isinstance(event, ev.TlsRefused):
            if self.policy.tls == "must":
                raise SessionFailed(
                    Reply(451, "4.7.4", f"TLS is required, {self.host} refused STARTTLS")
                )
            return  # "may": carry on without
        if not isinstance(event, ev.TlsReady):
            raise self._failure(event, "STARTTLS")
        self.pipe.prepare_tls()  # nothing read before the handshake is kept
        try:
            await self.pipe.start_tls(
                client_tls_context(),
                server_side=False,
                server_hostname=self.host if not self.host.startswith("[") else None,
                timeout=self.policy.command_timeout,
            )
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as exc:
            raise SessionFailed(
                Reply(451, "4.7.5", f"TLS handshake with {self.where} failed: {exc}")
            ) from None
        self.conn.tls_started()
        self.tls = True
        await self._hello()

    async def _authenticate(self) -> None:
        assert self.extensions is not None and self.policy.password is not None
        offered = self.extensions.auth
        mechanism = next((m for m in ("PLAIN", "LOGIN") if m in offered), None)
        if mechanism is None:
            raise SessionFailed(
                Reply(451, "4.7.0", f"{self.host} offers no AUTH mechanism this client has")
            )
        assert self.policy.username is not None
        self.conn.authenticate(mechanism, self.policy.username, self.policy.password)
        event = await self._event()
        if not isinstance(event, ev.AuthDone):
            raise self._failure(event, "AUTH")

    # -- a transaction ---------------------------------------------------------------

    async def send(
        self, transaction: Transaction, indexes: Iterable[int], message: bytes
    ) -> TransactionResult:
        """One transaction; a reply for each recipient (``indexes`` in recipient order)."""
        order = list(indexes)
        replies: dict[int, Reply] = {}
        accepted: list[int] = []
        self.transactions += 1
        self.conn.begin(transaction)
        sent_data = False
        while True:
            try:
                event = await self._event(before_mail=False)
                if isinstance(event, ev.SendMessage):
                    sent_data = True
                    await self._send_message(message)
                    continue
            except SessionFailed as lost:
                return self._broken(order, replies, lost, sent_data)
            if isinstance(event, ev.RecipientResult):
                index = order[event.index]
                if 200 <= event.reply.code < 300:
                    accepted.append(index)
                else:
                    replies[index] = event.reply
            elif isinstance(event, ev.MessageAccepted | ev.MessageRefused):
                for index in accepted:
                    replies[index] = event.reply
            elif isinstance(event, ev.SenderRefused | ev.TransactionRefused):
                for index in order:
                    replies.setdefault(index, event.reply)
            elif isinstance(event, ev.Ready):
                return TransactionResult(replies, reusable=True)
            else:
                unexpected = self._failure(event, "end of data" if sent_data else "MAIL")
                return self._broken(order, replies, unexpected, sent_data)

    def _broken(
        self, order: list[int], replies: dict[int, Reply], failure: SessionFailed, sent_data: bool
    ) -> TransactionResult:
        """The transaction ended without its final reply: the rest get ``failure``'s."""
        reply = failure.reply
        if sent_data:
            # RFC 5321 §4.1.1.4: without the reply to the final dot the message
            # may or may not have arrived: deferred, and perhaps sent twice.
            reply = Reply(
                451,
                "4.4.2",
                f"lost connection with {self.where} while sending end of data: "
                f"{reply.text}; the message may be sent more than once",
            )
        for index in order:
            replies.setdefault(index, reply)
        self.abort()
        return TransactionResult(replies, reusable=False)

    async def _send_message(self, message: bytes) -> None:
        for start in range(0, len(message), CHUNK):
            self.conn.send_message_data(message[start : start + CHUNK])
            await self._flush()
        self.conn.end_message()
        await self._flush()

    # -- the end ----------------------------------------------------------------------

    async def quit(self) -> None:
        """QUIT politely and close; never raises."""
        if self.closed:
            return
        try:
            self.conn.quit()
            await self._flush()
            await self._event(before_mail=False, timeout=min(5.0, self.policy.command_timeout))
        except (SessionFailed, OSError, RuntimeError):
            pass
        self.abort()

    def abort(self) -> None:
        self.closed = True
        self.pipe.close()

    # -- internals ---------------------------------------------------------------------

    async def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            if self.pipe.transport is None or self.pipe.transport.is_closing():
                raise SessionFailed(
                    Reply(451, "4.4.2", f"lost connection with {self.where}"), before_mail=False
                )
            try:
                # A host that stops reading must not hold the delivery forever.
                async with asyncio.timeout(self.policy.command_timeout):
                    await self.pipe.write(data)
            except TimeoutError:
                raise SessionFailed(
                    Reply(451, "4.4.2", f"{self.where} stopped reading what was sent"),
                    before_mail=False,
                ) from None

    async def _event(self, *, before_mail: bool = True, timeout: float | None = None) -> object:
        """The next protocol event, reading (bounded in time) as needed."""
        wait = self.policy.command_timeout if timeout is None else timeout
        while True:
            event = self.conn.next_event()
            # A reply may have released the next command (no PIPELINING): send it.
            await self._flush()
            if not isinstance(event, ev.NeedData):
                return event
            try:
                data = await self.pipe.read(wait)
            except TimeoutError:
                raise SessionFailed(
                    Reply(451, "4.4.2", f"conversation with {self.where} timed out"),
                    before_mail=before_mail,
                ) from None
            except OSError as exc:
                raise SessionFailed(
                    Reply(451, "4.4.2", f"lost connection with {self.where}: {exc}"),
                    before_mail=before_mail,
                ) from None
            self.conn.receive_data(data)

    def _failure(self, event: object, stage: str) -> SessionFailed:
        """The ``SessionFailed`` for an unexpected event at ``stage``."""
        reply = getattr(event, "reply", None)
        if isinstance(reply, Reply):
            # Before a transaction nothing the host says is about the message: a
            # 5xx greeting, EHLO or AUTH refusal defers (the next host may take
            # it, or this one later), as Postfix does; the text keeps the reason.
            said = f"host {self.where} said: {reply} (in reply to {stage})"
            return SessionFailed(Reply(451, "4.4.2" if reply.code >= 500 else reply.enhanced, said))
        if isinstance(event, ev.ConnectionClosed):
            text = f"lost connection with {self.where} while waiting for the {stage} reply"
        elif isinstance(event, ev.ProtocolViolation):
            text = f"{self.where} broke the protocol at {stage}: {event.description}"
        else:
            text = f"unexpected {type(event).__name__} from {self.where} at {stage}"
        return SessionFailed(Reply(451, "4.4.2", text))
