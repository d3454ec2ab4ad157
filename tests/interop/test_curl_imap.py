"""curl's IMAP client against a real ``postoffice serve``, on both store formats.

curl reads a mailbox by URL (RFC 5092 IMAP URLs, as curl implements them):
``imap://host:port/`` lists the mailboxes (LIST), ``.../INBOX;UID=N``
selects INBOX and fetches message N by UID (``UID FETCH N BODY[]``),
``.../;SECTION=HEADER`` or ``TEXT`` one part of it, ``.../INBOX;UIDVALIDITY=V``
fetches only while the mailbox's UIDVALIDITY is V, ``.../INBOX?QUERY``
searches (SEARCH), ``-X`` sends another command instead, and ``-T FILE``
appends FILE to the mailbox of the URL. What curl prints on stdout is the
message (or the untagged responses of a custom command), so a fetched
message must be the octets the server was given, octet for octet: with the
mbox store too, where a body line starting with ``From `` is quoted on disk.
With ``imap://`` and ``--ssl-reqd`` curl first upgrades with STARTTLS;
``imaps://`` is implicit TLS on the ``imaps`` port. Either way curl verifies
the self-signed certificate against ``--cacert`` and logs in only once TLS
is up.

What curl shows is checked against what stdlib ``imaplib`` reads from the
same server (``tests/interop/imapsync.py``).

Skipped only when curl is not installed (Debian package ``curl``; ``.ci/run``
installs it).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.interop.imapsync import (
    address,
    check,
    deliver,
    imaps_login,
    quoted,
    serve,
    server_mailboxes,
)
from tests.interop.mailserver import (
    PASSWORD,
    ClientRun,
    Server,
    require_client,
    run_curl,
    split_trace,
)

require_client("curl", "curl")

USER = "demo"
HOST = "127.0.0.1"
TLS_USED = re.compile(r"^\* SSL connection using (TLSv[\d.]+) / (\S+)\r?$", re.MULTILINE)
LOGIN_DENIED = 67  # CURLE_LOGIN_DENIED
NOT_FOUND = 78  # CURLE_REMOTE_FILE_NOT_FOUND
# A body that the stores must give back as it came: dot lines (SMTP
# transparency), ``From `` and ``>From `` lines (mbox quoting), a long line.
BODY = (
    "Hello,\r\n"
    ".a line with a leading dot\r\n"
    "..and one with two\r\n"
    "From the start of a line, as mbox separators are\r\n"
    ">From an already quoted line\r\n" + "x" * 900 + "\r\n"
    "\r\n"
    "last line\r\n"
)


@pytest.fixture(scope="module", params=["maildir", "mbox"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    yield from serve(tmp_path_factory, request.param, (USER,))


@dataclass
class CurlRun(ClientRun):
    """curl -v: the transcript ("> " sent, "< " received, "* " notes) and stdout.

    IMAP queues nothing, so ``QUEUED`` is left undefined here.
    """

    output: bytes = b""
    TLS_USED = TLS_USED

    def sent(self, pattern: str) -> int:
        """Where the transcript first shows a command matching PATTERN (after its tag)
        sent; -1 if never."""
        found = re.search(rf"^> A\d+ {pattern}\r?$", self.transcript, re.MULTILINE)
        return found.start() if found else -1

    def received(self, pattern: str) -> bool:
        return re.search(rf"^< {pattern}\r?$", self.transcript, re.MULTILINE) is not None


def curl(
    server: Server,
    *args: str,
    path: str = "/",
    implicit: bool = True,
    login: str = f"{address(USER)}:{PASSWORD}",
    tls: bool = True,
) -> CurlRun:
    """``curl -v`` on ``imaps://`` (``implicit``) or ``imap://`` (STARTTLS with --ssl-reqd)."""
    if implicit:
        url = f"imaps://{HOST}:{server.imaps_port}{path}"
    else:
        url = f"imap://{HOST}:{server.imap_port}{path}"
    code, transcript, output = run_curl(
        url, server.cert, login, args, require_tls=tls and not implicit
    )
    return CurlRun(code, transcript, output)


