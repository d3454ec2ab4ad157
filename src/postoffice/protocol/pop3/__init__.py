"""The POP3 server protocol, sans-IO (RFC 1939 with CAPA and response codes,
RFC 2449 / RFC 3206; STLS, RFC 2595 §4; SASL AUTH, RFC 5034; UTF8, RFC 6856;
and the old LAST, RFC 1460).

Public API for the driver: ``Pop3ServerConnection`` with ``Pop3Settings``,
the events in ``events``, ``wire_size`` (the sizes to hand over at login) and
``MessageEncoder`` (the RETR/TOP encoding, used by the connection).
"""

from postoffice.protocol.pop3.events import (
    Authenticate,
    Closed,
    Decision,
    Event,
    KeysWanted,
    NeedData,
    Retrieve,
    StartTls,
    Update,
)
from postoffice.protocol.pop3.replies import Responses
from postoffice.protocol.pop3.server import PIPELINE_LIMIT, Pop3ServerConnection, Pop3Settings
from postoffice.protocol.pop3.states import Command, Pop3State
from postoffice.protocol.pop3.wire import MessageEncoder, dot_lines, wire_size

__all__ = [
    "PIPELINE_LIMIT",
    "Authenticate",
    "Closed",
    "Command",
    "Decision",
    "Event",
    "KeysWanted",
    "MessageEncoder",
    "NeedData",
    "Pop3ServerConnection",
    "Pop3Settings",
    "Pop3State",
    "Responses",
    "Retrieve",
    "StartTls",
    "Update",
    "dot_lines",
    "wire_size",
]
