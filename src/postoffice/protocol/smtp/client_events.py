"""What an ``SmtpClientConnection`` tells its driver.

Every event is an immutable value; none holds the connection. Each names
the reply it reports (``reply``), so the driver can log it and put it in a
delivery status notification as the remote server said it.

Which event ends what:
- ``Ready``: no transaction is open; ``begin``, ``reset``, ``quit`` (and
  ``hello``, ``starttls``, ``authenticate``) may be called.
- ``SenderRefused``, ``TransactionRefused``, ``MessageRefused``: the
  transaction is over and failed; the connection resets the server by itself
  (RSET) and reports ``Ready`` when that is done.
- ``MessageAccepted``: the transaction is over; ``Ready`` follows at once.
- ``ServiceClosing`` (a 421, RFC 5321 §3.8): every command still pending
  failed temporarily; the server is closing. ``Closing``: QUIT was answered.
- ``ProtocolViolation`` and ``ConnectionClosed`` are terminal: the driver
  closes the transport. ``next_event`` keeps returning the terminal event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from postoffice.core.reply import Reply
from postoffice.protocol.smtp.client_extensions import ServerExtensions

RefusalStage = Literal["size", "rcpt", "data"]


class ClientEvent:
    """Base of every event."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class NeedData(ClientEvent):
    """Write ``conn.data_to_send()``, then read and call ``conn.receive_data()``."""


@dataclass(frozen=True, slots=True)
class Greeting(ClientEvent):
    """The server's greeting (RFC 5321 §4.2): 220 to go on; anything else
    (554, RFC 5321 §3.1) means the driver QUITs or closes."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class HelloDone(ClientEvent):
    """EHLO (``extended=True``) or, after EHLO was not recognised, HELO was accepted."""

    reply: Reply
    extensions: ServerExtensions
    extended: bool


@dataclass(frozen=True, slots=True)
class HelloRefused(ClientEvent):
    """EHLO and HELO both failed (or EHLO failed other than with 'not recognised')."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class TlsReady(ClientEvent):
    """220 to STARTTLS: run the handshake on the raw transport, then call
    ``conn.tls_started()``. Plaintext received until then is discarded."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class TlsRefused(ClientEvent):
    reply: Reply


@dataclass(frozen=True, slots=True)
class AuthDone(ClientEvent):
    """235: authenticated (RFC 4954 §6)."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class AuthRefused(ClientEvent):
    reply: Reply


@dataclass(frozen=True, slots=True)
class SenderRefused(ClientEvent):
    """MAIL FROM failed: the transaction is over (``Ready`` follows the RSET)."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class RecipientResult(ClientEvent):
    """The reply to the RCPT TO of ``transaction.recipients[index]``."""

    index: int
    reply: Reply

    @property
    def accepted(self) -> bool:
        return self.reply.code // 100 == 2


@dataclass(frozen=True, slots=True)
class TransactionRefused(ClientEvent):
    """The transaction failed before the content: ``size`` (SIZE limit, nothing
    was sent), ``rcpt`` (no recipient accepted; the last refusal) or ``data``
    (the reply to DATA)."""

    reply: Reply
    stage: RefusalStage


@dataclass(frozen=True, slots=True)
class SendMessage(ClientEvent):
    """Send the content: ``conn.send_message_data(chunk)`` any number of times,
    then ``conn.end_message()``. ``reply`` is the 354, or None with BDAT."""

    reply: Reply | None


@dataclass(frozen=True, slots=True)
class MessageAccepted(ClientEvent):
    """The final reply to the content was positive: the server took the message."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class MessageRefused(ClientEvent):
    """The final reply to the content (or to a BDAT chunk) was negative."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class Ready(ClientEvent):
    """No transaction is open: a new one may begin."""


@dataclass(frozen=True, slots=True)
class Closing(ClientEvent):
    """QUIT was answered; the server will close the connection."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class ServiceClosing(ClientEvent):
    """421 (RFC 5321 §3.8), as an answer or unsolicited: whatever was pending
    failed temporarily and the server is closing the connection."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class ProtocolViolation(ClientEvent):
    """Terminal: the server said something that is not a reply, or not one that
    can come now. The connection is dead; close the transport."""

    description: str


@dataclass(frozen=True, slots=True)
class ConnectionClosed(ClientEvent):
    """Terminal: the server closed the connection; ``expected`` after QUIT or 421."""

    expected: bool
