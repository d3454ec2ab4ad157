"""SMTP client transactions as transcripts: MAIL, RCPT, DATA, pipelined or not, refusals,
RSET and connection reuse. Each runs whole and octet by octet."""

from __future__ import annotations

import pytest

from postoffice.protocol.smtp import client_events as ev
from postoffice.protocol.smtp.client import (
    ClientSettings,
    ClientState,
    ClientStateError,
)
from tests.protocol.smtp_client_harness import (
    HELO,
    MODES,
    ClientHarness,
    ehlo_with,
    greeted,
    transaction,
)

PIPELINED = ehlo_with(
    "PIPELINING", "SIZE 1000", "8BITMIME", "DSN", "SMTPUTF8", "ENHANCEDSTATUSCODES"
)
PLAIN = ehlo_with("SIZE 1000", "8BITMIME")  # no PIPELINING: one command at a time


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def send_message(h: ClientHarness, body: bytes = b"Subject: hi\r\n\r\nhello\r\n") -> None:
    h.conn.send_message_data(body)
    h.conn.end_message()


# ---------------------------------------------------------------- pipelined


def test_pipelined_transaction_with_mixed_recipient_results(mode: str) -> None:
    h = greeted(PIPELINED, mode=mode)
    h.conn.begin(transaction("bob@b.test", "nobody@b.test", "carol@b.test", size=120))
    # RFC 2920 §3.1: MAIL, every RCPT and DATA in one write.
    h.converse("""
        C: MAIL FROM:<alice@a.test> SIZE=120
        C: RCPT TO:<bob@b.test>
        C: RCPT TO:<nobody@b.test>
        C: RCPT TO:<carol@b.test>
        C: DATA
        S: 250 2.1.0 Ok
        S: 250 2.1.5 Ok
        S: 550 5.1.1 No such user here
        S: 250 2.1.5 Ok
        S: 354 End data with <CR><LF>.<CR><LF>
        E: RecipientResult 0 250 2.1.5
        E: RecipientResult 1 550 5.1.1
        E: RecipientResult 2 250 2.1.5
        E: SendMessage 354
    """)
    assert h.conn.state is ClientState.MESSAGE
    results = [e for e in h.events if isinstance(e, ev.RecipientResult)]
    assert [r.accepted for r in results] == [True, False, True]
    send_message(h)
    h.converse("""
        C: Subject: hi
        C:
        C: hello
        C: .
        S: 250 2.0.0 Ok: queued as Q1
        E: MessageAccepted 250 2.0.0
        E: Ready
    """)
    assert h.conn.state is ClientState.READY


def test_pipelined_replies_may_trickle_in(mode: str) -> None:
    h = greeted(PIPELINED, mode=mode)
    h.conn.begin(transaction("bob@b.test", "carol@b.test"))
    h.converse("""
        C: MAIL FROM:<alice@a.test>
        C: RCPT TO:<bob@b.test>
        C: RCPT TO:<carol@b.test>
        C: DATA
        S: 250 2.1.0 Ok
        E: (none)
        S: 250 2.1.5 Ok
        E: RecipientResult 0 250 2.1.5
        S: 250 2.1.5 Ok
        S: 354 Go ahead
        E: RecipientResult 1 250 2.1.5
        E: SendMessage 354
    """)


def test_pipelined_all_recipients_refused(mode: str) -> None:
    h = greeted(PIPELINED, mode=mode)
    h.conn.begin(transaction("x@b.test", "y@b.test"))
    h.converse("""
        C: MAIL FROM:<alice@a.test>
        C: RCPT TO:<x@b.test>
        C: RCPT TO:<y@b.test>
        C: DATA
        S: 250 2.1.0 Ok
        S: 550 5.1.1 No such user here
        S: 554 5.7.1 Relay access denied
        S: 554 5.5.1 No valid recipients
        E: RecipientResult 0 550 5.1.1
        E: RecipientResult 1 554 5.7.1
        E: TransactionRefused rcpt 554 5.7.1
        C: RSET
        S: 250 2.0.0 Ok
        E: Ready
    """)


