"""What an ``SmtpServerConnection`` tells its driver.

Two kinds of event:

- ``Decision`` events need policy. The driver MUST answer each with exactly
  one ``conn.send(reply)`` before asking for the next event (``AuthKeysWanted``
  alone is answered with ``conn.send_keys(keys)``). What a positive (2xx)
  answer does is stated on each class.
- Informational events need no answer: ``NeedData``, ``MessageChunk``,
  ``MessageAborted``, ``Refused`` and the terminal ``Closed``.

Events are immutable values; they never hold the connection.
"""

from __future__ import annotations

from dataclasses import dataclass

from postoffice.core.address import Address
from postoffice.core.envelope import BodyType, Envelope, Notify, OriginalRecipient, Ret
from postoffice.core.reply import Reply
from postoffice.protocol.sasl import SaslCredentials, SaslKeysWanted, SaslProof


class Event:
    """Base of every event."""

    __slots__ = ()


class Decision(Event):
    """An event the driver must answer with ``conn.send(reply)``."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class NeedData(Event):
    """Write ``conn.data_to_send()``, then read and call ``conn.receive_data()``."""


@dataclass(frozen=True, slots=True)
class Hello(Decision):
    """HELO (``extended=False``) or EHLO. A 2xx answer (``SmtpReplies.HELLO_OK``)
    is rendered by the connection as the full EHLO/HELO reply with the
    extensions it offers; the session is reset to a fresh, greeted state."""

    name: str
    extended: bool


@dataclass(frozen=True, slots=True)
class MailFrom(Decision):
    """MAIL FROM, parameters already validated. 2xx opens the transaction."""

    sender: Address | None  # None for the null reverse-path <>
    size: int | None = None
    body: BodyType | None = None
    smtputf8: bool = False
    ret: Ret | None = None
    envid: str | None = None
    auth: str | None = None  # RFC 4954 §5 AUTH= (untrusted unless the client is)


@dataclass(frozen=True, slots=True)
class RcptTo(Decision):
    """RCPT TO. 2xx adds the recipient to the envelope (once per address key)."""

    recipient: Address
    notify: frozenset[Notify] | None = None
    orcpt: OriginalRecipient | None = None


@dataclass(frozen=True, slots=True)
class Verify(Decision):
    """VRFY (only when enabled). Usual answer: ``SmtpReplies.CANNOT_VRFY``."""

    text: str


@dataclass(frozen=True, slots=True)
class Expand(Decision):
    """EXPN (only when enabled). Answer with the list (multi-line) or a refusal."""

    text: str


@dataclass(frozen=True, slots=True)
class StartTls(Decision):
    """STARTTLS. After a 2xx (``SmtpReplies.READY_TO_START_TLS``) the driver
    writes the reply, runs the handshake on the raw transport, then calls
    ``conn.tls_started(version, cipher)``; plaintext input is discarded."""


@dataclass(frozen=True, slots=True)
class AuthCredentials(Decision):
    """The SASL exchange ended with these credentials. 2xx
    (``SmtpReplies.AUTH_SUCCEEDED``) means: the password is right and the user
    may act as ``credentials.authzid`` when one is given."""

    credentials: SaslCredentials

    @property
    def mechanism(self) -> str:
        return self.credentials.mechanism

    @property
    def authzid(self) -> str | None:
        return self.credentials.authzid

    @property
    def username(self) -> str:
        return self.credentials.username

    @property
    def password(self) -> str:
        return self.credentials.password


@dataclass(frozen=True, slots=True)
class AuthKeysWanted(Decision):
    """SCRAM-SHA-256 (RFC 5802): answer with ``conn.send_keys(keys)``: the
    user's stored keys, or the made-up ones of an unknown user (never a reply:
    whether the user exists is told only at the end of the exchange)."""

    wanted: SaslKeysWanted

    @property
    def username(self) -> str:
        return self.wanted.username


@dataclass(frozen=True, slots=True)
class AuthProof(Decision):
    """A SCRAM exchange ended. 2xx (``SmtpReplies.AUTH_SUCCEEDED``) means: the
    proof is right (``proven``), the account may log in and act as ``authzid``
    when one is given."""

    proof: SaslProof

    @property
    def mechanism(self) -> str:
        return self.proof.mechanism

    @property
    def authzid(self) -> str | None:
        return self.proof.authzid

    @property
    def username(self) -> str:
        return self.proof.username


@dataclass(frozen=True, slots=True)
class MessageChunk(Event):
    """Message octets in order: dot-unstuffed, line ends normalised per policy."""

    data: bytes


@dataclass(frozen=True, slots=True)
class MessageComplete(Decision):
    """The whole message has arrived (``size`` octets in the chunks). The
    driver commits it durably, then answers ``SmtpReplies.queued(id)``, or a
    4xx/5xx. Either way the transaction is over."""

    envelope: Envelope
    size: int


@dataclass(frozen=True, slots=True)
class MessageAborted(Event):
    """The message being received will not complete: discard what was written.
    The connection answers the client itself (``reply``) when the data ends."""

    reason: str
    reply: Reply | None


@dataclass(frozen=True, slots=True)
class Refused(Event):
    """The connection refused a command by itself (for the log)."""

    command: str
    reply: Reply


@dataclass(frozen=True, slots=True)
class Closed(Event):
    """Terminal: write ``conn.data_to_send()`` and close the transport."""

    reason: str
