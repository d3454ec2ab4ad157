"""mboxrd quoting and mbox scanning, fed whole, in pieces and byte by byte."""

from __future__ import annotations

import io

from hypothesis import given
from hypothesis import strategies as st

from postoffice.store.mboxrd import (
    LineQuoter,
    from_line,
    from_line_date,
    quote,
    scan_mbox,
    unquote,
)
from tests.store.conftest import TRICKY

# Lines built from the octets that matter, so that From lines are common.
_LINES = st.lists(
    st.sampled_from([b">", b">>", b"From ", b"From", b"F", b"rom ", b"x", b"\r", b"\n", b" "]),
    max_size=40,
).map(b"".join)


def _through(quoter: LineQuoter, data: bytes, cuts: list[int]) -> bytes:
    out = []
    previous = 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        out.append(quoter.feed(data[previous:cut]))
        previous = cut
    out.append(quoter.finish())
    return b"".join(out)


def test_quoting_examples() -> None:
    assert quote(b"From me\n") == (b">From me\n", 1)
    assert quote(b"a\nFrom x\n>From y\n>>From z\nFromage\n>Fro\n") == (
        b"a\n>From x\n>>From y\n>>>From z\nFromage\n>Fro\n",
        3,
    )
    assert quote(b"x From y\n") == (b"x From y\n", 0)
    assert quote(b"a\r\nFrom b\r\n") == (b"a\r\n>From b\r\n", 1)
    assert unquote(b">From x\n>>From y\n>x\nFrom z\n") == b"From x\n>From y\n>x\nFrom z\n"
    assert quote(b"") == (b"", 0)
    assert quote(b">>>") == (b">>>", 0)


def test_corpus_round_trips_byte_by_byte() -> None:
    for data in TRICKY:
        quoted, _ = quote(data)
        quoter = LineQuoter(unquote=False)
        assert (
            b"".join([quoter.feed(data[i : i + 1]) for i in range(len(data))]) + (quoter.finish())
            == quoted
        )
        unquoter = LineQuoter(unquote=True)
        assert (
            b"".join([unquoter.feed(quoted[i : i + 1]) for i in range(len(quoted))])
            + unquoter.finish()
            == data
        )


@given(_LINES, st.lists(st.integers(min_value=0, max_value=400), max_size=6))
def test_quote_then_unquote_is_identity_in_any_pieces(data: bytes, cuts: list[int]) -> None:
    quoted = _through(LineQuoter(unquote=False), data, cuts)
    assert quoted == quote(data)[0]
    assert _through(LineQuoter(unquote=True), quoted, cuts) == data
    # No line of the quoted text is a bare From line: it cannot split messages.
    assert not quoted.startswith(b"From ") and b"\nFrom " not in quoted


@given(st.binary(max_size=300))
def test_any_bytes_round_trip(data: bytes) -> None:
    assert unquote(quote(data)[0]) == data


def test_from_line_and_its_date() -> None:
    line = from_line("bob@example.net", 1_700_000_000.0)
    assert line == b"From bob@example.net Tue Nov 14 22:13:20 2023\n"
    assert from_line_date(line) == 1_700_000_000.0
    assert from_line("", 0).startswith(b"From MAILER-DAEMON Thu Jan  1 ")
    assert from_line("a b\nc", 0).startswith(b"From abc ")
    assert from_line_date(b"From someone no date here\n") is None


def test_scan_finds_messages_and_quoted_lines() -> None:
    mbox = (
        b"garbage before the first message\n"
        b"From a@x Tue Nov 14 22:13:20 2023\nSubject: 1\n\n>From q\nbody\n\n"
        b"From b@x Tue Nov 14 22:13:21 2023\nSubject: 2\n\nno final newline\n\n"
        b"From c@x Tue Nov 14 22:13:22 2023\n\n"
    )
    entries = scan_mbox(io.BytesIO(mbox), 0, len(mbox))
    assert len(entries) == 3
    first, second, third = entries
    assert mbox[first.data_offset : first.data_offset + first.stored_size] == (
        b"Subject: 1\n\n>From q\nbody\n"
    )
    assert first.quoted == 1
    assert first.date == 1_700_000_000.0
    assert mbox[second.offset : second.data_offset].startswith(b"From b@x")
    assert second.quoted == 0
    assert third.stored_size == 0
    assert len({e.tag for e in entries}) == 3
    # From the middle: only what follows.
    rest = scan_mbox(io.BytesIO(mbox), second.offset, len(mbox))
    assert [e.offset for e in rest] == [second.offset, third.offset]
    assert scan_mbox(io.BytesIO(b""), 0, 0) == []
