"""THE SMTP client state table. Nobody else assigns the client's state.

What this module owns: which driver call is allowed in which state and
where it takes the connection (``TRANSITIONS``), where the outcome of a reply
takes it (``OUTCOMES``), and which commands may be followed by more commands
before their reply arrives (``PIPELINABLE``, RFC 2920 §3.1, RFC 3030 §2 and §4.2).

States:
    GREETING       connected, waiting for the server's greeting (RFC 5321 §3.1)
    REJECTED       greeted with something else than 220: only QUIT
    CONNECTED      greeted (or TLS just started, RFC 3207 §4.2): EHLO needed
    HELLO          EHLO, or the HELO that follows a refused EHLO, awaits its reply
    READY          no transaction: EHLO, STARTTLS, AUTH, MAIL, RSET, QUIT
    STARTTLS       STARTTLS awaits its reply
    TLS_HANDSHAKE  220 to STARTTLS read; the driver runs the handshake
    AUTH           an AUTH exchange is in progress (RFC 4954 §4)
    ENVELOPE       MAIL and RCPTs (and DATA) sent, replies awaited
    MESSAGE        the driver sends the content (after 354, or BDAT chunks)
    MESSAGE_END    the content ended; its final reply is awaited
    RESET          RSET awaits its reply (asked for, or after a failed transaction)
    QUIT           QUIT sent
    CLOSING        QUIT answered, or 421 received: waiting for the server to close
    CLOSED         terminal: end of file or protocol violation

Invariants: ``ClientStateMachine.state`` changes only through its methods,
each of which consults the tables (``closing``/``close`` aside: any state
may end); a driver call not allowed in the current state raises
``ClientStateError``, a bug in the driver and never the server's fault.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from postoffice.protocol.errors import ProtocolUsageError


class ClientStateError(ProtocolUsageError):
    """A command method was called in a state that does not allow it (a driver bug)."""


class ClientState(enum.Enum):
    GREETING = "greeting"
    REJECTED = "rejected"
    CONNECTED = "connected"
    HELLO = "hello"
    READY = "ready"
    STARTTLS = "starttls"
    TLS_HANDSHAKE = "tls-handshake"
    AUTH = "auth"
    ENVELOPE = "envelope"
    MESSAGE = "message"
    MESSAGE_END = "message-end"
    RESET = "reset"
    QUIT = "quit"
    CLOSING = "closing"
    CLOSED = "closed"


class Call(enum.Enum):
    """The driver's command methods."""

    HELLO = "hello"
    STARTTLS = "starttls"
    TLS_STARTED = "tls_started"
    AUTHENTICATE = "authenticate"
    BEGIN = "begin"
    SEND_MESSAGE_DATA = "send_message_data"
    END_MESSAGE = "end_message"
    RESET = "reset"
    QUIT = "quit"


class Outcome(enum.Enum):
    """What a reply (or the lack of one) did: the transitions that are not calls."""

    GREETED = "greeted"
    GREETING_REFUSED = "greeting-refused"
    HELLO_DONE = "hello-done"
    HELLO_REFUSED = "hello-refused"
    TLS_READY = "tls-ready"
    TLS_REFUSED = "tls-refused"
    AUTH_ENDED = "auth-ended"
    MESSAGE_READY = "message-ready"  # 354, or every RCPT answered before BDAT
    MESSAGE_DONE = "message-done"  # the content was accepted
    TRANSACTION_FAILED = "transaction-failed"  # RSET follows
    RESET_DONE = "reset-done"


class Awaiting(enum.Enum):
    """What a reply the client waits for answers."""

    GREETING = "greeting"
    EHLO = "EHLO"
    HELO = "HELO"
    STARTTLS = "STARTTLS"
    AUTH = "AUTH"  # AUTH itself, or a response to a 334 challenge
    AUTH_CANCEL = "AUTH-cancel"  # "*" (RFC 4954 §4)
    MAIL = "MAIL"
    RCPT = "RCPT"
    DATA = "DATA"
    DATA_END = "DATA-end"  # the content and its final "."
    BDAT = "BDAT"
    BDAT_LAST = "BDAT-LAST"
    RSET = "RSET"
    QUIT = "QUIT"


A = Awaiting

# RFC 2920 §3.1: RSET, MAIL and RCPT may be followed by more commands in the
# same group, and so may message content ("the first command of a group");
# RFC 3030 §2, §4.2: BDAT chunks may be pipelined to a PIPELINING server. Every other command ends a
# group: nothing is sent after it until its reply is read.
PIPELINABLE: Final = frozenset({A.MAIL, A.RCPT, A.RSET, A.DATA_END, A.BDAT, A.BDAT_LAST})

