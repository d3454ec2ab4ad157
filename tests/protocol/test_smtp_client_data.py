"""SMTP client content: CRLF line ends and dot-stuffing for DATA, counted chunks for BDAT.

The content encoders must give the same octets however the message is cut
into chunks (between CR and LF, right before a dot, one octet at a time).
"""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postoffice.protocol.smtp import client_events as ev
from postoffice.protocol.smtp.client import ClientSettings, ClientState, ClientStateError
from postoffice.protocol.smtp.client_content import DotStuffer, LineEndNormalizer
from tests.protocol.smtp_client_harness import (
    HELO,
    MODES,
    ClientHarness,
    ehlo_with,
    greeted,
    transaction,
)

DATA_SERVER = ehlo_with("PIPELINING", "8BITMIME")
BDAT_SERVER = ehlo_with("PIPELINING", "8BITMIME", "BINARYMIME", "CHUNKING")


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def reference_data(message: bytes) -> bytes:
    """What DATA must carry, computed on the whole message at once."""
    lines = re.sub(rb"\r\n|\r|\n", b"\r\n", message)
    if lines and not lines.endswith(b"\r\n"):
        lines += b"\r\n"
    stuffed = re.sub(rb"(?m)^\.", b"..", lines.replace(b"\r\n", b"\n")).replace(b"\n", b"\r\n")
    return stuffed + b".\r\n"


def split_at(message: bytes, cuts: list[int]) -> list[bytes]:
    bounds = sorted({0, len(message), *(c for c in cuts if c <= len(message))})
    return [message[a:b] for a, b in itertools.pairwise(bounds)]


def encode(chunks: list[bytes]) -> bytes:
    stuffer = DotStuffer()
    return b"".join(stuffer.feed(c) for c in chunks) + stuffer.finish()


