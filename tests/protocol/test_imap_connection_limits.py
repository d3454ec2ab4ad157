"""``ImapServerConnection`` limits, refusals, the end of a session, the driver's contract and
hostile octets, through the transcript harness of ``test_imap_connection``."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postoffice.protocol.errors import ProtocolUsageError
from postoffice.protocol.imap.commands import (
    NoArguments,
    Select,
)
from postoffice.protocol.imap.connection import (
    Closed,
    CommandReceived,
    ImapSettings,
)
from postoffice.protocol.imap.states import ImapState
from tests.protocol.imap_transcripts import MODES, PLAIN, Session

# --- limits ------------------------------------------------------------------------------


def test_literal_limit_before_login(session: Session) -> None:
    limit = session.conn.settings.literal_limit_before_login
    session.converse(f"""
        S: * OK [CAPABILITY IMAP4rev2] postoffice ready
        C: a1 LOGIN {{{limit + 1}}}
        S: a1 BAD literal too big
        C: a2 LOGIN {{{limit}}}
        S: + Ready for literal data
    """)
    assert session.conn.bad_commands == 1


def test_literal_limit_after_login(session: Session) -> None:
    limit = session.conn.settings.literal_limit
    session.login()
    session.converse(f"""
        C: a2 SELECT INBOX
        S: a2 OK SELECT completed
        C: a3 SEARCH CHARSET UTF-8 TEXT {{{limit + 1}}}
        S: a3 BAD literal too big
        C: a4 SEARCH CHARSET UTF-8 TEXT {{{limit}}}
        S: + Ready for literal data
    """)


def test_append_is_held_to_the_append_limit_not_the_literal_limit() -> None:
    settings = ImapSettings(literal_limit=100, append_limit=1000)
    session = Session(settings)
    session.login()
    filler = "x" * 998
    session.converse(f"""
        C: a2 APPEND INBOX {{1000}}
        S: + Ready for literal data
        C: {filler}
        C:
        S: a2 OK APPEND completed
        C: a3 APPEND INBOX (\\Seen) {{1001}}
        S: a3 NO [TOOBIG] message too big
        C: a4 NOOP
        S: a4 OK NOOP completed
    """)
    assert session.conn.bad_commands == 0  # RFC 7889 §4: NO, not BAD


def test_too_big_second_message_of_a_multiappend() -> None:
    session = Session(ImapSettings(append_limit=10))
    session.login()
    session.converse("""
        C: a2 APPEND INBOX {3}
        S: + Ready for literal data
        C: abc {11}
        S: a2 NO [TOOBIG] message too big
        C: a3 NOOP
        S: a3 OK NOOP completed
    """)
    assert [command.tag for command in session.commands] == ["L1", "a3"]


def test_append_before_login_is_refused_without_continuation(session: Session) -> None:
    session.converse("""
        S: * OK [CAPABILITY IMAP4rev2] postoffice ready
        C: a1 APPEND INBOX {10}
        S: a1 BAD command not valid before login
    """)


def test_non_synchronising_literal_over_the_limit_ends_the_session(session: Session) -> None:
    # RFC 7888 §4: its octets are already on the way; the session cannot go on.
    session.converse("""
        S: * OK [CAPABILITY IMAP4rev2] postoffice ready
        C: a1 LOGIN {100000+}
        S: a1 BAD literal too big
        S: * BYE literal refused; closing
    """)
    assert session.closed
    assert session.conn.state is ImapState.LOGOUT
    assert session.feed(b"a2 NOOP\r\n") == b""


def test_non_synchronising_append_over_the_append_limit_ends_the_session() -> None:
    session = Session(ImapSettings(append_limit=10))
    session.login()
    assert session.feed(b"a2 APPEND INBOX {11+}\r\n") == (
        b"a2 NO [TOOBIG] message too big\r\n* BYE literal refused; closing\r\n"
    )
    assert session.closed


def test_too_long_line_with_a_tag_then_the_session_goes_on(session: Session) -> None:
    limit = session.conn.settings.line_limit_before_login
    session.converse(f"""
        S: * OK [CAPABILITY IMAP4rev2] postoffice ready
        C: a1 LOGIN alice {"x" * limit}
        S: a1 BAD line too long
        C: a2 NOOP
        S: a2 OK NOOP completed
    """)
    assert session.conn.bad_commands == 1


def test_rest_of_a_too_long_line_is_dropped_across_reads() -> None:
    session = Session()
    limit = session.conn.settings.line_limit_before_login
    session.conn.data_to_send()
    assert session.feed(b"a1 NOOP " + b"x" * limit) == b"a1 BAD line too long\r\n"
    for _ in range(10):  # a client that goes on and on: nothing kept, nothing said
        assert session.feed(b"a9 LOGOUT\r" + b"y" * limit) == b""
        assert session.conn.buffered_octets == 0
    assert session.feed(b"end of it\r\na2 NOOP\r\n") == b"a2 OK NOOP completed\r\n"
    assert [command.tag for command in session.commands] == ["a2"]


def test_too_long_line_without_a_visible_tag(session: Session) -> None:
    limit = session.conn.settings.line_limit_before_login
    session.converse(f"""
        S: * OK [CAPABILITY IMAP4rev2] postoffice ready
        C: {"x" * limit}
        S: * BAD line too long
    """)


def test_line_limit_grows_after_login() -> None:
    settings = ImapSettings()
    long_search = b"a2 SEARCH TEXT " + b"x" * (settings.line_limit_before_login + 10) + b"\r\n"
    before = Session(settings)
    before.conn.data_to_send()
    assert before.feed(long_search) == b"a2 BAD line too long\r\n"
    after = Session(settings)
    after.login()
    after.feed(b"s SELECT INBOX\r\n")
    assert after.feed(long_search) == b"a2 OK SEARCH completed\r\n"
    preauth = Session(settings, preauth=True)
    preauth.conn.data_to_send()
    preauth.feed(b"s SELECT INBOX\r\n")
    assert preauth.feed(long_search) == b"a2 OK SEARCH completed\r\n"


@pytest.mark.parametrize("mode", MODES)
def test_bad_commands_before_login_end_the_session(mode: str) -> None:
    session = Session(mode=mode)
    session.converse("""
        S: * OK [CAPABILITY IMAP4rev2] postoffice ready
        C: a1 XPIG-LATIN
        S: a1 BAD unknown command XPIG-LATIN
        C: a2 SELECT INBOX
        S: a2 BAD command not valid before login
        C: a3 NOOP extra
        S: a3 BAD unexpected text at the end of the command
        S: * BYE too many invalid commands
    """)
    assert session.closed
    assert session.conn.bad_commands == 3
    assert session.conn.state is ImapState.LOGOUT


def test_bad_commands_after_login_are_counted_to_twenty() -> None:
    session = Session()
    session.login()
    limit = session.conn.settings.max_bad_after_login
    assert limit == 20
    for n in range(1, limit):
        assert session.feed(b"b%d FOO\r\n" % n) == b"b%d BAD unknown command FOO\r\n" % n
    assert not session.closed
    assert session.feed(b"last FOO\r\na9 NOOP\r\n") == (
        b"last BAD unknown command FOO\r\n* BYE too many invalid commands\r\n"
    )
    assert session.closed


def test_bad_command_limits_come_from_the_settings() -> None:
    session = Session(ImapSettings(max_bad_before_login=1))
    session.conn.data_to_send()
    assert session.feed(b"a1 FETCH 1 FLAGS\r\n") == (
        b"a1 BAD command not valid before login\r\n* BYE too many invalid commands\r\n"
    )
    session = Session(ImapSettings(max_bad_after_login=2))
    session.login()
    assert session.feed(b"a2 FETCH 1 FLAGS\r\n") == b"a2 BAD no mailbox selected\r\n"
    assert session.feed(b"a3 LOGIN a b\r\n") == (
        b"a3 BAD already authenticated\r\n* BYE too many invalid commands\r\n"
    )


def test_driver_bad_answers_count_too() -> None:
    session = Session(ImapSettings(max_bad_after_login=2), hold=frozenset({"NOOP"}))
    session.login()
    written = b""
    for n in range(2):
        written += session.feed(b"n%d NOOP\r\n" % n)
        session.finish("BAD", "nope")
        session.pump()
    written += session.conn.data_to_send()
    assert written == b"n0 BAD nope\r\nn1 BAD nope\r\n* BYE too many invalid commands\r\n"
    assert session.closed


def test_overlong_lines_count_as_bad_commands() -> None:
    session = Session()
    limit = session.conn.settings.line_limit_before_login
    session.conn.data_to_send()
    written = session.feed((b"a NOOP " + b"x" * limit + b"\r\n") * 3)
    assert written == b"a BAD line too long\r\n" * 3 + b"* BYE too many invalid commands\r\n"


# --- states and refusals -----------------------------------------------------------------


def test_commands_in_the_wrong_state_are_bad(session: Session) -> None:
    session.converse("""
        S: * OK [CAPABILITY IMAP4rev2] postoffice ready
        C: a1 LOGIN alice secret
        S: a1 OK LOGIN completed
        C: a2 FETCH 1 FLAGS
        S: a2 BAD no mailbox selected
        C: a3 SELECT INBOX
        S: a3 OK SELECT completed
        C: a4 ENABLE UTF8=ACCEPT
        S: a4 BAD ENABLE is only valid before a mailbox is selected
        C: a5 UID FETCH 1:* (UID FLAGS)
        S: a5 OK FETCH completed
        C: a6 CLOSE
        S: a6 OK CLOSE completed
        C: a7 EXPUNGE
        S: a7 BAD no mailbox selected
    """)
    assert session.conn.state is ImapState.AUTHENTICATED


def test_failed_select_leaves_no_mailbox_selected(session: Session) -> None:
    # RFC 9051 §6.3.2
    session.login()
    session.converse("""
        C: a2 SELECT INBOX
        S: a2 OK SELECT completed
        C: a3 SELECT nosuch
        S: a3 NO [NONEXISTENT] no such mailbox
        C: a4 FETCH 1 FLAGS
        S: a4 BAD no mailbox selected
    """)


def test_syntax_errors_and_missing_tags(session: Session) -> None:
    session.converse("""
        S: * OK [CAPABILITY IMAP4rev2] postoffice ready
        C: +
        S: * BAD missing or invalid tag
        C: a1 LOGIN
        S: a1 BAD expected a space
    """)


def test_literal_without_a_tag_is_refused_without_continuation(session: Session) -> None:
    session.converse("""
        S: * OK [CAPABILITY IMAP4rev2] postoffice ready
        C: {5}
        S: * BAD missing or invalid tag
    """)


def test_unsupported_search_charset_is_no_and_not_counted(session: Session) -> None:
    # RFC 9051 §6.4.4
    session.login()
    session.converse("""
        C: a2 SELECT INBOX
        S: a2 OK SELECT completed
        C: A286 SEARCH CHARSET KOI8-R TEXT hello
        S: A286 NO [BADCHARSET (US-ASCII UTF-8)] charset KOI8-R is not supported
    """)
    assert session.conn.bad_commands == 0


def test_utf8_names_once_enabled() -> None:
    session = Session()
    session.login()
    session.feed(b"a2 ENABLE UTF8=ACCEPT\r\n")
    session.conn.enable_utf8()
    assert session.conn.utf8 is True
    assert session.feed('a3 SELECT "Grüße"\r\n'.encode()) == b"a3 OK SELECT completed\r\n"
    assert session.commands[-1] == Select("a3", "Grüße", False)


def test_preauth_greeting() -> None:
    session = Session(preauth=True)
    session.converse("""
        S: * PREAUTH postoffice ready
        C: a1 SELECT INBOX
        S: a1 OK SELECT completed
        C: a2 LOGIN alice secret
        S: a2 BAD already authenticated
    """)


# --- end of the session ------------------------------------------------------------------


def test_eof_closes(session: Session) -> None:
    session.converse("""
        S: * OK [CAPABILITY IMAP4rev2] postoffice ready
        C: a1 NOOP
        S: a1 OK NOOP completed
    """)
    assert session.feed(b"") == b""
    assert session.closed
    assert session.conn.closed
    assert session.conn.state is ImapState.LOGOUT


@pytest.mark.parametrize(
    "before_eof",
    [
        b"a1 NOO",  # half a command
        b"a1 LOGIN {5}\r\nali",  # half a literal
        b"a1 AUTHENTICATE PLAIN\r\nAGFs",  # inside an AUTHENTICATE exchange
    ],
)
def test_eof_in_the_middle_closes(before_eof: bytes) -> None:
    session = Session()
    session.feed(before_eof)
    session.feed(b"")
    assert session.closed
    assert session.conn.next_event() == Closed()


def test_eof_while_idling_closes() -> None:
    session = Session()
    session.login()
    session.feed(b"a2 IDLE\r\n")
    session.feed(b"")
    assert session.closed


def test_eof_while_a_command_is_carried_out() -> None:
    session = Session(hold=frozenset({"NOOP"}))
    session.feed(b"a1 NOOP\r\n")
    session.feed(b"")
    assert session.closed
    session.finish("OK", "NOOP completed")  # the driver may still finish it
    assert session.conn.next_event() == Closed()


def test_server_says_bye() -> None:
    session = Session()
    session.conn.data_to_send()
    session.conn.bye("server shutting down", "UNAVAILABLE")
    assert session.conn.next_event() == Closed()
    assert session.conn.data_to_send() == b"* BYE [UNAVAILABLE] server shutting down\r\n"
    assert session.conn.state is ImapState.LOGOUT
    session.conn.send(b"* 1 EXISTS\r\n")
    session.conn.bye("again")
    assert session.conn.data_to_send() == b""  # nothing after the BYE


def test_too_long_sasl_line_ends_the_session() -> None:
    session = Session()
    session.conn.data_to_send()
    assert session.feed(b"a1 AUTHENTICATE PLAIN\r\n") == b"+ \r\n"
    limit = session.conn.settings.line_limit_before_login
    assert session.feed(b"A" * (limit + 1)) == b"* BYE line too long\r\n"
    assert session.closed


def test_too_long_idle_line_ends_the_session() -> None:
    session = Session()
    session.login()
    session.feed(b"a2 IDLE\r\n")
    limit = session.conn.settings.line_limit_after_login
    assert session.feed(b"D" * (limit + 1)) == b"* BYE line too long\r\n"
    assert session.closed


# --- the driver's contract -----------------------------------------------------------------


def test_driver_misuse_raises() -> None:
    session = Session(hold=frozenset({"NOOP"}))
    with pytest.raises(ProtocolUsageError):
        session.conn.challenge(b"x")
    with pytest.raises(ProtocolUsageError):
        session.conn.start_idle()
    with pytest.raises(ProtocolUsageError):
        session.conn.finish(NoArguments("zz", "NOOP"), "OK", "never asked")
    session.feed(b"a1 NOOP\r\n")
    command = session.commands[-1]
    session.conn.finish(command, "OK", "done")
    with pytest.raises(ProtocolUsageError):
        session.conn.finish(command, "OK", "twice")


def test_send_and_buffered_output() -> None:
    session = Session()
    session.conn.data_to_send()
    session.conn.send(b"* 1 EXISTS\r\n")
    assert session.conn.buffered_output == len(b"* 1 EXISTS\r\n")
    assert session.conn.data_to_send() == b"* 1 EXISTS\r\n"
    assert session.conn.buffered_output == 0


def test_command_received_names_the_state_table_word() -> None:
    session = Session(hold=frozenset({"FETCH", "MOVE", "EXPUNGE"}))
    session.login()
    session.feed(b"s SELECT INBOX\r\n")
    for wire, word in [
        (b"a UID FETCH 1 UID\r\n", "FETCH"),
        (b"b UID MOVE 1 Trash\r\n", "MOVE"),
        (b"c UID EXPUNGE 1\r\n", "EXPUNGE"),
    ]:
        session.feed(wire)
        received = [event for event in session.events if isinstance(event, CommandReceived)]
        assert received[-1].word == word
        session.finish("OK", "done")
        session.pump()


# --- hostile octets ----------------------------------------------------------------------


def test_eight_bit_tag_on_a_too_long_line_is_answered_not_raised() -> None:
    session = Session()
    session.conn.data_to_send()
    limit = session.conn.settings.line_limit_before_login
    assert session.feed(b"\xff\xfe NOOP " + b"x" * limit + b"\r\n") == b"* BAD line too long\r\n"
    assert session.feed(b"a2 NOOP\r\n") == b"a2 OK NOOP completed\r\n"


def test_eight_bit_tag_before_a_literal_is_answered_not_raised() -> None:
    session = Session()
    session.conn.data_to_send()
    assert session.feed(b"\xe9 LOGIN {5}\r\n") == b"* BAD missing or invalid tag\r\n"
    assert session.feed(b"a2 NOOP\r\n") == b"a2 OK NOOP completed\r\n"


RESPONSE = re.compile(rb"(\S+ (OK|NO|BAD) |\* (BAD|BYE|OK|PREAUTH) |\+ )")
FRAGMENTS = [
    b"a1 ",
    b"A2 ",
    b"\xff\xfe ",
    b"\xe9 ",
    b"* ",
    b"+ ",
    b"NOOP",
    b"LOGIN alice secret",
    b"LOGIN ",
    b"AUTHENTICATE PLAIN",
    b"AUTHENTICATE PLAIN " + PLAIN.encode(),
    b"SELECT INBOX",
    b"FETCH 1:* (FLAGS BODY.PEEK[HEADER])",
    b"SEARCH CHARSET UTF-8 TEXT ",
    b"APPEND INBOX ",
    b"UID ",
    b"IDLE",
    b"DONE",
    b"STARTTLS",
    b"LOGOUT",
    b"(",
    b")",
    b'"',
    b"\\",
    b"{5}",
    b"{5+}",
    b"~{3}",
    b"{99999999}",
    b"{9999999999+}",
    b"{",
    b"\x00",
    b"\xc3\xa9",
    b"x" * 3000,
    b"y" * 9000,
    b"\r\n",
    b"\n",
    b"\r",
    b" ",
]


@settings(max_examples=300, deadline=None)
@given(
    script=st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=40),
    noise=st.binary(max_size=64),
    cuts=st.lists(st.integers(min_value=1, max_value=700), max_size=12),
    logged_in=st.booleans(),
)
def test_hostile_octets_only_get_protocol_answers(
    script: list[bytes], noise: bytes, cuts: list[int], logged_in: bool
) -> None:
    session = Session(answer="NO")  # the driver refuses all: only the layer says OK
    if logged_in:
        session.answer = "OK"
        session.login()
        session.answer = "NO"
    session.conn.data_to_send()
    data = b"".join(script) + noise
    written = b""
    position = 0
    for size in [*cuts, len(data)]:
        piece, position = data[position : position + size], position + size
        if piece:
            written += session.feed(piece)
        if session.closed:
            break
    written += session.feed(b"")
    assert session.closed
    assert written.endswith(b"\r\n") or written == b""
    for line in written.split(b"\r\n")[:-1]:
        assert RESPONSE.match(line), line
        assert not re.match(rb"\S+ OK ", line), line  # every command was refused
