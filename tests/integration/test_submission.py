"""The submission roles (RFC 6409, RFC 8314): mail from logged-in users, for their own senders.

``submission`` (port 587 style) offers STARTTLS and AUTH only after it;
``submissions`` (port 465 style) is TLS from the first octet. Both refuse
MAIL before AUTH (530) and a sender the user does not own (553 5.7.1); the
user's own address and the aliases that reach them are theirs.
"""

from __future__ import annotations

import base64
import re
import smtplib
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from scramp import ScramClient

from .smtp_fixtures import DOMAIN, HOST, PASSWORD, SmtpServer

FAIL_DELAY = 0.3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    data = tmp_path_factory.mktemp("submission") / "var"
    srv = SmtpServer(
        data,
        users=("demo", "other"),
        smtp={"login_failure_delay": FAIL_DELAY, "login_failure_delay_max": 4 * FAIL_DELAY},
    ).setup()
    aliases = srv.data / "etc" / "mail" / "aliases"
    aliases.write_text(aliases.read_text() + "team: demo, other\nhelp: demo\n", encoding="utf-8")
    try:
        yield srv.start()
    finally:
        srv.stop()


def tls(server: SmtpServer) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=server.cafile)
    context.check_hostname = False
    return context


def logged_in(server: SmtpServer, user: str = "demo") -> smtplib.SMTP:
    client = smtplib.SMTP(HOST, server.submission_port, timeout=10)
    client.starttls(context=tls(server))
    client.login(f"{user}@{DOMAIN}", PASSWORD)
    return client