# The replies that belong to a transaction: swallowed once it failed.
TRANSACTION_REPLIES: Final = frozenset({A.MAIL, A.RCPT, A.DATA, A.DATA_END, A.BDAT, A.BDAT_LAST})

S = ClientState
C = Call
_KEEP: Final = None  # "the state does not change"

# state -> {call: state after it (None = unchanged)}
_TABLE: dict[ClientState, dict[Call, ClientState | None]] = {
    S.GREETING: {},
    S.REJECTED: {C.QUIT: S.QUIT},  # RFC 5321 §3.1: after 554, the client SHOULD QUIT
    S.CONNECTED: {C.HELLO: S.HELLO, C.QUIT: S.QUIT},
    S.HELLO: {},
    S.READY: {
        C.HELLO: S.HELLO,
        C.STARTTLS: S.STARTTLS,
        C.AUTHENTICATE: S.AUTH,
        C.BEGIN: S.ENVELOPE,
        C.RESET: S.RESET,
        C.QUIT: S.QUIT,
    },
    S.STARTTLS: {},
    S.TLS_HANDSHAKE: {C.TLS_STARTED: S.CONNECTED},  # RFC 3207 §4.2: EHLO again
    S.AUTH: {},
    S.ENVELOPE: {},
    S.MESSAGE: {C.SEND_MESSAGE_DATA: _KEEP, C.END_MESSAGE: S.MESSAGE_END},
    S.MESSAGE_END: {},
    S.RESET: {C.QUIT: S.QUIT},  # QUIT may follow the RSET (RFC 2920 §3.1)
    S.QUIT: {},
    S.CLOSING: {},
    S.CLOSED: {},
}
TRANSITIONS: Final[Mapping[ClientState, Mapping[Call, ClientState | None]]] = MappingProxyType(
    {state: MappingProxyType(rules) for state, rules in _TABLE.items()}
)

_O = Outcome
_OUTCOMES: dict[tuple[ClientState, Outcome], ClientState] = {
    (S.GREETING, _O.GREETED): S.CONNECTED,
    (S.GREETING, _O.GREETING_REFUSED): S.REJECTED,
    (S.HELLO, _O.HELLO_DONE): S.READY,
    (S.HELLO, _O.HELLO_REFUSED): S.CONNECTED,
    (S.STARTTLS, _O.TLS_READY): S.TLS_HANDSHAKE,
    (S.STARTTLS, _O.TLS_REFUSED): S.READY,
    (S.AUTH, _O.AUTH_ENDED): S.READY,
    (S.ENVELOPE, _O.MESSAGE_READY): S.MESSAGE,
    (S.MESSAGE_END, _O.MESSAGE_DONE): S.READY,
    **{(s, _O.TRANSACTION_FAILED): S.RESET for s in (S.ENVELOPE, S.MESSAGE, S.MESSAGE_END)},
    (S.RESET, _O.RESET_DONE): S.READY,
}
OUTCOMES: Final[Mapping[tuple[ClientState, Outcome], ClientState]] = MappingProxyType(_OUTCOMES)


class ClientStateMachine:
    """Holds the state; every change goes through the tables above."""

    __slots__ = ("_state",)

    def __init__(self) -> None:
        self._state = ClientState.GREETING

    @property
    def state(self) -> ClientState:
        return self._state

    def allowed(self, call: Call) -> bool:
        return call in TRANSITIONS[self._state]

    def require(self, call: Call) -> None:
        """Raise ``ClientStateError`` unless ``call`` is allowed now."""
        if not self.allowed(call):
            raise ClientStateError(f"{call.value}() is not allowed in state {self._state.value}")

    def accept(self, call: Call) -> ClientState:
        """Apply ``call``; returns the new state."""
        self.require(call)
        target = TRANSITIONS[self._state][call]
        if target is not None:
            self._state = target
        return self._state

    def outcome(self, outcome: Outcome) -> ClientState:
        try:
            self._state = OUTCOMES[(self._state, outcome)]
        except KeyError:
            raise ProtocolUsageError(
                f"{outcome.value} cannot happen in state {self._state.value}"
            ) from None
        return self._state

    def closing(self) -> None:
        """QUIT answered or 421: only the end of file is still to come."""
        if self._state is not ClientState.CLOSED:
            self._state = ClientState.CLOSING

    def close(self) -> None:
        """Any state may end (end of file, protocol violation)."""
        self._state = ClientState.CLOSED
