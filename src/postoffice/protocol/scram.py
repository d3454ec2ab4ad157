"""SCRAM-SHA-256 (RFC 5802, RFC 7677): the stored keys and the server's exchange.

What this module owns:
- ``ScramKeys``, what an account keeps so that a client can prove it knows the
  password without sending it: the salt, the iteration count, StoredKey and
  ServerKey (RFC 5802 §3), made from a password by ``derive_scram_keys`` and
  written as text in PostgreSQL's form ``SCRAM-SHA-256$<i>:<salt>$<StoredKey>:<ServerKey>``;
- SASLprep (RFC 4013) of the password, with the tables of ``stringprep``;
- ``ScramServerExchange``: client-first (GS2 header, ``n=``, ``r=``),
  server-first (``r=``, ``s=``, ``i=``), client-final (``c=``, ``r=``, ``p=``),
  the check of the proof and the server-final ``v=``. The exchange never reads
  an account: after client-first it asks for the user's keys
  (``SaslKeysWanted``) and the driver gives them with ``keys_found``.

Channel binding (``-PLUS``) is not offered: a client that asks for it (``p=``)
is refused, one that says it could use it (``y``) is accepted (RFC 5802 §6:
the server offers no ``-PLUS`` mechanism, so there is no downgrade).

Invariants: the exchange ends in exactly one ``SaslProof``; it is ``proven``
only when the client's proof matches the StoredKey the driver gave; for an
unknown user the driver gives ``unknown_user_keys`` (a salt that is the same
on every attempt, keys that match no proof), so the exchange looks the same
for users that exist and users that do not (RFC 5802 §9).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import stringprep
import unicodedata
from dataclasses import dataclass
from enum import Enum, auto
from typing import Final

from postoffice.protocol.sasl import (
    MAX_FIELD_OCTETS,
    SUPPORTED_MECHANISMS,
    SaslChallenge,
    SaslError,
    SaslKeysWanted,
    SaslProof,
    SaslServerExchange,
    decode_response,
)

MECHANISM: Final = "SCRAM-SHA-256"
# Every mechanism ``server_exchange`` can run.
SERVER_MECHANISMS: Final = (*SUPPORTED_MECHANISMS, MECHANISM)
# RFC 7677 §4: at least 4096; the count Dovecot and PostgreSQL store.
DEFAULT_ITERATIONS: Final = 4096
MAX_ITERATIONS: Final = 1_000_000  # a stored count above this is refused as corrupt
SALT_OCTETS: Final = 16
_PREFIX: Final = MECHANISM + "$"
_NONCE_OCTETS: Final = 18  # 24 characters of URL-safe base64: no "," (RFC 5802 §7 printable)


@dataclass(frozen=True, slots=True)
class ScramKeys:
    """RFC 5802 §3: what the server stores instead of the password."""

    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    def __repr__(self) -> str:  # keys stay out of logs
        return f"ScramKeys(iterations={self.iterations}, salt={len(self.salt)} octets)"

    def text(self) -> str:
        """The stored form: ``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>``."""
        b64 = _b64
        return (
            f"{_PREFIX}{self.iterations}:{b64(self.salt)}"
            f"${b64(self.stored_key)}:{b64(self.server_key)}"
        )

    @classmethod
    def parse(cls, text: str) -> ScramKeys:
        """The keys from ``text()``'s form; ``ValueError`` when it is not that."""
        if not text.startswith(_PREFIX):
            raise ValueError("not SCRAM-SHA-256 keys")
        head, sep, keys = text[len(_PREFIX) :].partition("$")
        iterations, sep1, salt = head.partition(":")
        stored, sep2, server = keys.partition(":")
        if not (sep and sep1 and sep2 and iterations.isdigit()):
            raise ValueError("malformed SCRAM-SHA-256 keys")
        count = int(iterations)
        if not DEFAULT_ITERATIONS <= count <= MAX_ITERATIONS:
            raise ValueError("SCRAM-SHA-256 iteration count out of range")
        try:
            parts = [base64.b64decode(p, validate=True) for p in (salt, stored, server)]
        except (binascii.Error, ValueError) as exc:
            raise ValueError("malformed SCRAM-SHA-256 keys") from exc
        if not parts[0] or len(parts[1]) != 32 or len(parts[2]) != 32:
            raise ValueError("malformed SCRAM-SHA-256 keys")
        return cls(parts[0], count, parts[1], parts[2])


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.digest(key, message, "sha256")


