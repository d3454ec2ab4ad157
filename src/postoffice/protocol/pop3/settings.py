"""What one POP3 server connection is allowed to do: limits and what it offers.

The driver builds one ``Pop3Settings`` per connection from the config and
what it knows about the client (implicit TLS on pop3s, loopback), so that
per-client choices (plaintext logins on loopback) are plain fields here.

Invariants (checked at construction, ``ValueError`` otherwise): ``hostname``
and ``implementation`` are printable tokens; limits are positive and
``max_line_length`` leaves room for the 255-octet commands of RFC 2449 §4;
an APOP timestamp has the ``<...>`` form of RFC 1939 §7; every SASL mechanism
is one ``postoffice.protocol.sasl`` implements.
"""

from __future__ import annotations

from dataclasses import dataclass

from postoffice.protocol.scram import SERVER_MECHANISMS

# RFC 2449 §4: a command line may be 255 octets; SASL responses may be longer.
MIN_LINE_LENGTH = 257  # 255 + CRLF


def _printable_token(value: str) -> bool:
    return bool(value) and all(0x20 < ord(c) < 0x7F for c in value)


@dataclass(frozen=True, slots=True)
class Pop3Settings:
    hostname: str = "localhost"
    is_tls: bool = False  # implicit TLS (pop3s); STLS sets it per connection
    tls_available: bool = False  # STLS may be offered (RFC 2595 §4)
    plaintext_auth: bool = False  # USER/PASS and AUTH (every mechanism) without TLS
    max_line_length: int = 1024  # one command or SASL line, CRLF included
    max_errors: int = 20  # then "-ERR [SYS/PERM] too many errors" and close
    expire: str | None = None  # CAPA EXPIRE value, "NEVER" or days (RFC 2449 §6.7)
    login_delay: int | None = None  # CAPA LOGIN-DELAY seconds (RFC 2449 §6.8)
    implementation: str = "postoffice"  # CAPA IMPLEMENTATION (RFC 2449 §6.9)
    apop_timestamp: str | None = None  # "<pid.clock@host>": APOP offered (RFC 1939 §7)
    sasl_mechanisms: tuple[str, ...] = ("PLAIN", "LOGIN", "SCRAM-SHA-256")

    def __post_init__(self) -> None:
        if not _printable_token(self.hostname):
            raise ValueError(f"hostname must be one printable token: {self.hostname!r}")
        if not all(_printable_token(word) for word in self.implementation.split(" ")):
            raise ValueError(f"implementation must be printable: {self.implementation!r}")
        if self.max_line_length < MIN_LINE_LENGTH:
            raise ValueError(f"max_line_length must be at least {MIN_LINE_LENGTH} (RFC 2449 §4)")
        if self.max_errors < 1:
            raise ValueError("max_errors must be positive")
        if self.expire is not None and not _printable_token(self.expire):
            raise ValueError(f"expire must be one printable token: {self.expire!r}")
        if self.login_delay is not None and self.login_delay < 0:
            raise ValueError("login_delay must not be negative")
        stamp = self.apop_timestamp
        if stamp is not None and not (
            _printable_token(stamp) and stamp.startswith("<") and stamp.endswith(">")
        ):
            raise ValueError(f"apop_timestamp must look like <pid.clock@host>: {stamp!r}")
        for mechanism in self.sasl_mechanisms:
            if mechanism.upper() not in SERVER_MECHANISMS:
                raise ValueError(f"unsupported SASL mechanism {mechanism!r}")

    @property
    def mechanisms(self) -> tuple[str, ...]:
        """The SASL mechanisms, upper-case, in the configured order."""
        return tuple(m.upper() for m in self.sasl_mechanisms)
