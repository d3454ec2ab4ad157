"""Garbage in: only responses and events out, never an exception, buffers bounded."""

from __future__ import annotations

import base64

from hypothesis import given, settings
from hypothesis import strategies as st

from postoffice.protocol.pop3 import Pop3State
from tests.protocol.test_pop3_harness import RFC_TIMESTAMP, FakeDriver, Pop3Harness
from tests.protocol.test_pop3_harness import settings as server_settings

WORDS = [
    b"USER alice",
    b"PASS secret",
    b"PASS wrong",
    b"USER j\xc3\xb6rg",
    b"APOP mrose c4c9334bac560ecc979e58001b3e22fb",
    b"AUTH PLAIN",
    b"AUTH LOGIN",
    b"AUTH PLAIN " + base64.b64encode(b"\x00alice\x00secret"),
    base64.b64encode(b"\x00alice\x00secret"),
    b"*",
    b"=",
    b"AUTH",
    b"STLS",
    b"CAPA",
    b"UTF8",
    b"STAT",
    b"LIST",
    b"LIST 2",
    b"UIDL 9",
    b"RETR 1",
    b"RETR 2",
    b"TOP 1 0",
    b"TOP 3 2",
    b"DELE 1",
    b"RSET",
    b"LAST",
    b"NOOP",
    b"QUIT",
    b".",
    b"",
    b"\x00\xff",
    b"X" * 2000,
]
LINE_ENDS = [b"\r\n", b"\n", b"\r", b""]


@settings(max_examples=300, deadline=None)
@given(
    script=st.lists(
        st.tuples(st.sampled_from(WORDS), st.sampled_from(LINE_ENDS)), min_size=1, max_size=30
    ),
    cuts=st.lists(st.integers(min_value=1, max_value=64), max_size=10),
    chunk_size=st.sampled_from([None, 1, 5]),
    whole=st.booleans(),
    tls=st.booleans(),
)
def test_any_input_yields_responses_and_bounded_buffers(
    script: list[tuple[bytes, bytes]],
    cuts: list[int],
    chunk_size: int | None,
    whole: bool,
    tls: bool,
) -> None:
    harness = Pop3Harness(
        server_settings(
            tls_available=True, is_tls=tls, plaintext_auth=False, apop_timestamp=RFC_TIMESTAMP
        ),
        driver=FakeDriver(chunk_size=chunk_size, whole=whole),
    )
    data = b"".join(word + end for word, end in script)
    position = 0
    for size in [*cuts, len(data)]:
        piece, position = data[position : position + size], position + size
        if not piece:
            continue
        out = harness.feed(piece)
        assert out == b"" or out.endswith(b"\r\n")
        conn = harness.conn
        assert conn.closed or conn.buffered_octets < conn.settings.max_line_length
        if conn.closed:
            assert conn.state is Pop3State.UPDATE
            break
