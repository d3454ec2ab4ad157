"""The SMTP session driver: feeds bytes to ``SmtpServerConnection``, carries out its events.

Owns the awaits of one SMTP connection (DESIGN.md §7 "a thin driver"):
reading and writing the socket with timeouts, the STARTTLS handshake,
answering each decision through ``SmtpPolicy``, checking AUTH passwords,
streaming the message into the queue and committing it before the ``250``,
and the maillog lines of the session.

Rules it keeps (issue 3):
- The ``Received:`` header is written first into the queue file, before any
  octet of the message; the reply to the message is sent only after
  ``IncomingMessage.commit()`` returned (DESIGN.md §5).
- Limits: idle timeout per read, a minimum data rate while a message is
  being received, the ``Received:`` count of the message, the tarpit delay
  the connection asks for.
- Recipients accepted under an access DISCARD are dropped from the queued
  envelope; a message with only such recipients is acknowledged and dropped,
  with a log line.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from postoffice.core.address import Address
from postoffice.core.envelope import Envelope
from postoffice.core.maillog import log_event
from postoffice.core.reply import Reply
from postoffice.directory.accounts import AccountDatabase
from postoffice.mime.submission import missing_date_and_id
from postoffice.mime.trace import MAX_TRACE_SCAN, received_header, scan_trace
from postoffice.net.pipe import Pipe
from postoffice.protocol.smtp import (
    AuthCredentials,
    AuthKeysWanted,
    AuthProof,
    Closed,
    Expand,
    Hello,
    MailFrom,
    MessageAborted,
    MessageChunk,
    MessageComplete,
    NeedData,
    RcptTo,
    Refused,
    SmtpReplies,
    SmtpServerConnection,
    StartTls,
    Verify,
)
from postoffice.queue import IncomingMessage, Queue, QueueError
from postoffice.server.login_penalty import LoginPenalty
from postoffice.server.smtp_policy import ClientFacts, SmtpPolicy

COMPONENT = "smtpd"
TOO_MANY_HOPS = Reply(554, "5.4.6", "Too many hops: mail forwarding loop")
QUEUE_FAILURE = Reply(451, "4.3.0", "Error: queue file write error")
DISCARDED = Reply(250, "2.0.0", "Ok: discarded")
SLOW_DATA = Reply(421, "4.4.2", "Error: timeout exceeded")


HEAD_HOLD = 256 * 1024  # submission: header octets held to see whether Date is there


@dataclass
class _Transaction:
    """What the driver keeps of the transaction the connection runs."""

    sender: Address | None = None
    size: int | None = None  # MAIL FROM SIZE= (RFC 1870), for the quota check at RCPT
    discarded: set[str] = field(default_factory=set)
    incoming: IncomingMessage | None = None
    head: bytearray = field(default_factory=bytearray)
    data_started: float = 0.0
    held: bytearray = field(default_factory=bytearray)  # submission: the header, until whole
    head_done: bool = False


@dataclass(frozen=True)
class SmtpLimits:
    idle_timeout: float
    min_data_rate: int
    max_received_headers: int
    withhold_submission_client: bool = False  # [smtp] submission_received = "withhold"


class SmtpSession:
    """One connection of the ``smtp`` role."""

    def __init__(
        self,
        *,
        pipe: Pipe,
        connection: SmtpServerConnection,
        client: ClientFacts,
        policy: SmtpPolicy,
        queue: Queue,
        accounts: AccountDatabase,
        tls_context: ssl.SSLContext | None,
        hostname: str,
        limits: SmtpLimits,
        penalty: LoginPenalty | None = None,
    ):
        self.pipe = pipe
        self.penalty = penalty or LoginPenalty(0.0, 0.0)
        self.conn = connection
        self.client = client
        self.policy = policy
        self.queue = queue
        self.accounts = accounts
        self.tls_context = tls_context
        self.hostname = hostname
        self.limits = limits
        self.txn = _Transaction()
        self.tls: tuple[str, str] | None = None
        self.messages = 0
        self._out = bytearray()

    async def run(self, greeting_reject: Reply | None) -> str:
        """Serve the connection until it closes; the reason it closed."""
        if self.pipe.input_pending():
            # Octets that were there before the greeting (Postfix: "improper command
            # pipelining after CONNECT"); the connection refuses such a client.
            early = await self.pipe.read(timeout=self.limits.idle_timeout)
            self.conn.receive_data(early)
            log_event(COMPONENT, f"improper command pipelining after CONNECT from {self._who()}")
        await self.pipe.write(self.conn.start(reject=greeting_reject))
        try:
            while True:
                event = self.conn.next_event()
                if isinstance(event, Closed):
                    await self._flush()
                    return event.reason
                await self._handle(event)
        finally:
            await self._abort_incoming()
            self.pipe.close()

    async def _handle(self, event: object) -> None:
        if isinstance(event, NeedData):
            await self._flush()
            await self._receive()
        elif isinstance(event, MessageChunk):
            await self._message_chunk(event.data)
        elif isinstance(event, Hello):
            await self._answer(SmtpReplies.HELLO_OK)
        elif isinstance(event, MailFrom):
            self.txn = _Transaction(sender=event.sender, size=event.size)
            reply = self.policy.on_mail(self.client, event.sender)
            if reply.code >= 400:
                sender = "" if event.sender is None else str(event.sender)
                self._log_refusal("MAIL", reply, f"from=<{sender}>")
            await self._answer(reply)
        elif isinstance(event, RcptTo):
            verdict = self.policy.on_rcpt(self.client, self.txn.sender, event.recipient)
            if verdict.mailboxes:
                verdict = await self.policy.on_rcpt_quota(verdict, self.txn.size)
            if verdict.discard and verdict.reply.code // 100 == 2:
                self.txn.discarded.add(event.recipient.key)
            if verdict.reply.code >= 400:
                self._log_refusal("RCPT", verdict.reply, f"to=<{event.recipient}>")
            await self._answer(verdict.reply)
        elif isinstance(event, Verify):
            await self._answer(SmtpReplies.CANNOT_VRFY)
        elif isinstance(event, Expand):
            await self._answer(self.policy.on_expand(self.client, event.text))
        elif isinstance(event, StartTls):
            await self._start_tls()
        elif isinstance(event, AuthCredentials):
            await self._authenticate(event)
        elif isinstance(event, AuthKeysWanted):
            user = event.username
            keys = await asyncio.to_thread(
                self.accounts.login_scram_keys, self.policy.login_address(user), user
            )
            self._out += self.conn.send_keys(keys)
        elif isinstance(event, AuthProof):
            address = self.policy.login_address(event.username)
            await self._auth_result(event, address, event.proof.proven)
        elif isinstance(event, MessageAborted):
            await self._abort_incoming()
            log_event(COMPONENT, f"{self._who()}: message aborted: {event.reason}")
        elif isinstance(event, MessageComplete):
            await self._answer(await self._message_complete(event.envelope))
        elif isinstance(event, Refused):
            self._log_refusal(event.command, event.reply)

    # -- I/O --------------------------------------------------------------------------

    async def _answer(self, reply: Reply) -> None:
        """Answer the pending decision; the reply goes out with the next flush, so
        replies to pipelined commands leave in one write (RFC 2920 §3.1)."""
        self._out += self.conn.send(reply)

    async def _flush(self) -> None:
        self._out += self.conn.data_to_send()
        out, self._out = bytes(self._out), bytearray()
        await self._write(out)

    async def _write(self, out: bytes) -> None:
        if not out:
            return
        delay = self.conn.delay_replies
        if delay:
            await asyncio.sleep(delay)
        if not self.pipe.send(out):
            return  # below the high-water mark: no wait, no timer
        try:
            # A client that never reads must not hold the session forever.
            await asyncio.wait_for(self.pipe.drain(), timeout=self.limits.idle_timeout)
        except TimeoutError:
            log_event(COMPONENT, f"{self._who()}: write timeout, closing")
            self.pipe.close()

    async def _receive(self) -> None:
        if self.pipe.ready():
            # Input already buffered: no timer to arm.
            self.conn.receive_data(self.pipe.take())
            return
        timeout = self.limits.idle_timeout
        if self.txn.incoming is not None and self.limits.min_data_rate:
            # Postfix smtpd_min_data_rate: the time allowed grows with the data received.
            elapsed = time.monotonic() - self.txn.data_started
            allowed = self.limits.idle_timeout + self.txn.incoming.size / self.limits.min_data_rate
            timeout = min(timeout, max(0.0, allowed - elapsed))
        try:
            data = await self.pipe.read(timeout=timeout or 0.001)
        except TimeoutError:
            slow = self.txn.incoming is not None
            log_event(
                COMPONENT,
                f"{'slow data' if slow else 'timeout'} after {self._state()} from {self._who()}",
            )
            reply = SLOW_DATA if slow else SmtpReplies.timeout(self.hostname)
            self._out += self.conn.close(reply)
            return
        self.conn.receive_data(data)

    async def _start_tls(self) -> None:
        if self.tls_context is None:
            await self._answer(SmtpReplies.TLS_NOT_AVAILABLE)
            return
        self.pipe.prepare_tls()
        await self._answer(SmtpReplies.READY_TO_START_TLS)
        await self._flush()
        try:
            info = await asyncio.wait_for(
                self.pipe.start_tls(self.tls_context), timeout=self.limits.idle_timeout
            )
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as exc:
            log_event(COMPONENT, f"{self._who()}: TLS handshake failed: {exc}")
            self.conn.close()
            return
        self.tls = (info.version, info.cipher)
        self.conn.tls_started(info.version, info.cipher)
        log_event(COMPONENT, f"{self._who()}: TLS established: {info.version} {info.cipher}")

    async def _authenticate(self, event: AuthCredentials) -> None:
        address = self.policy.login_address(event.username)
        ok = False
        if address is not None and event.authzid in (None, "", event.username):
            # (no argon2 for a login refused whatever the password: ``_auth_result``)
            ok = await asyncio.to_thread(self.accounts.verify_password, address, event.password)
        await self._auth_result(event, address, ok)

    async def _auth_result(
        self, event: AuthCredentials | AuthProof, address: Address | None, ok: bool
    ) -> None:
        """The end of an AUTH: 235 for a right password and an allowed authzid, else
        535 after the failure's delay."""
        ok = ok and address is not None and event.authzid in (None, "", event.username)
        if ok:
            self.penalty.succeeded(self.client.ip)
            self.client.authenticated_as = address.key if address else None
            log_event(
                COMPONENT,
                f"{self._who()}: sasl_method={event.mechanism}, sasl_username={event.username}",
            )
            await self._answer(SmtpReplies.AUTH_SUCCEEDED)
        else:
            # As POP3 and IMAP: a failed login waits, longer for each failure from
            # the same address (unknown users and wrong passwords alike).
            delay = self.penalty.failed(self.client.ip)
            log_event(
                COMPONENT,
                f"{self._who()}: SASL {event.mechanism} authentication failed "
                f"({self.penalty.failures(self.client.ip)} attempts)",
                level=logging.WARNING,
            )
            await asyncio.sleep(delay)
            await self._answer(SmtpReplies.AUTH_FAILED)

    # -- the message ------------------------------------------------------------------

    async def _message_chunk(self, data: bytes) -> None:
        txn = self.txn
        if txn.incoming is None:
            txn.data_started = time.monotonic()
            envelope = self.conn.envelope
            txn.incoming = self.queue.begin(envelope)
            await txn.incoming.write(self._received(txn.incoming.queue_id, envelope))
        if self.client.submission and not txn.head_done:
            txn.held += data
            held = txn.held
            if b"\r\n\r\n" not in held and len(held) < HEAD_HOLD and not held.startswith(b"\r\n"):
                return  # the header is not whole yet
            data = self._release_header(txn)
        await self._write_data(txn, data)

    async def _write_data(self, txn: _Transaction, data: bytes) -> None:
        assert txn.incoming is not None
        if len(txn.head) < MAX_TRACE_SCAN:
            txn.head += data[: MAX_TRACE_SCAN - len(txn.head)]
        try:
            await txn.incoming.write(data)
        except QueueError as exc:
            log_event(COMPONENT, f"{self._who()}: {exc}", level=logging.ERROR)
            await self._abort_incoming()
            self.conn.fail_message(QUEUE_FAILURE)

    def _release_header(self, txn: _Transaction) -> bytes:
        """Submission (RFC 6409 §8.2, §8.3): the held header with a Date and a
        Message-ID in front of it if it has none."""
        held = bytes(txn.held)
        end = held.find(b"\r\n\r\n")
        header = held[: end + 4] if end >= 0 else (b"" if held.startswith(b"\r\n") else held)
        added = missing_date_and_id(header, hostname=self.hostname, now=datetime.now(UTC))
        txn.held.clear()
        txn.head_done = True
        return added + held

    async def _message_complete(self, envelope: Envelope) -> Reply:
        txn = self.txn
        if self.client.submission and txn.incoming is not None and not txn.head_done:
            await self._write_data(txn, self._release_header(txn))  # all header, or short
        txn, self.txn = self.txn, _Transaction()
        final = self._final(envelope, txn)
        incoming = txn.incoming
        if not final.recipients:
            if incoming is not None:
                await incoming.abort()
            log_event(
                COMPONENT,
                f"{self._who()}: discard: every recipient is DISCARDed by the access table, "
                f"from=<{envelope.sender_text}>",
            )
            return DISCARDED
        if incoming is None:  # an empty message: nothing was streamed
            incoming = self.queue.begin(final)
            await incoming.write(self._received(incoming.queue_id, final))
            if self.client.submission:
                await incoming.write(self._release_header(txn))
        if scan_trace(bytes(txn.head)).received_count >= self.limits.max_received_headers:
            await incoming.abort()
            self._log_refusal("DATA", TOO_MANY_HOPS)
            return TOO_MANY_HOPS
        refused = self.policy.on_header(self.client, bytes(txn.head))
        if refused is not None:
            await incoming.abort()
            self._log_refusal("DATA", refused, f"sasl_username=<{self.client.authenticated_as}>")
            return refused
        try:
            incoming.set_envelope(final)  # DISCARDed recipients left out
            queue_id = await incoming.commit()
        except QueueError as exc:
            log_event(COMPONENT, f"{self._who()}: {exc}", level=logging.ERROR)
            await incoming.abort()
            return QUEUE_FAILURE
        self.messages += 1
        message_id = _message_id(bytes(txn.head))
        if message_id:
            log_event(COMPONENT, f"{queue_id}: message-id={message_id}")
        return SmtpReplies.queued(queue_id)

    def _final(self, envelope: Envelope, txn: _Transaction) -> Envelope:
        kept = tuple(r for r in envelope.recipients if r.address.key not in txn.discarded)
        return replace(envelope, recipients=kept)

    def _received(self, queue_id: str, envelope: Envelope) -> bytes:
        only = envelope.recipients[0].address if len(envelope.recipients) == 1 else None
        return received_header(
            client=self.conn.client_info,
            withhold_client=self.client.submission and self.limits.withhold_submission_client,
            by_host=self.hostname,
            queue_id=queue_id,
            when=datetime.now(UTC),
            recipient=only,
        )

    async def _abort_incoming(self) -> None:
        incoming, self.txn.incoming = self.txn.incoming, None
        if incoming is not None:
            try:
                await incoming.abort()
            except QueueError as exc:
                log_event(COMPONENT, f"{incoming.queue_id}: abort: {exc}", level=logging.ERROR)

    # -- log lines --------------------------------------------------------------------

    def _who(self) -> str:
        ip, _ = self.pipe.peer
        return f"{self.client.hostname or 'unknown'}[{ip}]"

    def _state(self) -> str:
        return self.conn.state.name

    def _log_refusal(self, command: str, reply: Reply, extra: str = "") -> None:
        helo = f" helo=<{self.conn.helo_name}>" if self.conn.helo_name else ""
        detail = f" {extra}" if extra else ""
        log_event(
            COMPONENT,
            f"NOQUEUE: reject: {command} from {self._who()}: {reply};{detail} proto=ESMTP{helo}",
        )


def _message_id(head: bytes) -> str | None:
    """The ``Message-ID:`` value of a header section, for the maillog."""
    for raw in head.split(b"\n"):
        line = raw.rstrip(b"\r")
        if not line:
            return None
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() == b"message-id":
            return value.strip().decode("utf-8", "replace")[:200]
    return None