def test_pipelined_all_refused_but_the_server_says_354(mode: str) -> None:
    h = greeted(PIPELINED, mode=mode)
    h.conn.begin(transaction("x@b.test"))
    # RFC 2920 §3.1: a broken server accepts DATA anyway: only the end of data is sent.
    h.converse("""
        C: MAIL FROM:<alice@a.test>
        C: RCPT TO:<x@b.test>
        C: DATA
        S: 250 2.1.0 Ok
        S: 550 5.1.1 No such user here
        S: 354 go ahead
        E: RecipientResult 0 550 5.1.1
        E: TransactionRefused rcpt 550 5.1.1
        C: .
        C: RSET
        S: 554 5.5.1 Error: no valid recipients
        S: 250 2.0.0 Ok
        E: Ready
    """)


def test_pipelined_sender_refused_swallows_the_rest(mode: str) -> None:
    h = greeted(PIPELINED, mode=mode)
    h.conn.begin(transaction("bob@b.test", "carol@b.test"))
    h.converse("""
        C: MAIL FROM:<alice@a.test>
        C: RCPT TO:<bob@b.test>
        C: RCPT TO:<carol@b.test>
        C: DATA
        S: 550 5.7.1 Sender address rejected
        E: SenderRefused 550 5.7.1
        S: 503 5.5.1 Need MAIL command
        S: 503 5.5.1 Need MAIL command
        S: 503 5.5.1 Need MAIL command
        E: (none)
        C: RSET
        S: 250 2.0.0 Ok
        E: Ready
    """)
    with pytest.raises(ClientStateError):
        h.conn.send_message_data(b"x")


def test_pipelined_sender_refused_and_a_broken_354(mode: str) -> None:
    h = greeted(PIPELINED, mode=mode)
    h.conn.begin(transaction())
    h.converse("""
        C: MAIL FROM:<alice@a.test>
        C: RCPT TO:<bob@b.test>
        C: DATA
        S: 451 4.3.0 Try later
        S: 250 2.1.5 Ok
        S: 354 go
        E: SenderRefused 451 4.3.0
        C: .
        C: RSET
        S: 554 5.5.1 no
        S: 250 2.0.0 Ok
        E: Ready
    """)


def test_data_refused(mode: str) -> None:
    h = greeted(PIPELINED, mode=mode)
    h.conn.begin(transaction())
    h.converse("""
        C: MAIL FROM:<alice@a.test>
        C: RCPT TO:<bob@b.test>
        C: DATA
        S: 250 2.1.0 Ok
        S: 250 2.1.5 Ok
        S: 451 4.3.0 Local error in processing
        E: RecipientResult 0 250 2.1.5
        E: TransactionRefused data 451 4.3.0
        C: RSET
        S: 250 2.0.0 Ok
        E: Ready
    """)


