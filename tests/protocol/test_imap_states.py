"""The IMAP session state table (RFC 9051 §3, §6; RFC 3501 §3)."""

from __future__ import annotations

import pytest

from postoffice.protocol.errors import ProtocolUsageError
from postoffice.protocol.imap.states import (
    KNOWN_COMMANDS,
    TRANSITIONS,
    ImapState,
    ImapStateMachine,
)

S = ImapState
ANY_STATE = {"CAPABILITY", "NOOP", "LOGOUT", "ID"}
NOT_AUTHENTICATED = ANY_STATE | {"STARTTLS", "AUTHENTICATE", "LOGIN"}
AUTHENTICATED = ANY_STATE | {
    "ENABLE",
    "SELECT",
    "EXAMINE",
    "CREATE",
    "DELETE",
    "RENAME",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "LIST",
    "LSUB",
    "NAMESPACE",
    "STATUS",
    "APPEND",
    "IDLE",
    "COMPRESS",  # RFC 4978 §3
    "GETQUOTA",  # RFC 9208 §4.1
    "GETQUOTAROOT",
    "SETQUOTA",
}
SELECTED = (AUTHENTICATED - {"ENABLE"}) | {
    "CHECK",
    "CLOSE",
    "UNSELECT",
    "EXPUNGE",
    "SEARCH",
    "FETCH",
    "STORE",
    "COPY",
    "MOVE",
    "SORT",  # RFC 5256 §3
    "THREAD",  # RFC 5256 §3
}
ALLOWED = {
    S.NOT_AUTHENTICATED: NOT_AUTHENTICATED,
    S.AUTHENTICATED: AUTHENTICATED,
    S.SELECTED: SELECTED,
    S.LOGOUT: set(),
}


@pytest.mark.parametrize("state", list(S))
def test_table_allows_exactly_the_rfc_commands(state: ImapState) -> None:
    assert set(TRANSITIONS[state]) == ALLOWED[state]


@pytest.mark.parametrize("state", list(S))
@pytest.mark.parametrize("command", sorted(KNOWN_COMMANDS | {"XPIG-LATIN"}))
def test_refusal_is_none_exactly_when_allowed(state: ImapState, command: str) -> None:
    refusal = ImapStateMachine(state).refusal(command)
    if command in ALLOWED[state]:
        assert refusal is None
    else:
        assert isinstance(refusal, str)
        assert refusal


@pytest.mark.parametrize(
    ("state", "command", "text"),
    [
        (S.NOT_AUTHENTICATED, "SELECT", "command not valid before login"),
        (S.NOT_AUTHENTICATED, "FETCH", "command not valid before login"),
        (S.AUTHENTICATED, "FETCH", "no mailbox selected"),
        (S.AUTHENTICATED, "EXPUNGE", "no mailbox selected"),
        (S.AUTHENTICATED, "LOGIN", "already authenticated"),
        (S.SELECTED, "AUTHENTICATE", "already authenticated"),
        (S.SELECTED, "STARTTLS", "already authenticated"),
        (S.SELECTED, "ENABLE", "ENABLE is only valid before a mailbox is selected"),
        (S.LOGOUT, "NOOP", "the session is over"),
    ],
)
def test_refusal_texts(state: ImapState, command: str, text: str) -> None:
    assert ImapStateMachine(state).refusal(command) == text


def test_known_commands_are_every_command_of_the_table() -> None:
    assert KNOWN_COMMANDS == NOT_AUTHENTICATED | AUTHENTICATED | SELECTED


