"""One mail transaction as the client sends it, and its MAIL and RCPT command lines.

What this module owns: ``Transaction`` and ``TransactionRecipient`` (what the
driver wants sent: envelope, declared size, body type, DSN requests), their
validation, and the text of ``MAIL FROM`` and ``RCPT TO`` with exactly the
ESMTP parameters the server offered:

    SIZE=n          when SIZE was offered                     RFC 1870 §3
    BODY=...        8BITMIME/7BIT when 8BITMIME was offered,  RFC 6152 §2
                    BINARYMIME when offered and the content   RFC 3030 §3
                    goes by BDAT
    SMTPUTF8        when offered and asked for, or needed     RFC 6531 §3.4
    RET= ENVID=     when DSN was offered                      RFC 3461 §4.3, §4.4
    NOTIFY= ORCPT=  when DSN was offered                      RFC 3461 §4.1, §4.2

Invariants: no address, ENVID or ORCPT holds a control character (CR, LF,
NUL...), so nothing stored can inject a command; ENVID and the ORCPT address
go out as xtext (RFC 3461 §4); NOTIFY is NEVER alone or a non-empty set of
SUCCESS, FAILURE, DELAY (RFC 3461 §4.1). Whether the server *may* be given a
transaction (8-bit content, UTF-8 addresses) is the driver's policy, helped
by ``ServerExtensions`` and ``needs_smtputf8``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from postoffice.protocol.smtp.client_extensions import ServerExtensions
from postoffice.protocol.smtp.grammar import encode_xtext

BodyName = Literal["7BIT", "8BITMIME", "BINARYMIME"]
RetName = Literal["FULL", "HDRS"]

_BODIES: Final = ("7BIT", "8BITMIME", "BINARYMIME")
_RETS: Final = ("FULL", "HDRS")
_NOTIFY: Final = frozenset({"SUCCESS", "FAILURE", "DELAY"})
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_ADDR_TYPE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+-]*")  # RFC 3461 §4.2 addr-type atom


def refuse_control_characters(text: str, what: str) -> None:
    """Raise ``ValueError`` when ``text`` holds a control character (it could end a line)."""
    if _CONTROL.search(text):
        raise ValueError(f"{what} contains a control character: {text!r}")


@dataclass(frozen=True, slots=True)
class TransactionRecipient:
    """One RCPT TO: the address, and its DSN requests (RFC 3461 §4.1, §4.2)."""

    address: str
    notify: tuple[str, ...] | None = None
    orcpt: str | None = None  # decoded "addr-type;address", e.g. "rfc822;bob@example.test"

    def __post_init__(self) -> None:
        refuse_control_characters(self.address, "recipient address")
        if not self.address:
            raise ValueError("a recipient address cannot be empty")
        if self.notify is not None:
            values = {value.upper() for value in self.notify}
            if values != {"NEVER"} and (not values or not values <= _NOTIFY):
                raise ValueError(f"invalid NOTIFY {self.notify!r} (RFC 3461 §4.1)")
        if self.orcpt is not None:
            refuse_control_characters(self.orcpt, "ORCPT")
            addr_type, semicolon, address = self.orcpt.partition(";")
            if not semicolon or not address or not _ADDR_TYPE.fullmatch(addr_type):
                raise ValueError(f"ORCPT must be 'addr-type;address': {self.orcpt!r}")


@dataclass(frozen=True, slots=True)
class Transaction:
    """What one transaction sends: ``sender`` "" is the null reverse-path ``<>``."""

    sender: str
    recipients: tuple[TransactionRecipient, ...]
    size: int | None = None
    body: BodyName | None = None
    smtputf8: bool = False
    ret: RetName | None = None
    envid: str | None = None

    def __post_init__(self) -> None:
        refuse_control_characters(self.sender, "sender address")
        if not self.recipients:
            raise ValueError("a transaction needs at least one recipient")
        if self.size is not None and self.size < 0:
            raise ValueError(f"negative message size {self.size}")
        if self.body is not None and self.body not in _BODIES:
            raise ValueError(f"invalid BODY {self.body!r}")
        if self.ret is not None and self.ret not in _RETS:
            raise ValueError(f"invalid RET {self.ret!r}")
        if self.envid is not None:
            refuse_control_characters(self.envid, "ENVID")


def needs_smtputf8(transaction: Transaction) -> bool:
    """True when an address of the envelope is not ASCII (RFC 6531 §3.4)."""
    addresses = [transaction.sender, *(r.address for r in transaction.recipients)]
    return not all(address.isascii() for address in addresses)


def declares_binary(transaction: Transaction, extensions: ServerExtensions, *, bdat: bool) -> bool:
    """Whether MAIL says BODY=BINARYMIME: only with BINARYMIME offered and the
    content going by BDAT (RFC 3030 §3). Otherwise no BODY is declared for
    binary content, and whether to send it at all is the driver's choice."""
    return transaction.body == "BINARYMIME" and bdat and extensions.binarymime


def mail_from_text(transaction: Transaction, extensions: ServerExtensions, *, bdat: bool) -> str:
    """``MAIL FROM:<sender> params`` (no line end), parameters as the server offered them."""
    words = [f"MAIL FROM:<{transaction.sender}>"]
    if transaction.size is not None and extensions.offers("SIZE"):
        words.append(f"SIZE={transaction.size}")  # RFC 1870 §3
    body = transaction.body
    if declares_binary(transaction, extensions, bdat=bdat):
        words.append("BODY=BINARYMIME")  # RFC 3030 §3
    elif body in ("7BIT", "8BITMIME") and extensions.eight_bit_mime:
        words.append(f"BODY={body}")  # RFC 6152 §2
    if (transaction.smtputf8 or needs_smtputf8(transaction)) and extensions.smtputf8:
        words.append("SMTPUTF8")  # RFC 6531 §3.4
    if extensions.dsn:
        if transaction.ret is not None:
            words.append(f"RET={transaction.ret}")  # RFC 3461 §4.3
        if transaction.envid is not None:
            words.append(f"ENVID={encode_xtext(transaction.envid)}")  # RFC 3461 §4.4
    return " ".join(words)


def rcpt_to_text(recipient: TransactionRecipient, extensions: ServerExtensions) -> str:
    """``RCPT TO:<address> params`` (no line end)."""
    words = [f"RCPT TO:<{recipient.address}>"]
    if extensions.dsn:
        if recipient.notify is not None:
            notify = dict.fromkeys(value.upper() for value in recipient.notify)
            words.append("NOTIFY=" + ",".join(notify))  # RFC 3461 §4.1
        if recipient.orcpt is not None:
            # RFC 3461 §4.2: ORCPT=addr-type ";" xtext
            addr_type, _, address = recipient.orcpt.partition(";")
            words.append(f"ORCPT={addr_type};{encode_xtext(address)}")
    return " ".join(words)
