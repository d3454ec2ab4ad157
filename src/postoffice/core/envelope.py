"""The SMTP envelope as a value: who sent it, to whom, with which DSN and body parameters.

Produced by the SMTP server (``protocol/smtp``) and the ``sendmail`` command,
kept by the queue with every message, read by delivery and bounces.

Invariants:
- ``sender`` is None for the null reverse-path ``<>`` (RFC 5321 §4.5.5).
- Recipients keep their order and are unique by ``address.key``.
- DSN parameters are stored decoded and validated (RFC 3461 §4): NOTIFY is
  either exactly {NEVER} or a non-empty subset of {SUCCESS, FAILURE, DELAY};
  ORCPT keeps its address type and the decoded address; ENVID is decoded
  from xtext.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from postoffice.core.address import Address


class Notify(enum.Enum):
    """RFC 3461 §4.1 NOTIFY values."""

    NEVER = "NEVER"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    DELAY = "DELAY"


class BodyType(enum.Enum):
    """RFC 6152 / RFC 3030 BODY= values."""

    SEVEN_BIT = "7BIT"
    EIGHT_BIT_MIME = "8BITMIME"
    BINARY_MIME = "BINARYMIME"


class Ret(enum.Enum):
    """RFC 3461 §4.3 RET values: return the full message or only its headers."""

    FULL = "FULL"
    HDRS = "HDRS"


@dataclass(frozen=True, slots=True)
class OriginalRecipient:
    """RFC 3461 §4.2 ORCPT: ``addr-type ; address`` (address decoded from xtext)."""

    addr_type: str
    address: str

    def __str__(self) -> str:
        return f"{self.addr_type};{self.address}"


@dataclass(frozen=True, slots=True)
class EnvelopeRecipient:
    address: Address
    notify: frozenset[Notify] | None = None  # None: not given (default SUCCESS-less FAILURE,DELAY)
    orcpt: OriginalRecipient | None = None


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Who handed the message over: what the ``Received:`` header and the maillog say."""

    address: str | None = None  # IP address; None for local submission
    port: int | None = None
    hostname: str | None = None  # reverse DNS name, when looked up
    helo: str | None = None
    protocol: str = "ESMTP"  # RFC 3848: SMTP, ESMTP, ESMTPS, ESMTPA, ESMTPSA, LMTP, ...
    tls_version: str | None = None
    tls_cipher: str | None = None
    authenticated_as: str | None = None


@dataclass(frozen=True, slots=True)
class Envelope:
    sender: Address | None
    recipients: tuple[EnvelopeRecipient, ...] = ()
    body: BodyType | None = None
    smtputf8: bool = False
    ret: Ret | None = None
    envid: str | None = None
    declared_size: int | None = None  # RFC 1870 SIZE= from MAIL FROM
    client: ClientInfo = field(default_factory=ClientInfo)

    @property
    def sender_text(self) -> str:
        """The reverse-path as the maillog writes it: ``a@b`` or empty for ``<>``."""
        return "" if self.sender is None else str(self.sender)
