"""THE SMTP server session state table. Nobody else assigns the session state.

What this module owns: which command is allowed in which state, the reply
when it is not (RFC 5321 §4.1.4 ordering, §3.1 rejected sessions, RFC 3030
§2 BDAT, RFC 3207 §4.2 STARTTLS, RFC 4954 §4 AUTH), where a positive reply
takes the session, and the few transitions that are not commands (greeting,
end of message, end of AUTH, TLS established, close).

States:
    PRE_GREETING  connection open, greeting not yet sent
    REJECTED      greeted with 554: only QUIT (RFC 5321 §3.1: 503 to the rest)
    CONNECTED     greeted, no HELO/EHLO yet
    READY         after HELO/EHLO, no transaction
    MAIL          MAIL accepted, no recipient yet
    RCPT          at least one recipient accepted
    DATA          reading DATA content up to <CRLF>.<CRLF>
    BDAT          inside a BDAT transaction (RFC 3030)
    AUTH          SASL exchange in progress (RFC 4954)
    TLS_HANDSHAKE STARTTLS accepted; waiting for the driver's handshake
    CLOSED        nothing more is read or said

Invariants: ``SmtpStateMachine.state`` changes only through its methods, each
of which consults ``TRANSITIONS`` or ``TRIGGERS``; an impossible transition
raises ``ProtocolUsageError`` (a bug in the caller, never the peer's fault).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from postoffice.core.reply import Reply
from postoffice.protocol.errors import ProtocolUsageError
from postoffice.protocol.smtp.replies import SmtpReplies


class SessionState(enum.Enum):
    PRE_GREETING = "pre-greeting"
    REJECTED = "rejected"
    CONNECTED = "connected"
    READY = "ready"
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"
    BDAT = "bdat"
    AUTH = "auth"
    TLS_HANDSHAKE = "tls-handshake"
    CLOSED = "closed"


class Verb(enum.Enum):
    HELO = "HELO"
    EHLO = "EHLO"
    MAIL = "MAIL"
    RCPT = "RCPT"
    DATA = "DATA"
    BDAT = "BDAT"
    RSET = "RSET"
    NOOP = "NOOP"
    QUIT = "QUIT"
    VRFY = "VRFY"
    EXPN = "EXPN"
    HELP = "HELP"
    STARTTLS = "STARTTLS"
    AUTH = "AUTH"


class Trigger(enum.Enum):
    """Transitions that are not a command's positive reply."""

    GREETED = "greeted"
    GREETING_REJECTED = "greeting-rejected"
    MESSAGE_DONE = "message-done"  # end of DATA/BDAT transaction, success or not
    TRANSACTION_FAILED = "transaction-failed"  # BDAT chunk refused: back to READY
    AUTH_DONE = "auth-done"
    TLS_ESTABLISHED = "tls-established"


S = SessionState
V = Verb

# RFC 2920 §3.1: only these may be followed by more commands in the same
# group; every other command (and any unknown one) must end a group. BDAT is
# followed by its own chunk octets and is pipelinable by RFC 3030 §4.
PIPELINABLE: Final = frozenset({V.RSET, V.MAIL, V.RCPT, V.BDAT})

_KEEP: Final = None  # "stay in the current state"

# Commands allowed at any time once greeted (RFC 5321 §4.1.4: NOOP, HELP,
# EXPN, VRFY and RSET "can be used at any time during a session").
_ANYTIME: dict[Verb, SessionState | None] = {
    V.NOOP: _KEEP,
    V.HELP: _KEEP,
    V.VRFY: _KEEP,
    V.EXPN: _KEEP,
    V.QUIT: S.CLOSED,
}

# state -> {verb: state after a positive reply (None = unchanged)}
_TABLE: dict[SessionState, dict[Verb, SessionState | None]] = {
    S.PRE_GREETING: {},
    S.REJECTED: {V.QUIT: S.CLOSED},
    S.CONNECTED: {
        **_ANYTIME,
        V.HELO: S.READY,
        V.EHLO: S.READY,
        V.RSET: _KEEP,
    },
    S.READY: {
        **_ANYTIME,
        V.HELO: S.READY,
        V.EHLO: S.READY,
        V.RSET: S.READY,
        V.MAIL: S.MAIL,
        V.STARTTLS: S.TLS_HANDSHAKE,
        V.AUTH: S.AUTH,
    },
    S.MAIL: {
        **_ANYTIME,
        V.HELO: S.READY,  # RFC 5321 §4.1.4: EHLO mid-transaction resets it
        V.EHLO: S.READY,
        V.RSET: S.READY,
        V.RCPT: S.RCPT,
    },
    S.RCPT: {
        **_ANYTIME,
        V.HELO: S.READY,
        V.EHLO: S.READY,
        V.RSET: S.READY,
        V.RCPT: S.RCPT,
        V.DATA: S.DATA,
        V.BDAT: S.BDAT,
    },
    S.BDAT: {
        **_ANYTIME,
        V.HELO: S.READY,
        V.EHLO: S.READY,
        V.RSET: S.READY,
        V.BDAT: S.BDAT,
    },
    S.DATA: {},  # content, not commands
    S.AUTH: {},  # SASL responses, not commands
    S.TLS_HANDSHAKE: {},  # nothing is read in plaintext any more
    S.CLOSED: {},
}
TRANSITIONS: Final[Mapping[SessionState, Mapping[Verb, SessionState | None]]] = MappingProxyType(
    {state: MappingProxyType(rules) for state, rules in _TABLE.items()}
)