@pytest.mark.parametrize(
    ("start", "command", "ok", "end"),
    [
        (S.NOT_AUTHENTICATED, "LOGIN", True, S.AUTHENTICATED),  # RFC 9051 §6.2.3
        (S.NOT_AUTHENTICATED, "LOGIN", False, S.NOT_AUTHENTICATED),
        (S.NOT_AUTHENTICATED, "AUTHENTICATE", True, S.AUTHENTICATED),  # §6.2.2
        (S.NOT_AUTHENTICATED, "AUTHENTICATE", False, S.NOT_AUTHENTICATED),
        (S.NOT_AUTHENTICATED, "STARTTLS", True, S.NOT_AUTHENTICATED),  # §6.2.1
        (S.NOT_AUTHENTICATED, "CAPABILITY", True, S.NOT_AUTHENTICATED),
        (S.NOT_AUTHENTICATED, "LOGOUT", True, S.LOGOUT),  # §6.1.3
        (S.AUTHENTICATED, "SELECT", True, S.SELECTED),  # §6.3.2
        (S.AUTHENTICATED, "SELECT", False, S.AUTHENTICATED),
        (S.AUTHENTICATED, "EXAMINE", True, S.SELECTED),  # §6.3.3
        (S.AUTHENTICATED, "ENABLE", True, S.AUTHENTICATED),
        (S.AUTHENTICATED, "APPEND", True, S.AUTHENTICATED),
        (S.AUTHENTICATED, "IDLE", True, S.AUTHENTICATED),
        (S.AUTHENTICATED, "LOGOUT", True, S.LOGOUT),
        (S.SELECTED, "SELECT", True, S.SELECTED),
        (S.SELECTED, "SELECT", False, S.AUTHENTICATED),  # §6.3.2: the old one is closed
        (S.SELECTED, "EXAMINE", False, S.AUTHENTICATED),
        (S.SELECTED, "CLOSE", True, S.AUTHENTICATED),  # §6.4.1
        (S.SELECTED, "CLOSE", False, S.SELECTED),
        (S.SELECTED, "UNSELECT", True, S.AUTHENTICATED),  # §6.4.2
        (S.SELECTED, "EXPUNGE", True, S.SELECTED),
        (S.SELECTED, "FETCH", False, S.SELECTED),
        (S.SELECTED, "MOVE", True, S.SELECTED),
        (S.SELECTED, "LOGOUT", True, S.LOGOUT),
    ],
)
def test_transitions(start: ImapState, command: str, ok: bool, end: ImapState) -> None:
    machine = ImapStateMachine(start)
    assert machine.finish(command, ok) is end
    assert machine.state is end


def test_a_whole_session() -> None:
    machine = ImapStateMachine()
    assert machine.state is S.NOT_AUTHENTICATED
    for command, ok, state in [
        ("CAPABILITY", True, S.NOT_AUTHENTICATED),
        ("LOGIN", False, S.NOT_AUTHENTICATED),
        ("LOGIN", True, S.AUTHENTICATED),
        ("SELECT", True, S.SELECTED),
        ("FETCH", True, S.SELECTED),
        ("EXAMINE", False, S.AUTHENTICATED),
        ("EXAMINE", True, S.SELECTED),
        ("CLOSE", True, S.AUTHENTICATED),
        ("LOGOUT", True, S.LOGOUT),
    ]:
        assert machine.finish(command, ok) is state


@pytest.mark.parametrize(
    ("state", "command"),
    [
        (S.NOT_AUTHENTICATED, "SELECT"),
        (S.AUTHENTICATED, "FETCH"),
        (S.AUTHENTICATED, "LOGIN"),
        (S.SELECTED, "ENABLE"),
        (S.LOGOUT, "NOOP"),
        (S.NOT_AUTHENTICATED, "XPIG-LATIN"),
    ],
)
def test_finishing_a_refused_command_is_a_usage_error(state: ImapState, command: str) -> None:
    machine = ImapStateMachine(state)
    with pytest.raises(ProtocolUsageError):
        machine.finish(command, True)
    assert machine.state is state


@pytest.mark.parametrize("state", list(S))
def test_logout_from_any_state(state: ImapState) -> None:
    machine = ImapStateMachine(state)
    machine.logout()
    assert machine.state is S.LOGOUT
    assert machine.refusal("NOOP") == "the session is over"


def test_preauth_starts_authenticated() -> None:
    # RFC 9051 §7.1.4 PREAUTH
    assert ImapStateMachine(S.AUTHENTICATED).refusal("SELECT") is None


def test_the_table_cannot_be_changed() -> None:
    with pytest.raises(TypeError):
        TRANSITIONS[S.LOGOUT]["NOOP"] = TRANSITIONS[S.AUTHENTICATED]["NOOP"]  # type: ignore[index]
