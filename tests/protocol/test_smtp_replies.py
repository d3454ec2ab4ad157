"""Reply rendering (RFC 5321 §4.2, §4.5.3.1.5; RFC 2034 §3) and the named replies."""

from __future__ import annotations

import re

import pytest

from postoffice.core.reply import Reply
from postoffice.protocol.smtp.replies import SmtpReplies, render_reply, sanitize_text


def named_replies() -> list[Reply]:
    return [value for value in vars(SmtpReplies).values() if isinstance(value, Reply)]


def test_every_named_reply_renders_with_an_enhanced_code_where_required() -> None:
    for reply in named_replies():
        line = render_reply(reply).decode()
        if reply.code // 100 == 3 or reply is SmtpReplies.HELLO_OK:
            continue
        assert re.fullmatch(r"\d{3} [245]\.\d{1,3}\.\d{1,3} .+\r\n", line), line
        assert reply.enhanced is not None and reply.enhanced[0] == str(reply.code)[0], reply


def test_multi_line_and_single_line() -> None:
    assert render_reply(Reply(250, "2.0.0", "Ok")) == b"250 2.0.0 Ok\r\n"
    assert (
        render_reply(Reply(250, None, "a\nb\nc"), enhanced=False) == b"250-a\r\n250-b\r\n250 c\r\n"
    )
    assert render_reply(Reply(550, "5.1.1", "x\ny")) == b"550-5.1.1 x\r\n550 5.1.1 y\r\n"


def test_missing_enhanced_code_is_filled_and_3xx_never_has_one() -> None:
    assert render_reply(Reply(451, None, "later")) == b"451 4.0.0 later\r\n"
    assert render_reply(Reply(354, "2.0.0", "go ahead")) == b"354 go ahead\r\n"
    assert (
        render_reply(SmtpReplies.greeting("mx.test"), enhanced=False)
        == b"220 mx.test ESMTP postoffice\r\n"
    )


def test_untrusted_text_cannot_break_lines() -> None:
    assert sanitize_text("a\rb\x00c\x7fd\te") == "a?b?c?d?e"
    rendered = render_reply(Reply(550, "5.1.1", "<evil\r@x>\x00"))
    assert rendered == b"550 5.1.1 <evil?@x>?\r\n"


def test_lines_are_capped_at_512_octets() -> None:
    rendered = render_reply(Reply(550, "5.1.1", "é" * 600))
    assert len(rendered) <= 512
    assert rendered.endswith(b"\r\n")
    rendered.decode("utf-8")  # never cut inside a character


def test_builders() -> None:
    assert render_reply(SmtpReplies.queued("4F2A")) == b"250 2.0.0 Ok: queued as 4F2A\r\n"
    assert render_reply(SmtpReplies.chunk_received(10)) == b"250 2.0.0 Ok: 10 octets received\r\n"
    assert render_reply(SmtpReplies.ehlo("mx", ["PIPELINING", "SIZE 1"]), enhanced=False) == (
        b"250-mx\r\n250-PIPELINING\r\n250 SIZE 1\r\n"
    )
    assert render_reply(SmtpReplies.auth_challenge("")) == b"334 \r\n"
    assert (
        render_reply(SmtpReplies.too_many_errors("mx"))
        == b"421 4.7.0 mx Error: too many errors\r\n"
    )


def test_reply_code_range_is_checked() -> None:
    with pytest.raises(ValueError):
        render_reply(Reply(199, None, "x"))