def test_plaintext_offers_starttls_and_no_auth_and_takes_no_mail(server: SmtpServer) -> None:
    with smtplib.SMTP(HOST, server.submission_port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        assert not client.has_extn("auth")
        assert client.mail(f"demo@{DOMAIN}")[0] == 530  # RFC 4954 §6
        client.starttls(context=tls(server))
        client.ehlo()
        assert "PLAIN" in client.esmtp_features["auth"]
        assert client.mail(f"demo@{DOMAIN}")[0] == 530  # TLS is not a login


def test_only_senders_of_their_own(server: SmtpServer) -> None:
    client = logged_in(server)
    try:
        code, text = client.mail(f"other@{DOMAIN}")
        assert (code, text[:5]) == (553, b"5.7.1")
        for own in (f"demo@{DOMAIN}", f"help@{DOMAIN}", f"team@{DOMAIN}", ""):
            assert client.mail(own)[0] == 250, own  # own address, aliases, <>
            client.rset()
    finally:
        client.quit()
    client = logged_in(server, "other")
    try:
        assert client.mail(f"help@{DOMAIN}")[0] == 553  # help reaches demo only
        assert client.mail(f"team@{DOMAIN}")[0] == 250  # a list other is on
    finally:
        client.quit()


def test_a_from_header_of_someone_else_is_refused_after_the_data(server: SmtpServer) -> None:
    client = logged_in(server)
    try:
        for author, code in ((f"other@{DOMAIN}", 553), (f"Team <team@{DOMAIN}>", 250)):
            client.mail(f"demo@{DOMAIN}")
            client.rcpt(f"other@{DOMAIN}")
            reply = client.data(
                f"From: {author}\r\nTo: other@{DOMAIN}\r\nSubject: as {author}\r\n\r\nhi\r\n"
            )
            assert reply[0] == code, (author, reply)
            if code == 553:
                assert reply[1].startswith(b"5.7.1 From: header")
    finally:
        client.quit()
    server.wait_delivered(b"Subject: as Team", user="other")
    assert not server.messages_with(b"Subject: as other@", user="other")
    assert re.search(r"reject: DATA from .*From: header.*sasl_username=<demo@", server.maillog())


def test_submitted_mail_is_delivered_with_esmtpsa(server: SmtpServer) -> None:
    client = logged_in(server)
    try:
        client.sendmail(
            f"demo@{DOMAIN}",
            [f"other@{DOMAIN}"],
            f"From: demo@{DOMAIN}\r\nTo: other@{DOMAIN}\r\nSubject: via 587\r\n\r\nhello\r\n",
        )
        assert client.mail(f"demo@{DOMAIN}")[0] == 250
        assert client.rcpt("someone@remote.test")[0] == 250  # an authenticated user relays
        client.rset()
    finally:
        client.quit()
    (message,) = server.wait_delivered(b"via 587", user="other")
    assert b"with ESMTPSA id" in message  # RFC 3848


def test_submissions_is_tls_from_the_start(server: SmtpServer, tmp_path: Path) -> None:
    with smtplib.SMTP_SSL(HOST, server.submissions_port, context=tls(server), timeout=10) as client:
        client.ehlo()
        assert not client.has_extn("starttls")  # RFC 8314 §3.3: already TLS
        assert client.mail(f"demo@{DOMAIN}")[0] == 530
        client.login(f"demo@{DOMAIN}", PASSWORD)
        client.sendmail(f"demo@{DOMAIN}", [f"other@{DOMAIN}"], "Subject: via 465\r\n\r\nhi\r\n")
    (message,) = server.wait_delivered(b"via 465", user="other")
    assert b"with ESMTPSA id" in message and b"(using TLS" in message


def test_failed_logins_wait_and_unknown_users_look_the_same(server: SmtpServer) -> None:
    answers = []
    for user, password in ((f"demo@{DOMAIN}", "wrong"), (f"nobody@{DOMAIN}", PASSWORD)):
        client = smtplib.SMTP(HOST, server.submission_port, timeout=10)
        client.starttls(context=tls(server))
        started = time.monotonic()
        with pytest.raises(smtplib.SMTPAuthenticationError) as caught:
            client.login(user, password)
        answers.append((caught.value.smtp_code, time.monotonic() - started >= FAIL_DELAY * 0.9))
        client.close()
    assert answers == [(535, True), (535, True)]
    assert "authentication failed (2 attempts)" in server.maillog()


def test_a_missing_date_and_message_id_are_added(server: SmtpServer) -> None:
    """RFC 6409 §8.2, §8.3: the MSA adds them; what the client wrote is kept."""
    client = logged_in(server)
    try:
        bare = "Subject: no date\r\n\r\nbody\r\n"
        whole = (
            "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <x@y>\r\n"
            "Subject: dated\r\n\r\nb\r\n"
        )
        client.sendmail(f"demo@{DOMAIN}", [f"other@{DOMAIN}"], bare)
        client.sendmail(f"demo@{DOMAIN}", [f"other@{DOMAIN}"], whole)
        client.sendmail(f"demo@{DOMAIN}", [f"other@{DOMAIN}"], "Subject: only a header\r\n")
    finally:
        client.quit()
    (added,) = server.wait_delivered(b"Subject: no date", user="other")
    assert added.count(b"\r\nDate: ") == 1 and added.count(b"\r\nMessage-ID: <") == 1
    assert added.endswith(b"Subject: no date\r\n\r\nbody\r\n")
    (kept,) = server.wait_delivered(b"Subject: dated", user="other")
    assert kept.count(b"Date: ") == 1 and b"Message-ID: <x@y>\r\n" in kept
    (short,) = server.wait_delivered(b"only a header", user="other")
    assert b"\r\nDate: " in short and short.endswith(b"Subject: only a header\r\n")
    # The MX role adds nothing (RFC 6409 §8: that is the MSA's work).
    with smtplib.SMTP(HOST, server.port, timeout=10) as mx:
        mx.sendmail("someone@remote.test", [f"other@{DOMAIN}"], "Subject: via 25\r\n\r\nx\r\n")
    (relayed,) = server.wait_delivered(b"via 25", user="other")
    assert b"\r\nDate: " not in relayed and b"Message-ID" not in relayed


def scram_login(client: smtplib.SMTP, user: str, password: str) -> int:
    """AUTH SCRAM-SHA-256 with scramp as the client; the last reply's code."""
    scram = ScramClient(["SCRAM-SHA-256"], user, password)
    first = base64.b64encode(scram.get_client_first().encode()).decode()
    code, text = client.docmd("AUTH", f"SCRAM-SHA-256 {first}")
    assert code == 334, text
    scram.set_server_first(base64.b64decode(text).decode())
    code, text = client.docmd(base64.b64encode(scram.get_client_final().encode()).decode())
    if code != 334:
        return code
    scram.set_server_final(base64.b64decode(text).decode())  # the server had the keys
    return client.docmd("")[0]


def test_scram_sha_256_logs_in_without_sending_the_password(server: SmtpServer) -> None:
    with smtplib.SMTP(HOST, server.submission_port, timeout=10) as client:
        client.starttls(context=tls(server))
        client.ehlo()
        assert "SCRAM-SHA-256" in client.esmtp_features["auth"].split()
        assert scram_login(client, f"demo@{DOMAIN}", PASSWORD) == 235
        assert client.mail(f"other@{DOMAIN}")[0] == 553  # still only their own senders
        assert client.mail(f"demo@{DOMAIN}")[0] == 250
        assert client.rcpt(f"other@{DOMAIN}")[0] == 250
        assert client.data(b"Subject: via SCRAM\r\n\r\nhi\r\n")[0] == 250
    (message,) = server.wait_delivered(b"via SCRAM", user="other")
    assert b"with ESMTPSA id" in message
    assert f"sasl_method=SCRAM-SHA-256, sasl_username=demo@{DOMAIN}" in server.maillog()
    for user, password in ((f"demo@{DOMAIN}", "wrong"), (f"nobody@{DOMAIN}", PASSWORD)):
        with smtplib.SMTP(HOST, server.submission_port, timeout=10) as client:
            client.starttls(context=tls(server))
            client.ehlo()
            started = time.monotonic()
            assert scram_login(client, user, password) == 535
            assert time.monotonic() - started >= FAIL_DELAY * 0.9  # the failure's delay
            assert client.mail(f"demo@{DOMAIN}")[0] == 530
