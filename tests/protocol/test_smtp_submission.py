"""Submission (RFC 6409 §4.3, RFC 4954 §6): MAIL only after AUTH, as a transcript."""

from __future__ import annotations

import base64

import pytest

from tests.protocol.smtp_harness import SmtpHarness, settings


@pytest.fixture(params=["whole", "bytewise"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_mail_before_auth_is_530_and_after_auth_is_250(mode: str) -> None:
    harness = SmtpHarness(
        settings(auth_mechanisms=("PLAIN",), is_tls=True, auth_required=True), mode=mode
    )
    plain = base64.b64encode(b"\0alice\0secret").decode()
    harness.converse(
        f"""
        C: EHLO client.test
        S: 250-mx.example.test
        S: 250-PIPELINING
        S: 250-SIZE 10485760
        S: 250-AUTH PLAIN
        S: 250-ENHANCEDSTATUSCODES
        S: 250-8BITMIME
        S: 250-DSN
        S: 250-SMTPUTF8
        S: 250 CHUNKING
        C: MAIL FROM:<alice@example.test>
        S: 530 5.7.0 Authentication required
        C: AUTH PLAIN {plain}
        S: 235 2.7.0 Authentication successful
        C: MAIL FROM:<alice@example.test>
        S: 250 2.1.0 Ok
        """
    )


def test_without_the_setting_mail_needs_no_auth(mode: str) -> None:
    harness = SmtpHarness(settings(auth_mechanisms=("PLAIN",), is_tls=True), mode=mode)
    harness.feed(b"EHLO client.test\r\n")
    assert harness.feed(b"MAIL FROM:<alice@example.test>\r\n") == b"250 2.1.0 Ok\r\n"
