"""What one SMTP server connection is allowed to do: limits and offered extensions.

The driver builds one ``SmtpServerSettings`` per connection from the config
and what it knows about the client (trusted network, loopback, implicit TLS),
so per-client choices (EXPN for trusted networks, plaintext AUTH on loopback)
are plain fields here. Defaults follow Postfix where the issue asks for
Postfix-like limits (names in comments).

Invariants: every limit is positive (``max_message_size`` may be 0: no fixed
limit, advertised as a bare ``SIZE``, RFC 1870 §4); ``hostname`` is one
printable token.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from postoffice.protocol.scram import SERVER_MECHANISMS


class BareNewlinePolicy(enum.Enum):
    """What to do with a bare LF or bare CR inside message content.

    Only ``<CRLF>.<CRLF>`` ends DATA under every policy (RFC 5321 §4.1.1.4);
    the policy only decides the fate of the stray octet itself.

    - ``NORMALIZE`` (default, as Postfix 3.9's ``smtpd_forbid_bare_newline =
      normalize``): each bare LF or bare CR is stored as CRLF, so stored
      messages are strictly CRLF-lined (IMAP needs that), and the message is
      accepted. Command lines ending in a bare LF are accepted too.
    - ``REJECT`` (Postfix ``smtpd_forbid_bare_newline = reject``): the first
      bare LF/CR in content or in a command line is answered with
      ``550 5.5.2 Error: bare <LF> received`` and the connection is closed.
    """

    NORMALIZE = "normalize"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class SmtpServerSettings:
    hostname: str
    greeting_text: str = "ESMTP postoffice"
    max_message_size: int = 10 * 1024 * 1024  # message_size_limit; 0 = no fixed limit
    max_line_length: int = 2048  # line_length_limit, CRLF included (RFC 5321 §4.5.3.1.4)
    max_recipients: int = 1000  # smtpd_recipient_limit
    recipient_overshoot_limit: int = 1000  # smtpd_recipient_overshoot_limit
    max_errors: int = 20  # smtpd_hard_error_limit: then 421 and close
    tarpit_after_errors: int = 10  # smtpd_soft_error_limit: then delay every reply
    tarpit_delay: float = 1.0  # smtpd_error_sleep_time, seconds
    starttls_available: bool = False
    is_tls: bool = False  # implicit TLS (submissions) or already wrapped
    auth_mechanisms: tuple[str, ...] = ()
    auth_requires_tls: bool = True  # smtpd_tls_auth_only; False for loopback when allowed
    auth_required: bool = False  # submission (RFC 6409 §4.3): MAIL only after AUTH, else 530
    vrfy_enabled: bool = True  # False: 502 (disable_vrfy_command)
    expn_enabled: bool = False  # True only for trusted networks
    require_helo: bool = True  # MAIL before HELO/EHLO -> 503 (RFC 5321 §4.1.4 permits it)
    bare_newline: BareNewlinePolicy = BareNewlinePolicy.NORMALIZE
    forbid_unauth_pipelining: bool = True  # Postfix 3.9 default
    smtputf8: bool = True
    dsn: bool = True
    chunking: bool = True
    postmaster_domain: str | None = None  # completes RCPT TO:<postmaster>; default hostname
    # Postfix smtpd_forbidden_commands: a web browser or proxy probe, not a mail client.
    forbidden_commands: tuple[str, ...] = ("CONNECT", "GET", "POST", "HEAD", "PUT")

    def __post_init__(self) -> None:
        host = self.hostname
        if not host or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in host):
            raise ValueError(f"hostname must be one printable token: {host!r}")
        for name in (
            "max_line_length",
            "max_recipients",
            "max_errors",
            "tarpit_after_errors",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive")
        if self.max_line_length < 512:
            raise ValueError("max_line_length must be at least 512 (RFC 5321 §4.5.3.1.4)")
        if self.max_message_size < 0 or self.recipient_overshoot_limit < 0:
            raise ValueError("limits must not be negative")
        if self.tarpit_delay < 0:
            raise ValueError("tarpit_delay must not be negative")
        for mechanism in self.auth_mechanisms:
            if mechanism.upper() not in SERVER_MECHANISMS:
                raise ValueError(f"unsupported SASL mechanism {mechanism!r}")

    @property
    def postmaster(self) -> str:
        return self.postmaster_domain or self.hostname
