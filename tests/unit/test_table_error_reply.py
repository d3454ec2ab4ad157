"""The error-reply grammar shared by access ERROR:, virtusertable and mailertable error:."""

from __future__ import annotations

import pytest

from postoffice.core.reply import Reply
from postoffice.directory.tables.error_reply import ErrorReplySyntaxError, parse_error_reply


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("5.7.1:550 Go away", Reply(550, "5.7.1", "Go away")),
        ("550 Go away", Reply(550, "5.0.0", "Go away")),
        ("450 Try later", Reply(450, "4.0.0", "Try later")),
        (
            '"550 We don\'t accept mail from spammers"',
            Reply(550, "5.0.0", "We don't accept mail from spammers"),
        ),
        ('5.7.1:"550 quoted # text"', Reply(550, "5.7.1", "quoted # text")),
        ("4.2.2:450 mailbox full", Reply(450, "4.2.2", "mailbox full")),
        ("550", Reply(550, "5.0.0", "default")),
        ("nouser", Reply(550, "5.1.1", "User unknown")),
        ("nouser User unknown here", Reply(550, "5.1.1", "User unknown here")),
        ("nouser 550 No such user here", Reply(550, "5.1.1", "No such user here")),
        ("tempfail", Reply(451, "4.0.0", "Deferred")),
        ("NOUSER 550 Gone", Reply(550, "5.1.1", "Gone")),
        ("nohost 450 later", Reply(450, "4.0.0", "later")),
    ],
)
def test_error_reply_forms(spec: str, expected: Reply) -> None:
    assert parse_error_reply(spec, default_text="default") == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("250 fine", "not an error"),
        ("5.7.1:450 mismatch", "does not match"),
        ("4.0.0:550 mismatch", "does not match"),
        ("frobnicate now", "unknown error name"),
        ('"550 unterminated', "unterminated"),
        ("", "expected"),
        ("55 short", "expected"),
    ],
)
def test_error_reply_faults(spec: str, message: str) -> None:
    with pytest.raises(ErrorReplySyntaxError, match=message):
        parse_error_reply(spec, default_text="default")
