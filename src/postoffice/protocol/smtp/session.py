"""The plumbing of an SMTP server session: buffers, output FIFO, events, errors, close.

What this module owns, for ``server.SmtpServerConnection`` (which adds the
command handlers on top): the input buffer and its bounded line reader, the
single output FIFO every reply goes through, the event queue and the one
pending decision, the error counter and tarpit, the session facts (HELO name,
TLS, authentication, transaction) and the public methods the driver calls
(``start``, ``receive_data``, ``next_event``, ``send``, ``send_keys``, ``data_to_send``,
``tls_started``, ``fail_message``, ``close``).

Invariants:
- at most one decision is pending, and it is the last queued event; nothing
  more is read until the driver answers it with ``send``;
- a line is never longer than ``max_line_length`` in memory: past it the line
  is answered at once and dropped up to its LF, even as later octets arrive;
- once closed, the connection reads nothing and says nothing more.
"""

from __future__ import annotations

import abc
import dataclasses
from collections import deque
from collections.abc import Callable
from typing import Final

from postoffice.core.address import Address
from postoffice.core.envelope import ClientInfo, Envelope, EnvelopeRecipient
from postoffice.core.reply import Reply
from postoffice.protocol.errors import ProtocolUsageError
from postoffice.protocol.lines import LineReader, LineTooLong
from postoffice.protocol.scram import SaslExchange, ScramKeys
from postoffice.protocol.smtp.events import (
    Closed,
    Decision,
    Event,
    MessageAborted,
    NeedData,
    Refused,
)
from postoffice.protocol.smtp.params import MailParameters
from postoffice.protocol.smtp.receiver import MessageReceiver
from postoffice.protocol.smtp.replies import SmtpReplies, render_reply
from postoffice.protocol.smtp.settings import SmtpServerSettings
from postoffice.protocol.smtp.states import SessionState, SmtpStateMachine, Trigger

_NEED_DATA: Final = NeedData()


