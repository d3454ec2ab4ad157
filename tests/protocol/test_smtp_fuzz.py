"""Garbage in: only replies and events out, never an exception, buffers bounded."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from postoffice.protocol.smtp import BareNewlinePolicy
from tests.protocol.smtp_harness import SmtpHarness
from tests.protocol.smtp_harness import settings as server_settings

REPLY_LINE = re.compile(rb"[2-5][0-9]{2}[ -][^\r\n]*")
WORDS = [
    b"EHLO c.test",
    b"HELO c.test",
    b"MAIL FROM:<a@b.test>",
    b"MAIL FROM:<>",
    b"RCPT TO:<bob@example.test>",
    b"RCPT TO:<x@other.test> NOTIFY=NEVER",
    b"DATA",
    b"BDAT 5",
    b"BDAT 0 LAST",
    b"BDAT 3 LAST",
    b"RSET",
    b"NOOP",
    b"VRFY x",
    b"EXPN x",
    b"HELP",
    b"STARTTLS",
    b"AUTH PLAIN",
    b"AUTH LOGIN",
    b"AGFsaWNlAHNlY3JldA==",
    b"*",
    b".",
    b"..",
    b"QUIT",
    b"",
    b"\x00\xff",
    b"x" * 700,
]
ENDS = [b"\r\n", b"\n", b"\r", b""]


def check_output(out: bytes) -> None:
    if not out:
        return
    assert out.endswith(b"\r\n")
    for line in out[:-2].split(b"\r\n"):
        assert REPLY_LINE.fullmatch(line), line
        assert len(line) <= 510


def run(harness: SmtpHarness, pieces: list[bytes]) -> None:
    limit = harness.conn.settings.max_line_length
    for piece in pieces:
        check_output(harness.feed(piece))
        assert harness.conn.buffered_octets <= limit + len(piece)
        if harness.conn.closed:
            break
    harness.conn.receive_data(b"")
    check_output(harness.run())
    assert harness.closed is not None


configurations = st.sampled_from(
    [
        server_settings(max_line_length=512),
        server_settings(
            max_line_length=512,
            auth_mechanisms=("PLAIN", "LOGIN"),
            is_tls=True,
            forbid_unauth_pipelining=False,
            bare_newline=BareNewlinePolicy.REJECT,
            max_message_size=64,
        ),
        server_settings(starttls_available=True, expn_enabled=True, forbid_unauth_pipelining=False),
    ]
)


@settings(max_examples=300, deadline=None)
@given(config=configurations, pieces=st.lists(st.binary(max_size=200), max_size=20))
def test_random_octets(config: object, pieces: list[bytes]) -> None:
    run(SmtpHarness(config), pieces)  # type: ignore[arg-type]


@settings(max_examples=400, deadline=None)
@given(
    config=configurations,
    lines=st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(ENDS)), max_size=30),
    group=st.integers(1, 5),
)
def test_random_command_sequences(
    config: object, lines: list[tuple[bytes, bytes]], group: int
) -> None:
    data = [word + end for word, end in lines]
    pieces = [b"".join(data[i : i + group]) for i in range(0, len(data), group)]
    run(SmtpHarness(config), pieces)  # type: ignore[arg-type]
