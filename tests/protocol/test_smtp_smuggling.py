"""SMTP smuggling (Longin 2023; CVE-2023-51764/51765/51766): only <CRLF>.<CRLF> ends DATA.

Each non-standard end-of-data variant is followed by a pipelined second
transaction. Whatever the split of the client's octets, the server completes
at most one message, the second "envelope" is message text, and the policy is
never asked about the smuggled sender or recipient.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postoffice.protocol.smtp import BareNewlinePolicy, MailFrom, RcptTo
from tests.protocol.smtp_harness import SmtpHarness
from tests.protocol.smtp_harness import settings as server_settings

VARIANTS = [
    b"\n.\n",
    b"\r.\r",
    b"\r.\n",
    b"\n.\r",
    b"\n.\r\n",
    b"\r\n.\n",
    b"\r.\r\n",
    b"\r\n.\r",
]
FIRST = b"From: alice@example.test\r\nSubject: first\r\n\r\nhello"
SMUGGLED = (
    b"MAIL FROM:<admin@bank.test>\r\n"
    b"RCPT TO:<victim@example.test>\r\n"
    b"DATA\r\n"
    b"From: admin@bank.test\r\nSubject: smuggled\r\n\r\nsend money\r\n"
)
END = b"\r\n.\r\n"


def open_data(harness: SmtpHarness) -> None:
    harness.feed(b"EHLO client.test\r\n")
    out = harness.feed(b"MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
    assert out.endswith(b"354 End data with <CR><LF>.<CR><LF>\r\n")


def assert_not_smuggled(harness: SmtpHarness) -> None:
    senders = [e.sender for e in harness.events if isinstance(e, MailFrom)]
    recipients = [str(e.recipient) for e in harness.events if isinstance(e, RcptTo)]
    assert [str(s) for s in senders] == ["alice@example.test"]
    assert recipients == ["bob@example.test"]
    assert len(harness.messages) <= 1


def feed_in_pieces(harness: SmtpHarness, data: bytes, cuts: list[int]) -> bytes:
    out = bytearray()
    start = 0
    for cut in [*sorted(set(cuts)), len(data)]:
        if cut > start:
            out += harness.feed(data[start:cut])
            start = cut
    return bytes(out)


@pytest.mark.parametrize("variant", VARIANTS, ids=[repr(v) for v in VARIANTS])
@pytest.mark.parametrize("mode", ["whole", "bytewise"])
def test_variant_is_message_text_under_normalize(variant: bytes, mode: str) -> None:
    harness = SmtpHarness(mode=mode)
    open_data(harness)
    out = harness.feed(FIRST + variant + SMUGGLED + b".\r\nQUIT\r\n")
    # SMUGGLED ends in a real CRLF, so this "." line is the genuine end:
    # one message, then QUIT (content may be followed by QUIT, RFC 2920 §3.1).
    assert out == b"250 2.0.0 Ok: queued as Q1\r\n221 2.0.0 Bye\r\n"
    assert_not_smuggled(harness)
    [(envelope, message)] = harness.messages
    assert [str(r.address) for r in envelope.recipients] == ["bob@example.test"]
    assert b"MAIL FROM:<admin@bank.test>" in message
    assert b"send money" in message
    # stored content is strictly CRLF-lined: every CR and LF is part of a CRLF
    assert message.count(b"\r") == message.count(b"\n") == message.count(b"\r\n")


@pytest.mark.parametrize("variant", VARIANTS, ids=[repr(v) for v in VARIANTS])
def test_variant_closes_the_connection_under_reject(variant: bytes) -> None:
    harness = SmtpHarness(server_settings(bare_newline=BareNewlinePolicy.REJECT))
    open_data(harness)
    out = harness.feed(FIRST + variant + SMUGGLED + END)
    assert out in (
        b"550 5.5.2 Error: bare <LF> received\r\n",
        b"550 5.5.2 Error: bare <CR> received\r\n",
    )
    assert harness.messages == []
    assert [a.reason for a in harness.aborted] in (
        ["bare <LF> received"],
        ["bare <CR> received"],
    )
    assert harness.closed is not None
    assert_not_smuggled(harness)


@pytest.mark.parametrize("variant", VARIANTS, ids=[repr(v) for v in VARIANTS])
def test_variant_pipelined_without_waiting_for_354_is_refused(variant: bytes) -> None:
    harness = SmtpHarness()
    harness.feed(b"EHLO client.test\r\n")
    out = harness.feed(
        b"MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
        + FIRST
        + variant
        + SMUGGLED
        + END
    )
    assert out.endswith(b"554 5.5.0 Error: SMTP protocol synchronization\r\n")
    assert harness.messages == []
    assert_not_smuggled(harness)


@settings(max_examples=60, deadline=None)
@given(
    variant=st.sampled_from(VARIANTS),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12),
    reject=st.booleans(),
)
def test_variant_in_random_splits(variant: bytes, cuts: list[int], reject: bool) -> None:
    policy = BareNewlinePolicy.REJECT if reject else BareNewlinePolicy.NORMALIZE
    harness = SmtpHarness(server_settings(bare_newline=policy))
    open_data(harness)
    payload = FIRST + variant + SMUGGLED + END + b"QUIT\r\n"
    feed_in_pieces(harness, payload, [c % (len(payload) + 1) for c in cuts])
    assert_not_smuggled(harness)
    if reject:
        assert harness.messages == []
    else:
        [(_, message)] = harness.messages
        assert b"RCPT TO:<victim@example.test>" in message


def test_bare_lf_body_is_normalised_by_default() -> None:
    harness = SmtpHarness()
    open_data(harness)
    harness.feed(b"line one\nline two\rline three\r\n.\r\n")
    [(_, message)] = harness.messages
    assert message == b"line one\r\nline two\r\nline three\r\n"


def test_dot_lines_after_bare_newlines_are_not_unstuffed() -> None:
    """Only a line start after a real CRLF is subject to RFC 5321 §4.5.2."""
    harness = SmtpHarness()
    open_data(harness)
    harness.feed(b"a\n..b\r\n..c\r\n.\r\n")
    [(_, message)] = harness.messages
    assert message == b"a\r\n..b\r\n.c\r\n"
