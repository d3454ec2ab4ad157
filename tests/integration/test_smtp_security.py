"""The ``smtp`` role under attack over real sockets: smuggling, STARTTLS injection, relay, limits.

Two server processes serve the module: ``open_server`` with the default
limits (relay matrix, smuggling, STARTTLS, 1001 recipients, access table) and
``tight_server`` with small limits so each limit is reached quickly (idle
timeout 1 s, 5 errors, 64 KiB messages, 512-octet lines, 3 connections per
client). Clients from 127.0.0.2 and up are the Internet; 127.0.0.1 is the
trusted network (DESIGN.md §5).
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import ssl
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.integration.smtp_fixtures import (
    HOST,
    OUTSIDER,
    TRUSTED,
    RawClient,
    SmtpServer,
    queue_id_of,
    running,
    wait_for,
)

MEMORY_SLACK_KB = 6 * 1024  # a 10 MB input must not show up in the server's memory


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    data = tmp_path_factory.mktemp("smtp-open") / "var"
    with running(SmtpServer(data, users=("demo", "other"), smtp={"idle_timeout": 20.0})) as srv:
        yield srv


@pytest.fixture(scope="module")
def tight_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    limits: dict[str, object] = {
        "idle_timeout": 1.0,
        "max_errors": 5,
        "tarpit_after_errors": 3,
        "tarpit_delay": 0.3,
        "max_message_size": 65536,
        "max_line_length": 512,
        "max_connections_per_client": 3,
        "min_data_rate": 0,
    }
    data = tmp_path_factory.mktemp("smtp-tight") / "var"
    with running(SmtpServer(data, users=("demo",), smtp=limits)) as srv:
        yield srv


def token() -> str:
    return uuid.uuid4().hex


def remote_entries(server: SmtpServer) -> list[str]:
    """Control-file recipient lines that name anything but the local domain."""
    lines = server.control_files().splitlines()
    return [line for line in lines if line.startswith("rcpt ") and "@example.test " not in line]


# -- SMTP smuggling --------------------------------------------------------------------------

SMUGGLING_ENDS = [
    b"\n.\n",
    b"\r.\r",
    b"\r.\n",
    b"\n.\r",
    b"\n.\r\n",
    b"\r\n.\n",
    b"\r.\r\n",
    b"\r\n.\r",
]


@pytest.mark.parametrize("fake_end", SMUGGLING_ENDS, ids=[repr(e)[2:-1] for e in SMUGGLING_ENDS])
def test_smuggled_end_of_data_never_starts_a_second_transaction(
    open_server: SmtpServer, fake_end: bytes
) -> None:
    tok = token()
    smuggled = (
        b"MAIL FROM:<ceo@example.test>\r\nRCPT TO:<other@example.test>\r\nDATA\r\n"
        b"From: ceo@example.test\r\nSubject: smuggled " + tok.encode() + b"\r\n\r\npay now\r\n.\r\n"
    )
    with open_server.connect(OUTSIDER) as client:
        client.ehlo("attacker.test")
        client.send(b"MAIL FROM:<attacker@remote.test>\r\nRCPT TO:<demo@example.test>\r\nDATA\r\n")
        mail, rcpt, data = client.replies(3)
        assert (mail.code, rcpt.code, data.code) == (250, 250, 354)
        client.send(b"Subject: carrier " + tok.encode() + b"\r\n\r\nhello" + fake_end + smuggled)
        # The CRLF.CRLF at the end of the smuggled part is the only end of data: one message.
        first = client.reply()
        assert first.code == 250, first
        queue_id = queue_id_of(first)
        assert client.command("QUIT").code == 221, "no reply may be left over from a 2nd envelope"
        assert client.rest() == b""
    [raw] = open_server.wait_delivered(tok.encode())
    assert b"Subject: carrier " + tok.encode() in raw
    assert b"MAIL FROM:<ceo@example.test>" in raw  # the smuggled commands are message text
    open_server.wait_queue_empty()
    assert open_server.messages_with(tok.encode(), "other") == []
    log = open_server.maillog()
    assert "from=<ceo@example.test>" not in log
    assert log.count(f"{queue_id}: to=") == 1


def test_bare_lf_dot_lines_are_not_the_end_even_when_the_rest_trickles_in(
    open_server: SmtpServer,
) -> None:
    """The fake end split over several TCP segments: still text, never an end of data."""
    tok = token()
    with open_server.connect(OUTSIDER) as client:
        client.ehlo()
        client.send(b"MAIL FROM:<attacker@remote.test>\r\nRCPT TO:<demo@example.test>\r\nDATA\r\n")
        assert [r.code for r in client.replies(3)] == [250, 250, 354]
        for piece in (
            b"Subject: trickle " + tok.encode() + b"\r\n\r\nx\n",
            b".",
            b"\n",
            b"RSET\r\n",
        ):
            client.send(piece)
            time.sleep(0.05)
        client.send(b"NOOP\r\n.\r\n")
        assert client.reply().code == 250
        assert client.command("QUIT").code == 221
    [raw] = open_server.wait_delivered(tok.encode())
    assert raw.endswith(b"x\r\n.\r\nRSET\r\nNOOP\r\n")  # bare LF normalised; nothing executed


# -- STARTTLS command injection --------------------------------------------------------------


def tls_wrap(server: SmtpServer, client: RawClient) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=server.cafile)
    assert not client.buffer, f"plaintext left before the handshake: {bytes(client.buffer)!r}"
    client.sock = context.wrap_socket(client.sock, server_hostname="mail.example.test")
    return client.sock


@pytest.mark.parametrize(
    "injected",
    [
        b"RSET\r\n",
        b"MAIL FROM:<attacker@remote.test>\r\nRCPT TO:<demo@example.test>\r\n",
        b"EHLO evil.test\r\nMAIL FROM:<attacker@remote.test>\r\n",
    ],
    ids=["rset", "mail-rcpt", "ehlo-mail"],
)
def test_commands_pipelined_behind_starttls_are_discarded(
    open_server: SmtpServer, injected: bytes
) -> None:
    with open_server.connect(OUTSIDER) as client:
        client.ehlo()
        client.send(b"STARTTLS\r\n" + injected)  # one TCP segment
        ready = client.reply()
        assert ready.code == 220, ready
        tls = tls_wrap(open_server, client)
        # Response injection check: nothing may arrive before the client speaks over TLS.
        tls.settimeout(0.5)
        with pytest.raises(TimeoutError):
            tls.recv(1)
        tls.settimeout(10)
        assert client.command("RCPT TO:<demo@example.test>").code == 503  # no EHLO, no MAIL yet
        ehlo = client.ehlo("honest.test")
        assert ehlo.lines[0] == "mail.example.test"
        assert client.command("RCPT TO:<demo@example.test>").code == 503  # the MAIL was dropped
        assert client.command("QUIT").code == 221
    open_server.wait_log(r"disconnect from unknown\[127\.0\.0\.2\] messages=0 \(quit\)")


# -- relaying ---------------------------------------------------------------------------------

# r = remote.test, local = example.test, u = demo (a real local user, so that a
# relay hack that "works" would show up as a delivery or a queued remote recipient).
RELAY_ATTEMPTS = [
    "<demo%remote.test@example.test>",
    '<"demo@remote.test">',
    '<"demo%remote.test"@example.test>',
    "<demo@remote.test@example.test>",
    '<"demo@remote.test"@[127.0.0.1]>',
    "<@example.test:demo@remote.test>",
    "<@example.test,@remote.test:demo@remote.test>",
    "<remote.test!demo>",
    "<remote.test!demo@example.test>",
    "<demo%remote.test@[127.0.0.1]>",
    "<demo@remote.test>",
    "<DEMO@REMOTE.TEST>",
    "<demo@remote.test.>",
    "< demo@remote.test >",
    "<demo@remote.test >",
    "demo@remote.test",
    '<"demo\\@remote.test"@example.test>',
    "<demo@example.test@remote.test>",
    "<demo%example.test@remote.test>",
    "<demo@[127.0.0.2]>",
    "<demo@[IPv6:::1]>",
    "<demo@sub.example.test>",
    "<demo@example.test.remote.test>",
    "<postmaster@remote.test>",
    "<demo@remote.test%example.test>",
    '<"demo@remote.test"@example.test>',
]
# Forms that name the local domain exactly: accepted only as local mail, never relayed.
MAY_BE_LOCAL = {"<demo@EXAMPLE.TEST.>", "<DEMO@example.test>"}


@pytest.mark.parametrize("rcpt", [*RELAY_ATTEMPTS, *sorted(MAY_BE_LOCAL)])
def test_open_relay_matrix_from_the_internet(open_server: SmtpServer, rcpt: str) -> None:
    for sender in ("<>", "<demo@example.test>"):
        tok = token()
        with open_server.connect(OUTSIDER) as client:
            client.ehlo("relay-tester.test")
            assert client.command(f"MAIL FROM:{sender}").code == 250
            reply = client.command(f"RCPT TO:{rcpt}")
            if rcpt in MAY_BE_LOCAL and reply.code == 250:
                client.send(b"DATA\r\n")
                assert client.reply().code == 354
                client.send(b"Subject: " + tok.encode() + b"\r\n\r\nx\r\n.\r\n")
                assert client.reply().code == 250
                open_server.wait_delivered(tok.encode())
            else:
                assert 500 <= reply.code < 600, f"RCPT TO:{rcpt} from {sender}: {reply}"
                # whatever happened, DATA has no recipient to go to
                assert client.command("DATA").code in (503, 554)
            client.command("QUIT")
    open_server.wait_queue_empty()
    assert remote_entries(open_server) == []


def test_relay_denied_reply_and_log(open_server: SmtpServer) -> None:
    with open_server.connect(OUTSIDER) as client:
        client.ehlo("relay-tester.test")
        assert client.command("MAIL FROM:<spammer@remote.test>").code == 250
        reply = client.command("RCPT TO:<victim@remote.test>")
        assert (reply.code, reply.text) == (554, "5.7.1 Relay access denied")
        client.command("QUIT")
    open_server.wait_log(
        r"NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.2\]: 554 5\.7\.1 Relay access denied; "
        r"to=<victim@remote\.test>"
    )


def test_the_trusted_network_may_relay_and_the_message_stays_queued(
    open_server: SmtpServer,
) -> None:
    tok = token()
    with open_server.connect(TRUSTED) as client:
        client.ehlo("trusted.example.test")
        assert client.command("MAIL FROM:<demo@example.test>").code == 250
        assert client.command("RCPT TO:<friend@remote.test>").code == 250
        client.send(b"DATA\r\n")
        assert client.reply().code == 354
        client.send(b"Subject: " + tok.encode() + b"\r\n\r\nhi\r\n.\r\n")
        queue_id = queue_id_of(client.reply())
        client.command("QUIT")
    try:
        open_server.wait_log(rf"{queue_id}: to=<friend@remote\.test>.*status=deferred")
        listing = open_server.cli("mailq")
        assert queue_id in listing and "friend@remote.test" in listing
        # The fixture's DNS answers nothing: the deferral's reason is in the listing.
        assert "lookup failed" in " ".join(listing.split())
        time.sleep(0.3)
        assert queue_id in open_server.queue_ids()  # still there: deferred, not lost
        assert queue_id in open_server.cli("queue", "list")
    finally:
        open_server.cli("queue", "delete", queue_id)
    assert queue_id not in open_server.queue_ids()


def test_auth_needs_tls_from_outside_and_then_allows_relaying(open_server: SmtpServer) -> None:
    plain = base64.b64encode(b"\0demo@example.test\0pw").decode()
    wrong = base64.b64encode(b"\0demo@example.test\0wrong").decode()
    tok = token()
    with open_server.connect(OUTSIDER) as client:
        assert not any(line.startswith("AUTH") for line in client.ehlo().lines)
        reply = client.command(f"AUTH PLAIN {plain}")
        assert reply.code == 538 and reply.text.startswith("5.7.11"), reply
        client.send(b"STARTTLS\r\n")
        assert client.reply().code == 220
        tls_wrap(open_server, client)
        assert "AUTH PLAIN LOGIN SCRAM-SHA-256" in client.ehlo().lines
        assert client.command(f"AUTH PLAIN {wrong}").code == 535
        assert client.command(f"AUTH PLAIN {plain}").code == 235
        assert client.command("MAIL FROM:<demo@example.test>").code == 250
        assert client.command("RCPT TO:<friend@remote.test>").code == 250
        client.send(b"DATA\r\n")
        assert client.reply().code == 354
        client.send(b"Subject: " + tok.encode() + b"\r\n\r\nhi\r\n.\r\n")
        queue_id = queue_id_of(client.reply())
        client.command("QUIT")
    try:
        open_server.wait_log(r"sasl_method=PLAIN, sasl_username=demo@example\.test")
        open_server.wait_log(r"SASL PLAIN authentication failed")
        assert queue_id in open_server.cli("queue", "list")
        assert "friend@remote.test" in open_server.control_files()
    finally:
        open_server.cli("queue", "delete", queue_id)


# -- access table -----------------------------------------------------------------------------

ACCESS = """\
Connect:127.0.0.5           REJECT
Connect:127.0.0.6           DISCARD
Connect:127.0.0.7           ERROR:5.7.0:550 go away, you are blocked
From:spammer@remote.test    REJECT
From:discarded@remote.test  DISCARD
From:err@remote.test        ERROR:5.7.0:553 no thanks
To:rejected.test            REJECT
To:discarded.test           DISCARD
To:errored.test             ERROR:4.7.0:450 try again later
"""


def test_access_table_at_connect_mail_and_rcpt(open_server: SmtpServer) -> None:
    original = open_server.access_file.read_text(encoding="utf-8")
    open_server.write_access(original + ACCESS)
    try:
        _check_access(open_server)
    finally:
        open_server.write_access(original)


def _check_access(server: SmtpServer) -> None:
    # Connect: REJECT and ERROR refuse the session at the greeting; only QUIT is served.
    # RFC 5321 §4.3.2: a greeting is 220 or 554 (or 421), whatever code the rule names.
    for source, code, text in (
        ("127.0.0.5", 554, "5.7.1 Access denied"),
        ("127.0.0.7", 554, "5.7.0 go away, you are blocked"),
    ):
        with server.connect(source, greeting=False) as client:
            greeting = client.reply()
            assert greeting.code == code and greeting.text.startswith(text), greeting
            client.send(b"EHLO c.test\r\n")
            assert client.reply().code == 503
            client.send(b"MAIL FROM:<a@remote.test>\r\n")
            assert client.reply().code == 503
            assert client.command("QUIT").code == 221
    server.wait_log(r"reject: CONNECT from unknown\[127\.0\.0\.5\]: 554 5\.7\.1")

    def transaction(source: str, sender: str, rcpt: str, tok: str) -> tuple[int, int, int]:
        with server.connect(source) as client:
            client.ehlo()
            mail = client.command(f"MAIL FROM:<{sender}>")
            if mail.code != 250:
                return mail.code, 0, 0
            rcpt_reply = client.command(f"RCPT TO:<{rcpt}>")
            if rcpt_reply.code != 250:
                return mail.code, rcpt_reply.code, 0
            client.send(b"DATA\r\n")
            assert client.reply().code == 354
            client.send(b"Subject: " + tok.encode() + b"\r\n\r\nx\r\n.\r\n")
            end = client.reply()
            client.command("QUIT")
            return mail.code, rcpt_reply.code, end.code

    # Connect: DISCARD: everything is accepted, and dropped.
    tok = token()
    assert transaction("127.0.0.6", "a@remote.test", "demo@example.test", tok) == (250, 250, 250)
    # From: REJECT / ERROR refuse MAIL; DISCARD accepts and drops.
    assert transaction("127.0.0.3", "spammer@remote.test", "demo@example.test", tok)[0] == 550
    assert transaction("127.0.0.3", "err@remote.test", "demo@example.test", tok)[0] == 553
    assert transaction("127.0.0.3", "discarded@remote.test", "demo@example.test", tok) == (
        250,
        250,
        250,
    )
    # To: on relayed mail from the trusted network.
    assert transaction(TRUSTED, "demo@example.test", "x@rejected.test", tok)[1] == 550
    assert transaction(TRUSTED, "demo@example.test", "x@errored.test", tok)[1] == 450
    assert transaction(TRUSTED, "demo@example.test", "x@discarded.test", tok) == (250, 250, 250)
    # A control message after the rules shows that mail does get through meanwhile.
    control = token()
    assert transaction("127.0.0.3", "a@remote.test", "demo@example.test", control)[2] == 250
    server.wait_delivered(control.encode())
    server.wait_queue_empty()
    assert server.messages_with(tok.encode()) == []
    assert remote_entries(server) == []
    server.wait_log(r"discard: every recipient is DISCARDed")
    server.wait_log(r"reject: MAIL from unknown\[127\.0\.0\.3\]: 550 5\.7\.1")
    server.wait_log(r"reject: RCPT from unknown\[127\.0\.0\.1\]: 450 4\.7\.0 try again later")


# -- limits: size, lines, recipients ----------------------------------------------------------


def test_size_declared_at_mail_and_actual_size(tight_server: SmtpServer) -> None:
    tok = token()
    with tight_server.connect(OUTSIDER) as client:
        assert "SIZE 65536" in client.ehlo().lines
        reply = client.command("MAIL FROM:<a@remote.test> SIZE=70000")
        assert reply.code == 552 and reply.text.startswith("5.3.4"), reply
        assert client.command("MAIL FROM:<a@remote.test> SIZE=1000").code == 250
        assert client.command("RCPT TO:<demo@example.test>").code == 250
        client.send(b"DATA\r\n")
        assert client.reply().code == 354
        body = (b"y" * 998 + b"\r\n") * 100  # 100 kB, more than declared and than allowed
        client.send(b"Subject: " + tok.encode() + b"\r\n\r\n" + body + b".\r\n")
        reply = client.reply()
        assert reply.code == 552 and reply.text.startswith("5.3.4"), reply
        assert client.command("NOOP").code == 250  # the session goes on
        # BDAT: the size is checked as chunks arrive too
        assert client.command("MAIL FROM:<a@remote.test>").code == 250
        assert client.command("RCPT TO:<demo@example.test>").code == 250
        client.send(b"BDAT %d LAST\r\n" % len(body) + body)
        assert client.reply().code == 552
        assert client.command("QUIT").code == 221
    time.sleep(0.3)
    assert tight_server.messages_with(tok.encode()) == []
    tight_server.wait_queue_empty()


def test_overlong_command_line(tight_server: SmtpServer) -> None:
    with tight_server.connect(OUTSIDER) as client:
        client.ehlo()
        reply = client.command("NOOP " + "x" * 600)
        assert (reply.code, reply.text) == (500, "5.5.2 Line too long")
        assert client.command("NOOP").code == 250
        reply = client.command("MAIL FROM:<" + "a" * 1000 + "@remote.test>")
        assert reply.code == 500
        assert client.command("QUIT").code == 221


def test_ten_megabytes_without_a_line_end_keep_memory_bounded(tight_server: SmtpServer) -> None:
    tight_server.reset_peak_memory()
    before = tight_server.memory_kb("VmRSS")
    with tight_server.connect(OUTSIDER) as client:
        client.ehlo()
        client.send(b"MAIL FROM:<")
        chunk = b"a" * (1 << 20)
        for _ in range(10):
            client.send(chunk)
        reply = client.reply()  # answered as soon as the line passed its limit
        assert (reply.code, reply.text) == (500, "5.5.2 Line too long"), reply
        peak = tight_server.memory_kb("VmHWM")
        client.send(b">\r\n")  # the end of the long line: the rest of it was dropped
        assert client.command("NOOP").code == 250
        assert client.command("QUIT").code == 221
    after = tight_server.memory_kb("VmRSS")
    assert after - before < MEMORY_SLACK_KB, (before, after)
    assert peak - before < MEMORY_SLACK_KB, (before, peak)


def test_ten_megabytes_of_data_without_a_line_end(open_server: SmtpServer) -> None:
    """In DATA the same input is content: streamed to the spool, refused past the size limit."""
    open_server.reset_peak_memory()
    before = open_server.memory_kb("VmRSS")
    with open_server.connect(OUTSIDER) as client:
        client.ehlo()
        client.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<demo@example.test>\r\nDATA\r\n")
        assert [r.code for r in client.replies(3)] == [250, 250, 354]
        chunk = b"b" * (1 << 20)
        for _ in range(11):  # 11 MiB: over the 10 MiB default limit
            client.send(chunk)
        client.send(b"\r\n.\r\n")
        reply = client.reply()
        assert reply.code == 552 and reply.text.startswith("5.3.4"), reply
        assert client.command("QUIT").code == 221
    after, peak = open_server.memory_kb("VmRSS"), open_server.memory_kb("VmHWM")
    assert after - before < MEMORY_SLACK_KB, (before, after)
    assert peak - before < MEMORY_SLACK_KB, (before, peak)
    open_server.wait_queue_empty()
    assert open_server.queue_files() == []


def test_1001_recipients_get_452_after_1000(open_server: SmtpServer) -> None:
    with open_server.connect(OUTSIDER) as client:
        client.ehlo()
        assert client.command("MAIL FROM:<a@remote.test>").code == 250
        batch = b"".join(b"RCPT TO:<demo+r%d@example.test>\r\n" % n for n in range(1001))
        client.send(batch)
        replies = client.replies(1001)
        assert [r.code for r in replies[:1000]] == [250] * 1000
        last = replies[1000]
        assert (last.code, last.text) == (452, "4.5.3 Too many recipients"), last
        # RFC 5321 §4.5.3.1.10: the client may go on with the next message
        assert client.command("RSET").code == 250
        assert client.command("NOOP").code == 250
        assert client.command("QUIT").code == 221


# -- limits: errors, time, connections ----------------------------------------------------------


def test_error_flood_gets_421_after_max_errors_with_a_tarpit(tight_server: SmtpServer) -> None:
    with tight_server.connect(OUTSIDER) as client:
        client.ehlo()
        timings = []
        for n in range(5):
            started = time.monotonic()
            reply = client.command(f"XBOGUS{n}")
            timings.append(time.monotonic() - started)
            assert reply.code == 500, reply
        final = client.reply()  # the 5th error is followed by the 421
        assert final.code == 421 and final.text.startswith("4.7.0"), final
        assert client.closed_by_server()
    assert min(timings[3:]) >= 0.25  # tarpit_delay 0.3 once 3 errors were made
    tight_server.wait_log(r"too many errors|Too many errors")


def test_idle_timeout(tight_server: SmtpServer) -> None:
    with tight_server.connect(OUTSIDER) as client:
        client.ehlo()
        started = time.monotonic()
        reply = client.reply()
        waited = time.monotonic() - started
        assert reply.code == 421 and reply.text.startswith("4.4.2"), reply
        assert 0.7 < waited < 5
        assert client.closed_by_server()
    tight_server.wait_log(r"timeout after \w+ from unknown\[127\.0\.0\.2\]")


def test_idle_timeout_in_the_middle_of_data_delivers_nothing(tight_server: SmtpServer) -> None:
    tok = token()
    with tight_server.connect(OUTSIDER) as client:
        client.ehlo()
        client.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<demo@example.test>\r\nDATA\r\n")
        assert [r.code for r in client.replies(3)] == [250, 250, 354]
        client.send(b"Subject: " + tok.encode() + b"\r\n\r\nhalf a message\r\n")
        reply = client.reply()
        assert reply.code == 421, reply
        assert client.closed_by_server()
    time.sleep(0.2)
    tight_server.wait_queue_empty()
    assert tight_server.messages_with(tok.encode()) == []


def test_client_pipelining_before_the_greeting_is_refused(tight_server: SmtpServer) -> None:
    with RawClient(tight_server.port, source=OUTSIDER) as client:
        client.send(b"EHLO early.test\r\nMAIL FROM:<a@remote.test>\r\n")  # before reading 220
        data = client.rest()
    assert b"554 5.5.0" in data, data
    assert b"250 2.1.0" not in data


def test_client_speaking_before_the_greeting_is_refused(tight_server: SmtpServer) -> None:
    """Postfix's "improper command pipelining after CONNECT": the octets were there first.

    The server's processes are stopped while the client connects and talks, so
    its words are waiting in the socket when a worker accepts the connection.
    """
    processes = tight_server.processes()  # whichever worker will accept it
    for pid in processes:
        os.kill(pid, signal.SIGSTOP)
    try:
        client = RawClient(tight_server.port, source="127.0.0.4")
        client.send(b"EHLO early.test\r\n")
        time.sleep(0.1)
    finally:
        for pid in processes:
            os.kill(pid, signal.SIGCONT)
    with client:
        data = client.rest()
    assert data.startswith(b"554 5.5.0"), data
    assert b"250" not in data
    tight_server.wait_log(r"127\.0\.0\.4.*(before the greeting|after CONNECT)")


def test_too_many_connections_from_one_client(tight_server: SmtpServer) -> None:
    source = "127.0.0.9"
    tight_server.reset_peak_memory()
    before = tight_server.memory_kb("VmRSS")
    held = [tight_server.connect(source) for _ in range(3)]
    try:
        for _ in range(3):  # each one over the limit is refused and closed
            with RawClient(tight_server.port, source=source) as extra:
                reply = extra.reply()
                assert reply.code == 421 and reply.text.startswith("4.7.0"), reply
                assert extra.closed_by_server()
        with tight_server.connect("127.0.0.10") as elsewhere:  # another address is fine
            assert elsewhere.command("QUIT").code == 221
        # a flood of connections over the limit costs no memory to speak of
        flood = []
        for _ in range(100):
            sock = socket.create_connection((HOST, tight_server.port), source_address=(source, 0))
            flood.append(sock)
        for sock in flood:
            sock.settimeout(5)
            assert sock.recv(100).startswith(b"421 4.7.0")
            sock.close()
        assert tight_server.memory_kb("VmHWM") - before < MEMORY_SLACK_KB
    finally:
        for client in held:
            client.close()

    # the slots are given back when the connections end
    def admitted() -> bool:
        with RawClient(tight_server.port, source=source) as again:
            return again.reply().code == 220

    wait_for(admitted, timeout=5, what="a connection admitted again")
    tight_server.wait_log(r"reject: CONNECT from unknown\[127\.0\.0\.9\]: 421 4\.7\.0")


def test_the_servers_survived(open_server: SmtpServer, tight_server: SmtpServer) -> None:
    for server in (open_server, tight_server):
        assert server.process is not None and server.process.poll() is None
        log = server.maillog()
        assert "session error" not in log and "Traceback" not in log
