"""Server side of the SASL exchanges shared by SMTP, POP3 and IMAP: PLAIN and LOGIN.

What this module owns:
- the base64 framing rules common to SMTP AUTH (RFC 4954 §4), IMAP
  AUTHENTICATE (RFC 9051 §6.2.2) and POP3 AUTH (RFC 5034 §4): strict base64,
  ``*`` cancels the exchange, ``=`` is an empty initial response;
- the mechanisms' message formats: PLAIN (RFC 4616 §2: ``[authzid] NUL authcid
  NUL passwd`` in UTF-8) and LOGIN (draft-murchison-sasl-login: the server asks
  ``Username:`` then ``Password:``; an initial response is the user name).

SCRAM-SHA-256 lives in ``postoffice.protocol.scram``; the two results only it
gives (``SaslKeysWanted``, ``SaslProof``) are defined here beside the others.

Each protocol frames the challenges itself (``334 …``, ``+ …``) and turns a
``SaslError`` into its own reply. The exchange never checks a password: it
ends with ``SaslCredentials`` which the driver verifies against the
directory.

Invariants: a ``SaslServerExchange`` yields challenges until it yields exactly
one ``SaslCredentials``; afterwards it refuses further steps. User names and
passwords are valid UTF-8 without NUL, and neither is empty.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Final

from postoffice.core.errors import PostofficeError

SUPPORTED_MECHANISMS: Final = ("PLAIN", "LOGIN")

# RFC 4616 §2: a server SHOULD accept up to 255 octets for each of authzid,
# authcid and passwd; more is refused so nothing unbounded reaches the directory.
MAX_FIELD_OCTETS: Final = 1024


class SaslError(PostofficeError):
    """The client's response is malformed (bad base64, bad PLAIN message, ...)."""


class SaslCancelled(SaslError):
    """The client sent ``*``: RFC 4954 §4 — the server answers 501 and ends the exchange."""


class SaslEncodingError(SaslError):
    """The client's response line is not strict, padded base64."""


@dataclass(frozen=True, slots=True)
class SaslChallenge:
    """Raw challenge octets; the protocol base64-encodes and frames them."""

    data: bytes


@dataclass(frozen=True, slots=True)
class SaslCredentials:
    """What the client presented: to be checked by the driver, never here."""

    mechanism: str
    authzid: str | None
    username: str
    password: str

    def __repr__(self) -> str:  # never let a password reach a log through repr()
        return (
            f"SaslCredentials(mechanism={self.mechanism!r}, authzid={self.authzid!r}, "
            f"username={self.username!r}, password='***')"
        )


@dataclass(frozen=True, slots=True)
class SaslKeysWanted:
    """SCRAM: to go on, the exchange needs the stored keys of ``username``
    (the driver looks them up and calls the exchange's ``keys_found``)."""

    mechanism: str
    authzid: str | None
    username: str


@dataclass(frozen=True, slots=True)
class SaslProof:
    """SCRAM ended: whether the client proved that it knows ``username``'s password.
    The driver still decides (account enabled, ``authzid`` allowed)."""

    mechanism: str
    authzid: str | None
    username: str
    proven: bool


def decode_response(text: str | bytes, *, initial: bool = False) -> bytes:
    """Decode one client response line (without CRLF).

    ``*`` raises ``SaslCancelled``; in an initial response (``AUTH PLAIN =``)
    a single ``=`` stands for an empty response (RFC 4954 §4). Anything that
    is not strict, padded base64 raises ``SaslError``.
    """
    raw = text.encode("ascii", "replace") if isinstance(text, str) else bytes(text)
    if raw == b"*":
        raise SaslCancelled("authentication cancelled by the client")
    if initial and raw == b"=":
        return b""
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SaslEncodingError("response is not valid base64") from exc


def encode_challenge(data: bytes) -> str:
    """Base64 of a challenge, as the protocols put it on the wire (empty stays empty)."""
    return base64.b64encode(data).decode("ascii")


def _utf8_field(data: bytes, what: str) -> str:
    if len(data) > MAX_FIELD_OCTETS:
        raise SaslError(f"{what} is too long")
    if b"\x00" in data:
        raise SaslError(f"{what} contains NUL")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SaslError(f"{what} is not valid UTF-8") from exc


def parse_plain_message(message: bytes) -> tuple[str | None, str, str]:
    """RFC 4616 §2: ``[authzid] UTF8NUL authcid UTF8NUL passwd`` -> (authzid, authcid, passwd)."""
    parts = message.split(b"\x00")
    if len(parts) != 3:
        raise SaslError("PLAIN message must have exactly two NUL separators")
    authzid_raw, authcid_raw, passwd_raw = parts
    if not authcid_raw or not passwd_raw:
        raise SaslError("PLAIN message needs a user name and a password")
    authzid = _utf8_field(authzid_raw, "authorization identity") if authzid_raw else None
    return authzid, _utf8_field(authcid_raw, "user name"), _utf8_field(passwd_raw, "password")


class SaslServerExchange:
    """One server-side SASL exchange for PLAIN or LOGIN.

    ``step(None)`` starts without an initial response; ``step(data)`` gives
    the client's decoded response. Each step returns the next challenge or the
    final credentials, or raises ``SaslError``.
    """

    def __init__(self, mechanism: str) -> None:
        mechanism = mechanism.upper()
        if mechanism not in SUPPORTED_MECHANISMS:
            raise SaslError(f"unsupported mechanism {mechanism}")
        self.mechanism = mechanism
        self._username: str | None = None
        self._done = False
        self._started = False

    @property
    def done(self) -> bool:
        return self._done

    def respond(
        self, line: str | bytes | None, *, initial: bool = False
    ) -> SaslChallenge | SaslCredentials:
        """One turn from the client's line as it came (base64, or None for no
        initial response): decoded (``decode_response``), then ``step``.

        Raises ``SaslCancelled`` for ``*``, ``SaslEncodingError`` for bad
        base64, and ``SaslError`` for a decoded response the mechanism refuses:
        each protocol answers the three with its own reply.
        """
        return self.step(None if line is None else decode_response(line, initial=initial))

    def step(self, response: bytes | None) -> SaslChallenge | SaslCredentials:
        if self._done:
            raise SaslError("the exchange is already complete")
        first = not self._started
        self._started = True
        if self.mechanism == "PLAIN":
            return self._step_plain(response, first)
        return self._step_login(response, first)

    def _step_plain(self, response: bytes | None, first: bool) -> SaslChallenge | SaslCredentials:
        if response is None:
            if not first:
                raise SaslError("PLAIN expects a response")
            # RFC 4616 §2: the server sends an empty challenge when no initial response came.
            return SaslChallenge(b"")
        authzid, username, password = parse_plain_message(response)
        self._done = True
        return SaslCredentials("PLAIN", authzid, username, password)

    def _step_login(self, response: bytes | None, first: bool) -> SaslChallenge | SaslCredentials:
        if response is None:
            if not first:
                raise SaslError("LOGIN expects a response")
            return SaslChallenge(b"Username:")
        if self._username is None:
            username = _utf8_field(response, "user name")
            if not username:
                raise SaslError("empty user name")
            self._username = username
            return SaslChallenge(b"Password:")
        password = _utf8_field(response, "password")
        if not password:
            raise SaslError("empty password")
        self._done = True
        return SaslCredentials("LOGIN", None, self._username, password)
