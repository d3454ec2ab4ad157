"""Delivery status notifications (RFC 3464, RFC 3461, RFC 6533, RFC 6522): every
notification is read back with the stdlib ``email`` parser and checked field
by field; hostile remote text never changes the structure."""

from __future__ import annotations

import email
import email.policy
import io
import re
from email.message import EmailMessage, Message
from email.utils import parsedate_to_datetime

import pytest

from postoffice.core.address import Address
from postoffice.core.envelope import Notify, OriginalRecipient, Ret
from postoffice.mime.dsn import DsnRecipient, DsnReport, build_dsn, wants_dsn
from postoffice.mime.sections import is_crlf_clean

NOW = 1_700_000_200.0
ARRIVAL = 1_700_000_000.0
ORIGINAL = (
    b"From: Alice <alice@a.test>\r\n"
    b"To: bob@b.test\r\n"
    b"Subject: lunch\r\n"
    b"Message-ID: <m1@a.test>\r\n"
    b"\r\n"
    b"Shall we meet at noon?\r\n"
    b"-- \r\n"
    b"Alice\r\n"
)
HEADER_SECTION = ORIGINAL[: ORIGINAL.index(b"\r\n\r\n") + 4]
BOB = DsnRecipient(
    "bob@b.test",
    "failed",
    "5.1.1",
    remote_mta="mx.b.test",
    diagnostic="550 5.1.1 No such user",
    last_attempt=NOW - 100,
)


def make_report(*recipients: DsnRecipient, **changes: object) -> DsnReport:
    fields: dict[str, object] = {
        "reporting_mta": "a.test",
        "queue_id": "4F2kQ9",
        "arrival": ARRIVAL,
        "envid": None,
        "sender": Address("alice", "a.test"),
        "recipients": recipients or (BOB,),
        "ret": None,
        "postmaster": "MAILER-DAEMON@a.test",
    }
    fields.update(changes)
    return DsnReport(**fields)  # type: ignore[arg-type]


def build(
    report: DsnReport, original: bytes = ORIGINAL, message_id: str = "<dsn1@a.test>", **kw: int
) -> bytes:
    return build_dsn(report, io.BytesIO(original), now=NOW, message_id=message_id, **kw)


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def parts(data: bytes) -> list[Message]:
    message = parse(data)
    assert message.get_content_type() == "multipart/report"
    found = list(message.iter_parts())
    assert len(found) == 3
    return found


def status_blocks(data: bytes) -> list[Message]:
    """The message/delivery-status part as the stdlib reads it: a list of header blocks."""
    blocks = parts(data)[1].get_payload()
    assert isinstance(blocks, list)
    return blocks


def raw_part(data: bytes, index: int) -> tuple[bytes, bytes]:
    """(header, body) of part ``index`` cut from the octets by the boundary."""
    boundary = parse(data).get_boundary()
    assert boundary is not None
    delimiter = b"\r\n--" + boundary.encode()
    pieces = data.split(delimiter)
    assert len(pieces) == 5  # preamble, three parts, the close: the boundary is nowhere else
    assert pieces[-1] == b"--\r\n"
    part = pieces[1 + index].removeprefix(b"\r\n")
    header, _, body = part.partition(b"\r\n\r\n")
    return header, body


def raw_blocks(data: bytes) -> list[Message]:
    """Status blocks read from the octets (works for message/global-delivery-status too)."""
    _, body = raw_part(data, 1)
    return [
        email.message_from_bytes(block + b"\r\n\r\n", policy=email.policy.default)
        for block in body.removesuffix(b"\r\n").split(b"\r\n\r\n")
    ]


def epoch(date: str) -> float:
    return parsedate_to_datetime(date).timestamp()


def human_text(data: bytes) -> str:
    text = parts(data)[0].get_content()
    assert isinstance(text, str)
    return text


# -- structure and fields ------------------------------------------------------