def delivered(server: Server, body: str = BODY) -> tuple[int, bytes]:
    """A new message in demo's INBOX by SMTP: (its UID, the message as sent)."""
    subject = f"curl imap {uuid.uuid4().hex}"
    (sent,) = deliver(server, USER, subject, body=body)
    client = imaps_login(server, USER)
    try:
        check(client.select("INBOX", readonly=True), "EXAMINE INBOX")
        (found,) = check(client.uid("SEARCH", "HEADER", "Subject", quoted(subject)), "SEARCH")
        assert isinstance(found, bytes) and len(found.split()) == 1, found
    finally:
        client.logout()
    return int(found), sent


def stored(server: Server, mailbox: str, uid: int) -> tuple[bytes, set[str]]:
    """A message's octets and flags as imaplib reads them (BODY.PEEK: no flag changes)."""
    client = imaps_login(server, USER)
    try:
        check(client.select(quoted(mailbox), readonly=True), f"EXAMINE {mailbox}")
        data = check(client.uid("FETCH", str(uid), "(FLAGS BODY.PEEK[])"), "FETCH")
    finally:
        client.logout()
    head, octets = next(item for item in data if isinstance(item, tuple))
    flags = re.search(rb"FLAGS \(([^)]*)\)", head)
    assert flags, head
    return octets, set(flags.group(1).decode("ascii").split())


def mailbox_status(server: Server, mailbox: str) -> dict[str, int]:
    client = imaps_login(server, USER)
    try:
        items = "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)"
        (line,) = check(client.status(quoted(mailbox), items), "STATUS")
    finally:
        client.logout()
    assert isinstance(line, bytes), line
    pairs = re.findall(rb"(\w+) (\d+)", line.rpartition(b"(")[2])
    return {name.decode("ascii"): int(value) for name, value in pairs}


@pytest.fixture(scope="module")
def reports(server: Server) -> str:
    """The mailbox ``Work/Reports`` of demo (a name with a parent), made once."""
    client = imaps_login(server, USER)
    try:
        check(client.create(quoted("Work/Reports")), "CREATE Work/Reports")
    finally:
        client.logout()
    return "Work/Reports"


def check_tls_first(run: CurlRun, implicit: bool) -> None:
    assert run.code == 0, run.transcript
    assert "SSL certificate verify ok." in run.transcript
    assert run.tls[0] in ("TLSv1.2", "TLSv1.3"), run.transcript
    login = max(run.sent("AUTHENTICATE PLAIN.*"), run.sent("LOGIN .*"))
    assert login > 0, run.transcript
    if implicit:
        assert run.sent("STARTTLS") == -1
    else:
        assert 0 < run.sent("STARTTLS") < login, "curl logged in before STARTTLS"


@pytest.mark.parametrize("implicit", [True, False], ids=["imaps", "starttls"])
def test_list_shows_every_mailbox(server: Server, reports: str, implicit: bool) -> None:
    run = curl(server, implicit=implicit)
    check_tls_first(run, implicit)
    assert run.sent('LIST "" \\*') > 0, run.transcript
    lines = run.output.decode("ascii").split("\r\n")
    assert lines[-1] == "", run.output  # every line ends in CRLF
    assert all(line.startswith("* LIST (") for line in lines[:-1]), run.output
    client = imaps_login(server, USER)
    try:
        expected = check(client.list(), "LIST")
        names = server_mailboxes(client)
    finally:
        client.logout()
    assert sorted(line.removeprefix("* LIST ") for line in lines[:-1]) == sorted(
        line.decode("ascii") for line in expected if isinstance(line, bytes)
    )
    assert {"INBOX", "Work", reports, "Drafts", "Sent", "Trash"} <= set(names)
    assert f'"/" "{reports}"' in run.output.decode("ascii")


