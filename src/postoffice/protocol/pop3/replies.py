"""Every response the POP3 server says, named, and how a response becomes octets.

What this module owns:
- the wire form of single-line responses, ``+OK text`` and ``-ERR [CODE]
  text`` (RFC 1939 §3, response codes RFC 2449 §8 and RFC 3206), of
  multi-line responses (RFC 1939 §3: dot-stuffed lines, then ``.CRLF``) and of
  SASL challenges (``+ base64``, RFC 5034 §4);
- ``Responses``: one constant per fixed response, so that the server and the
  tests say the same thing.

Invariants of the rendered octets:
- a status line is at most 512 octets including CRLF (RFC 2449 §4); longer
  text is cut on a character boundary;
- no text ever holds CR, LF or another control character, whoever wrote it
  (a driver's message or an echoed user name cannot inject a response line);
- a response code is one token of letters, digits, ``-`` and ``/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

MAX_RESPONSE_OCTETS: Final = 512  # RFC 2449 §4, CRLF included

# RFC 2449 §8: resp-code = "[" resp-level *("/" resp-level) "]"
_CODE = re.compile(r"[A-Z0-9-]+(?:/[A-Z0-9-]+)*")
_CONTROL = dict.fromkeys((*range(32), 127), " ")


def sanitize_text(text: str) -> str:
    """Replace control characters so that untrusted text stays on one line."""
    return text.translate(_CONTROL)


def valid_code(code: str) -> bool:
    return _CODE.fullmatch(code) is not None


def _status(head: str, text: str) -> bytes:
    line = head + (" " + sanitize_text(text) if text else "")
    encoded = line.encode("utf-8")
    if len(encoded) > MAX_RESPONSE_OCTETS - 2:
        encoded = encoded[: MAX_RESPONSE_OCTETS - 2].decode("utf-8", "ignore").encode("utf-8")
    return encoded + b"\r\n"


def ok(text: str = "") -> bytes:
    """``+OK text`` (RFC 1939 §3)."""
    return _status("+OK", text)


def err(text: str, code: str | None = None) -> bytes:
    """``-ERR [code] text`` (RFC 2449 §8: the code follows the status indicator)."""
    if code is not None:
        if not valid_code(code):
            raise ValueError(f"not a response code: {code!r}")
        text = f"[{code}] {text}" if text else f"[{code}]"
    return _status("-ERR", text)


def multiline(status: bytes, lines: Iterable[str]) -> bytes:
    """A status line, the lines (dot-stuffed, RFC 1939 §3) and the terminator."""
    out = bytearray(status)
    for line in lines:
        clean = sanitize_text(line)
        if clean.startswith("."):
            clean = "." + clean
        out += clean.encode("utf-8") + b"\r\n"
    out += b".\r\n"
    return bytes(out)


def challenge(encoded: str) -> bytes:
    """A SASL server challenge: ``+ base64`` (RFC 5034 §4; empty: ``+ ``)."""
    return b"+ " + encoded.encode("ascii") + b"\r\n"


def maildrop_summary(count: int, octets: int) -> str:
    """RFC 1939 §10: "2 messages (320 octets)"."""
    return f"{count} message{'' if count == 1 else 's'} ({octets} octets)"


def signing_off(hostname: str, remaining: int) -> bytes:
    """RFC 1939 §6: the +OK to QUIT after the update."""
    if remaining == 0:
        left = "maildrop empty"
    else:
        left = f"{remaining} message{'' if remaining == 1 else 's'} left"
    return ok(f"{hostname} POP3 server signing off ({left})")


class Responses:
    """Fixed responses (the ones that carry a value are built in ``server``)."""

    OK: Final = ok()
    BYE: Final = ok("bye")
    CAPA_FOLLOWS: Final = ok("Capability list follows")  # RFC 2449 §5
    UIDL_FOLLOWS: Final = ok("unique-id listing follows")  # RFC 1939 §7
    STLS_GO: Final = ok("Begin TLS negotiation")  # RFC 2595 §4
    UTF8_ENABLED: Final = ok("UTF8 enabled")  # RFC 6856 §2
    SEND_PASS: Final = ok("send PASS")

    UNKNOWN_COMMAND: Final = err("unknown command")
    BAD_CHARACTERS: Final = err("command line holds invalid characters")
    LINE_TOO_LONG: Final = err("line too long")
    TOO_MANY_ERRORS: Final = err("too many errors", "SYS/PERM")
    NO_SUCH_MESSAGE: Final = err("no such message")
    INVALID_NUMBER: Final = err("invalid message number")
    NEEDS_USER: Final = err("USER first")
    BAD_USER: Final = err("USER needs one user name")
    BAD_PASS: Final = err("PASS needs a password")
    BAD_APOP: Final = err("APOP needs a user name and a 32-digit hex digest")
    BAD_TOP: Final = err("TOP needs a message number and a line count")
    NON_ASCII_USER: Final = err("a non-ASCII user name needs UTF8 first")  # RFC 6856 §2
    PLAINTEXT_DISALLOWED: Final = err(
        "plaintext logins are not allowed without TLS; use STLS or pop3s", "AUTH"
    )
    APOP_UNAVAILABLE: Final = err("APOP is not available here", "AUTH")
    LOGIN_FAILED: Final = err("authentication failed", "AUTH")
    UNKNOWN_MECHANISM: Final = err("unsupported authentication mechanism")
    AUTH_CANCELLED: Final = err("authentication cancelled")  # RFC 5034 §4: "*"
    AUTH_BAD_BASE64: Final = err("invalid base64 data")
    AUTH_MALFORMED: Final = err("invalid authentication exchange")
    AUTH_SYNTAX: Final = err("AUTH takes a mechanism and an optional initial response")
    TLS_ACTIVE: Final = err("command not permitted when TLS active")  # RFC 2595 §4
    STLS_UNAVAILABLE: Final = err("STLS is not available here")
    UPDATE_FAILED: Final = "some deleted messages not removed"  # RFC 1939 §6

    @staticmethod
    def no_arguments(command: str) -> bytes:
        return err(f"{command} takes no arguments")

    @staticmethod
    def already_deleted(number: int) -> bytes:
        return err(f"message {number} already deleted")  # RFC 1939 §5 DELE

    @staticmethod
    def no_such_message_of(count: int) -> bytes:
        """RFC 1939 §5 LIST: "no such message, only 2 messages in maildrop"."""
        noun = "message" if count == 1 else "messages"
        return err(f"no such message, only {count} {noun} in maildrop")
