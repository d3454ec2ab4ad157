"""Header work of local submission (``mime.submission``, RFC 6409 §8, RFC 5322 §3.6.3)."""

from __future__ import annotations

from datetime import UTC, datetime

from postoffice.mime.submission import complete_header, header_recipients, to_crlf_lines

NOW = datetime(2026, 11, 27, 8, 30, tzinfo=UTC)


def test_line_ends_and_the_lone_dot() -> None:
    text = b"Subject: a\n\nline\r\n.\nafter\n"
    assert to_crlf_lines(text, dot_ends=True) == b"Subject: a\r\n\r\nline\r\n"
    assert to_crlf_lines(text, dot_ends=False) == b"Subject: a\r\n\r\nline\r\n.\r\nafter\r\n"
    assert to_crlf_lines(b"no end", dot_ends=True) == b"no end\r\n"
    assert to_crlf_lines(b"", dot_ends=True) == b""


def test_recipients_from_to_cc_and_bcc() -> None:
    header = (
        b"To: Ann <ann@example.test>, undisclosed:;\r\n"
        b"Cc: bob, Ann <ann@example.test>\r\n"
        b"Bcc: carol@other.test\r\n"
        b"Subject: x\r\n\r\nbody mentions To: nobody@x.test\r\n"
    )
    assert header_recipients(header) == ["ann@example.test", "bob", "carol@other.test"]
    assert header_recipients(b"Subject: none\r\n\r\n") == []


def test_bcc_is_removed_and_missing_fields_added() -> None:
    message = b"To: ann@example.test\r\nBcc: carol@other.test,\r\n dave@other.test\r\n\r\nhi\r\n"
    done = complete_header(
        message, sender="bob@example.test", full_name="Bob B", hostname="mx.test", now=NOW
    )
    head, _, body = done.partition(b"\r\n\r\n")
    assert body == b"hi\r\n"
    assert b"Bcc" not in head and b"dave" not in head
    lines = head.split(b"\r\n")
    assert lines[0] == b'From: "Bob B" <bob@example.test>'
    assert lines[1] == b"Date: Fri, 27 Nov 2026 08:30:00 +0000"
    assert lines[2].startswith(b"Message-ID: <20261127083000.") and lines[2].endswith(b"@mx.test>")
    assert lines[3] == b"To: ann@example.test"


def test_fields_already_there_are_kept_as_they_are() -> None:
    message = (
        b"From: Someone <s@x.test>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
        b"Message-ID: <a@b>\r\nSubject: kept\r\n\r\nbody\r\n"
    )
    assert complete_header(message, sender="", full_name=None, hostname="h", now=NOW) == message
    # A header without the empty line gets one; the null sender shows as MAILER-DAEMON.
    done = complete_header(b"Subject: x\r\n", sender="", full_name=None, hostname="h", now=NOW)
    assert done.startswith(b"From: MAILER-DAEMON@h\r\n") and done.endswith(b"Subject: x\r\n\r\n")