def saslprep(text: str) -> str:
    """RFC 4013 for stored strings; ``ValueError`` for a prohibited character."""
    # §2.1 mapping: non-ASCII spaces to SPACE, "commonly mapped to nothing" dropped.
    mapped = "".join(
        " " if stringprep.in_table_c12(c) else c for c in text if not stringprep.in_table_b1(c)
    )
    normal = unicodedata.normalize("NFKC", mapped)  # §2.2
    prohibited = (
        stringprep.in_table_c12,
        stringprep.in_table_c21,
        stringprep.in_table_c22,
        stringprep.in_table_c3,
        stringprep.in_table_c4,
        stringprep.in_table_c5,
        stringprep.in_table_c6,
        stringprep.in_table_c7,
        stringprep.in_table_c8,
        stringprep.in_table_c9,
        stringprep.in_table_a1,  # §2.5: unassigned code points, stored strings
    )
    for char in normal:
        if any(test(char) for test in prohibited):
            raise ValueError(f"character U+{ord(char):04X} is not allowed (RFC 4013 §2.3)")
    # §2.4 / RFC 3454 §6: right-to-left text is all RandALCat-bounded, without LCat.
    right_to_left = any(stringprep.in_table_d1(c) for c in normal)
    if right_to_left and (
        any(stringprep.in_table_d2(c) for c in normal)
        or not (stringprep.in_table_d1(normal[0]) and stringprep.in_table_d1(normal[-1]))
    ):
        raise ValueError("mixed-direction text is not allowed (RFC 3454 §6)")
    return normal


def derive_scram_keys(
    password: str, *, salt: bytes | None = None, iterations: int = DEFAULT_ITERATIONS
) -> ScramKeys:
    """RFC 5802 §3: SaltedPassword = Hi(Normalize(password), salt, i), then the keys."""
    try:
        normal = saslprep(password)
    except ValueError:
        normal = password  # as PostgreSQL: a password SASLprep refuses is used as it is
    salt = secrets.token_bytes(SALT_OCTETS) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", normal.encode("utf-8"), salt, iterations)
    client_key = _hmac(salted, b"Client Key")
    return ScramKeys(
        salt, iterations, hashlib.sha256(client_key).digest(), _hmac(salted, b"Server Key")
    )


def unknown_user_keys(secret: bytes, username: str) -> ScramKeys:
    """Keys for a user who has none (unknown, disabled, or no keys stored yet):
    the salt depends only on ``secret`` and the name, so it is the same on
    every attempt, as a real user's is; the keys are random and match no proof."""
    salt = _hmac(secret, b"salt:" + username.encode("utf-8"))[:SALT_OCTETS]
    return ScramKeys(salt, DEFAULT_ITERATIONS, secrets.token_bytes(32), secrets.token_bytes(32))


def _attributes(message: str, what: str) -> list[tuple[str, str]]:
    """``a=value,b=value`` as pairs (RFC 5802 §7: one letter, "=", the value)."""
    pairs = []
    for part in message.split(","):
        if len(part) < 2 or part[1] != "=" or not part[0].isalpha():
            raise SaslError(f"malformed {what}")
        pairs.append((part[0], part[2:]))
    return pairs


def _saslname(value: str) -> str:
    """RFC 5802 §5.1: "=2C" is ",", "=3D" is "="; any other "=" is an error."""
    if not value:
        raise SaslError("empty user name")
    out, rest = [], value
    while "=" in rest:
        head, _, tail = rest.partition("=")
        escape = tail[:2]
        if escape not in ("2C", "3D"):
            raise SaslError("bad escape in user name")
        out.append(head + ("," if escape == "2C" else "="))
        rest = tail[2:]
    out.append(rest)
    return "".join(out)


def _printable_nonce(nonce: str) -> bool:
    return bool(nonce) and all(0x21 <= ord(c) <= 0x7E and c != "," for c in nonce)


class _Stage(Enum):
    CLIENT_FIRST = auto()
    KEYS = auto()
    CLIENT_FINAL = auto()
    ACKNOWLEDGE = auto()  # server-final sent; the client answers with an empty response
    DONE = auto()