def test_a_failure_report_is_a_multipart_report_in_three_parts() -> None:
    data = build(make_report())
    message = parse(data)
    assert message.get_content_type() == "multipart/report"
    assert message.get_param("report-type") == "delivery-status"
    assert message["From"] == "Mail Delivery System <MAILER-DAEMON@a.test>"
    assert message["To"] == "alice@a.test"
    assert message["Subject"] == "Undelivered Mail Returned to Sender"
    assert message["Message-ID"] == "<dsn1@a.test>"
    assert message["Auto-Submitted"] == "auto-replied"  # RFC 3834 §5
    assert message["MIME-Version"] == "1.0"
    assert message["Date"].datetime.timestamp() == NOW
    assert message["Date"].endswith("+0000")
    text, status, returned = parts(data)
    assert text.get_content_type() == "text/plain"
    assert text.get_param("charset") == "utf-8"
    assert text["Content-Transfer-Encoding"] == "7bit"
    assert status.get_content_type() == "message/delivery-status"
    assert returned.get_content_type() == "message/rfc822"
    assert message.defects == []
    assert all(part.defects == [] for part in parts(data))


def test_per_message_and_per_recipient_fields() -> None:
    report = make_report(envid="QQ314159")
    per_message, bob = status_blocks(build(report))
    assert per_message["Original-Envelope-Id"] == "QQ314159"
    assert per_message["Reporting-MTA"] == "dns; a.test"
    assert per_message["X-Postoffice-Queue-ID"] == "4F2kQ9"
    assert epoch(per_message["Arrival-Date"]) == ARRIVAL
    assert bob["Final-Recipient"] == "rfc822; bob@b.test"
    assert bob["Action"] == "failed"
    assert bob["Status"] == "5.1.1"
    assert bob["Remote-MTA"] == "dns; mx.b.test"
    assert bob["Diagnostic-Code"] == "smtp; 550 5.1.1 No such user"
    assert epoch(bob["Last-Attempt-Date"]) == NOW - 100
    assert "Original-Recipient" not in bob
    assert "Will-Retry-Until" not in bob  # a failure is not retried


def test_fields_come_in_the_order_of_the_rfc_3464_grammar() -> None:
    carol = DsnRecipient(
        "carol@b.test",
        "failed",
        "5.2.2",
        original_recipient=OriginalRecipient("rfc822", "Carol@B.test"),
        remote_mta="mx.b.test",
        diagnostic="552 5.2.2 Mailbox full",
        last_attempt=NOW,
    )
    per_message, block = status_blocks(build(make_report(carol, envid="e1")))
    assert per_message.keys()[:3] == ["Original-Envelope-Id", "Reporting-MTA", "Arrival-Date"]
    assert block.keys() == [
        "Original-Recipient",
        "Final-Recipient",
        "Action",
        "Status",
        "Remote-MTA",
        "Diagnostic-Code",
        "Last-Attempt-Date",
    ]


def test_original_recipient_appears_only_when_given() -> None:
    carol = DsnRecipient(
        "carol@b.test",
        "failed",
        "5.1.1",
        original_recipient=OriginalRecipient("rfc822", "info@b.test"),
    )
    data = build(make_report(BOB, carol))
    _, bob_block, carol_block = status_blocks(data)
    assert "Original-Recipient" not in bob_block
    assert carol_block["Original-Recipient"] == "rfc822; info@b.test"
    assert carol_block["Final-Recipient"] == "rfc822; carol@b.test"
    assert "Remote-MTA" not in carol_block
    assert "Diagnostic-Code" not in carol_block
    assert "Original-Envelope-Id" not in status_blocks(data)[0]
    assert "originally addressed to <info@b.test>" in human_text(data)


def test_multi_line_reply_is_folded_one_reply_line_a_line() -> None:
    bob = DsnRecipient(
        "bob@b.test",
        "failed",
        "5.7.1",
        diagnostic="550-5.7.1 Message rejected\n550-5.7.1 see the policy\n550 5.7.1 for details",
    )
    data = build(make_report(bob))
    assert (
        b"Diagnostic-Code: smtp; 550-5.7.1 Message rejected\r\n"
        b" 550-5.7.1 see the policy\r\n"
        b" 550 5.7.1 for details\r\n"
    ) in data
    block = status_blocks(data)[1]
    assert block["Diagnostic-Code"] == (
        "smtp; 550-5.7.1 Message rejected 550-5.7.1 see the policy 550 5.7.1 for details"
    )


def test_human_part_explains_each_recipient() -> None:
    text = human_text(build(make_report()))
    assert "This is the mail system at host a.test." in text
    assert "<bob@b.test>: host mx.b.test said: 550 5.1.1 No such user" in text
    assert "Your message is attached." in text