@pytest.mark.parametrize("implicit", [True, False], ids=["imaps", "starttls"])
def test_fetch_by_uid_gives_the_octets_as_sent(server: Server, implicit: bool) -> None:
    uid, sent = delivered(server)
    octets, flags = stored(server, "INBOX", uid)
    assert "\\Seen" not in flags
    run = curl(server, path=f"/INBOX;UID={uid}", implicit=implicit)
    check_tls_first(run, implicit)
    assert run.sent(f"UID FETCH {uid} BODY\\[\\]") > 0, run.transcript
    assert run.output == octets
    fields, message = split_trace(run.output)
    assert [name.lower() for name, _ in fields] == ["return-path", "delivered-to", "received"]
    assert message == sent
    # RFC 3501 §6.4.5: BODY[] (not BODY.PEEK[]) sets \Seen.
    assert "\\Seen" in stored(server, "INBOX", uid)[1]


def test_fetch_sections_of_a_message_in_a_nested_mailbox(server: Server, reports: str) -> None:
    # A message that does not end in CRLF: the stores keep its octets exactly.
    appended = (
        "From: Writer <writer@example.test>\r\n"
        "Subject: appended report\r\n"
        "\r\n" + BODY + "no line end after this"
    ).encode("ascii")
    client = imaps_login(server, USER)
    try:
        (answer,) = check(client.append(quoted(reports), None, None, appended), "APPEND")
    finally:
        client.logout()
    found = re.search(rb"\[APPENDUID \d+ (\d+)\]", answer if isinstance(answer, bytes) else b"")
    assert found, answer
    uid = int(found.group(1))
    header, _, text = appended.partition(b"\r\n\r\n")

    whole = curl(server, path=f"/{reports};UID={uid}")
    assert whole.code == 0, whole.transcript
    assert whole.sent(f'SELECT "?{reports}"?') > 0, whole.transcript
    assert whole.output == appended
    head = curl(server, path=f"/{reports};UID={uid}/;SECTION=HEADER")
    assert head.code == 0, head.transcript
    assert head.output == header + b"\r\n\r\n"  # RFC 3501 §6.4.5: the blank line included
    body = curl(server, path=f"/{reports};UID={uid}/;SECTION=TEXT")
    assert body.code == 0, body.transcript
    assert body.output == text


def test_uidvalidity_in_the_url_must_match(server: Server) -> None:
    uid, _ = delivered(server, "checked\r\n")
    uidvalidity = mailbox_status(server, "INBOX")["UIDVALIDITY"]
    run = curl(server, path=f"/INBOX;UIDVALIDITY={uidvalidity}/;UID={uid}")
    assert run.code == 0, run.transcript
    assert run.output.endswith(b"\r\n\r\nchecked\r\n")
    run = curl(server, path=f"/INBOX;UIDVALIDITY={uidvalidity + 1}/;UID={uid}")
    assert run.code == NOT_FOUND, run.transcript
    assert run.received(f"\\* OK \\[UIDVALIDITY {uidvalidity}\\].*"), run.transcript
    assert run.output == b""


def test_missing_message_and_missing_mailbox_fail(server: Server) -> None:
    uidnext = mailbox_status(server, "INBOX")["UIDNEXT"]
    run = curl(server, path=f"/INBOX;UID={uidnext}")
    assert run.code == NOT_FOUND, run.transcript
    assert run.received(r"A\d+ OK .*"), run.transcript  # no such UID: no data, no error
    assert run.output == b""
    run = curl(server, path="/No such mailbox;UID=1".replace(" ", "%20"))
    assert run.code == LOGIN_DENIED, run.transcript  # curl's code for a failed SELECT
    assert run.received(r"A\d+ NO \[NONEXISTENT\].*"), run.transcript
    assert run.output == b""


def test_search_by_url_query(server: Server) -> None:
    mark = uuid.uuid4().hex
    uid, _ = delivered(server, f"the word {mark} is in here\r\n")
    client = imaps_login(server, USER)
    try:
        check(client.select("INBOX", readonly=True), "EXAMINE INBOX")
        (numbers,) = check(client.search(None, "BODY", mark), "SEARCH")
        (uids,) = check(client.uid("SEARCH", "BODY", mark), "UID SEARCH")
    finally:
        client.logout()
    assert isinstance(numbers, bytes) and len(numbers.split()) == 1, numbers
    assert uids == str(uid).encode()  # the one just delivered
    run = curl(server, path=f"/INBOX?BODY%20{mark}")
    assert run.code == 0, run.transcript
    assert run.sent(f"SEARCH BODY {mark}") > 0, run.transcript
    assert run.output == b"* SEARCH " + numbers + b"\r\n"