def test_message_refused_after_the_dot(mode: str) -> None:
    h = greeted(PIPELINED, mode=mode)
    h.conn.begin(transaction())
    h.take_written()
    h.feed(b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n")
    h.take_events()
    send_message(h, b"spam\r\n")
    h.converse("""
        C: spam
        C: .
        S: 554 5.7.1 Message rejected as spam
        E: MessageRefused 554 5.7.1
        C: RSET
        S: 250 2.0.0 Ok
        E: Ready
    """)


# ------------------------------------------------------------ not pipelined


def test_without_pipelining_each_command_waits_for_its_reply(mode: str) -> None:
    h = greeted(PLAIN, mode=mode)
    h.conn.begin(transaction("bob@b.test", "nobody@b.test", size=99))
    h.converse("""
        C: MAIL FROM:<alice@a.test> SIZE=99
        S: 250 2.1.0 Ok
        C: RCPT TO:<bob@b.test>
        S: 250 2.1.5 Ok
        E: RecipientResult 0 250 2.1.5
        C: RCPT TO:<nobody@b.test>
        S: 550 5.1.1 No such user here
        E: RecipientResult 1 550 5.1.1
        C: DATA
        S: 354 go
        E: SendMessage 354
    """)
    send_message(h, b"hi\r\n")
    h.converse("""
        C: hi
        C: .
        S: 250 2.0.0 queued
        E: MessageAccepted 250 2.0.0
        E: Ready
    """)


def test_pipelining_can_be_turned_off(mode: str) -> None:
    h = greeted(PIPELINED, ClientSettings(helo_name=HELO, use_pipelining=False), mode=mode)
    h.conn.begin(transaction())
    h.converse("""
        C: MAIL FROM:<alice@a.test>
        S: 250 2.1.0 Ok
        C: RCPT TO:<bob@b.test>
    """)


def test_without_pipelining_no_data_when_every_recipient_is_refused(mode: str) -> None:
    h = greeted(PLAIN, mode=mode)
    h.conn.begin(transaction("x@b.test", "y@b.test"))
    h.converse("""
        C: MAIL FROM:<alice@a.test>
        S: 250 2.1.0 Ok
        C: RCPT TO:<x@b.test>
        S: 550 5.1.1 No such user here
        E: RecipientResult 0 550 5.1.1
        C: RCPT TO:<y@b.test>
        S: 450 4.2.0 Mailbox busy
        E: RecipientResult 1 450 4.2.0
        E: TransactionRefused rcpt 450 4.2.0
        C: RSET
        S: 250 Ok
        E: Ready
    """)


def test_without_pipelining_sender_refused_sends_no_rcpt(mode: str) -> None:
    h = greeted(PLAIN, mode=mode)
    h.conn.begin(transaction("bob@b.test", "carol@b.test"))
    h.converse("""
        C: MAIL FROM:<alice@a.test>
        S: 553 5.1.8 Sender domain does not exist
        E: SenderRefused 553 5.1.8
        C: RSET
        S: 250 Ok
        E: Ready
    """)


def test_after_helo_no_parameters_and_no_pipelining(mode: str) -> None:
    h = ClientHarness(mode=mode)
    h.converse("""
        S: 220 old.example.test
        E: Greeting 220
    """)
    h.conn.hello()
    h.converse(f"""
        C: EHLO {HELO}
        S: 502 not implemented
        C: HELO {HELO}
        S: 250 old.example.test
        E: HelloDone 250 HELO
    """)
    t = transaction(size=10**9, body="8BITMIME", smtputf8=True, ret="HDRS", envid="x")
    h.conn.begin(t)
    h.converse("""
        C: MAIL FROM:<alice@a.test>
        S: 250 ok
        C: RCPT TO:<bob@b.test>
        S: 250 ok
        E: RecipientResult 0 250
        C: DATA
    """)


# ------------------------------------------------------------- RSET, reuse


def test_reset_and_a_second_transaction_on_the_same_connection(mode: str) -> None:
    h = greeted(PIPELINED, mode=mode)
    h.conn.reset()
    h.converse("""
        C: RSET
        S: 250 2.0.0 Ok
        E: Ready
    """)
    for n in (1, 2):
        h.conn.begin(transaction(f"r{n}@b.test"))
        h.converse(f"""
            C: MAIL FROM:<alice@a.test>
            C: RCPT TO:<r{n}@b.test>
            C: DATA
            S: 250 2.1.0 Ok
            S: 250 2.1.5 Ok
            S: 354 go
            E: RecipientResult 0 250 2.1.5
            E: SendMessage 354
        """)
        send_message(h, f"message {n}\n".encode())
        h.converse(f"""
            C: message {n}
            C: .
            S: 250 2.0.0 Ok: queued as Q{n}
            E: MessageAccepted 250 2.0.0
            E: Ready
        """)
    h.conn.quit()
    h.converse("""
        C: QUIT
        S: 221 2.0.0 Bye
        E: Closing 221 2.0.0
    """)


def test_a_failed_transaction_then_a_good_one(mode: str) -> None:
    h = greeted(PIPELINED, mode=mode)
    h.conn.begin(transaction("x@b.test"))
    h.take_written()
    h.feed(b"250 2.1.0 Ok\r\n550 5.1.1 No\r\n")
    assert h.take_events() == ["RecipientResult 0 550 5.1.1"]
    with pytest.raises(ClientStateError):  # DATA's reply is still due
        h.conn.begin(transaction())
    h.feed(b"554 5.5.1 No valid recipients\r\n")
    assert h.take_events() == ["TransactionRefused rcpt 550 5.1.1"]
    with pytest.raises(ClientStateError):  # the RSET's reply is still due
        h.conn.begin(transaction())
    h.converse("""
        C: RSET
        S: 250 2.0.0 Ok
        E: Ready
    """)
    h.conn.begin(transaction())
    h.converse("""
        C: MAIL FROM:<alice@a.test>
        C: RCPT TO:<bob@b.test>
        C: DATA
    """)


def test_quit_right_after_a_failed_transaction(mode: str) -> None:
    h = greeted(PIPELINED, mode=mode)
    h.conn.begin(transaction())
    h.converse("""
        C: MAIL FROM:<alice@a.test>
        C: RCPT TO:<bob@b.test>
        C: DATA
        S: 550 5.7.1 no
        E: SenderRefused 550 5.7.1
    """)
    h.conn.quit()  # RSET is due; QUIT waits for DATA's reply, then follows the RSET
    h.converse("""
        C: (none)
        S: 503 5.5.1 Need MAIL
        S: 503 5.5.1 Need MAIL
        C: RSET
        C: QUIT
        S: 250 2.0.0 Ok
        S: 221 2.0.0 Bye
        E: Closing 221 2.0.0
    """)


def test_quit_after_a_failed_transaction_without_pipelining(mode: str) -> None:
    h = greeted(PLAIN, mode=mode)
    h.conn.begin(transaction())
    h.converse("""
        C: MAIL FROM:<alice@a.test>
        S: 550 5.7.1 no
        E: SenderRefused 550 5.7.1
        C: RSET
    """)
    h.conn.quit()
    h.converse("""
        C: (none)
        S: 250 Ok
        C: QUIT
        S: 221 Bye
        E: Closing 221
    """)


def test_rset_must_be_answered_250(mode: str) -> None:
    h = greeted(PIPELINED, mode=mode)
    h.conn.reset()
    h.converse("""
        C: RSET
        S: 500 5.5.2 what
        E: ProtocolViolation
    """)


def test_commands_out_of_state() -> None:
    h = greeted(PIPELINED)
    with pytest.raises(ClientStateError):
        h.conn.send_message_data(b"x")
    with pytest.raises(ClientStateError):
        h.conn.end_message()
    h.conn.begin(transaction())
    for call in (h.conn.hello, h.conn.reset, h.conn.quit, h.conn.starttls, h.conn.end_message):
        with pytest.raises(ClientStateError):
            call()
    with pytest.raises(ClientStateError):
        h.conn.begin(transaction())
    with pytest.raises(ClientStateError):
        h.conn.authenticate("PLAIN", "a", "b")
    assert h.conn.state is ClientState.ENVELOPE


def test_a_250_to_data_is_no_acceptance_of_a_message_never_sent(mode: str) -> None:
    h = greeted(PIPELINED, mode=mode)
    h.conn.begin(transaction("bob@b.test"))
    h.converse("""
        C: MAIL FROM:<alice@a.test>
        C: RCPT TO:<bob@b.test>
        C: DATA
        S: 250 2.1.0 Ok
        S: 250 2.1.5 Ok
        S: 250 2.0.0 Ok: queued as NOTHING
        E: RecipientResult 0 250 2.1.5
        E: ProtocolViolation
    """)
    assert not any(isinstance(e, ev.MessageAccepted) for e in h.events)


def test_a_354_to_the_final_dot_is_no_acceptance_either(mode: str) -> None:
    h = greeted(PIPELINED, mode=mode)
    h.conn.begin(transaction("bob@b.test"))
    h.converse("""
        C: MAIL FROM:<alice@a.test>
        C: RCPT TO:<bob@b.test>
        C: DATA
        S: 250 2.1.0 Ok
        S: 250 2.1.5 Ok
        S: 354 go on
        E: RecipientResult 0 250 2.1.5
        E: SendMessage 354
    """)
    send_message(h)
    h.converse("""
        C: Subject: hi
        C:
        C: hello
        C: .
        S: 354 again
        E: ProtocolViolation
    """)
    assert not any(isinstance(e, ev.MessageAccepted) for e in h.events)