def in_data_state(mode: str = "whole") -> ClientHarness:
    h = greeted(DATA_SERVER, mode=mode)
    h.conn.begin(transaction())
    h.take_written()
    h.feed(b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n")
    assert h.take_events() == ["RecipientResult 0 250 2.1.5", "SendMessage 354"]
    return h


def sent_by_data(chunks: list[bytes]) -> bytes:
    h = in_data_state()
    for chunk in chunks:
        h.conn.send_message_data(chunk)
    h.conn.end_message()
    return h.take_written()


# -------------------------------------------------------------------- DATA


@pytest.mark.parametrize(
    ("chunks", "wire"),
    [
        ([b"a\r\nb\r\n"], b"a\r\nb\r\n.\r\n"),
        ([b"bare\nLF\n"], b"bare\r\nLF\r\n.\r\n"),
        ([b"bare\rCR\r"], b"bare\r\nCR\r\n.\r\n"),
        ([b"mixed\r\r\n\n\r"], b"mixed\r\n\r\n\r\n\r\n.\r\n"),
        ([b"a\r", b"\nb\r\n"], b"a\r\nb\r\n.\r\n"),  # CR at a chunk's end, LF in the next
        ([b"a\r", b"b\r\n"], b"a\r\nb\r\n.\r\n"),  # CR at a chunk's end, no LF: bare CR
        ([b"a\r", b"\r", b"\n"], b"a\r\n\r\n.\r\n"),
        ([b".leading dot\r\n"], b"..leading dot\r\n.\r\n"),
        ([b"a\r\n.\r\n"], b"a\r\n..\r\n.\r\n"),  # a lone dot line is not the end
        ([b"a\r\n", b".b\r\n"], b"a\r\n..b\r\n.\r\n"),  # dot at the start of a chunk
        ([b"a\r\n.", b"b\r\n"], b"a\r\n..b\r\n.\r\n"),  # dot at the end of a chunk
        ([b"a\r", b"\n.b\r\n"], b"a\r\n..b\r\n.\r\n"),
        ([b"a\r", b".b\r\n"], b"a\r\n..b\r\n.\r\n"),  # bare CR, then a dot line
        ([b"a\n.b\n"], b"a\r\n..b\r\n.\r\n"),  # a dot after a bare LF is at a line start
        ([b"a\r.b"], b"a\r\n..b\r\n.\r\n"),  # a dot after a bare CR too
        ([b"a.b\r\nc. d\r\n"], b"a.b\r\nc. d\r\n.\r\n"),  # dots inside lines stay single
        ([b"...\r\n"], b"....\r\n.\r\n"),
        ([b"no final newline"], b"no final newline\r\n.\r\n"),
        ([b"no final", b" newline"], b"no final newline\r\n.\r\n"),
        ([b"ends in CR\r"], b"ends in CR\r\n.\r\n"),
        ([], b".\r\n"),  # the empty message
        ([b""], b".\r\n"),
        ([b"", b"x", b""], b"x\r\n.\r\n"),
        ([b"\r\n"], b"\r\n.\r\n"),
        ([b"."], b"..\r\n.\r\n"),
    ],
)
def test_data_encoding(chunks: list[bytes], wire: bytes) -> None:
    assert sent_by_data(chunks) == wire
    assert wire == reference_data(b"".join(chunks))


def test_data_encoding_one_octet_at_a_time() -> None:
    message = b"From: a\n.\r\n..x\r.y\r\n\rz\n"
    octets = [message[i : i + 1] for i in range(len(message))]
    assert sent_by_data(octets) == reference_data(message)


@settings(max_examples=200, deadline=None)
@given(
    message=st.binary(max_size=60).map(lambda b: b.replace(b"\x00", b".")),
    cuts=st.lists(st.integers(min_value=0, max_value=60), max_size=8),
)
def test_data_encoding_does_not_depend_on_the_chunking(message: bytes, cuts: list[int]) -> None:
    out = encode(split_at(message, cuts))
    assert out == reference_data(message)
    assert b"\r\n.\r\n" not in b"\r\n" + out[:-3]  # only the last line is the end marker
    assert re.fullmatch(rb"(?:[^\r\n]*\r\n)*", out)  # every line ends in CRLF


def test_the_message_goes_out_as_it_is_fed(mode: str) -> None:
    h = in_data_state(mode)
    h.conn.send_message_data(b"Subject: x\n")
    h.converse("C: Subject: x")
    h.conn.send_message_data(b"\nbody\r")  # the CR is held: an LF may follow
    assert h.take_written() == b"\r\nbody"
    h.conn.send_message_data(b"")
    h.conn.end_message()
    h.converse("""
        C:
        C: .
        S: 250 2.0.0 Ok: queued as Q1
        E: MessageAccepted 250 2.0.0
        E: Ready
    """)
    with pytest.raises(ClientStateError):
        h.conn.send_message_data(b"more")


def test_a_reply_during_the_content_is_a_violation(mode: str) -> None:
    h = in_data_state(mode)
    h.conn.send_message_data(b"half a message\r\n")
    h.converse("""
        C: half a message
        S: 552 5.3.4 too big
        E: ProtocolViolation
    """)


def test_a_421_during_the_content(mode: str) -> None:
    h = in_data_state(mode)
    h.converse("""
        S: 421 4.4.2 timeout
        E: ServiceClosing 421 4.4.2
    """)
    with pytest.raises(ClientStateError):
        h.conn.end_message()


def test_eof_before_the_final_reply(mode: str) -> None:
    h = in_data_state(mode)
    h.conn.end_message()
    h.converse("""
        C: .
        S: <EOF>
        E: ConnectionClosed unexpected
    """)


# -------------------------------------------------------------------- BDAT


def in_bdat_state(mode: str = "whole", mail: str = "", **changes: object) -> ClientHarness:
    h = greeted(BDAT_SERVER, mode=mode)
    h.conn.begin(transaction("bob@b.test", "nobody@b.test", **changes))
    h.converse(f"""
        C: MAIL FROM:<alice@a.test>{mail}
        C: RCPT TO:<bob@b.test>
        C: RCPT TO:<nobody@b.test>
        S: 250 2.1.0 Ok
        S: 250 2.1.5 Ok
        S: 550 5.1.1 No such user here
        E: RecipientResult 0 250 2.1.5
        E: RecipientResult 1 550 5.1.1
        E: SendMessage -
    """)
    assert h.conn.state is ClientState.MESSAGE
    return h


def test_bdat_chunks_are_counted_not_stuffed(mode: str) -> None:
    h = in_bdat_state(mode)
    h.conn.send_message_data(b"Subject: x\n\n")
    h.conn.send_message_data(b".dot\r")  # the CR waits for the next chunk
    h.conn.send_message_data(b"")  # nothing at all
    h.conn.send_message_data(b"\nend")
    h.conn.end_message()
    assert h.take_written() == (
        b"BDAT 14\r\nSubject: x\r\n\r\nBDAT 4\r\n.dotBDAT 5\r\n\r\nendBDAT 2 LAST\r\n\r\n"
    )
    h.converse("""
        S: 250 2.0.0 14 octets received
        S: 250 2.0.0 4 octets received
        S: 250 2.0.0 5 octets received
        S: 250 2.0.0 Ok: queued as Q1
        E: MessageAccepted 250 2.0.0
        E: Ready
    """)


def test_bdat_empty_message_and_a_message_ending_in_crlf(mode: str) -> None:
    h = in_bdat_state(mode)
    h.conn.end_message()
    h.converse("""
        C: BDAT 0 LAST
        S: 250 2.0.0 Ok: queued as Q1
        E: MessageAccepted 250 2.0.0
        E: Ready
    """)
    h = in_bdat_state(mode)
    h.conn.send_message_data(b"line\r\n")
    h.conn.end_message()
    assert h.take_written() == b"BDAT 6\r\nline\r\nBDAT 0 LAST\r\n"


def test_bdat_refused_chunk_swallows_the_pipelined_rest(mode: str) -> None:
    h = in_bdat_state(mode)
    h.conn.send_message_data(b"first\r\n")
    h.conn.send_message_data(b"second\r\n")
    h.conn.end_message()
    assert h.take_written() == b"BDAT 7\r\nfirst\r\nBDAT 8\r\nsecond\r\nBDAT 0 LAST\r\n"
    h.converse("""
        S: 552 5.3.4 Message size exceeds fixed maximum message size
        E: MessageRefused 552 5.3.4
        C: RSET
        S: 503 5.5.1 discarded
        S: 503 5.5.1 discarded
        S: 250 2.0.0 Ok
        E: Ready
    """)


def test_bdat_refusal_seen_while_the_driver_is_still_sending(mode: str) -> None:
    h = in_bdat_state(mode)
    h.conn.send_message_data(b"first\r\n")
    h.converse("""
        C: BDAT 7
        C: first
        S: 451 4.3.0 disk full
        E: MessageRefused 451 4.3.0
        C: RSET
    """)
    with pytest.raises(ClientStateError):
        h.conn.send_message_data(b"second\r\n")
    with pytest.raises(ClientStateError):
        h.conn.end_message()
    h.converse("""
        S: 250 2.0.0 Ok
        E: Ready
    """)


def test_bdat_last_refused(mode: str) -> None:
    h = in_bdat_state(mode)
    h.conn.send_message_data(b"x\r\n")
    h.conn.end_message()
    h.converse("""
        C: BDAT 3
        C: x
        C: BDAT 0 LAST
        S: 250 2.0.0 3 octets
        S: 554 5.7.1 rejected
        E: MessageRefused 554 5.7.1
        C: RSET
        S: 250 Ok
        E: Ready
    """)


def test_bdat_all_recipients_refused(mode: str) -> None:
    h = greeted(BDAT_SERVER, mode=mode)
    h.conn.begin(transaction())
    h.converse("""
        C: MAIL FROM:<alice@a.test>
        C: RCPT TO:<bob@b.test>
        S: 250 2.1.0 Ok
        S: 550 5.1.1 No such user here
        E: RecipientResult 0 550 5.1.1
        E: TransactionRefused rcpt 550 5.1.1
        C: RSET
        S: 250 Ok
        E: Ready
    """)


def test_binarymime_goes_out_exactly() -> None:
    h = in_bdat_state(mail=" BODY=BINARYMIME", body="BINARYMIME")
    h.conn.send_message_data(b"\x00\r\x01\n\xff")
    h.conn.end_message()
    assert h.take_written() == b"BDAT 5\r\n\x00\r\x01\n\xffBDAT 0 LAST\r\n"
    mail = [e for e in h.events if isinstance(e, ev.SendMessage)]
    assert mail == [ev.SendMessage(None)]


def test_binarymime_is_declared_only_with_bdat() -> None:
    h = greeted(BDAT_SERVER)
    h.conn.begin(transaction(body="BINARYMIME"))
    h.converse("""
        C: MAIL FROM:<alice@a.test> BODY=BINARYMIME
        C: RCPT TO:<bob@b.test>
    """)
    # Without BDAT nothing can declare it: the driver should have asked accepts_body().
    h = greeted(BDAT_SERVER, ClientSettings(helo_name=HELO, use_chunking=False))
    assert not h.conn.uses_chunking
    h.conn.begin(transaction(body="BINARYMIME"))
    h.converse("""
        C: MAIL FROM:<alice@a.test>
        C: RCPT TO:<bob@b.test>
        C: DATA
    """)


def test_chunking_needs_pipelining_too() -> None:
    h = greeted(ehlo_with("CHUNKING", "8BITMIME"))
    assert not h.conn.uses_chunking
    h.conn.begin(transaction())
    h.converse("""
        C: MAIL FROM:<alice@a.test>
        S: 250 Ok
        C: RCPT TO:<bob@b.test>
        S: 250 Ok
        E: RecipientResult 0 250
        C: DATA
    """)


def test_chunking_can_be_turned_off() -> None:
    h = greeted(BDAT_SERVER, ClientSettings(helo_name=HELO, use_chunking=False))
    h.conn.begin(transaction())
    h.converse("""
        C: MAIL FROM:<alice@a.test>
        C: RCPT TO:<bob@b.test>
        C: DATA
    """)


@settings(max_examples=100, deadline=None)
@given(
    message=st.binary(max_size=40),
    cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=6),
)
def test_bdat_normalisation_does_not_depend_on_the_chunking(
    message: bytes, cuts: list[int]
) -> None:
    lines = LineEndNormalizer()
    out = b"".join(lines.feed(chunk) for chunk in split_at(message, cuts))
    out += lines.finish()
    assert out == _normalised(message)


def _normalised(message: bytes) -> bytes:
    lines = re.sub(rb"\r\n|\r|\n", b"\r\n", message)
    return lines + b"\r\n" if lines and not lines.endswith(b"\r\n") else lines
