"""The SMTP server protocol, sans-IO (RFC 5321 with PIPELINING, SIZE, 8BITMIME,
SMTPUTF8, ENHANCEDSTATUSCODES, CHUNKING, DSN, STARTTLS and AUTH).

Public API for the driver: ``SmtpServerConnection`` with ``SmtpServerSettings``,
the events in ``events`` and the named replies in ``SmtpReplies``.
"""

from postoffice.protocol.smtp.events import (
    AuthCredentials,
    AuthKeysWanted,
    AuthProof,
    Closed,
    Decision,
    Event,
    Expand,
    Hello,
    MailFrom,
    MessageAborted,
    MessageChunk,
    MessageComplete,
    NeedData,
    RcptTo,
    Refused,
    StartTls,
    Verify,
)
from postoffice.protocol.smtp.replies import SmtpReplies, render_reply
from postoffice.protocol.smtp.server import SmtpServerConnection
from postoffice.protocol.smtp.settings import BareNewlinePolicy, SmtpServerSettings
from postoffice.protocol.smtp.states import SessionState

__all__ = [
    "AuthCredentials",
    "AuthKeysWanted",
    "AuthProof",
    "BareNewlinePolicy",
    "Closed",
    "Decision",
    "Event",
    "Expand",
    "Hello",
    "MailFrom",
    "MessageAborted",
    "MessageChunk",
    "MessageComplete",
    "NeedData",
    "RcptTo",
    "Refused",
    "SessionState",
    "SmtpReplies",
    "SmtpServerConnection",
    "SmtpServerSettings",
    "StartTls",
    "Verify",
    "render_reply",
]
