"""THE POP3 session state table. Nobody else assigns the session state.

What this module owns: the three states of RFC 1939 §3, which command is
allowed in which of them, where a positive answer takes the session, and the
text of the refusal when a command comes in the wrong state.

States:
    AUTHORIZATION  greeted; the client must identify itself (RFC 1939 §4)
    TRANSACTION    logged in; the maildrop is locked (RFC 1939 §5)
    UPDATE         terminal: after QUIT in TRANSACTION the server removes the
                   deleted messages and closes (RFC 1939 §6). Every other end
                   of the session (QUIT in AUTHORIZATION, errors, timeouts)
                   lands here too, but without the removal: nothing more is
                   read or said in UPDATE.

Which commands (RFC 1939 §9, RFC 2449 §5 CAPA, RFC 2595 §4 STLS, RFC 5034
AUTH, RFC 6856 §2 UTF8, RFC 1460 §5 LAST):
    AUTHORIZATION  USER PASS APOP AUTH STLS UTF8 CAPA QUIT
    TRANSACTION    STAT LIST RETR DELE NOOP RSET TOP UIDL LAST CAPA QUIT

Sub-steps that are not states (a SASL exchange in progress, a STLS
handshake, a decision the driver has not answered yet) are kept by the
connection: none of them lets a command through, so none needs a row here.

Invariants: ``Pop3StateMachine.state`` changes only through ``accept`` (the
positive outcome of an allowed command, looked up in ``TRANSITIONS``) and
``close``; accepting a command the table does not allow raises
``ProtocolUsageError`` (a bug in the caller, never the peer's fault).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from postoffice.protocol.errors import ProtocolUsageError


class Pop3State(enum.Enum):
    AUTHORIZATION = "authorization"
    TRANSACTION = "transaction"
    UPDATE = "update"


class Command(enum.Enum):
    USER = "USER"
    PASS = "PASS"
    APOP = "APOP"
    AUTH = "AUTH"
    STLS = "STLS"
    CAPA = "CAPA"
    UTF8 = "UTF8"
    QUIT = "QUIT"
    NOOP = "NOOP"
    STAT = "STAT"
    LIST = "LIST"
    RETR = "RETR"
    DELE = "DELE"
    RSET = "RSET"
    TOP = "TOP"
    UIDL = "UIDL"
    LAST = "LAST"


COMMANDS: Final[Mapping[str, Command]] = MappingProxyType({c.value: c for c in Command})

S = Pop3State
C = Command
_KEEP: Final = None  # "the state does not change"

# state -> {command: state after a positive answer (None = unchanged)}
_TABLE: dict[Pop3State, dict[Command, Pop3State | None]] = {
    S.AUTHORIZATION: {
        C.USER: _KEEP,  # RFC 1939 §7: only names the maildrop; PASS logs in
        C.PASS: S.TRANSACTION,  # RFC 1939 §7
        C.APOP: S.TRANSACTION,  # RFC 1939 §7
        C.AUTH: S.TRANSACTION,  # RFC 5034 §4
        C.STLS: _KEEP,  # RFC 2595 §4: the session starts again from the greeting state
        C.UTF8: _KEEP,  # RFC 6856 §2: only valid in AUTHORIZATION
        C.CAPA: _KEEP,  # RFC 2449 §5: any state
        C.QUIT: S.UPDATE,  # RFC 1939 §4: ends the session without UPDATE's removals
    },
    S.TRANSACTION: {
        C.STAT: _KEEP,  # RFC 1939 §5
        C.LIST: _KEEP,
        C.RETR: _KEEP,
        C.DELE: _KEEP,
        C.NOOP: _KEEP,
        C.RSET: _KEEP,
        C.TOP: _KEEP,  # RFC 1939 §7
        C.UIDL: _KEEP,  # RFC 1939 §7
        C.LAST: _KEEP,  # RFC 1460 §5 (dropped by RFC 1725; old clients still ask)
        C.CAPA: _KEEP,  # RFC 2449 §5
        C.QUIT: S.UPDATE,  # RFC 1939 §6
    },
    S.UPDATE: {},
}
TRANSITIONS: Final[Mapping[Pop3State, Mapping[Command, Pop3State | None]]] = MappingProxyType(
    {state: MappingProxyType(rules) for state, rules in _TABLE.items()}
)

# The answer (after "-ERR ") to a known command given in the wrong state.
_REFUSALS: dict[Pop3State, str] = {
    S.AUTHORIZATION: "command not valid before login",
    S.TRANSACTION: "command not valid after login",
    S.UPDATE: "the session is over",
}
REFUSALS: Final[Mapping[Pop3State, str]] = MappingProxyType(_REFUSALS)


class Pop3StateMachine:
    """Holds the state; every change goes through ``TRANSITIONS``."""

    __slots__ = ("_state",)

    def __init__(self) -> None:
        self._state = Pop3State.AUTHORIZATION

    @property
    def state(self) -> Pop3State:
        return self._state

    def allowed(self, command: Command) -> bool:
        return command in TRANSITIONS[self._state]

    def refusal(self, command: Command) -> str | None:
        """None when ``command`` is allowed now; otherwise the text of the -ERR."""
        if self.allowed(command):
            return None
        return REFUSALS[self._state]

    def accept(self, command: Command) -> Pop3State:
        """Apply the positive outcome of ``command``; returns the new state."""
        rules = TRANSITIONS[self._state]
        if command not in rules:
            raise ProtocolUsageError(f"{command.value} is not allowed in state {self._state.value}")
        target = rules[command]
        if target is not None:
            self._state = target
        return self._state

    def close(self) -> None:
        """Any state may end (QUIT, errors, a driver-side close)."""
        self._state = Pop3State.UPDATE