class ScramServerExchange:
    """One SCRAM-SHA-256 exchange, the same for SMTP, POP3 and IMAP.

    ``respond(line)`` takes each client line as it came (base64, ``*``);
    after client-first it returns ``SaslKeysWanted`` and waits for
    ``keys_found``, which returns server-first. A right proof gets the
    server-final (``v=``) as a last challenge, and the client's empty
    answer to it ends the exchange in a proven ``SaslProof``; a wrong proof
    ends it at once in one that is not proven.
    """

    mechanism: Final = MECHANISM

    def __init__(self, *, server_nonce: str | None = None) -> None:
        self._server_nonce = server_nonce or secrets.token_urlsafe(_NONCE_OCTETS)
        self._stage = _Stage.CLIENT_FIRST
        self._gs2_header = ""
        self._client_first_bare = ""
        self._server_first = ""
        self._nonce = ""
        self._username = ""
        self._authzid: str | None = None
        self._keys: ScramKeys | None = None

    @property
    def done(self) -> bool:
        return self._stage is _Stage.DONE

    def respond(
        self, line: str | bytes | None, *, initial: bool = False
    ) -> SaslChallenge | SaslKeysWanted | SaslProof:
        """One client turn (``decode_response`` rules); raises ``SaslError`` as PLAIN does."""
        response = None if line is None else decode_response(line, initial=initial)
        stage = self._stage
        if stage is _Stage.CLIENT_FIRST:
            if response is None:
                return SaslChallenge(b"")  # RFC 4954 §4: ask for the client-first
            return self._client_first(response)
        if stage is _Stage.CLIENT_FINAL and response is not None:
            return self._client_final(response)
        if stage is _Stage.ACKNOWLEDGE and response == b"":
            self._stage = _Stage.DONE
            return SaslProof(MECHANISM, self._authzid, self._username, True)
        raise SaslError("unexpected SCRAM response")

    def keys_found(self, keys: ScramKeys) -> SaslChallenge:
        """The user's keys (or ``unknown_user_keys``): the server-first challenge."""
        if self._stage is not _Stage.KEYS:
            raise SaslError("the exchange is not waiting for keys")
        self._keys = keys
        self._server_first = f"r={self._nonce},s={_b64(keys.salt)},i={keys.iterations}"
        self._stage = _Stage.CLIENT_FINAL
        return SaslChallenge(self._server_first.encode("ascii"))

    def _client_first(self, response: bytes) -> SaslKeysWanted:
        text = _text(response)
        # gs2-header: cbind flag "," [authzid] ","  (RFC 5802 §7)
        flag, sep1, rest = text.partition(",")
        authzid_part, sep2, bare = rest.partition(",")
        if not (sep1 and sep2):
            raise SaslError("malformed client-first message")
        if flag not in ("n", "y"):
            raise SaslError("channel binding is not supported")  # "p=..." (no -PLUS offered)
        if authzid_part:
            if not authzid_part.startswith("a="):
                raise SaslError("malformed authorization identity")
            self._authzid = _saslname(authzid_part[2:])
        pairs = _attributes(bare, "client-first message")
        if len(pairs) < 2 or pairs[0][0] != "n" or pairs[1][0] != "r":
            # An "m=" mandatory extension comes first and is not known here (§5.1).
            raise SaslError("client-first must start with n= and r=")
        self._username = _saslname(pairs[0][1])
        client_nonce = pairs[1][1]
        if not _printable_nonce(client_nonce):
            raise SaslError("malformed client nonce")
        self._gs2_header = text[: len(flag) + len(authzid_part) + 2]
        self._client_first_bare = bare
        self._nonce = client_nonce + self._server_nonce
        self._stage = _Stage.KEYS
        return SaslKeysWanted(MECHANISM, self._authzid, self._username)

    def _client_final(self, response: bytes) -> SaslChallenge | SaslProof:
        keys = self._keys
        assert keys is not None
        text = _text(response)
        without_proof, sep, proof_part = text.rpartition(",")
        pairs = _attributes(text, "client-final message")
        if not sep or len(pairs) < 3 or pairs[0][0] != "c" or pairs[1][0] != "r":
            raise SaslError("client-final must be c=, r=, ..., p=")
        if not proof_part.startswith("p="):
            raise SaslError("client-final must end with the proof p=")
        try:
            binding = base64.b64decode(pairs[0][1], validate=True)
            proof = base64.b64decode(proof_part[2:], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SaslError("malformed base64 in client-final") from exc
        if binding != self._gs2_header.encode("utf-8"):
            raise SaslError("channel binding data does not match the GS2 header")
        if pairs[1][1] != self._nonce:
            raise SaslError("nonce does not match")
        auth_message = ",".join((self._client_first_bare, self._server_first, without_proof))
        signature = _hmac(keys.stored_key, auth_message.encode("utf-8"))
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=False))
        proven = len(proof) == len(signature) and hmac.compare_digest(
            hashlib.sha256(client_key).digest(), keys.stored_key
        )
        if not proven:
            self._stage = _Stage.DONE
            return SaslProof(MECHANISM, self._authzid, self._username, False)
        self._stage = _Stage.ACKNOWLEDGE
        verifier = _hmac(keys.server_key, auth_message.encode("utf-8"))
        return SaslChallenge(b"v=" + _b64(verifier).encode("ascii"))


def _text(response: bytes) -> str:
    if len(response) > MAX_FIELD_OCTETS * 2:
        raise SaslError("SCRAM message is too long")
    try:
        return response.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SaslError("SCRAM message is not valid UTF-8") from exc


SaslExchange = SaslServerExchange | ScramServerExchange


def server_exchange(mechanism: str) -> SaslExchange:
    """The exchange for ``mechanism`` (any case): SCRAM-SHA-256, PLAIN or LOGIN;
    ``SaslError`` for another."""
    if mechanism.upper() == MECHANISM:
        return ScramServerExchange()
    return SaslServerExchange(mechanism)
