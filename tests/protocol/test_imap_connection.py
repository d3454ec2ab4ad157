"""``ImapServerConnection`` conversations, sans IO: client octets in, server octets out.

``Session.converse`` reads a transcript the way the RFCs write examples:

    C: a1 LOGIN {5}
    S: + Ready for literal data
    C: alice secret
    S: a1 OK LOGIN completed

Consecutive ``C:`` lines are one write of the client (each ended by CRLF),
fed whole or octet by octet (``mode``); the ``S:`` lines that follow are
what the server wrote in answer (trailing spaces aside, so ``S: +`` is the
empty challenge ``+ ``). ``S: (nothing)`` expects silence; a bare ``C:`` is
an empty line.
A small fake driver carries the commands out the way ``server`` will:
LOGIN and AUTHENTICATE PLAIN succeed for alice/secret, SELECT of
``nosuch`` fails, IDLE idles until DONE, everything else is OK.
"""

from __future__ import annotations

import base64

from postoffice.protocol.imap.commands import (
    Append,
    AppendMessage,
    Login,
)
from postoffice.protocol.imap.connection import (
    IdleDone,
    NeedData,
    SaslResponse,
)
from postoffice.protocol.imap.states import ImapState
from tests.protocol.imap_transcripts import PLAIN, Session

# --- the RFC conversations ----------------------------------------------------------


def test_rfc3501_sample_session(session: Session) -> None:
    # RFC 3501 §8 (the untagged data is the driver's to send, not this layer's)
    session.converse("""
        S: * OK [CAPABILITY IMAP4rev2] postoffice ready
        C: a001 login alice secret
        S: a001 OK LOGIN completed
        C: a002 select inbox
        S: a002 OK SELECT completed
        C: a003 fetch 12 full
        S: a003 OK FETCH completed
        C: a004 fetch 12 body[header]
        S: a004 OK FETCH completed
        C: a005 store 12 +flags \\deleted
        S: a005 OK STORE completed
        C: a006 logout
        S: * BYE logging out
        S: a006 OK LOGOUT completed
    """)
    assert session.conn.state is ImapState.LOGOUT
    assert session.closed
    assert [type(c).__name__ for c in session.commands] == [
        "Login",
        "Select",
        "Fetch",
        "Fetch",
        "StoreFlags",
        "NoArguments",
    ]


def test_login_failure_keeps_the_state(session: Session) -> None:
    session.converse("""
        S: * OK [CAPABILITY IMAP4rev2] postoffice ready
        C: a1 LOGIN alice wrong
        S: a1 NO [AUTHENTICATIONFAILED] Invalid credentials
        C: a2 SELECT INBOX
        S: a2 BAD command not valid before login
    """)
    assert session.conn.state is ImapState.NOT_AUTHENTICATED


def test_login_with_synchronising_literals(session: Session) -> None:
    # RFC 9051 §7.5: "+" only once the server accepts the literal
    session.converse("""
        S: * OK [CAPABILITY IMAP4rev2] postoffice ready
        C: a1 LOGIN {5}
        S: + Ready for literal data
        C: alice {6}
        S: + Ready for literal data
        C: secret
        S: a1 OK LOGIN completed
    """)
    assert session.commands == [Login("a1", b"alice", b"secret")]


def test_login_with_non_synchronising_literals(session: Session) -> None:
    # RFC 7888: no "+" is sent for {n+}
    session.converse("""
        S: * OK [CAPABILITY IMAP4rev2] postoffice ready
        C: a1 LOGIN {5+}
        C: alice {6+}
        C: secret
        S: a1 OK LOGIN completed
    """)


def test_authenticate_with_a_challenge(session: Session) -> None:
    # RFC 9051 §6.2.2
    session.converse(f"""
        S: * OK [CAPABILITY IMAP4rev2] postoffice ready
        C: A001 AUTHENTICATE PLAIN
        S: +
        C: {PLAIN}
        S: A001 OK AUTHENTICATE completed
        C: A002 SELECT INBOX
        S: A002 OK SELECT completed
    """)
    sasl = [event for event in session.events if isinstance(event, SaslResponse)]
    assert sasl == [SaslResponse(PLAIN.encode())]
    assert session.conn.state is ImapState.SELECTED


