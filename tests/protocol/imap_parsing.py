"""Helpers of the IMAP grammar tests: parse a command, expect a refusal, a sequence set."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest

from postoffice.protocol.imap.commands import (
    Command,
)
from postoffice.protocol.imap.parser import CommandError, CommandParser
from postoffice.protocol.imap.sequence import SequenceSet


def parse(wire: bytes | str, *, utf8: bool = False) -> Command:
    parser = CommandParser()
    parser.utf8 = utf8
    return parser.parse(wire.encode() if isinstance(wire, str) else wire)


def refused(wire: bytes | str, *, utf8: bool = False) -> CommandError:
    with pytest.raises(CommandError) as caught:
        parse(wire, utf8=utf8)
    return caught.value


def seq(text: str) -> SequenceSet:
    return SequenceSet.parse(text)


# RFC 3501 §6.3.11 / RFC 9051 §6.3.12: the APPEND example message (310 octets).
FRED = (
    b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n"
    b"From: Fred Foobar <foobar@Blurdybloop.COM>\r\n"
    b"Subject: afternoon meeting\r\n"
    b"To: mooch@owatagu.siam.edu\r\n"
    b"Message-Id: <B27397-0100000@Blurdybloop.COM>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
    b"\r\n"
    b"Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n"
)
JOE = (
    b"Date: Mon, 7 Feb 1994 22:43:04 -0800 (PST)\r\n"
    b"From: Joe Mooch <mooch@OWATAGU.example.net>\r\n"
    b"Subject: Re: afternoon meeting\r\n"
    b"\r\n"
    b"3:30 is fine with me.\r\n"
)
PST = timezone(-timedelta(hours=8))


def assert_trailing_text_refused(wire: bytes) -> None:
    """A whole command with `` )`` added before its CRLF is a BAD with its own tag."""
    error = refused(wire[:-2] + b" )\r\n")
    assert (error.tag, error.status) == (parse(wire).tag, "BAD")


def assert_cut_short_refused_or_different(
    wire: bytes, statuses: tuple[str, ...] = ("BAD",)
) -> None:
    """Every prefix of a command, ended there, is refused (with one of ``statuses``)
    or parses as another command."""
    whole = parse(wire)
    for end in range(1, len(wire) - 2):
        try:
            shorter = parse(wire[:end] + b"\r\n")
        except CommandError as error:
            assert error.status in statuses
        else:
            assert shorter != whole
