"""curl's POP3 client against a real ``postoffice serve``.

curl reads a maildrop by URL: ``pop3://host:port/`` lists it (LIST),
``pop3://host:port/N`` retrieves message N (RETR), and ``-X`` sends another
command instead (``-X DELE -I .../N`` deletes message N: ``-I`` because the
answer is a single line; the deletion takes effect at the QUIT curl sends
when it closes the connection). What curl prints on stdout is the data of the
answer, dot-stuffing and the final ``.`` removed, so a retrieved message
must be the stored file octet for octet. With ``pop3://`` and
``--ssl-reqd`` curl first upgrades with STLS; ``pop3s://`` is implicit TLS
on the ``pop3s`` port. Either way curl verifies the self-signed certificate
against ``--cacert``, and logs in only once TLS is up.

Skipped only when curl is not installed (Debian package ``curl``; ``.ci/run``
installs it).
"""

from __future__ import annotations

import re
import smtplib
import uuid
from dataclasses import dataclass

import pytest

from tests.interop.mailserver import (
    PASSWORD,
    ClientRun,
    Server,
    empty_inbox,
    pop3s_login,
    require_client,
    run_curl,
)

require_client("curl", "curl")

USER = "demo@example.test"
HOST = "127.0.0.1"
TLS_USED = re.compile(r"^\* SSL connection using (TLSv[\d.]+) / (\S+)\r?$", re.MULTILINE)


@dataclass
class CurlRun(ClientRun):
    """curl -v: the transcript ("> " sent, "< " received, "* " notes) and stdout.

    POP3 queues nothing, so ``QUEUED`` is left undefined here.
    """

    output: bytes = b""
    TLS_USED = TLS_USED

    def sent(self, command: str) -> int:
        """Where the transcript shows COMMAND sent (the first time); -1 if never."""
        found = re.search(rf"^> {re.escape(command)}\r?$", self.transcript, re.MULTILINE)
        return found.start() if found else -1


def curl(
    server: Server,
    *args: str,
    path: str = "/",
    implicit: bool = False,
    host: str = HOST,
    login: str = f"{USER}:{PASSWORD}",
    tls: bool = True,
) -> CurlRun:
    """``curl -v`` on ``pop3://`` (STLS with --ssl-reqd) or ``pop3s://`` (``implicit``)."""
    if implicit:
        url = f"pop3s://{host}:{server.pop3s_port}{path}"
    else:
        url = f"pop3://{host}:{server.pop3_port}{path}"
    code, transcript, output = run_curl(
        url, server.cert, login, args, require_tls=tls and not implicit
    )
    return CurlRun(code, transcript, output)


@pytest.fixture(autouse=True)
def empty_maildrop(server: Server) -> None:
    """Every test starts with demo's mailbox empty (the server runs for the whole module)."""
    empty_inbox(server)


def deliver(server: Server, *bodies: str) -> list[tuple[str, bytes]]:
    """One message per body to demo by SMTP; (its mark, the stored file) each, in order."""
    marks = [uuid.uuid4().hex for _ in bodies]
    with smtplib.SMTP(HOST, server.port, timeout=10) as client:
        for mark, body in zip(marks, bodies, strict=True):
            message = (
                "From: Sender <sender@client.test>\r\n"
                f"To: Demo <{USER}>\r\n"
                f"Subject: pop3 {mark}\r\n"
                f"Message-ID: <{mark}@client.test>\r\n"
                "\r\n" + body
            )
            client.sendmail("sender@client.test", [USER], message.encode("ascii"))
            # One at a time: the order of the maildrop is the order of delivery.
            server.wait_for_message("demo", mark.encode())
    return [(mark, server.wait_for_message("demo", mark.encode())) for mark in marks]


def listing(output: bytes) -> list[tuple[int, str]]:
    """``N value`` lines (LIST or UIDL data) as (N, value)."""
    lines = output.decode("ascii").split("\r\n")
    assert lines[-1] == "", output  # every line ends in CRLF
    pairs = [line.split(" ") for line in lines[:-1]]
    return [(int(number), value) for number, value in pairs]


@pytest.mark.parametrize("implicit", [False, True], ids=["stls", "pop3s"])
def test_list_shows_every_message_with_its_size(server: Server, implicit: bool) -> None:
    stored = deliver(server, "one\r\n", "two, a little longer\r\n")
    run = curl(server, implicit=implicit)
    assert run.code == 0, run.transcript
    assert listing(run.output) == [(1, str(len(stored[0][1]))), (2, str(len(stored[1][1])))]
    assert "SSL certificate verify ok." in run.transcript
    assert run.sent("LIST") > 0
    login = max(run.sent(f"USER {USER}"), run.sent("AUTH PLAIN"))
    assert login > 0, run.transcript
    if implicit:
        assert run.sent("STLS") == -1
    else:
        assert 0 < run.sent("STLS") < login, "curl logged in before STLS"
    assert run.tls[0] in ("TLSv1.2", "TLSv1.3")


@pytest.mark.parametrize("implicit", [False, True], ids=["stls", "pop3s"])
def test_retrieve_by_path_gives_the_stored_octets(server: Server, implicit: bool) -> None:
    body = ".\r\n..two dots\r\n.leading dot\r\nmiddle . dot\r\n\r\nlast\r\n"
    (_, first), (_, second) = deliver(server, "first\r\n", body)
    run = curl(server, path="/2", implicit=implicit)
    assert run.code == 0, run.transcript
    assert run.sent("RETR 2") > 0
    assert run.output == second
    assert run.output.endswith(b"\r\n\r\n" + body.encode())
    run = curl(server, path="/1", implicit=implicit)
    assert run.code == 0, run.transcript
    assert run.output == first
    assert len(server.mailbox("demo")) == 2  # RETR is no deletion