def test_delayed_report_says_until_when_it_retries() -> None:
    carol = DsnRecipient(
        "carol@b.test",
        "delayed",
        "4.4.1",
        diagnostic="connect to mx.b.test: Connection timed out",
        last_attempt=NOW,
        will_retry_until=NOW + 4 * 86400,
    )
    data = build(make_report(carol))
    assert parse(data)["Subject"] == "Delayed Mail (still being retried)"
    block = status_blocks(data)[1]
    assert block["Action"] == "delayed"
    assert block["Status"] == "4.4.1"
    assert epoch(block["Will-Retry-Until"]) == NOW + 4 * 86400
    assert "still trying" in human_text(data)


def test_will_retry_until_is_written_for_delayed_only() -> None:
    bob = DsnRecipient("bob@b.test", "failed", "5.4.7", will_retry_until=NOW + 60)
    assert "Will-Retry-Until" not in status_blocks(build(make_report(bob)))[1]


@pytest.mark.parametrize(
    ("actions", "subject"),
    [
        (("delivered",), "Successful Mail Delivery Report"),
        (("relayed", "expanded"), "Successful Mail Delivery Report"),
        (("delivered", "delayed"), "Delayed Mail (still being retried)"),
        (("delayed", "failed", "delivered"), "Undelivered Mail Returned to Sender"),
    ],
)
def test_subject_follows_the_worst_outcome(actions: tuple[str, ...], subject: str) -> None:
    status = {"failed": "5.0.0", "delayed": "4.0.0"}
    recipients = [
        DsnRecipient(f"r{i}@b.test", action, status.get(action, "2.0.0"))  # type: ignore[arg-type]
        for i, action in enumerate(actions)
    ]
    data = build(make_report(*recipients))
    assert parse(data)["Subject"] == subject
    assert [block["Action"] for block in status_blocks(data)[1:]] == list(actions)


@pytest.mark.parametrize(
    "recipient",
    [
        DsnRecipient("bob@b.test", "failed", "5.1"),
        DsnRecipient("bob@b.test", "failed", "3.1.1"),
        DsnRecipient("bob@b.test", "failed", "5.1.1\r\nAction: delivered"),
        DsnRecipient("bob@b.test", "bounced", "5.1.1"),  # type: ignore[arg-type]
    ],
)
def test_malformed_reports_are_refused(recipient: DsnRecipient) -> None:
    with pytest.raises(ValueError):
        build(make_report(recipient))


def test_a_report_without_recipients_is_refused() -> None:
    with pytest.raises(ValueError):
        build(make_report(recipients=()))


# -- the returned content --------------------------------------------------------


def test_ret_full_returns_the_whole_message_octet_for_octet() -> None:
    data = build(make_report(ret=Ret.FULL))
    header, body = raw_part(data, 2)
    assert b"Content-Type: message/rfc822" in header
    assert body == ORIGINAL
    returned = parts(data)[2].get_payload()
    assert isinstance(returned, list)
    assert returned[0]["Message-ID"] == "<m1@a.test>"


def test_ret_hdrs_returns_the_header_section_only() -> None:
    data = build(make_report(ret=Ret.HDRS))
    returned = parts(data)[2]
    assert returned.get_content_type() == "text/rfc822-headers"
    assert raw_part(data, 2)[1] == HEADER_SECTION
    assert b"Shall we meet" not in data
    assert "only the headers of your message are attached" in human_text(data)


@pytest.mark.parametrize("ret", [None, Ret.FULL])
def test_a_message_over_the_size_limit_comes_back_as_headers(ret: Ret | None) -> None:
    big = HEADER_SECTION + b"x" * 998 + b"\r\n" + (b"y" * 76 + b"\r\n") * 2000
    data = build(make_report(ret=ret), big, size_limit=50_000)
    assert parts(data)[2].get_content_type() == "text/rfc822-headers"
    assert raw_part(data, 2)[1] == HEADER_SECTION
    assert "larger than the limit of 50000 octets" in human_text(data)


def test_a_message_at_the_size_limit_is_returned_whole() -> None:
    data = build(make_report(), ORIGINAL, size_limit=len(ORIGINAL))
    assert raw_part(data, 2)[1] == ORIGINAL
    data = build(make_report(), ORIGINAL, size_limit=len(ORIGINAL) - 1)
    assert raw_part(data, 2)[1] == HEADER_SECTION