def test_authenticate_with_an_initial_response(session: Session) -> None:
    # RFC 4959 SASL-IR: no challenge round
    session.converse(f"""
        S: * OK [CAPABILITY IMAP4rev2] postoffice ready
        C: a01 AUTHENTICATE PLAIN {PLAIN}
        S: a01 OK AUTHENTICATE completed
    """)
    assert session.conn.state is ImapState.AUTHENTICATED


def test_authenticate_cancelled(session: Session) -> None:
    session.converse("""
        S: * OK [CAPABILITY IMAP4rev2] postoffice ready
        C: a1 AUTHENTICATE PLAIN
        S: +
        C: *
        S: a1 BAD AUTHENTICATE cancelled
        C: a2 NOOP
        S: a2 OK NOOP completed
    """)
    assert session.conn.state is ImapState.NOT_AUTHENTICATED
    assert session.conn.bad_commands == 1


def test_challenge_data_is_base64() -> None:
    session = Session(hold=frozenset({"AUTHENTICATE"}))
    session.converse("""
        S: * OK [CAPABILITY IMAP4rev2] postoffice ready
        C: a1 AUTHENTICATE CRAM-MD5
        S: (nothing)
    """)
    challenge = b"<1896.697170952@postoffice.example.test>"
    session.conn.challenge(challenge)
    assert session.conn.data_to_send() == b"+ " + base64.b64encode(challenge) + b"\r\n"
    # The answer line is given as sent, even one that looks like a command.
    session.conn.receive_data(b"a2 LOGOUT\r\n")
    assert session.conn.next_event() == SaslResponse(b"a2 LOGOUT")


def test_idle_until_done(session: Session) -> None:
    # RFC 2177 §3 / RFC 9051 §6.3.13
    session.login()
    session.converse("""
        C: a2 SELECT INBOX
        S: a2 OK SELECT completed
        C: a3 IDLE
        S: + idling
    """)
    session.conn.send(b"* 4 EXISTS\r\n")  # the driver reports changes meanwhile
    session.converse("""
        S: * 4 EXISTS
        C: DONE
        S: a3 OK IDLE terminated
        C: a4 NOOP
        S: a4 OK NOOP completed
    """)
    assert IdleDone(True) in session.events


def test_idle_done_is_case_insensitive_and_may_have_commands_behind_it() -> None:
    session = Session()
    session.login()
    assert session.feed(b"a2 IDLE\r\n") == b"+ idling\r\n"
    assert session.feed(b"done\r\na3 NOOP\r\n") == (
        b"a2 OK IDLE terminated\r\na3 OK NOOP completed\r\n"
    )


def test_idle_and_done_pipelined_in_one_read() -> None:
    session = Session()
    session.login()
    assert session.feed(b"a2 IDLE\r\nDONE\r\na3 NOOP\r\n") == (
        b"+ idling\r\na2 OK IDLE terminated\r\na3 OK NOOP completed\r\n"
    )


def test_authenticate_and_its_response_pipelined_in_one_read() -> None:
    session = Session()
    session.conn.data_to_send()
    written = session.feed(
        b"a1 AUTHENTICATE PLAIN\r\n" + PLAIN.encode() + b"\r\na2 SELECT INBOX\r\n"
    )
    assert written == b"+ \r\na1 OK AUTHENTICATE completed\r\na2 OK SELECT completed\r\n"


def test_idle_ended_by_something_else(session: Session) -> None:
    session.login()
    session.converse("""
        C: a2 IDLE
        S: + idling
        C: a3 LOGOUT
        S: a2 BAD expected DONE
    """)
    assert IdleDone(False) in session.events
    # the line that ended IDLE is not carried out as a command
    assert [command.tag for command in session.commands] == ["L1", "a2"]
    assert session.conn.state is ImapState.AUTHENTICATED


def test_starttls_discards_what_was_pipelined_behind_it() -> None:
    # RFC 9051 §6.2.1: plaintext sent before the TLS handshake is not kept.
    session = Session()
    session.converse("""
        S: * OK [CAPABILITY IMAP4rev2] postoffice ready
        C: a1 STARTTLS
        C: a2 LOGIN alice secret
        C: a3 SELECT INBOX
        S: a1 OK Begin TLS negotiation now
    """)
    assert [command.tag for command in session.commands] == ["a1"]
    assert session.conn.buffered_octets == 0
    session.converse("""
        C: b1 CAPABILITY
        S: b1 OK CAPABILITY completed
    """)
    assert session.conn.state is ImapState.NOT_AUTHENTICATED