class SmtpSessionCore(abc.ABC):
    """Session plumbing shared by the command handlers of ``SmtpServerConnection``."""

    def __init__(self, settings: SmtpServerSettings, client: ClientInfo | None = None) -> None:
        self.settings = settings
        self._client = client or ClientInfo()
        self._machine = SmtpStateMachine(require_helo=settings.require_helo)
        self._inbuf = bytearray()
        self._outbuf = bytearray()
        self._events: deque[Event] = deque()
        self._pending: Callable[[Reply], None] | None = None
        self._pending_keys: Callable[[ScramKeys], None] | None = None  # AuthKeysWanted
        self._closed: Closed | None = None
        self._eof = False
        self._early_talker = False
        self._lines = LineReader(settings.max_line_length)
        self._errors = 0
        self._overshoot = 0
        self._discarded_plaintext = 0
        # session
        self._helo: str | None = None
        self._extended = False
        self._tls = settings.is_tls
        self._tls_version = self._client.tls_version
        self._tls_cipher = self._client.tls_cipher
        self._authenticated_as: str | None = None
        self._sasl: SaslExchange | None = None
        # transaction
        self._sender: Address | None = None
        self._mail = MailParameters()
        self._recipients: dict[str, EnvelopeRecipient] = {}
        self._content = MessageReceiver(settings)

    # ------------------------------------------------------------------ API

    @property
    def state(self) -> SessionState:
        return self._machine.state

    @property
    def closed(self) -> bool:
        return self._closed is not None

    @property
    def early_talker(self) -> bool:
        """True when the client sent octets before the greeting."""
        return self._early_talker

    @property
    def is_tls(self) -> bool:
        return self._tls

    @property
    def helo_name(self) -> str | None:
        return self._helo

    @property
    def authenticated_as(self) -> str | None:
        return self._authenticated_as

    @property
    def error_count(self) -> int:
        return self._errors

    @property
    def client_info(self) -> ClientInfo:
        """The client as the ``Received:`` header describes it now (RFC 3848 protocol)."""
        return self._client_info()

    @property
    def envelope(self) -> Envelope:
        """The transaction so far: sender, accepted recipients, parameters."""
        return self._envelope()

    @property
    def delay_replies(self) -> float:
        """Seconds the driver waits before each write (tarpit), 0.0 normally."""
        if self._errors >= self.settings.tarpit_after_errors:
            return self.settings.tarpit_delay
        return 0.0

    @property
    def buffered_octets(self) -> int:
        """Input octets held and not yet processed (bounded; see the module doc)."""
        return len(self._inbuf)

    @property
    def discarded_plaintext_octets(self) -> int:
        """Octets dropped because they were pipelined behind STARTTLS (for the log)."""
        return self._discarded_plaintext

    def start(self, reject: Reply | None = None) -> bytes:
        """Greet (220), or refuse the client with ``reject`` (then only QUIT, RFC 5321 §3.1)."""
        if self._machine.state is not SessionState.PRE_GREETING:
            raise ProtocolUsageError("start() was already called")
        if self._inbuf and self.settings.forbid_unauth_pipelining:
            self._close("client spoke before the greeting", SmtpReplies.SYNC_ERROR)
        elif reject is not None:
            if reject.code < 400:
                raise ProtocolUsageError("a greeting rejection must be a 4xx or 5xx reply")
            if reject.code == 421:
                self._close("connection refused", reject)
            else:
                self._machine.trigger(Trigger.GREETING_REJECTED)
                self._outbuf += render_reply(reject)
        else:
            self._machine.trigger(Trigger.GREETED)
            greeting = SmtpReplies.greeting(self.settings.hostname, self.settings.greeting_text)
            self._outbuf += render_reply(greeting, enhanced=False)
        return self.data_to_send()

    def receive_data(self, data: bytes) -> None:
        """Feed octets read from the client; ``b""`` means the client closed."""
        if self._closed is not None:
            return
        if not data:
            self._eof = True
            return
        state = self._machine.state
        if state is SessionState.PRE_GREETING:
            self._early_talker = True
        if state is SessionState.TLS_HANDSHAKE:
            self._discarded_plaintext += len(data)  # RFC 3207 §4.2
            return
        if not self._content.reading:
            data = self._lines.skip(data)
        self._inbuf += data

    def next_event(self) -> Event:
        if self._machine.state is SessionState.PRE_GREETING and self._closed is None:
            raise ProtocolUsageError("call start() before next_event()")
        while True:
            if self._events:
                return self._events.popleft()
            if self._pending is not None or self._pending_keys is not None:
                raise ProtocolUsageError("answer the pending decision with send() first")
            if self._closed is not None:
                return self._closed
            if self._step():
                continue
            if self._eof:
                lost = "during the message" if self._content.open else ""
                self._close(f"client closed the connection {lost}".strip())
                continue
            return _NEED_DATA

    def send(self, reply: Reply) -> bytes:
        """Answer the pending ``Decision``; returns every octet now ready to write."""
        if self._pending is None:
            if self._pending_keys is not None:
                raise ProtocolUsageError("AuthKeysWanted is answered with send_keys()")
            raise ProtocolUsageError("no decision is pending")
        if self._events:
            raise ProtocolUsageError("next_event() has not returned the pending decision yet")
        if not 200 <= reply.code <= 599 or reply.code // 100 == 3:
            raise ProtocolUsageError(f"{reply.code} cannot answer a decision")
        action, self._pending = self._pending, None
        action(reply)
        return self.data_to_send()

    def send_keys(self, keys: ScramKeys) -> bytes:
        """Answer the pending ``AuthKeysWanted`` with the user's SCRAM keys (or
        made-up ones); returns every octet now ready to write."""
        if self._pending_keys is None:
            raise ProtocolUsageError("no AuthKeysWanted is pending")
        if self._events:
            raise ProtocolUsageError("next_event() has not returned the pending decision yet")
        action, self._pending_keys = self._pending_keys, None
        action(keys)
        return self.data_to_send()

    def data_to_send(self) -> bytes:
        out = bytes(self._outbuf)
        self._outbuf.clear()
        return out

    def tls_started(self, version: str | None = None, cipher: str | None = None) -> None:
        """The driver finished the TLS handshake after STARTTLS: restart the session."""
        if self._machine.state is not SessionState.TLS_HANDSHAKE:
            raise ProtocolUsageError("tls_started() without an accepted STARTTLS")
        self._machine.trigger(Trigger.TLS_ESTABLISHED)
        self._tls, self._tls_version, self._tls_cipher = True, version, cipher
        # RFC 3207 §4.2: forget everything learnt from the client in plaintext.
        self._helo, self._extended, self._authenticated_as = None, False, None
        self._reset_transaction()
        self._discarded_plaintext += len(self._inbuf)
        self._inbuf.clear()
        self._lines.reset()

    def fail_message(self, reply: Reply) -> None:
        """The driver cannot keep the message being received (e.g. disk full): the
        rest of the content is read and dropped, then ``reply`` answers it."""
        if not self._content.open:
            raise ProtocolUsageError("no message is being received")
        self._content.fail(reply)

    def close(self, reply: Reply | None = None) -> bytes:
        """Driver-side close (idle timeout, shutdown): say ``reply`` (usually 421) and stop."""
        self._pending = None
        self._close("closed by the server", reply)
        return self.data_to_send()

    def extensions(self) -> list[str]:
        """The EHLO keywords offered now (RFC 5321 §4.1.1.1)."""
        settings = self.settings
        offered = ["PIPELINING"]  # RFC 2920
        limit = settings.max_message_size
        offered.append(f"SIZE {limit}" if limit else "SIZE")  # RFC 1870
        if settings.starttls_available and not self._tls:
            offered.append("STARTTLS")  # RFC 3207
        if self._auth_offered() and self._authenticated_as is None:
            offered.append("AUTH " + " ".join(m.upper() for m in settings.auth_mechanisms))
        offered += ["ENHANCEDSTATUSCODES", "8BITMIME"]  # RFC 2034, RFC 6152
        if settings.dsn:
            offered.append("DSN")  # RFC 3461
        if settings.smtputf8:
            offered.append("SMTPUTF8")  # RFC 6531
        if settings.chunking:
            offered.append("CHUNKING")  # RFC 3030
        return offered

    # ------------------------------------------------------------ machinery

    @abc.abstractmethod
    def _step(self) -> bool:
        """Process one unit of input; False when more input is needed (see server)."""

    def _take_line(self) -> tuple[bytes, bool] | LineTooLong | None:
        """The next line without its terminator, and whether that was a bare LF."""
        return self._lines.take(self._inbuf)

    def _write(self, reply: Reply, *, enhanced: bool = True) -> None:
        """Render a reply; count it when it is an error; close at 421."""
        if self._closed is not None:
            return
        if reply.code == 421:
            self._close("closed by the server", reply)
            return
        self._outbuf += render_reply(reply, enhanced=enhanced)
        if reply.code >= 400:
            self._count_error()

    def _count_error(self) -> None:
        self._errors += 1
        if self._errors >= self.settings.max_errors:
            self._close("too many errors", SmtpReplies.too_many_errors(self.settings.hostname))

    def _refuse(self, command: str, reply: Reply, *, counted: bool = True) -> None:
        self._events.append(Refused(command, reply))
        if counted:
            self._write(reply)
        else:
            self._outbuf += render_reply(reply)

    def _decide(self, event: Decision, action: Callable[[Reply], None]) -> None:
        self._pending = action
        self._events.append(event)

    def _close(self, reason: str, reply: Reply | None = None) -> None:
        if self._closed is not None:
            return
        if reply is not None:
            self._outbuf += render_reply(reply)
        if self._content.abandon():
            self._events.append(MessageAborted(reason, None))
        self._machine.close()
        self._closed = Closed(reason)
        self._inbuf.clear()
        self._pending = None

    def _violation(self, reason: str) -> None:
        self._events.append(Refused(reason, SmtpReplies.SYNC_ERROR))
        self._close(reason, SmtpReplies.SYNC_ERROR)

    def _reset_transaction(self) -> None:
        self._sender, self._mail, self._recipients = None, MailParameters(), {}
        self._content.reset()

    def _auth_offered(self) -> bool:
        settings = self.settings
        return bool(settings.auth_mechanisms) and (self._tls or not settings.auth_requires_tls)

    def _client_info(self) -> ClientInfo:
        protocol = "ESMTP" if self._extended else "SMTP"
        if self._extended and self._mail.smtputf8:
            protocol = "UTF8SMTP"  # RFC 6531 §3.7.3 (UTF8SMTPS, UTF8SMTPA, UTF8SMTPSA below)
        if self._extended and self._tls:
            protocol += "S"  # RFC 3848
        if self._extended and self._authenticated_as is not None:
            protocol += "A"
        return dataclasses.replace(
            self._client,
            helo=self._helo,
            protocol=protocol,
            tls_version=self._tls_version if self._tls else None,
            tls_cipher=self._tls_cipher if self._tls else None,
            authenticated_as=self._authenticated_as,
        )

    def _envelope(self) -> Envelope:
        mail = self._mail
        return Envelope(
            sender=self._sender,
            recipients=tuple(self._recipients.values()),
            body=mail.body,
            smtputf8=mail.smtputf8,
            ret=mail.ret,
            envid=mail.envid,
            declared_size=mail.size,
            client=self._client_info(),
        )