def test_the_known_size_decides_without_reading_the_body() -> None:
    stream = CountingStream(ORIGINAL + b"z" * 500_000)
    report = make_report()
    data = build_dsn(
        report, stream, now=NOW, message_id="<d@a.test>", original_size=len(stream.data)
    )
    assert raw_part(data, 2)[1] == HEADER_SECTION
    assert stream.total <= 64 * 1024  # stopped once the header section was complete


def test_reading_is_bounded_by_the_size_limit() -> None:
    stream = CountingStream(ORIGINAL + b"z" * 1_000_000)
    build_dsn(make_report(), stream, now=NOW, message_id="<d@a.test>", size_limit=50_000)
    assert stream.total <= 50_001
    assert stream.largest_read <= 64 * 1024


def test_a_header_section_over_the_limit_is_cut_at_a_line_end() -> None:
    header = b"".join(b"X-Filler-%04d: %s\r\n" % (i, b"f" * 60) for i in range(2000))
    data = build(make_report(ret=Ret.HDRS), header + b"\r\nbody\r\n", size_limit=10_000)
    returned = raw_part(data, 2)[1]
    assert len(returned) <= 10_000
    assert returned.endswith(b"\r\n")
    assert header.startswith(returned)
    assert re.fullmatch(rb"(X-Filler-\d{4}: f{60}\r\n)+", returned)


def test_lf_only_original_gives_crlf_output() -> None:
    lf_original = ORIGINAL.replace(b"\r\n", b"\n")
    data = build(make_report(ret=Ret.FULL), lf_original)
    assert is_crlf_clean(data)
    assert raw_part(data, 2)[1] == ORIGINAL
    cr_mixed = b"Subject: a\rTo: b@b.test\n\r\nbody\rline"
    data = build(make_report(), cr_mixed)
    assert is_crlf_clean(data)
    assert raw_part(data, 2)[1] == b"Subject: a\r\nTo: b@b.test\r\n\r\nbody\r\nline\r\n"


def test_eight_bit_original_is_labelled_8bit() -> None:
    original = "Subject: Grüße\r\n\r\nHallo\r\n".encode()
    header, body = raw_part(build(make_report(), original), 2)
    assert b"Content-Transfer-Encoding: 8bit" in header
    assert body == original


def test_boundary_never_appears_in_the_content() -> None:
    first = parse(build(make_report())).get_boundary()
    assert first is not None
    hostile = ORIGINAL + b"--" + first.encode() + b"--\r\n" + first.encode() + b"\r\n"
    data = build(make_report(ret=Ret.FULL), hostile)
    boundary = parse(data).get_boundary()
    assert boundary is not None
    assert boundary != first
    assert boundary.encode() not in hostile
    assert raw_part(data, 2)[1] == hostile
    assert status_blocks(data)[1]["Status"] == "5.1.1"


# -- hostile text ----------------------------------------------------------------


def test_a_hostile_diagnostic_cannot_add_fields() -> None:
    bob = DsnRecipient(
        "bob@b.test\r\nAction: delivered",
        "failed",
        "5.1.1",
        remote_mta="mx.b.test\r\n\r\nFinal-Recipient: rfc822; x@y",
        diagnostic="550 no\r\nAction: delivered\r\n\r\nFinal-Recipient: rfc822; e@x\x00\x1b",
    )
    data = build(make_report(bob, envid="e\r\nStatus: 2.0.0"))
    blocks = status_blocks(data)
    assert len(blocks) == 2
    assert blocks[1].get_all("Action") == ["failed"]
    assert blocks[1].get_all("Final-Recipient") == ["rfc822; bob@b.test Action: delivered"]
    assert blocks[1].get_all("Status") == ["5.1.1"]
    assert "Status" not in blocks[0]
    assert is_crlf_clean(data)
    assert b"\x00" not in data
    assert b"\x1b" not in data


def test_every_line_written_fits_in_998_octets() -> None:
    bob = DsnRecipient(
        "bob@b.test",
        "failed",
        "5.1.1",
        remote_mta="m" * 3000,
        diagnostic="550 " + "w" * 5000 + " and " + "words " * 1000,
    )
    data = build(make_report(bob, envid="e" * 2000))
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    block = status_blocks(data)[1]
    assert block["Diagnostic-Code"].startswith("smtp; 550 www")
    assert "words words" in block["Diagnostic-Code"]


