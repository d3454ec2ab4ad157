"""Every reply the SMTP server says, named, and how a reply becomes octets.

What this module owns:
- ``SmtpReplies``: one constant per fixed reply, each with its enhanced status
  code (RFC 3463 codes, advertised per RFC 2034), and builders for the replies
  that carry a value (greeting, EHLO, ``queued as``, chunk sizes, closings);
- ``render_reply``: the wire form (RFC 5321 §4.2): ``code SP text`` or, for a
  multi-line reply, ``code-text`` on every line but the last.

Invariants of the rendered octets:
- every line ends in CRLF and is at most 512 octets including it
  (RFC 5321 §4.5.3.1.5); longer text is cut;
- no text ever contains CR, LF or another control character, whoever wrote it
  (an echoed client name or address cannot inject a reply line);
- with ``enhanced=True`` every 2xx, 4xx and 5xx line carries an enhanced code,
  a missing one being filled with ``X.0.0`` (RFC 2034 §3 makes it a MUST once
  ENHANCEDSTATUSCODES is advertised). The greeting and the replies to
  HELO/EHLO are rendered with ``enhanced=False``, as RFC 2034 §3 exempts them;
  so are 3xx intermediate replies (354, 334), which RFC 2034 does not cover.

A multi-line reply is a ``Reply`` whose text holds ``\\n``-separated lines.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from postoffice.core.reply import Replies, Reply

MAX_REPLY_LINE_OCTETS: Final = 512  # RFC 5321 §4.5.3.1.5, CRLF included

_CONTROL = dict.fromkeys((*range(32), 127), "?")


def sanitize_text(text: str) -> str:
    """Replace control characters (CR, LF, NUL, ...) so untrusted text stays on one line."""
    return text.translate(_CONTROL)


def render_reply(reply: Reply, *, enhanced: bool = True) -> bytes:
    """The octets of ``reply`` (see the module doc for the invariants)."""
    code = reply.code
    if not 200 <= code <= 599:
        raise ValueError(f"not an SMTP reply code: {code}")
    status = reply.enhanced
    if enhanced and status is None and code // 100 in (2, 4, 5):
        status = f"{code // 100}.0.0"
    if not enhanced or code // 100 == 3:
        status = None
    lines = reply.text.split("\n") or [""]
    out = bytearray()
    for index, line in enumerate(lines):
        separator = " " if index == len(lines) - 1 else "-"
        head = f"{code}{separator}"
        if status:
            head += f"{status} "
        body = sanitize_text(line.rstrip("\r"))
        encoded = (head + body).encode("utf-8")
        if len(encoded) > MAX_REPLY_LINE_OCTETS - 2:
            encoded = encoded[: MAX_REPLY_LINE_OCTETS - 2].decode("utf-8", "ignore").encode()
        out += encoded + b"\r\n"
    return bytes(out)


class SmtpReplies:
    """The SMTP server's replies. Enhanced codes: RFC 3463 unless a line says otherwise."""

    # --- positive -----------------------------------------------------------
    OK: Final = Reply(250, "2.0.0", "Ok")
    HELLO_OK: Final = Reply(250, None, "Ok")  # the driver's "yes" to Hello; rendered as EHLO/HELO
    SENDER_OK: Final = Reply(250, "2.1.0", "Ok")
    RECIPIENT_OK: Final = Reply(250, "2.1.5", "Ok")
    RESET_OK: Final = Reply(250, "2.0.0", "Ok")
    NOOP_OK: Final = Reply(250, "2.0.0", "Ok")
    BYE: Final = Reply(221, "2.0.0", "Bye")
    START_MAIL_INPUT: Final = Reply(354, None, "End data with <CR><LF>.<CR><LF>")
    READY_TO_START_TLS: Final = Reply(220, "2.0.0", "Ready to start TLS")  # RFC 3207 §4
    AUTH_SUCCEEDED: Final = Reply(235, "2.7.0", "Authentication successful")  # RFC 4954 §6
    # RFC 5321 §3.5.3: the answer when a server will not confirm an address.
    CANNOT_VRFY: Final = Reply(
        252, "2.0.0", "Cannot VRFY user, but will accept message and attempt delivery"
    )
    HELP: Final = Reply(
        214,
        "2.0.0",
        "Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY EXPN HELP STARTTLS AUTH",
    )

    # --- the policy's usual answers (defined in core for every layer) ---------
    NO_SUCH_USER: Final = Replies.NO_SUCH_USER  # 550 5.1.1
    ACCESS_DENIED: Final = Replies.ACCESS_DENIED  # 550 5.7.1
    RELAY_DENIED: Final = Replies.RELAY_DENIED  # 554 5.7.1
    LOCAL_CONFIG_ERROR: Final = Replies.LOCAL_CONFIG_ERROR  # 451 4.3.0

    # --- temporary failures -------------------------------------------------
    TOO_MANY_RECIPIENTS: Final = Reply(452, "4.5.3", "Too many recipients")  # RFC 5321 §4.5.3.1.10
    TLS_NOT_AVAILABLE: Final = Reply(454, "4.7.0", "TLS not available due to temporary reason")
    TEMPORARY_AUTH_FAILURE: Final = Reply(454, "4.7.0", "Temporary authentication failure")
    LOCAL_ERROR: Final = Reply(451, "4.3.0", "Local error in processing")

    # --- syntax (RFC 5321 §4.2.2 500/501, RFC 3463 X.5.2 and X.5.4) -----------
    COMMAND_UNRECOGNIZED: Final = Reply(500, "5.5.2", "Syntax error, command unrecognized")
    LINE_TOO_LONG: Final = Reply(500, "5.5.2", "Line too long")
    # RFC 4954 §6 registers X.5.6 for this case only: an over-long AUTH exchange line.
    AUTH_LINE_TOO_LONG: Final = Reply(500, "5.5.6", "Authentication exchange line is too long")
    BAD_ENCODING: Final = Reply(500, "5.5.2", "Command is not valid UTF-8")
    CONTROL_CHARACTERS: Final = Reply(500, "5.5.2", "Command contains control characters")
    SYNTAX_HELO: Final = Reply(501, "5.5.4", "Syntax: HELO hostname")
    SYNTAX_EHLO: Final = Reply(501, "5.5.4", "Syntax: EHLO hostname")
    SYNTAX_MAIL: Final = Reply(501, "5.5.4", "Syntax: MAIL FROM:<address>")
    SYNTAX_RCPT: Final = Reply(501, "5.5.4", "Syntax: RCPT TO:<address>")
    SYNTAX_BDAT: Final = Reply(501, "5.5.4", "Syntax: BDAT count [LAST]")
    SYNTAX_VRFY: Final = Reply(501, "5.5.4", "Syntax: VRFY address")
    SYNTAX_EXPN: Final = Reply(501, "5.5.4", "Syntax: EXPN list")
    SYNTAX_AUTH: Final = Reply(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]")
    BAD_SENDER_SYNTAX: Final = Reply(501, "5.1.7", "Bad sender address syntax")
    BAD_RECIPIENT_SYNTAX: Final = Reply(501, "5.1.3", "Bad recipient address syntax")
    PARAMETER_SYNTAX: Final = Reply(501, "5.5.4", "Invalid parameter syntax")
    DUPLICATE_PARAMETER: Final = Reply(501, "5.5.4", "Duplicate parameter")
    BAD_SIZE: Final = Reply(501, "5.5.4", "Invalid SIZE parameter")
    BAD_BODY: Final = Reply(501, "5.5.4", "Invalid BODY parameter")
    BAD_RET: Final = Reply(501, "5.5.4", "Invalid RET parameter")  # RFC 3461 §4.3
    BAD_ENVID: Final = Reply(501, "5.5.4", "Invalid ENVID parameter")  # RFC 3461 §4.4
    BAD_NOTIFY: Final = Reply(501, "5.5.4", "Invalid NOTIFY parameter")  # RFC 3461 §4.1
    BAD_ORCPT: Final = Reply(501, "5.5.4", "Invalid ORCPT parameter")  # RFC 3461 §4.2
    BAD_AUTH_PARAMETER: Final = Reply(501, "5.5.4", "Invalid AUTH parameter")  # RFC 4954 §5
    BAD_SMTPUTF8: Final = Reply(501, "5.5.4", "SMTPUTF8 takes no value")  # RFC 6531 §3.4

    # --- not implemented / sequence (RFC 5321 §4.2.4, §4.1.4) ----------------
    COMMAND_NOT_IMPLEMENTED: Final = Reply(502, "5.5.1", "Command not implemented")
    VRFY_DISABLED: Final = Reply(502, "5.5.1", "VRFY command is disabled")
    EXPN_DISABLED: Final = Reply(502, "5.5.1", "EXPN command is disabled")
    STARTTLS_NOT_OFFERED: Final = Reply(502, "5.5.1", "STARTTLS not available")
    BAD_SEQUENCE: Final = Reply(503, "5.5.1", "Bad sequence of commands")
    NEED_HELO: Final = Reply(503, "5.5.1", "Send HELO/EHLO first")
    NEED_EHLO: Final = Reply(503, "5.5.1", "Send EHLO first")
    NESTED_MAIL: Final = Reply(503, "5.5.1", "Nested MAIL command")
    NEED_MAIL: Final = Reply(503, "5.5.1", "Need MAIL command")
    NEED_RCPT: Final = Reply(503, "5.5.1", "Need RCPT command")
    DATA_AFTER_BDAT: Final = Reply(503, "5.5.1", "DATA not allowed after BDAT")  # RFC 3030 §2
    TRANSACTION_IN_PROGRESS: Final = Reply(503, "5.5.1", "Mail transaction in progress")
    ONLY_QUIT: Final = Reply(503, "5.5.1", "Bad sequence of commands, only QUIT is accepted")
    TLS_ALREADY_ACTIVE: Final = Reply(503, "5.5.1", "TLS already active")
    AUTH_NOT_ENABLED: Final = Reply(503, "5.5.1", "Authentication not enabled")
    ALREADY_AUTHENTICATED: Final = Reply(503, "5.5.1", "Already authenticated")  # RFC 4954 §4
    AUTH_IN_TRANSACTION: Final = Reply(503, "5.5.1", "AUTH not permitted during a transaction")
    MECHANISM_UNKNOWN: Final = Reply(504, "5.5.4", "Unrecognized authentication type")  # 4954 §6
    # RFC 2920 §3.1: DATA after every RCPT failed; RFC 3030 §2 for BDAT.
    NO_VALID_RECIPIENTS: Final = Reply(554, "5.5.1", "No valid recipients")
    PARAMETER_NOT_IMPLEMENTED: Final = Reply(555, "5.5.4", "Unsupported parameter")  # 5321 §4.2.2

    # --- AUTH (RFC 4954 §4, §6) ---------------------------------------------
    AUTH_ABORTED: Final = Reply(501, "5.7.0", "Authentication aborted")
    AUTH_REQUIRED: Final = Reply(530, "5.7.0", "Authentication required")  # RFC 4954 §6
    AUTH_BAD_BASE64: Final = Reply(501, "5.5.2", "Cannot decode authentication response")
    AUTH_MALFORMED: Final = Reply(501, "5.5.2", "Malformed authentication response")
    AUTH_FAILED: Final = Reply(535, "5.7.8", "Authentication credentials invalid")
    ENCRYPTION_REQUIRED: Final = Reply(
        538, "5.7.11", "Encryption required for requested authentication mechanism"
    )

    # --- message content and limits ------------------------------------------
    MESSAGE_TOO_BIG: Final = Reply(
        552, "5.3.4", "Message size exceeds fixed maximum message size"
    )  # RFC 1870 §6, RFC 3463 X.3.4
    SMTPUTF8_REQUIRED: Final = Reply(
        553, "5.6.7", "Non-ASCII address requires the SMTPUTF8 parameter"
    )  # RFC 6531 §3.7.4.1
    # Postfix smtpd_forbid_bare_newline=reject: refuse and disconnect.
    BARE_LF: Final = Reply(550, "5.5.2", "Error: bare <LF> received")
    BARE_CR: Final = Reply(550, "5.5.2", "Error: bare <CR> received")
    # Postfix (smtpd_forbid_unauth_pipelining, default yes since 3.9): refuse and disconnect.
    SYNC_ERROR: Final = Reply(554, "5.5.0", "Error: SMTP protocol synchronization")
    NON_SMTP_COMMAND: Final = Reply(221, "2.7.0", "Error: non-SMTP command, closing connection")

    # --- builders -------------------------------------------------------------
    @staticmethod
    def greeting(hostname: str, text: str = "ESMTP postoffice") -> Reply:
        """RFC 5321 §4.2: ``220 <domain> <text>`` (no enhanced code: RFC 2034 §3)."""
        return Reply(220, None, f"{hostname} {text}")

    @staticmethod
    def ehlo(hostname: str, extensions: Iterable[str], greeting: str = "") -> Reply:
        """RFC 5321 §4.1.1.1: ``250-domain [greet]`` then one extension keyword a line."""
        first = f"{hostname} {greeting}".rstrip()
        return Reply(250, None, "\n".join([first, *extensions]))

    @staticmethod
    def helo(hostname: str) -> Reply:
        return Reply(250, None, hostname)

    @staticmethod
    def queued(queue_id: str) -> Reply:
        return Reply(250, "2.0.0", f"Ok: queued as {queue_id}")

    @staticmethod
    def chunk_received(octets: int) -> Reply:
        """RFC 3030 §4: the reply to a BDAT chunk that is not the last one."""
        return Reply(250, "2.0.0", f"Ok: {octets} octets received")

    @staticmethod
    def auth_challenge(encoded: str) -> Reply:
        """RFC 4954 §4: ``334 <base64>`` (``334 `` alone for an empty challenge)."""
        return Reply(334, None, encoded)

    @staticmethod
    def unsupported_parameter(keyword: str) -> Reply:
        return Reply(555, "5.5.4", f"Unsupported parameter: {keyword}")

    @staticmethod
    def no_arguments(verb: str) -> Reply:
        return Reply(501, "5.5.4", f"Syntax: {verb}")

    @staticmethod
    def too_many_errors(hostname: str) -> Reply:
        return Reply(421, "4.7.0", f"{hostname} Error: too many errors")

    @staticmethod
    def timeout(hostname: str) -> Reply:
        return Reply(421, "4.4.2", f"{hostname} Error: timeout exceeded")

    @staticmethod
    def shutting_down(hostname: str) -> Reply:
        return Reply(421, "4.3.2", f"{hostname} Service shutting down, closing connection")