# RFC 5321 §4.1.4: a server MAY require HELO/EHLO before MAIL (the default
# here). With ``require_helo=False`` (Postfix's smtpd_helo_required = no) this
# overlay lets a transaction start from CONNECTED.
HELO_OPTIONAL: Final[Mapping[tuple[SessionState, Verb], SessionState]] = MappingProxyType(
    {(S.CONNECTED, V.MAIL): S.MAIL}
)

# (state, verb) -> the refusal when the verb is not allowed there; BAD_SEQUENCE otherwise.
_REFUSALS: dict[tuple[SessionState, Verb], Reply] = {
    **{(S.CONNECTED, v): SmtpReplies.NEED_HELO for v in (V.MAIL, V.RCPT, V.DATA, V.BDAT)},
    (S.CONNECTED, V.STARTTLS): SmtpReplies.NEED_EHLO,
    (S.CONNECTED, V.AUTH): SmtpReplies.NEED_EHLO,
    (S.READY, V.RCPT): SmtpReplies.NEED_MAIL,
    (S.READY, V.DATA): SmtpReplies.NEED_MAIL,
    (S.READY, V.BDAT): SmtpReplies.NEED_MAIL,
    (S.MAIL, V.MAIL): SmtpReplies.NESTED_MAIL,
    (S.RCPT, V.MAIL): SmtpReplies.NESTED_MAIL,
    (S.BDAT, V.MAIL): SmtpReplies.NESTED_MAIL,
    # RFC 2920 §3.1 / RFC 3030 §2: no recipient was accepted.
    (S.MAIL, V.DATA): SmtpReplies.NO_VALID_RECIPIENTS,
    (S.MAIL, V.BDAT): SmtpReplies.NO_VALID_RECIPIENTS,
    (S.BDAT, V.DATA): SmtpReplies.DATA_AFTER_BDAT,
    (S.BDAT, V.RCPT): SmtpReplies.BAD_SEQUENCE,
    **{(s, V.STARTTLS): SmtpReplies.TRANSACTION_IN_PROGRESS for s in (S.MAIL, S.RCPT, S.BDAT)},
    **{(s, V.AUTH): SmtpReplies.AUTH_IN_TRANSACTION for s in (S.MAIL, S.RCPT, S.BDAT)},
    **{(S.REJECTED, v): SmtpReplies.ONLY_QUIT for v in Verb if v is not V.QUIT},
}
REFUSALS: Final[Mapping[tuple[SessionState, Verb], Reply]] = MappingProxyType(_REFUSALS)

_TRIGGERS: dict[tuple[SessionState, Trigger], SessionState] = {
    (S.PRE_GREETING, Trigger.GREETED): S.CONNECTED,
    (S.PRE_GREETING, Trigger.GREETING_REJECTED): S.REJECTED,
    (S.DATA, Trigger.MESSAGE_DONE): S.READY,
    (S.BDAT, Trigger.MESSAGE_DONE): S.READY,
    (S.BDAT, Trigger.TRANSACTION_FAILED): S.READY,
    (S.AUTH, Trigger.AUTH_DONE): S.READY,
    (S.TLS_HANDSHAKE, Trigger.TLS_ESTABLISHED): S.CONNECTED,
}
TRIGGERS: Final[Mapping[tuple[SessionState, Trigger], SessionState]] = MappingProxyType(_TRIGGERS)

IN_TRANSACTION: Final = frozenset({S.MAIL, S.RCPT, S.DATA, S.BDAT})


class SmtpStateMachine:
    """Holds the state; every change goes through the tables above."""

    __slots__ = ("_overlay", "_state")

    def __init__(self, *, require_helo: bool = True) -> None:
        self._state = SessionState.PRE_GREETING
        self._overlay: Mapping[tuple[SessionState, Verb], SessionState] = (
            MappingProxyType({}) if require_helo else HELO_OPTIONAL
        )

    def _target(self, verb: Verb) -> tuple[bool, SessionState | None]:
        """(allowed, state after a positive reply or None for unchanged)."""
        key = (self._state, verb)
        if key in self._overlay:
            return True, self._overlay[key]
        rules = TRANSITIONS[self._state]
        return (verb in rules), rules.get(verb)

    @property
    def state(self) -> SessionState:
        return self._state

    def refusal(self, verb: Verb) -> Reply | None:
        """None when ``verb`` is allowed now; otherwise the sequence-error reply."""
        if self._target(verb)[0]:
            return None
        return REFUSALS.get((self._state, verb), SmtpReplies.BAD_SEQUENCE)

    def accept(self, verb: Verb) -> SessionState:
        """Apply the positive outcome of ``verb``; returns the new state."""
        allowed, target = self._target(verb)
        if not allowed:
            raise ProtocolUsageError(f"{verb.value} is not allowed in state {self._state.value}")
        if target is not None:
            self._state = target
        return self._state

    def trigger(self, trigger: Trigger) -> SessionState:
        try:
            self._state = TRIGGERS[(self._state, trigger)]
        except KeyError:
            raise ProtocolUsageError(
                f"{trigger.value} cannot happen in state {self._state.value}"
            ) from None
        return self._state

    def close(self) -> None:
        """Any state may close (QUIT, 421, EOF, protocol violation)."""
        self._state = SessionState.CLOSED