def test_a_huge_reply_is_cut_to_a_bounded_size() -> None:
    bob = DsnRecipient("bob@b.test", "failed", "5.1.1", diagnostic="550 " + "x" * 1_000_000)
    data = build(make_report(bob))
    assert len(data) < 100_000
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    assert status_blocks(data)[1]["Diagnostic-Code"].startswith("smtp; 550 xxx")


# -- SMTPUTF8 (RFC 6533) -----------------------------------------------------------


def test_utf8_addresses_make_a_global_report() -> None:
    jorg = DsnRecipient(
        "jörg+news@b.test",
        "failed",
        "5.1.1",
        original_recipient=OriginalRecipient("utf-8", "Jörg@b.test"),
        diagnostic="550 5.1.1 unbekannt: jörg",
    )
    data = build(make_report(jorg, BOB))
    message = parse(data)
    assert message.get_param("report-type") == "global-delivery-status"
    text, status, returned = parts(data)
    assert status.get_content_type() == "message/global-delivery-status"
    assert returned.get_content_type() == "message/global"
    assert text["Content-Transfer-Encoding"] == "8bit"
    _, jorg_block, bob_block = raw_blocks(data)
    # RFC 6533 §3 utf-8-addr-unitext: "+" is written \x{2B}
    assert jorg_block["Final-Recipient"] == "utf-8; jörg\\x{2B}news@b.test"
    assert jorg_block["Original-Recipient"] == "utf-8; Jörg@b.test"
    assert jorg_block["Diagnostic-Code"] == "smtp; 550 5.1.1 unbekannt: jörg"
    assert bob_block["Final-Recipient"] == "rfc822; bob@b.test"
    assert "<jörg+news@b.test>" in human_text(data)


def test_utf8_sender_with_headers_only_returns_global_headers() -> None:
    data = build(make_report(sender=Address("jörg", "a.test"), ret=Ret.HDRS))
    assert parse(data)["To"] == "jörg@a.test"
    _, status, returned = parts(data)
    assert status.get_content_type() == "message/global-delivery-status"
    assert returned.get_content_type() == "message/global-headers"
    assert raw_part(data, 2)[1] == HEADER_SECTION


def test_non_ascii_remote_text_in_an_ascii_report_becomes_question_marks() -> None:
    bob = DsnRecipient("bob@b.test", "failed", "5.1.1", diagnostic="550 Grüße")
    data = build(make_report(bob))
    assert parts(data)[1].get_content_type() == "message/delivery-status"
    assert status_blocks(data)[1]["Diagnostic-Code"] == "smtp; 550 Gr??e"
    assert raw_part(data, 1)[1].isascii()


# -- wants_dsn (RFC 3461 §4.1) ---------------------------------------------------

N, S, F, D = Notify.NEVER, Notify.SUCCESS, Notify.FAILURE, Notify.DELAY


@pytest.mark.parametrize(
    ("notify", "action", "wanted"),
    [
        (None, "failed", True),
        (None, "delayed", True),
        (None, "delivered", False),
        (None, "relayed", False),
        (frozenset({N}), "failed", False),
        (frozenset({N}), "delayed", False),
        (frozenset({N}), "delivered", False),
        (frozenset({F}), "failed", True),
        (frozenset({F}), "delayed", False),
        (frozenset({D}), "delayed", True),
        (frozenset({D}), "failed", False),
        (frozenset({S}), "delivered", True),
        (frozenset({S}), "relayed", True),
        (frozenset({S}), "expanded", True),
        (frozenset({S}), "failed", False),
        (frozenset({S, F, D}), "failed", True),
        (frozenset({S, F, D}), "delayed", True),
        (frozenset({F, D}), "delivered", False),
    ],
)
def test_wants_dsn(notify: frozenset[Notify] | None, action: str, wanted: bool) -> None:
    assert wants_dsn(notify, action) is wanted


def test_wants_dsn_refuses_unknown_actions() -> None:
    with pytest.raises(ValueError):
        wants_dsn(None, "bounced")


class CountingStream(io.RawIOBase):
    """A readable stream that records how much was asked for and handed out."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0
        self.total = 0
        self.largest_read = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            size = len(self.data)
        self.largest_read = max(self.largest_read, size)
        chunk = self.data[self.position : self.position + size]
        self.position += len(chunk)
        self.total += len(chunk)
        return chunk