def test_retrieve_of_a_missing_message_fails(server: Server) -> None:
    deliver(server, "only one\r\n")
    run = curl(server, path="/2")
    assert run.code != 0
    assert re.search(r"^< -ERR", run.transcript, re.MULTILINE), run.transcript
    assert run.output == b""


@pytest.mark.parametrize("implicit", [False, True], ids=["stls", "pop3s"])
def test_dele_by_custom_request_removes_the_message_at_quit(server: Server, implicit: bool) -> None:
    (_, first), (mark, second) = deliver(server, "goes away\r\n", "stays\r\n")
    before = curl(server, "--request", "UIDL", implicit=implicit)
    assert before.code == 0, before.transcript
    uids = listing(before.output)
    assert [number for number, _ in uids] == [1, 2]
    assert uids[0][1] != uids[1][1]

    run = curl(server, "--request", "DELE", "--head", path="/1", implicit=implicit)
    assert run.code == 0, run.transcript
    assert run.sent("DELE 1") > 0
    assert re.search(r"^< \+OK", run.transcript[run.sent("DELE 1") :], re.MULTILINE)
    # curl sends QUIT as it closes the connection at exit (-v no longer shows it).
    assert server.mailbox("demo") == [second]

    after = curl(server, implicit=implicit)
    assert listing(after.output) == [(1, str(len(second)))]
    uidl = curl(server, "--request", "UIDL", implicit=implicit)
    assert listing(uidl.output) == [(1, uids[1][1])]  # the survivor keeps its UID
    retr = curl(server, path="/1", implicit=implicit)
    assert retr.output == second and mark.encode() in retr.output
    assert first not in server.mailbox("demo")


def test_top_gives_the_header_and_no_body(server: Server) -> None:
    ((_, stored),) = deliver(server, "body line one\r\nbody line two\r\n")
    run = curl(server, "--request", "TOP 1 0")
    assert run.code == 0, run.transcript
    header = stored[: stored.index(b"\r\n\r\n") + 4]
    assert run.output == header
    run = curl(server, "--request", "TOP 1 1")
    assert run.output == header + b"body line one\r\n"


def test_host_name_verified_with_tls_1_2(server: Server) -> None:
    """The certificate names mail.example.test: curl checks that name, over TLS 1.2."""
    ((_, stored),) = deliver(server, "by name\r\n")
    for implicit, port in ((False, server.pop3_port), (True, server.pop3s_port)):
        run = curl(
            server,
            *("--resolve", f"mail.example.test:{port}:127.0.0.1", "--tlsv1.2", "--tls-max", "1.2"),
            path="/1",
            implicit=implicit,
            host="mail.example.test",
        )
        assert run.code == 0, run.transcript
        assert run.tls[0] == "TLSv1.2"
        assert "subject: CN=mail.example.test" in run.transcript
        assert run.output == stored


def test_wrong_host_name_is_refused_by_curl(server: Server) -> None:
    run = curl(
        server,
        "--resolve",
        f"wrong.example.test:{server.pop3s_port}:127.0.0.1",
        implicit=True,
        host="wrong.example.test",
    )
    assert run.code == 60, run.transcript  # CURLE_PEER_FAILED_VERIFICATION
    assert run.sent(f"USER {USER}") == -1


def test_no_login_without_tls(server: Server) -> None:
    """Plain pop3:// without --ssl-reqd: the server offers no login before STLS
    (neither USER nor SASL in CAPA), so curl has none to try."""
    deliver(server, "secret\r\n")
    run = curl(server, tls=False)
    assert run.code == 67, run.transcript  # CURLE_LOGIN_DENIED
    assert re.search(r"^< STLS\r?$", run.transcript, re.MULTILINE), run.transcript
    assert not re.search(r"^< (USER|SASL)", run.transcript, re.MULTILINE)
    assert run.sent(f"USER {USER}") == -1 and run.sent("AUTH PLAIN") == -1
    assert run.output == b""


@pytest.mark.parametrize(
    "options",
    [("--login-options", "AUTH=PLAIN", "--sasl-ir"), ("--login-options", "AUTH=LOGIN")],
    ids=["plain-initial-response", "login"],
)
def test_sasl_mechanisms_after_stls(server: Server, options: tuple[str, ...]) -> None:
    ((_, stored),) = deliver(server, "sasl\r\n")
    run = curl(server, *options, path="/1")
    assert run.code == 0, run.transcript
    mechanism = options[1].removeprefix("AUTH=")
    assert re.search(rf"^> AUTH {mechanism}\b", run.transcript, re.MULTILINE), run.transcript
    assert run.output == stored


def test_wrong_password_is_refused(server: Server) -> None:
    run = curl(server, login=f"{USER}:not-the-password")
    assert run.code == 67, run.transcript  # CURLE_LOGIN_DENIED
    assert re.search(r"^< -ERR \[AUTH\]", run.transcript, re.MULTILINE), run.transcript


def test_second_session_of_the_user_gets_in_use(server: Server) -> None:
    deliver(server, "held\r\n")
    holder = pop3s_login(server)
    try:
        run = curl(server, implicit=True)
        assert run.code != 0
        assert re.search(r"^< -ERR \[IN-USE\]", run.transcript, re.MULTILINE), run.transcript
    finally:
        holder.quit()
    run = curl(server, implicit=True)
    assert run.code == 0, run.transcript
    assert len(listing(run.output)) == 1
