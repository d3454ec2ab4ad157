"""MAIL and RCPT parameters: which exist, what their values mean, when they are refused.

What this module owns: validating the raw ``(KEYWORD, value)`` pairs the
grammar produced into typed values, against what the server advertised.

MAIL FROM parameters:
- ``SIZE=n``      RFC 1870 §6: digits; over the fixed limit -> 552 5.3.4 at MAIL.
- ``BODY=``       7BIT / 8BITMIME (RFC 6152 §2); BINARYMIME (RFC 3030 §3) is not
                  offered, so it is refused with 555 like any unknown value.
- ``SMTPUTF8``    RFC 6531 §3.4: no value.
- ``RET=``        FULL / HDRS (RFC 3461 §4.3).
- ``ENVID=``      xtext, at most 100 characters (RFC 3461 §4.4), stored decoded.
- ``AUTH=``       xtext mailbox or ``<>`` (RFC 4954 §5), handed to the driver.
RCPT TO parameters:
- ``NOTIFY=``     NEVER alone, or a list of SUCCESS, FAILURE, DELAY (RFC 3461 §4.1).
- ``ORCPT=``      ``addr-type ";" xtext``, at most 500 characters (RFC 3461 §4.2);
                  for ``utf-8`` (RFC 6533 §3) the ``\\x{HEX}`` escapes are decoded too.

Refusals: an unknown keyword (or one whose extension is not offered) -> 555
5.5.4 (RFC 5321 §4.1.1.11); a keyword given twice -> 501 5.5.4; a malformed
value -> 501 5.5.4 naming the parameter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from postoffice.core.envelope import BodyType, Notify, OriginalRecipient, Ret
from postoffice.protocol.smtp.grammar import GrammarError, decode_xtext
from postoffice.protocol.smtp.replies import SmtpReplies

MAX_ENVID_CHARS: Final = 100  # RFC 3461 §4.4
MAX_ORCPT_CHARS: Final = 500  # RFC 3461 §4.2
_SIZE_DIGITS = re.compile(r"[0-9]{1,20}")
_ADDR_TYPE = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+")  # RFC 3461 §4.2: atom
_UTF8_ESCAPE = re.compile(r"\\x\{([0-9A-Fa-f]{1,6})\}")  # RFC 6533 §3


@dataclass(frozen=True, slots=True)
class MailParameters:
    size: int | None = None
    body: BodyType | None = None
    smtputf8: bool = False
    ret: Ret | None = None
    envid: str | None = None
    auth: str | None = None  # RFC 4954 §5 AUTH= mailbox, "<>" when unknown


@dataclass(frozen=True, slots=True)
class RcptParameters:
    notify: frozenset[Notify] | None = None
    orcpt: OriginalRecipient | None = None


def _unique(parameters: Iterable[tuple[str, str | None]]) -> dict[str, str | None]:
    seen: dict[str, str | None] = {}
    for keyword, value in parameters:
        if keyword in seen:
            raise GrammarError(SmtpReplies.DUPLICATE_PARAMETER)
        seen[keyword] = value
    return seen


def _required(value: str | None, bad: GrammarError) -> str:
    if value is None:
        raise bad
    return value


def validate_mail_parameters(
    parameters: Iterable[tuple[str, str | None]],
    *,
    max_message_size: int,
    dsn: bool,
    smtputf8: bool,
    auth: bool,
) -> MailParameters:
    """Typed MAIL parameters, or ``GrammarError`` with the reply (see module doc)."""
    given = _unique(parameters)
    size: int | None = None
    body: BodyType | None = None
    utf8 = False
    ret: Ret | None = None
    envid: str | None = None
    auth_value: str | None = None
    for keyword, value in given.items():
        if keyword == "SIZE":
            text = _required(value, GrammarError(SmtpReplies.BAD_SIZE))
            if not _SIZE_DIGITS.fullmatch(text):
                raise GrammarError(SmtpReplies.BAD_SIZE)
            size = int(text)
            if max_message_size and size > max_message_size:
                raise GrammarError(SmtpReplies.MESSAGE_TOO_BIG)  # RFC 1870 §6.1
        elif keyword == "BODY":
            text = _required(value, GrammarError(SmtpReplies.BAD_BODY)).upper()
            if text == "7BIT":
                body = BodyType.SEVEN_BIT
            elif text == "8BITMIME":
                body = BodyType.EIGHT_BIT_MIME
            else:
                raise GrammarError(SmtpReplies.unsupported_parameter(f"BODY={text}"))
        elif keyword == "SMTPUTF8" and smtputf8:
            if value is not None:
                raise GrammarError(SmtpReplies.BAD_SMTPUTF8)
            utf8 = True
        elif keyword == "RET" and dsn:
            text = _required(value, GrammarError(SmtpReplies.BAD_RET)).upper()
            try:
                ret = Ret(text)
            except ValueError as exc:
                raise GrammarError(SmtpReplies.BAD_RET) from exc
        elif keyword == "ENVID" and dsn:
            envid = _decode_envid(value)
        elif keyword == "AUTH" and auth:
            auth_value = _decode_auth(value)
        else:
            raise GrammarError(SmtpReplies.unsupported_parameter(keyword))
    return MailParameters(size, body, utf8, ret, envid, auth_value)


def _decode_envid(value: str | None) -> str:
    bad = GrammarError(SmtpReplies.BAD_ENVID)
    text = _required(value, bad)
    if len(text) > MAX_ENVID_CHARS:
        raise bad
    try:
        envid = decode_xtext(text)
    except ValueError as exc:
        raise bad from exc
    # RFC 3461 §4.4: ENVID is printable US-ASCII; a decoded CR or LF would
    # otherwise travel into the next hop's MAIL command and into reports.
    if not all(0x20 <= ord(c) < 0x7F for c in envid):
        raise bad
    return envid


def _decode_auth(value: str | None) -> str:
    bad = GrammarError(SmtpReplies.BAD_AUTH_PARAMETER)
    text = _required(value, bad)
    if text == "<>":
        return text
    try:
        return decode_xtext(text)
    except ValueError as exc:
        raise bad from exc


def validate_rcpt_parameters(
    parameters: Iterable[tuple[str, str | None]], *, dsn: bool
) -> RcptParameters:
    given = _unique(parameters)
    notify: frozenset[Notify] | None = None
    orcpt: OriginalRecipient | None = None
    for keyword, value in given.items():
        if keyword == "NOTIFY" and dsn:
            notify = parse_notify(value)
        elif keyword == "ORCPT" and dsn:
            orcpt = parse_orcpt(value)
        else:
            raise GrammarError(SmtpReplies.unsupported_parameter(keyword))
    return RcptParameters(notify, orcpt)


def parse_notify(value: str | None) -> frozenset[Notify]:
    """RFC 3461 §4.1: ``NEVER`` or a comma list of SUCCESS, FAILURE, DELAY."""
    bad = GrammarError(SmtpReplies.BAD_NOTIFY)
    items = _required(value, bad).upper().split(",")
    try:
        chosen = frozenset(Notify(item) for item in items)
    except ValueError as exc:
        raise bad from exc
    if Notify.NEVER in chosen and len(items) != 1:
        raise bad  # NEVER is exclusive
    return chosen


def parse_orcpt(value: str | None) -> OriginalRecipient:
    """RFC 3461 §4.2: ``addr-type ; xtext``; the address is stored decoded."""
    bad = GrammarError(SmtpReplies.BAD_ORCPT)
    text = _required(value, bad)
    if len(text) > MAX_ORCPT_CHARS:
        raise bad
    addr_type, semicolon, encoded = text.partition(";")
    if not semicolon or not encoded or not _ADDR_TYPE.fullmatch(addr_type):
        raise bad
    try:
        address = decode_xtext(encoded)
        if addr_type.lower() == "utf-8":
            address = _UTF8_ESCAPE.sub(_unescape_code_point, address)
    except ValueError as exc:
        raise bad from exc
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in address) or not address:
        raise bad
    return OriginalRecipient(addr_type.lower(), address)


def _unescape_code_point(match: re.Match[str]) -> str:
    code_point = int(match.group(1), 16)
    if code_point > 0x10FFFF or 0xD800 <= code_point <= 0xDFFF:
        raise ValueError("not a Unicode scalar value")
    return chr(code_point)
