"""SMTP command-line grammar: verbs, paths, ESMTP parameters, xtext.

What this module owns: turning one command line (CRLF already removed) into
values, or a ``GrammarError`` carrying the reply that says what is wrong. It
knows nothing of session state, limits or policy.

Grammar (RFC 5321 §4.1.1, §4.1.2, §4.1.3):

    command   = verb [ SP argument ]          ; verbs are case-insensitive
    mail-arg  = "FROM:" Reverse-path [ SP Mail-parameters ]
    rcpt-arg  = "TO:" ( "<Postmaster@" Domain ">" / "<Postmaster>" / Forward-path )
                [ SP Rcpt-parameters ]
    Path      = "<" [ A-d-l ":" ] Mailbox ">"  ; the source route A-d-l is accepted
                                               ; and ignored (RFC 5321 §4.1.1.3, §3.6.1)
    esmtp-param = esmtp-keyword [ "=" esmtp-value ]
    esmtp-value = 1*(%d33-60 / %d62-126 / UTF8-non-ascii)   ; RFC 6531 §3.3

Leniencies, each deliberate: spaces between ``FROM:``/``TO:`` and the path
and runs of spaces between parameters are accepted (clients send them and
nothing is ambiguous); trailing white space is ignored. Angle brackets are
required: without them a path and its parameters could not be told apart.

Invariants: commands are valid UTF-8 without control characters, or refused
(500 5.5.2); a mailbox is parsed once, by ``core.address.parse_address``, so
the relay check and the router see the same ``Address``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from postoffice.core.address import Address, canonical_domain, parse_address
from postoffice.core.errors import AddressError, PostofficeError
from postoffice.core.reply import Reply
from postoffice.protocol.smtp.replies import SmtpReplies

MAX_HELO_OCTETS: Final = 255


class GrammarError(PostofficeError):
    """A command line does not parse; ``reply`` is what the server answers."""

    def __init__(self, reply: Reply, detail: str = "") -> None:
        super().__init__(detail or reply.text)
        self.reply = reply


@dataclass(frozen=True, slots=True)
class CommandLine:
    verb: str  # upper case
    argument: str  # may be empty; surrounding white space removed


@dataclass(frozen=True, slots=True)
class PathArgument:
    """A MAIL or RCPT argument: the mailbox text (route removed) and raw parameters."""

    mailbox: str | None  # None for the null path "<>"
    parameters: tuple[tuple[str, str | None], ...]


_CONTROL_BYTES = re.compile(rb"[\x00-\x1f\x7f]")
_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_VALUE = re.compile(r"[^\x00-\x20=\x7f]+")  # RFC 5321 esmtp-value, RFC 6531 §3.3 adds UTF-8
_BDAT = re.compile(r"([0-9]{1,20})(?: +(LAST))?", re.IGNORECASE)
_SASL_MECH = re.compile(r"[A-Za-z0-9_-]{1,20}")  # RFC 4422 §3.1 sasl-mech
_POSTMASTER = re.compile(r"postmaster", re.IGNORECASE)


def parse_command_line(line: bytes) -> CommandLine:
    """Split ``VERB argument``; refuse control characters and invalid UTF-8."""
    if _CONTROL_BYTES.search(line):
        raise GrammarError(SmtpReplies.CONTROL_CHARACTERS)
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GrammarError(SmtpReplies.BAD_ENCODING) from exc
    text = text.strip(" ")
    if not text:
        raise GrammarError(SmtpReplies.COMMAND_UNRECOGNIZED)
    verb, _, argument = text.partition(" ")
    return CommandLine(verb.upper(), argument.strip(" "))


def command_verb(line: bytes) -> str:
    """The upper-cased first word of a raw line, whatever else is wrong with it."""
    return line.lstrip(b" ").split(b" ", 1)[0][:16].decode("ascii", "replace").upper()


def parse_hello_argument(argument: str, *, extended: bool) -> str:
    """RFC 5321 §4.1.1.1: one domain or address literal; kept as sent for policy to judge."""
    syntax = SmtpReplies.SYNTAX_EHLO if extended else SmtpReplies.SYNTAX_HELO
    if not argument or " " in argument or len(argument.encode("utf-8")) > MAX_HELO_OCTETS:
        raise GrammarError(syntax)
    return argument


def parse_mail_argument(argument: str) -> PathArgument:
    return _parse_path_argument(argument, "FROM:", SmtpReplies.SYNTAX_MAIL, null_allowed=True)


def parse_rcpt_argument(argument: str) -> PathArgument:
    return _parse_path_argument(argument, "TO:", SmtpReplies.SYNTAX_RCPT, null_allowed=False)


def _parse_path_argument(
    argument: str, prefix: str, syntax: Reply, *, null_allowed: bool
) -> PathArgument:
    if argument[: len(prefix)].upper() != prefix:
        raise GrammarError(syntax)
    text = argument[len(prefix) :].lstrip(" ")
    inner, rest = split_path(text, syntax)
    if rest and not rest.startswith(" "):
        raise GrammarError(syntax)
    parameters = parse_esmtp_parameters(rest)
    if inner == "":
        if not null_allowed:
            raise GrammarError(SmtpReplies.BAD_RECIPIENT_SYNTAX)
        return PathArgument(None, parameters)
    bad = SmtpReplies.BAD_SENDER_SYNTAX if null_allowed else SmtpReplies.BAD_RECIPIENT_SYNTAX
    return PathArgument(strip_source_route(inner, bad), parameters)


def split_path(text: str, syntax: Reply) -> tuple[str, str]:
    """``<inner>rest`` -> (inner, rest); quoted strings may hold ``>`` (RFC 5321 §4.1.2)."""
    if not text.startswith("<"):
        raise GrammarError(syntax)
    i, n = 1, len(text)
    while i < n:
        char = text[i]
        if char == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            if i >= n:
                raise GrammarError(syntax)
        elif char == ">":
            return text[1:i], text[i + 1 :]
        elif char == "<":
            raise GrammarError(syntax)
        i += 1
    raise GrammarError(syntax)


def strip_source_route(inner: str, bad: Reply) -> str:
    """``@a,@b:user@domain`` -> ``user@domain``.

    RFC 5321 §4.1.1.3 and §3.6.1: servers MUST accept a source route and
    SHOULD ignore it. The route's domains must still be well-formed.
    """
    if not inner.startswith("@"):
        return inner
    route, colon, mailbox = inner.partition(":")
    if not colon or not mailbox:
        raise GrammarError(bad)
    for hop in route.split(","):
        if not hop.startswith("@"):
            raise GrammarError(bad)
        try:
            canonical_domain(hop[1:])
        except AddressError as exc:
            raise GrammarError(bad) from exc
    return mailbox


def parse_esmtp_parameters(text: str) -> tuple[tuple[str, str | None], ...]:
    """``KEY=value KEY2`` -> ((``KEY``, ``value``), (``KEY2``, None)); keywords upper-cased."""
    result: list[tuple[str, str | None]] = []
    for item in text.split(" "):
        if not item:
            continue
        keyword, equals, value = item.partition("=")
        if not _KEYWORD.fullmatch(keyword):
            raise GrammarError(SmtpReplies.PARAMETER_SYNTAX)
        if equals and not _VALUE.fullmatch(value):
            raise GrammarError(SmtpReplies.PARAMETER_SYNTAX)
        result.append((keyword.upper(), value if equals else None))
    return tuple(result)


def sender_address(mailbox: str) -> Address:
    """The reverse-path mailbox as an ``Address`` (501 5.1.7 when malformed)."""
    try:
        return parse_address(mailbox)
    except AddressError as exc:
        raise GrammarError(SmtpReplies.BAD_SENDER_SYNTAX) from exc


def recipient_address(mailbox: str, postmaster_domain: str) -> Address:
    """The forward-path mailbox; bare ``postmaster`` is completed (RFC 5321 §4.5.1)."""
    try:
        if _POSTMASTER.fullmatch(mailbox):
            return Address("postmaster", canonical_domain(postmaster_domain))
        return parse_address(mailbox)
    except AddressError as exc:
        raise GrammarError(SmtpReplies.BAD_RECIPIENT_SYNTAX) from exc


def parse_bdat_argument(argument: str) -> tuple[int, bool]:
    """RFC 3030 §3: ``chunk-size [SP "LAST"]`` -> (size, last)."""
    match = _BDAT.fullmatch(argument)
    if not match:
        raise GrammarError(SmtpReplies.SYNTAX_BDAT)
    return int(match.group(1)), match.group(2) is not None


def parse_auth_argument(argument: str) -> tuple[str, str | None]:
    """RFC 4954 §4: ``mechanism [SP initial-response]`` -> (MECHANISM, response text)."""
    mechanism, _, initial = argument.partition(" ")
    initial = initial.strip(" ")
    if not _SASL_MECH.fullmatch(mechanism) or " " in initial:
        raise GrammarError(SmtpReplies.SYNTAX_AUTH)
    return mechanism.upper(), initial or None


# RFC 3461 §4: xchar is any printable ASCII but "+" and "="; hexchar is "+" 2HEXDIG.
_XTEXT = re.compile(r"(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-Fa-f]{2})*")
_XTEXT_HEX = re.compile(r"\+([0-9A-Fa-f]{2})")


def decode_xtext(text: str) -> str:
    """RFC 3461 §4 xtext -> text; raises ``ValueError`` when malformed or not UTF-8."""
    if not _XTEXT.fullmatch(text):
        raise ValueError(f"invalid xtext {text!r}")
    raw = _XTEXT_HEX.sub(lambda m: chr(int(m.group(1), 16)), text)
    return raw.encode("latin-1").decode("utf-8")


def encode_xtext(text: str) -> str:
    """Text -> RFC 3461 §4 xtext (UTF-8 octets outside xchar become ``+XX``)."""
    out = []
    for octet in text.encode("utf-8"):
        if 0x21 <= octet <= 0x7E and octet not in (0x2B, 0x3D):
            out.append(chr(octet))
        else:
            out.append(f"+{octet:02X}")
    return "".join(out)
