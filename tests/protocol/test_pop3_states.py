"""The POP3 state table, and every command sent in every state."""

from __future__ import annotations

import base64

import pytest

from postoffice.protocol.errors import ProtocolUsageError
from postoffice.protocol.pop3 import Command, Pop3State
from postoffice.protocol.pop3.states import TRANSITIONS, Pop3StateMachine
from tests.protocol.test_pop3_harness import RFC_TIMESTAMP, Pop3Harness, settings

AUTHORIZATION_ONLY = {
    Command.USER,
    Command.PASS,
    Command.APOP,
    Command.AUTH,
    Command.STLS,
    Command.UTF8,
}
BOTH = {Command.CAPA, Command.QUIT}
TRANSACTION_ONLY = set(Command) - AUTHORIZATION_ONLY - BOTH

PLAIN = base64.b64encode(b"\x00alice\x00secret").decode()
# A well-formed line for each command (whether it succeeds depends on the state).
LINES = {
    Command.USER: "USER alice",
    Command.PASS: "PASS secret",
    Command.APOP: "APOP mrose c4c9334bac560ecc979e58001b3e22fb",
    Command.AUTH: f"AUTH PLAIN {PLAIN}",
    Command.STLS: "STLS",
    Command.CAPA: "CAPA",
    Command.UTF8: "UTF8",
    Command.QUIT: "QUIT",
    Command.NOOP: "NOOP",
    Command.STAT: "STAT",
    Command.LIST: "LIST",
    Command.RETR: "RETR 1",
    Command.DELE: "DELE 1",
    Command.RSET: "RSET",
    Command.TOP: "TOP 1 0",
    Command.UIDL: "UIDL",
    Command.LAST: "LAST",
}


def test_the_table_matches_rfc_1939_section_9() -> None:
    assert set(TRANSITIONS[Pop3State.AUTHORIZATION]) == AUTHORIZATION_ONLY | BOTH
    assert set(TRANSITIONS[Pop3State.TRANSACTION]) == TRANSACTION_ONLY | BOTH
    assert TRANSITIONS[Pop3State.UPDATE] == {}
    assert {
        Command.NOOP,
        Command.STAT,
        Command.LIST,
        Command.RETR,
        Command.DELE,
        Command.RSET,
        Command.TOP,
        Command.UIDL,
        Command.LAST,
    } == TRANSACTION_ONLY


def test_logins_lead_to_transaction_and_quit_to_update() -> None:
    auth = TRANSITIONS[Pop3State.AUTHORIZATION]
    for command in (Command.PASS, Command.APOP, Command.AUTH):
        assert auth[command] is Pop3State.TRANSACTION
    for command in (Command.USER, Command.STLS, Command.UTF8, Command.CAPA):
        assert auth[command] is None
    assert auth[Command.QUIT] is Pop3State.UPDATE
    assert TRANSITIONS[Pop3State.TRANSACTION][Command.QUIT] is Pop3State.UPDATE
    with pytest.raises(TypeError):
        TRANSITIONS[Pop3State.UPDATE][Command.QUIT] = Pop3State.UPDATE  # type: ignore[index]


def test_state_machine_refuses_impossible_transitions() -> None:
    machine = Pop3StateMachine()
    assert machine.state is Pop3State.AUTHORIZATION
    assert machine.refusal(Command.STAT) == "command not valid before login"
    with pytest.raises(ProtocolUsageError):
        machine.accept(Command.STAT)
    assert machine.accept(Command.USER) is Pop3State.AUTHORIZATION
    assert machine.accept(Command.PASS) is Pop3State.TRANSACTION
    assert machine.refusal(Command.USER) == "command not valid after login"
    assert machine.refusal(Command.RETR) is None
    machine.close()
    assert machine.state is Pop3State.UPDATE
    assert machine.refusal(Command.QUIT) == "the session is over"


def authorization() -> Pop3Harness:
    return Pop3Harness(settings(tls_available=True, apop_timestamp=RFC_TIMESTAMP))


def transaction() -> Pop3Harness:
    harness = Pop3Harness(settings(tls_available=True, apop_timestamp=RFC_TIMESTAMP))
    harness.login()
    return harness


@pytest.mark.parametrize("command", sorted(TRANSACTION_ONLY, key=lambda c: c.value))
def test_transaction_commands_are_refused_before_login(command: Command) -> None:
    harness = authorization()
    assert harness.feed(f"{LINES[command]}\r\n".encode()) == (
        b"-ERR command not valid before login\r\n"
    )
    assert harness.conn.error_count == 1
    assert harness.conn.state is Pop3State.AUTHORIZATION


@pytest.mark.parametrize("command", sorted(AUTHORIZATION_ONLY, key=lambda c: c.value))
def test_authorization_commands_are_refused_after_login(command: Command) -> None:
    harness = transaction()
    assert harness.feed(f"{LINES[command]}\r\n".encode()) == (
        b"-ERR command not valid after login\r\n"
    )
    assert harness.conn.state is Pop3State.TRANSACTION


@pytest.mark.parametrize("command", sorted(AUTHORIZATION_ONLY | BOTH, key=lambda c: c.value))
def test_authorization_commands_are_accepted_before_login(command: Command) -> None:
    harness = authorization()
    out = harness.feed(f"{LINES[command]}\r\n".encode())
    if command is Command.PASS:
        assert out == b"-ERR USER first\r\n"  # allowed in the state, out of sequence
    else:
        assert out.startswith(b"+OK"), out
    assert b"not valid" not in out


@pytest.mark.parametrize("command", sorted(TRANSACTION_ONLY | BOTH, key=lambda c: c.value))
def test_transaction_commands_are_accepted_after_login(command: Command) -> None:
    harness = transaction()
    out = harness.feed(f"{LINES[command]}\r\n".encode())
    assert out.startswith(b"+OK"), out
    assert harness.conn.error_count == 0


@pytest.mark.parametrize("command", list(Command))
def test_nothing_is_read_in_update(command: Command) -> None:
    harness = transaction()
    harness.feed(b"QUIT\r\n")
    assert harness.conn.state is Pop3State.UPDATE and harness.conn.closed
    harness.conn.receive_data(f"{LINES[command]}\r\n".encode())
    assert harness.run() == b""
    assert harness.conn.buffered_octets == 0