def test_examine_by_custom_request(server: Server) -> None:
    uid, _ = delivered(server, "examined\r\n")
    before = stored(server, "INBOX", uid)
    status = mailbox_status(server, "INBOX")
    run = curl(server, "--request", "EXAMINE INBOX")
    assert run.code == 0, run.transcript
    output = run.output.decode("ascii")
    assert f"* {status['MESSAGES']} EXISTS\r\n" in output
    assert f"* OK [UIDVALIDITY {status['UIDVALIDITY']}] " in output
    assert f"* OK [UIDNEXT {status['UIDNEXT']}] " in output
    assert "* OK [PERMANENTFLAGS ()] " in output  # read-only: no flag can be changed
    assert run.received(r"A\d+ OK \[READ-ONLY\] .*"), run.transcript
    assert stored(server, "INBOX", uid) == before


def test_status_by_custom_request(server: Server) -> None:
    status = mailbox_status(server, "INBOX")
    run = curl(server, "--request", "STATUS INBOX (MESSAGES UIDNEXT UNSEEN)")
    assert run.code == 0, run.transcript
    items = f"MESSAGES {status['MESSAGES']} UIDNEXT {status['UIDNEXT']} UNSEEN {status['UNSEEN']}"
    # The name as an atom or a quoted string (RFC 3501 §9 mailbox: astring).
    assert run.output.decode("ascii") in (
        f"* STATUS INBOX ({items})\r\n",
        f'* STATUS "INBOX" ({items})\r\n',
    )


@pytest.mark.parametrize("implicit", [True, False], ids=["imaps", "starttls"])
def test_upload_appends_the_file(
    server: Server, reports: str, tmp_path: Path, implicit: bool
) -> None:
    content = (
        "From: Uploader <uploader@example.test>\r\n"
        f"Subject: uploaded {uuid.uuid4().hex}\r\n"
        "\r\n" + BODY
    ).encode("ascii")
    upload = tmp_path / "upload.eml"
    upload.write_bytes(content)
    messages = mailbox_status(server, reports)["MESSAGES"]
    run = curl(server, "--upload-file", str(upload), path=f"/{reports}", implicit=implicit)
    check_tls_first(run, implicit)
    assert run.sent(rf'APPEND "?{reports}"? \(\\Seen\) \{{{len(content)}\}}') > 0, run.transcript
    found = re.search(r"^< A\d+ OK \[APPENDUID \d+ (\d+)\]", run.transcript, re.MULTILINE)
    assert found, run.transcript
    uid = int(found.group(1))
    assert mailbox_status(server, reports)["MESSAGES"] == messages + 1
    assert stored(server, reports, uid) == (content, {"\\Seen"})
    fetched = curl(server, path=f"/{reports};UID={uid}", implicit=implicit)
    assert fetched.output == content


def test_no_login_without_tls(server: Server) -> None:
    """Plain imap:// without --ssl-reqd: the server offers no way to log in before
    STARTTLS (LOGINDISABLED, no AUTH=), so curl has none to try."""
    run = curl(server, implicit=False, tls=False)
    assert run.code == LOGIN_DENIED, run.transcript
    assert run.received(r"\* CAPABILITY .*\bLOGINDISABLED\b.*"), run.transcript
    assert not re.search(r"^< \* CAPABILITY .*AUTH=", run.transcript, re.MULTILINE)
    assert run.sent("AUTHENTICATE.*") == -1 and run.sent("LOGIN.*") == -1
    assert run.output == b""


@pytest.mark.parametrize("implicit", [True, False], ids=["imaps", "starttls"])
def test_wrong_password_is_refused(server: Server, implicit: bool) -> None:
    run = curl(server, implicit=implicit, login=f"{address(USER)}:not-the-password")
    assert run.code == LOGIN_DENIED, run.transcript
    assert run.received(r"A\d+ NO \[AUTHENTICATIONFAILED\].*"), run.transcript
    assert run.sent('LIST "" \\*') == -1
    assert run.output == b""
