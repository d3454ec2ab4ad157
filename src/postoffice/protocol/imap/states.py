"""THE IMAP session state table. Nobody else assigns the session state.

What this module owns: the four states of RFC 9051 §3 (RFC 3501 §3), which
command is allowed in which state, and where the answer to a command takes
the session: on OK, and on NO (a SELECT or EXAMINE that fails while a
mailbox is selected leaves the session with none, RFC 9051 §6.3.2).

    NOT_AUTHENTICATED  CAPABILITY NOOP LOGOUT ID STARTTLS AUTHENTICATE LOGIN
    AUTHENTICATED      CAPABILITY NOOP LOGOUT ID ENABLE SELECT EXAMINE CREATE
                       DELETE RENAME SUBSCRIBE UNSUBSCRIBE LIST LSUB NAMESPACE
                       STATUS APPEND IDLE COMPRESS GETQUOTA GETQUOTAROOT
                       SETQUOTA
    SELECTED           the AUTHENTICATED commands but ENABLE (RFC 5161 §3.1:
                       before any mailbox is selected), and CHECK CLOSE
                       UNSELECT EXPUNGE SEARCH SORT THREAD FETCH STORE COPY MOVE
                       (UID forms under the same names)
    LOGOUT             nothing

Invariants: ``ImapStateMachine.state`` changes only through ``finish`` (the
outcome of an allowed command, looked up in ``TRANSITIONS``) and ``logout``;
finishing a command the table does not allow raises ``ProtocolUsageError``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, NamedTuple

from postoffice.protocol.errors import ProtocolUsageError


class ImapState(enum.Enum):
    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


class Outcome(NamedTuple):
    """Where OK and NO take the session (None: the state does not change)."""

    ok: ImapState | None
    no: ImapState | None


S = ImapState
_KEEP: Final = Outcome(None, None)
_ANY: Final = {"CAPABILITY": _KEEP, "NOOP": _KEEP, "ID": _KEEP, "LOGOUT": Outcome(S.LOGOUT, None)}
_MAILBOXES: Final = {
    "SELECT": Outcome(S.SELECTED, None),
    "EXAMINE": Outcome(S.SELECTED, None),
    "CREATE": _KEEP,
    "DELETE": _KEEP,
    "RENAME": _KEEP,
    "SUBSCRIBE": _KEEP,
    "UNSUBSCRIBE": _KEEP,
    "LIST": _KEEP,
    "LSUB": _KEEP,
    "NAMESPACE": _KEEP,
    "STATUS": _KEEP,
    "APPEND": _KEEP,
    "IDLE": _KEEP,
    "GETQUOTA": _KEEP,  # RFC 9208 §4.1: authenticated and selected states
    "GETQUOTAROOT": _KEEP,
    "SETQUOTA": _KEEP,
    "COMPRESS": _KEEP,  # RFC 4978 §3: authenticated or selected; compression is the pipe's
}
_TABLE: dict[ImapState, dict[str, Outcome]] = {
    S.NOT_AUTHENTICATED: {
        **_ANY,
        "STARTTLS": _KEEP,  # RFC 9051 §6.2.1
        "AUTHENTICATE": Outcome(S.AUTHENTICATED, None),  # RFC 9051 §6.2.2
        "LOGIN": Outcome(S.AUTHENTICATED, None),  # RFC 9051 §6.2.3
    },
    S.AUTHENTICATED: {**_ANY, **_MAILBOXES, "ENABLE": _KEEP},
    S.SELECTED: {
        **_ANY,
        **_MAILBOXES,
        # RFC 9051 §6.3.2: a failed SELECT deselects the mailbox that was selected
        "SELECT": Outcome(S.SELECTED, S.AUTHENTICATED),
        "EXAMINE": Outcome(S.SELECTED, S.AUTHENTICATED),
        "CHECK": _KEEP,  # RFC 3501 §6.4.1 (IMAP4rev2 keeps it as NOOP, RFC 9051 Appendix E)
        "CLOSE": Outcome(S.AUTHENTICATED, None),  # RFC 9051 §6.4.1
        "UNSELECT": Outcome(S.AUTHENTICATED, None),  # RFC 3691 §2, RFC 9051 §6.4.2
        "EXPUNGE": _KEEP,
        "SEARCH": _KEEP,
        "SORT": _KEEP,  # RFC 5256 §3
        "THREAD": _KEEP,  # RFC 5256 §3
        "FETCH": _KEEP,
        "STORE": _KEEP,
        "COPY": _KEEP,
        "MOVE": _KEEP,  # RFC 6851 §3.1
    },
    S.LOGOUT: {},
}
TRANSITIONS: Final[Mapping[ImapState, Mapping[str, Outcome]]] = MappingProxyType(
    {state: MappingProxyType(rules) for state, rules in _TABLE.items()}
)
KNOWN_COMMANDS: Final = frozenset(name for rules in _TABLE.values() for name in rules)

_LOGIN_COMMANDS: Final = frozenset({"STARTTLS", "AUTHENTICATE", "LOGIN"})
_REFUSALS: Final = {
    S.NOT_AUTHENTICATED: "command not valid before login",
    S.AUTHENTICATED: "no mailbox selected",
    S.SELECTED: "command not valid in the selected state",
    S.LOGOUT: "the session is over",
}


class ImapStateMachine:
    """Holds the state; every change goes through ``TRANSITIONS``."""

    __slots__ = ("_state",)

    def __init__(self, state: ImapState = ImapState.NOT_AUTHENTICATED) -> None:
        self._state = state  # PREAUTH starts in AUTHENTICATED (RFC 9051 §7.1.4)

    @property
    def state(self) -> ImapState:
        return self._state

    def refusal(self, command: str) -> str | None:
        """None when ``command`` is allowed now; otherwise the text of the BAD."""
        if command in TRANSITIONS[self._state]:
            return None
        if command == "ENABLE" and self._state is S.SELECTED:
            return "ENABLE is only valid before a mailbox is selected"
        if command in _LOGIN_COMMANDS and self._state in (S.AUTHENTICATED, S.SELECTED):
            return "already authenticated"  # not "no mailbox selected" for a second LOGIN
        return _REFUSALS[self._state]

    def finish(self, command: str, ok: bool) -> ImapState:
        """Apply the outcome of ``command``; returns the new state."""
        rules = TRANSITIONS[self._state]
        if command not in rules:
            raise ProtocolUsageError(f"{command} is not allowed in state {self._state.value}")
        target = rules[command].ok if ok else rules[command].no
        if target is not None:
            self._state = target
        return self._state

    def logout(self) -> None:
        """Any state may end (LOGOUT, BYE on errors or timeouts)."""
        self._state = S.LOGOUT
