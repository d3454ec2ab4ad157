"""The control file format: every field round-trips, hostile strings cannot forge a line,
corruption and oversize are refused, and garbage only ever raises CorruptQueueFile."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postoffice.core.address import parse_address
from postoffice.core.envelope import Envelope, EnvelopeRecipient, OriginalRecipient
from postoffice.queue import CorruptQueueFile, QueueEntry, QueueError, QueueId, RecipientStatus
from postoffice.queue.model import MAX_REPLY_CHARS, RecipientState
from postoffice.queue.qffile import (
    MAX_LINE_OCTETS,
    MAX_QF_OCTETS,
    escape,
    parse_qf,
    render_qf,
    unescape,
)

from .conftest import envelope, hostile_envelope

QID = QueueId("4ZrT0b3fKq9A1x")
SHA = hashlib.sha256(b"x").hexdigest()


def entry_for(env: Envelope, statuses: tuple[RecipientStatus, ...] | None = None) -> QueueEntry:
    return QueueEntry(
        id=QID,
        envelope=env,
        arrival=1_700_000_000.123456,
        size=10240,
        sha256=SHA,
        statuses=statuses or tuple(RecipientStatus() for _ in env.recipients),
    )


def with_checksum(body: bytes) -> bytes:
    return body + b"checksum sha256 " + hashlib.sha256(body).hexdigest().encode() + b"\n"


def test_every_field_round_trips_with_hostile_values() -> None:
    env = hostile_envelope()
    statuses = (
        RecipientStatus(),
        RecipientStatus.deferred(
            "451 4.4.1 host\r\n said: try later %20 =;",
            at=1_700_000_300.5,
            attempts=3,
            next_attempt=1_700_001_000.25,
            delay_warned=True,
            remote_mta="mx 1.example\r\nreply=forged",
        ),
        RecipientStatus.failed(
            "550 5.1.1 <x@y>: unknown\x00", at=1_700_000_301.0, attempts=2, remote_mta="[::1]"
        ),
        RecipientStatus.delivered("250 2.0.0 Ok: queued as ABC", at=1_700_000_302.0),
    )
    entry = replace(entry_for(env, statuses), held=True)
    data = render_qf(entry)
    assert parse_qf(data, expected_id=QID) == entry


def test_null_sender_and_minimal_envelope_round_trip() -> None:
    entry = entry_for(envelope("a@b.test", sender=None))
    text = render_qf(entry).decode()
    assert "\nsender <>\n" in text
    assert parse_qf(render_qf(entry)) == entry


def test_hostile_strings_cannot_forge_lines() -> None:
    data = render_qf(entry_for(hostile_envelope()))
    text = data.decode("utf-8")
    lines = text.split("\n")[:-1]
    # One line per field: the CR/LF, U+2028 and spaces in values are all escaped.
    assert sum(line.startswith("rcpt ") for line in lines) == 4
    assert not any(line.startswith(("rcpt attacker", "sender evil")) for line in lines)
    assert "\r" not in text and "\u2028" not in text and "\x00" not in text
    for line in lines:
        key, _, value = line.partition(" ")
        if key != "rcpt":
            assert " " not in value or key == "checksum"


def test_the_file_is_readable_text() -> None:
    text = render_qf(entry_for(hostile_envelope())).decode()
    assert text.startswith("postoffice-qf 1\nid 4ZrT0b3fKq9A1x\n")
    assert "rcpt 日本@xn--r8jz45g.xn--zckzah state=pending\n" in text
    assert 'client-auth alice%20ü%20"x"%0A\n' in text


@pytest.mark.parametrize(
    "text",
    ["", "plain", "a b", "100%", "%25", "x=y;z", "é", "\u2028", "\x00\x7f\x85", "\ud800", "%%2"],
)
def test_escape_round_trips(text: str) -> None:
    token = escape(text)
    assert " " not in token and "\n" not in token
    assert unescape(token) == text


@pytest.mark.parametrize("token", ["%", "%2", "%zz", "%25%", "a b", "%41", "%e9", "%C3", "\u2028"])
def test_unescape_refuses_non_canonical_tokens(token: str) -> None:
    with pytest.raises(CorruptQueueFile):
        unescape(token)


def test_truncated_at_every_length_is_refused() -> None:
    data = render_qf(entry_for(hostile_envelope()))
    for cut in range(len(data)):
        with pytest.raises(CorruptQueueFile):
            parse_qf(data[:cut])


def test_every_single_bit_flip_is_detected() -> None:
    data = render_qf(entry_for(envelope("bob@example.test")))
    for position in range(len(data)):
        for bit in (0x01, 0x20, 0x80):
            flipped = bytearray(data)
            flipped[position] ^= bit
            with pytest.raises(CorruptQueueFile):
                parse_qf(bytes(flipped))


def test_wrong_id_is_refused() -> None:
    data = render_qf(entry_for(envelope()))
    with pytest.raises(CorruptQueueFile, match="names"):
        parse_qf(data, expected_id="4ZrT0b3fKq9A1y")


def test_unknown_version_is_refused() -> None:
    body = render_qf(entry_for(envelope())).split(b"checksum")[0]
    other = with_checksum(body.replace(b"postoffice-qf 1\n", b"postoffice-qf 2\n", 1))
    with pytest.raises(CorruptQueueFile, match="version"):
        parse_qf(other)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"held no\n", b""),  # required field missing
        (b"held no\n", b"held no\nheld no\n"),  # duplicate
        (b"held no\n", b"held maybe\n"),
        (b"held no\n", b"held no\ncolour blue\n"),  # unknown field
        (b"data-size 10240\n", b"data-size -1\n"),
        (b"data-size 10240\n", b"data-size 0x10\n"),
        (b"arrival 1700000000.123456\n", b"arrival nan\n"),
        (b"arrival 1700000000.123456\n", b"arrival inf\n"),
        (b"state=pending", b"state=lost"),
        (b"state=pending", b"state=pending state=pending"),
        (b"state=pending", b"state=pending attempts=-1"),
        (b"state=pending", b"state=pending colour=blue"),
        (b"state=pending", b""),
        (b"rcpt bob@example.test", b"rcpt bob"),
        (b"rcpt bob@example.test", b"rcpt BOB@EXAMPLE.TEST"),  # not canonical (domain case)
        (b"rcpt bob@example.test", b"rcpt bob@example.test notify=SOMETIMES"),
        (b"rcpt bob@example.test", b"rcpt bob@example.test orcpt=noseparator"),
        (b"sender alice@example.test\n", b"sender alice\n"),
        (b"sender alice@example.test\n", b"sender\n"),
        (b"id 4ZrT0b3fKq9A1x\n", b"id ../../etc/pw\n"),
    ],
)
def test_malformed_fields_with_valid_checksum_are_refused(old: bytes, new: bytes) -> None:
    body = render_qf(entry_for(envelope())).rsplit(b"checksum", 1)[0]
    assert old in body
    with pytest.raises(CorruptQueueFile):
        parse_qf(with_checksum(body.replace(old, new, 1)))


def test_no_recipient_is_refused() -> None:
    body = render_qf(entry_for(envelope())).rsplit(b"checksum", 1)[0]
    lines = [line for line in body.split(b"\n") if not line.startswith(b"rcpt ")]
    with pytest.raises(CorruptQueueFile, match="no recipients"):
        parse_qf(with_checksum(b"\n".join(lines)))


def test_bounds() -> None:
    # 1000 recipients with long ORCPTs fit comfortably.
    many = Envelope(
        sender=parse_address("a@example.test"),
        recipients=tuple(
            EnvelopeRecipient(
                parse_address(f"user{n}@example.test"),
                orcpt=OriginalRecipient("rfc822", f"user{n}+" + "o" * 400 + "@example.test"),
            )
            for n in range(1000)
        ),
    )
    entry = entry_for(many)
    data = render_qf(entry)
    assert len(data) < MAX_QF_OCTETS
    assert parse_qf(data) == entry
    # An envelope that would not fit is refused when rendering...
    huge = replace(
        many,
        recipients=tuple(
            replace(r, orcpt=OriginalRecipient("rfc822", "o" * 2000)) for r in many.recipients
        ),
    )
    with pytest.raises(CorruptQueueFile):
        render_qf(entry_for(huge))
    too_long = replace(
        many,
        recipients=(
            replace(many.recipients[0], orcpt=OriginalRecipient("rfc822", "o" * MAX_LINE_OCTETS)),
        ),
    )
    with pytest.raises(CorruptQueueFile):
        render_qf(entry_for(too_long))
    # ...and a file that large is refused when parsing, before anything else.
    with pytest.raises(CorruptQueueFile, match="larger"):
        parse_qf(b"postoffice-qf 1\n" + b"x" * MAX_QF_OCTETS)
    body = render_qf(entry_for(envelope())).rsplit(b"checksum", 1)[0]
    long_line = body + b"envid " + b"a" * MAX_LINE_OCTETS + b"\n"
    with pytest.raises(CorruptQueueFile, match="longer"):
        parse_qf(with_checksum(long_line))


def test_long_replies_are_cut_to_a_bound() -> None:
    status = RecipientStatus.deferred("451 " + "x" * 100_000, at=1.0, attempts=1, next_attempt=2.0)
    assert status.reply is not None and len(status.reply) == MAX_REPLY_CHARS
    entry = entry_for(envelope(), (status,))
    assert parse_qf(render_qf(entry)).statuses[0].reply == status.reply
    assert status.state is RecipientState.DEFERRED


def test_corrupt_queue_file_is_a_queue_error() -> None:
    assert issubclass(CorruptQueueFile, QueueError)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_garbage_only_raises_corrupt_queue_file(data: bytes) -> None:
    with pytest.raises(CorruptQueueFile):
        parse_qf(data)


_LINE = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            "id 4ZrT0b3fKq9A1x",
            "arrival 1.5",
            "data-size 3",
            f"data-sha256 {SHA}",
            "held no",
            "sender <>",
            "smtputf8 yes",
            "rcpt a@b.test state=pending",
            "rcpt a@b.test notify= state=deferred next-attempt=1e400",
            "rcpt a@b.test orcpt=%;%ZZ state=failed reply=%E2%80",
            "client-port 99999999999999999999",
            "body 9BIT",
            "declared-size 1",
        ]
    ),
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_LINE, max_size=14))
def test_checksummed_garbage_only_raises_corrupt_queue_file(lines: list[str]) -> None:
    body = ("postoffice-qf 1\n" + "".join(line + "\n" for line in lines)).encode(
        "utf-8", "surrogatepass"
    )
    try:
        entry = parse_qf(with_checksum(body))
    except CorruptQueueFile:
        return
    # Whatever parses must render back to an equivalent entry.
    assert parse_qf(render_qf(entry)) == entry
