"""The state table is data: check its shape and a few of its promises."""

from __future__ import annotations

import pytest

from postoffice.protocol.errors import ProtocolUsageError
from postoffice.protocol.smtp.replies import SmtpReplies
from postoffice.protocol.smtp.states import (
    REFUSALS,
    TRANSITIONS,
    TRIGGERS,
    SessionState,
    SmtpStateMachine,
    Trigger,
    Verb,
)


def test_every_state_has_a_row() -> None:
    assert set(TRANSITIONS) == set(SessionState)


def test_refusals_never_contradict_the_table() -> None:
    for state, verb in REFUSALS:
        assert verb not in TRANSITIONS[state], (state, verb)


def test_quit_is_accepted_in_every_command_state() -> None:
    for state in (
        SessionState.REJECTED,
        SessionState.CONNECTED,
        SessionState.READY,
        SessionState.MAIL,
        SessionState.RCPT,
        SessionState.BDAT,
    ):
        assert TRANSITIONS[state][Verb.QUIT] is SessionState.CLOSED


def test_a_full_path_through_the_machine() -> None:
    machine = SmtpStateMachine()
    assert machine.refusal(Verb.EHLO) == SmtpReplies.BAD_SEQUENCE
    machine.trigger(Trigger.GREETED)
    assert machine.refusal(Verb.MAIL) == SmtpReplies.NEED_HELO
    for verb, state in [
        (Verb.EHLO, SessionState.READY),
        (Verb.MAIL, SessionState.MAIL),
        (Verb.RCPT, SessionState.RCPT),
        (Verb.RCPT, SessionState.RCPT),
        (Verb.DATA, SessionState.DATA),
    ]:
        assert machine.refusal(verb) is None
        assert machine.accept(verb) is state
    assert machine.trigger(Trigger.MESSAGE_DONE) is SessionState.READY
    with pytest.raises(ProtocolUsageError):
        machine.accept(Verb.DATA)
    with pytest.raises(ProtocolUsageError):
        machine.trigger(Trigger.TLS_ESTABLISHED)
    machine.close()
    assert machine.state is SessionState.CLOSED


def test_helo_optional_overlay() -> None:
    machine = SmtpStateMachine(require_helo=False)
    machine.trigger(Trigger.GREETED)
    assert machine.refusal(Verb.MAIL) is None
    assert machine.accept(Verb.MAIL) is SessionState.MAIL


def test_every_trigger_leaves_a_content_or_special_state() -> None:
    for (state, _), target in TRIGGERS.items():
        assert state is not target