def test_starttls_discards_a_half_command() -> None:
    session = Session(hold=frozenset({"STARTTLS"}))
    session.conn.data_to_send()
    session.feed(b"a1 STARTTLS\r\na2 LOGIN {5}\r\n" + b"x" * 10_000)
    session.finish("OK", "Begin TLS negotiation now")
    session.pump()
    assert session.conn.data_to_send() == b"a1 OK Begin TLS negotiation now\r\n"
    assert session.feed(b"b1 NOOP\r\n") == b"b1 OK NOOP completed\r\n"


def test_starttls_refused_keeps_the_pipeline() -> None:
    session = Session(hold=frozenset({"STARTTLS"}))
    session.conn.data_to_send()
    session.feed(b"a1 STARTTLS\r\na2 NOOP\r\n")
    session.finish("NO", "TLS not available")
    session.pump()
    assert session.conn.data_to_send() == b"a1 NO TLS not available\r\na2 OK NOOP completed\r\n"


# --- framing through the connection ----------------------------------------------------


def test_pipelined_commands_in_one_read(session: Session) -> None:
    session.converse("""
        S: * OK [CAPABILITY IMAP4rev2] postoffice ready
        C: a1 CAPABILITY
        C: a2 NOOP
        C: a3 LOGIN alice secret
        C: a4 SELECT INBOX
        C: a5 FETCH 1:* FAST
        S: a1 OK CAPABILITY completed
        S: a2 OK NOOP completed
        S: a3 OK LOGIN completed
        S: a4 OK SELECT completed
        S: a5 OK FETCH completed
    """)


def test_pipelined_commands_wait_for_the_one_being_carried_out() -> None:
    session = Session(hold=frozenset({"NOOP"}))
    session.conn.data_to_send()
    assert session.feed(b"a1 NOOP\r\na2 CAPABILITY\r\n") == b""
    assert [command.tag for command in session.commands] == ["a1"]
    assert session.conn.next_event() == NeedData()  # a2 waits
    session.finish("OK", "NOOP completed")
    session.pump()
    assert session.conn.data_to_send() == b"a1 OK NOOP completed\r\na2 OK CAPABILITY completed\r\n"


def test_a_command_split_over_many_reads() -> None:
    session = Session()
    session.conn.data_to_send()
    for piece in (b"a1 LO", b"GIN al", b"ice sec", b"ret\r", b"\n"):
        written = session.feed(piece)
    assert written == b"a1 OK LOGIN completed\r\n"


def test_literal_holding_crlf_and_a_command_is_not_a_command(session: Session) -> None:
    session.login()
    session.converse("""
        C: a2 APPEND INBOX {25}
        S: + Ready for literal data
        C: Subject: x
        C:
        C: a3 LOGOUT
        C:
        S: a2 OK APPEND completed
    """)
    assert session.commands[-1] == Append(
        "a2", "INBOX", (AppendMessage((), None, b"Subject: x\r\n\r\na3 LOGOUT\r\n", False),)
    )
    assert session.conn.state is ImapState.AUTHENTICATED


def test_multiappend_with_flags_and_date_times(session: Session) -> None:
    # RFC 3502 §6
    session.login()
    session.converse("""
        C: A003 APPEND saved-messages (\\Seen) {5}
        S: + Ready for literal data
        C: one
        C:  (\\Seen $Forwarded) " 1-Jul-2002 22:30:15 -0700" {5}
        S: + Ready for literal data
        C: two
        C:  ~{7}
        S: + Ready for literal data
        C: three
        C:
        S: A003 OK APPEND completed
    """)
    command = session.commands[-1]
    assert isinstance(command, Append)
    assert [message.data for message in command.messages] == [b"one\r\n", b"two\r\n", b"three\r\n"]
    assert [message.flags for message in command.messages] == [
        ("\\Seen",),
        ("\\Seen", "$Forwarded"),
        (),
    ]
    assert command.messages[1].internal_date is not None
    assert command.messages[2].binary is True


def test_literal8_may_hold_nul() -> None:
    # RFC 3516 §4.3: APPEND with literal8
    session = Session()
    session.login()
    assert session.feed(b"a2 APPEND Drafts ~{4}\r\n") == b"+ Ready for literal data\r\n"
    assert session.feed(b"\x00\x01\r\n\r\n") == b"a2 OK APPEND completed\r\n"
    command = session.commands[-1]
    assert isinstance(command, Append)
    assert command.messages[0] == AppendMessage((), None, b"\x00\x01\r\n", True)
