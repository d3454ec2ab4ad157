"""IMAP against a real ``postoffice serve``: stdlib ``imaplib`` and ``imapclient``.

Mail arrives the way it does in life (SMTP into the server, local delivery),
then IMAP clients read, flag, move and expunge it, over STARTTLS and IMAPS.
The suite runs on both store formats, with two worker processes, so that
what one worker changes another's sessions must see.
"""

from __future__ import annotations

import imaplib
import poplib
import re
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from imapclient import IMAPClient
from scramp import ScramClient

from .smtp_fixtures import DOMAIN, HOST, PASSWORD, SmtpServer, set_config_values, wait_for

FAIL_DELAY = 0.3
USERS = tuple(f"i{n}" for n in range(28))
_handed_out: dict[int, int] = {}


@pytest.fixture(scope="module", params=["maildir", "mbox"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SmtpServer]:
    data = tmp_path_factory.mktemp(f"imap-{request.param}") / "var"
    srv = SmtpServer(data, users=USERS, store_format=request.param).setup()
    set_config_values(srv.config, "server", {"workers": 2})
    set_config_values(
        srv.config,
        "imap",
        {"login_failure_delay": FAIL_DELAY, "login_failure_delay_max": 4 * FAIL_DELAY},
    )
    try:
        yield srv.start()
    finally:
        srv.stop()


@pytest.fixture
def user(server: SmtpServer) -> str:
    number = _handed_out.get(id(server), 0)
    assert number < len(USERS), "more tests than users: add users"
    _handed_out[id(server)] = number + 1
    return f"{USERS[number]}@{DOMAIN}"


def tls_context(server: SmtpServer) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=server.cafile)
    context.check_hostname = False
    return context


def deliver(server: SmtpServer, user: str, *subjects: str, wait: bool = True) -> None:
    sent = re.compile(rf"to=<{re.escape(user)}>.*status=sent")
    for subject in subjects:
        before = len(sent.findall(server.maillog()))
        with smtplib.SMTP(HOST, server.port, timeout=10) as client:
            client.sendmail(
                "sender@remote.test",
                [user],
                f"From: Sender <sender@remote.test>\r\nTo: {user}\r\nSubject: {subject}\r\n"
                f"Date: Tue, 3 Feb 2026 10:00:00 +0000\r\n\r\nbody of {subject}\r\n",
            )
        if wait:
            wait_for(
                lambda count=before: len(sent.findall(server.maillog())) > count,
                what=f"the delivery of {subject!r}",
            )


def imaps(server: SmtpServer, user: str) -> imaplib.IMAP4_SSL:
    client = imaplib.IMAP4_SSL(HOST, server.imaps_port, ssl_context=tls_context(server), timeout=10)
    client.login(user, PASSWORD)
    return client


def client_for(server: SmtpServer, user: str) -> IMAPClient:
    client = IMAPClient(HOST, port=server.imaps_port, ssl_context=tls_context(server), timeout=10)
    client.login(user, PASSWORD)
    return client


# -- login --------------------------------------------------------------------------------


def test_plain_port_offers_starttls_and_refuses_login_before_it(
    server: SmtpServer, user: str
) -> None:
    client = imaplib.IMAP4(HOST, server.imap_port, timeout=10)
    try:
        assert "STARTTLS" in client.capabilities
        assert "LOGINDISABLED" in client.capabilities
        assert "AUTH=PLAIN" not in client.capabilities
        with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
            client.login(user, PASSWORD)
        client.starttls(tls_context(server))
        assert "LOGINDISABLED" not in client.capabilities
        typ, data = client.login(user, PASSWORD)
        assert typ == "OK"
        typ, data = client.capability()
        assert b"UIDPLUS" in data[0] and b"MOVE" in data[0]
    finally:
        client.logout()


def test_wrong_password_and_unknown_user_are_refused_alike(server: SmtpServer, user: str) -> None:
    answers = []
    for name, password in ((user, "wrong"), (f"nobody@{DOMAIN}", PASSWORD)):
        client = imaplib.IMAP4_SSL(HOST, server.imaps_port, ssl_context=tls_context(server))
        started = time.monotonic()
        with pytest.raises(imaplib.IMAP4.error) as caught:
            client.login(name, password)
        answers.append((str(caught.value), time.monotonic() - started >= FAIL_DELAY * 0.9))
        client.logout()
    assert answers[0] == answers[1]
    assert "AUTHENTICATIONFAILED" in answers[0][0]
    assert answers[0][1] is True
    assert "Aborted login (auth failed" in server.maillog()


def test_authenticate_plain_with_initial_response(server: SmtpServer, user: str) -> None:
    client = imaplib.IMAP4_SSL(HOST, server.imaps_port, ssl_context=tls_context(server))
    try:
        typ, _ = client.authenticate("PLAIN", lambda _: f"\0{user}\0{PASSWORD}".encode())
        assert typ == "OK"
        assert client.state == "AUTH"
    finally:
        client.logout()


def scram_authenticator(user: str, password: str) -> tuple[ScramClient, Callable[[bytes], bytes]]:
    """scramp behind imaplib's AUTHENTICATE callback: client-first, client-final,
    then the check of the server-final (and the empty answer to it)."""
    scram = ScramClient(["SCRAM-SHA-256"], user, password)

    def answer(challenge: bytes) -> bytes:
        if not challenge:
            return scram.get_client_first().encode()
        if challenge.startswith(b"r="):
            scram.set_server_first(challenge.decode())
            return scram.get_client_final().encode()
        scram.set_server_final(challenge.decode())  # raises unless the server had the keys
        return b""

    return scram, answer


def test_authenticate_scram_sha_256(server: SmtpServer, user: str) -> None:
    client = imaplib.IMAP4_SSL(HOST, server.imaps_port, ssl_context=tls_context(server))
    try:
        assert "AUTH=SCRAM-SHA-256" in client.capabilities
        typ, _ = client.authenticate("SCRAM-SHA-256", scram_authenticator(user, PASSWORD)[1])
        assert typ == "OK" and client.state == "AUTH"
        assert client.select("INBOX")[0] == "OK"
    finally:
        client.logout()
    assert f"user=<{user}>, method=SCRAM-SHA-256" in server.maillog()
    for name, password in ((user, "wrong"), (f"nobody@{DOMAIN}", PASSWORD)):
        client = imaplib.IMAP4_SSL(HOST, server.imaps_port, ssl_context=tls_context(server))
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            client.authenticate("SCRAM-SHA-256", scram_authenticator(name, password)[1])
        client.logout()


# -- reading ------------------------------------------------------------------------------


def test_select_fetch_and_seen(server: SmtpServer, user: str) -> None:
    deliver(server, user, "first", "second")
    client = imaps(server, user)
    try:
        typ, data = client.select("INBOX")
        assert (typ, data) == ("OK", [b"2"])
        typ, data = client.fetch("1:*", "(UID FLAGS RFC822.SIZE ENVELOPE)")
        assert typ == "OK"
        assert b'"first"' in data[0] and b'"second"' in data[1]
        assert b"FLAGS ()" in data[0]
        size = int(re.search(rb"RFC822.SIZE (\d+)", data[0]).group(1))  # type: ignore[union-attr]
        typ, data = client.fetch("1", "(BODY.PEEK[])")
        assert len(data[0][1]) == size
        assert data[0][1].endswith(b"body of first\r\n")
        typ, data = client.fetch("1", "(FLAGS)")
        assert b"\\Seen" not in data[0]  # PEEK leaves it unread
        typ, data = client.fetch("1", "(BODY[TEXT])")
        assert data[0][1] == b"body of first\r\n"
        assert b"\\Seen" in data[1] or b"\\Seen" in data[0][0]
        typ, data = client.fetch("2", "(BODY.PEEK[HEADER.FIELDS (Subject)])")
        assert data[0][1] == b"Subject: second\r\n\r\n"
    finally:
        client.logout()


def test_search_store_copy_move_expunge(server: SmtpServer, user: str) -> None:
    deliver(server, user, "alpha", "beta", "gamma")
    client = imaps(server, user)
    try:
        client.select("INBOX")
        assert client.search(None, "SUBJECT", "beta") == ("OK", [b"2"])
        assert client.uid("SEARCH", "OR", "SUBJECT", "alpha", "SUBJECT", "gamma") == (
            "OK",
            [b"1 3"],
        )
        typ, data = client.store("2", "+FLAGS", "(\\Flagged $Label1)")
        assert typ == "OK" and b"\\Flagged" in data[0] and b"$Label1" in data[0]
        assert client.search(None, "FLAGGED") == ("OK", [b"2"])
        assert client.search(None, "KEYWORD", "$Label1") == ("OK", [b"2"])
        client.create("Projects/2026")
        typ, data = client.copy("1", "Projects/2026")
        assert typ == "OK" and b"COPYUID" in data[0]
        typ, data = client.uid("MOVE", "3", "Projects/2026")
        assert typ == "OK"
        assert client.untagged_responses.pop("EXPUNGE") == [b"3"]  # RFC 6851 §3.3
        typ, data = client.status("Projects/2026", "(MESSAGES UIDNEXT)")
        assert b"MESSAGES 2" in data[0]
        typ, data = client.fetch("1:*", "(UID)")
        assert len(data) == 2  # gamma moved away
        client.store("1", "+FLAGS", "(\\Deleted)")
        typ, data = client.expunge()
        assert (typ, data) == ("OK", [b"1"])
        typ, data = client.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert b"beta" in data[0][1]
        typ, data = client.copy("1", "NoSuchBox")
        assert typ == "NO" and b"TRYCREATE" in data[0]
    finally:
        client.logout()


def test_append_and_list(server: SmtpServer, user: str) -> None:
    client = imaps(server, user)
    try:
        typ, data = client.append(
            "Drafts", "(\\Draft \\Seen)", None, b"Subject: draft\r\n\r\nunfinished\r\n"
        )
        assert typ == "OK" and b"APPENDUID" in data[0]
        typ, data = client.list()
        names = {line.rsplit(b" ", 1)[1].strip(b'"') for line in data}
        assert {b"INBOX", b"Drafts", b"Sent", b"Trash"} <= names
        assert any(b"\\Drafts" in line for line in data)
        client.select("Drafts", readonly=True)
        typ, data = client.fetch("1", "(FLAGS BODY[])")
        assert b"\\Draft" in data[0][0] and data[0][1].endswith(b"unfinished\r\n")
        typ, data = client.store("1", "+FLAGS", "(\\Flagged)")
        assert typ == "NO"  # EXAMINE: read-only
    finally:
        client.logout()


def test_imapclient_round_trip(server: SmtpServer, user: str) -> None:
    deliver(server, user, "for imapclient")
    with client_for(server, user) as client:
        client.select_folder("INBOX")
        uids = client.search(["SUBJECT", "imapclient"])
        assert len(uids) == 1
        data = client.fetch(uids, ["ENVELOPE", "BODYSTRUCTURE", "RFC822.SIZE", "INTERNALDATE"])
        envelope = data[uids[0]][b"ENVELOPE"]
        assert envelope.subject == b"for imapclient"
        assert envelope.from_[0].mailbox == b"sender" and envelope.from_[0].host == b"remote.test"
        assert data[uids[0]][b"BODYSTRUCTURE"][0].lower() == b"text"
        client.add_flags(uids, [b"\\Answered"])
        assert b"\\Answered" in client.get_flags(uids)[uids[0]]
        folders = [name for _, _, name in client.list_folders()]
        assert "INBOX" in folders
        client.create_folder("Projekte/Ärger")  # modified UTF-7 on the wire
        assert "Projekte/Ärger" in [name for _, _, name in client.list_folders()]
        client.move(uids, "Projekte/Ärger")
        assert client.folder_status("Projekte/Ärger", [b"MESSAGES"])[b"MESSAGES"] == 1


# -- sessions side by side -------------------------------------------------------------------


def test_two_sessions_see_each_others_changes(server: SmtpServer, user: str) -> None:
    deliver(server, user, "one", "two", "three")
    first, second = imaps(server, user), imaps(server, user)
    try:
        first.select("INBOX")
        second.select("INBOX")
        second.store("2", "+FLAGS", "(\\Seen \\Deleted)")
        second.expunge()
        assert first.noop()[0] == "OK"
        untagged = first.untagged_responses
        assert untagged.get("EXPUNGE") == [b"2"]
        _, data = first.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        subjects = [item[1] for item in data if isinstance(item, tuple)]
        assert subjects == [b"Subject: one\r\n\r\n", b"Subject: three\r\n\r\n"]
        second.store("2", "+FLAGS", "(\\Flagged)")
        first.noop()
        assert any(b"\\Flagged" in line for line in first.untagged_responses.get("FETCH", []))
    finally:
        first.logout()
        second.logout()


def test_condstore_with_imapclient_and_imaplib(server: SmtpServer, user: str) -> None:
    """RFC 7162 §3.1 as two clients written by others read it: imapclient enables
    CONDSTORE and reads HIGHESTMODSEQ, MODSEQ, FETCH CHANGEDSINCE, SEARCH MODSEQ's
    (MODSEQ n) and STATUS HIGHESTMODSEQ after imaplib (maybe in the other worker
    process) flagged a message; imaplib's STORE (UNCHANGEDSINCE) gets [MODIFIED]."""
    deliver(server, user, "one", "two", "three")
    aware, other = client_for(server, user), imaps(server, user)
    try:
        assert b"CONDSTORE" in aware.capabilities()
        assert aware.enable("CONDSTORE") == [b"CONDSTORE"]
        highest = aware.select_folder("INBOX")[b"HIGHESTMODSEQ"]
        fetched = aware.fetch([1, 2, 3], ["MODSEQ"])
        modseqs = {uid: data[b"MODSEQ"][0] for uid, data in fetched.items()}
        assert sorted(modseqs) == [1, 2, 3] and max(modseqs.values()) == highest
        other.select("INBOX")
        other.store("2", "+FLAGS", "(\\Flagged)")
        changed = aware.fetch([1, 2, 3], ["FLAGS"], modifiers=[f"CHANGEDSINCE {highest}"])
        assert list(changed) == [2] and changed[2][b"FLAGS"] == (b"\\Flagged",)
        flagged = changed[2][b"MODSEQ"][0]
        assert flagged > highest
        found = aware.search(["MODSEQ", str(highest + 1)])
        assert list(found) == [2] and found.modseq == flagged
        assert aware.folder_status("INBOX", ["HIGHESTMODSEQ"])[b"HIGHESTMODSEQ"] == flagged
        typ, _ = other.uid("STORE", "1:3", f"(UNCHANGEDSINCE {highest})", "+FLAGS", "(\\Seen)")
        assert typ == "OK"
        assert other.response("MODIFIED") == ("MODIFIED", [b"2"])
        seen = aware.fetch([1, 2, 3], ["FLAGS"])
        assert [seen[uid][b"FLAGS"] for uid in (1, 2, 3)] == [
            (b"\\Seen",),
            (b"\\Flagged",),
            (b"\\Seen",),
        ]
        assert all(seen[uid][b"MODSEQ"][0] > flagged for uid in (1, 3))
    finally:
        aware.logout()
        other.logout()


def test_idle_sees_a_delivery_within_a_second(server: SmtpServer, user: str) -> None:
    deliver(server, user, "before")
    with client_for(server, user) as client:
        client.select_folder("INBOX")
        client.idle()
        started = threading.Event()

        def send() -> None:
            started.wait(5)
            deliver(server, user, "during idle", wait=False)

        sender = threading.Thread(target=send)
        sender.start()
        started.set()
        begin = time.monotonic()
        seen: list[tuple[object, ...]] = []
        while time.monotonic() - begin < 10 and not any(b"EXISTS" in r for r in seen):
            seen += client.idle_check(timeout=1)  # type: ignore[arg-type]
        sender.join()
        client.idle_done()
        exists = [r for r in seen if len(r) > 1 and r[1] == b"EXISTS"]
        assert exists and exists[0][0] == 2


def test_idle_latency_is_under_a_second(server: SmtpServer, user: str) -> None:
    deliver(server, user, "warm-up")
    with client_for(server, user) as client:
        client.select_folder("INBOX")
        client.idle()
        deliver(server, user, "watched")  # returns once the delivery is logged
        delivered = time.monotonic()
        seen: list[object] = []
        while time.monotonic() - delivered < 5 and not seen:
            seen = [r for r in client.idle_check(timeout=0.2) if b"EXISTS" in r]  # type: ignore[operator]
        latency = time.monotonic() - delivered
        client.idle_done()
        assert seen, "no EXISTS during IDLE"
        assert latency < 1.0


# -- limits -------------------------------------------------------------------------------


def test_append_over_the_limit_gets_toobig_without_continuation(
    server: SmtpServer, user: str
) -> None:
    sock = ssl.create_default_context(cafile=server.cafile)
    sock.check_hostname = False
    raw = sock.wrap_socket(socket.create_connection((HOST, server.imaps_port), timeout=10))
    try:
        raw.recv(4096)
        raw.sendall(f"a LOGIN {user} {PASSWORD}\r\n".encode())
        assert b"a OK" in raw.recv(4096)
        raw.sendall(b"b APPEND INBOX {999999999}\r\n")
        answer = raw.recv(4096)
        assert answer.startswith(b"b NO [TOOBIG]")
        raw.sendall(b"c NOOP\r\n")
        assert b"c OK" in raw.recv(4096)
    finally:
        raw.close()


def test_three_bad_commands_before_login_end_the_session(server: SmtpServer) -> None:
    with socket.create_connection((HOST, server.imap_port), timeout=10) as raw:
        raw.recv(4096)
        raw.sendall(b"a FOO\r\nb BAR\r\nc BAZ\r\n")
        answer = b""
        while not answer.endswith(b"\r\n") or b"BYE" not in answer:
            chunk = raw.recv(4096)
            if not chunk:
                break
            answer += chunk
        assert answer.count(b" BAD ") == 3
        assert b"* BYE" in answer


def test_maillog_lines_for_login_and_logout(server: SmtpServer, user: str) -> None:
    client = imaps(server, user)
    client.select("INBOX")
    client.logout()
    wait_for(lambda: f"imap({user})" in server.maillog(), what="the logout line")
    log = server.maillog()
    assert re.search(rf"imap-login\[\d+\]: Login: user=<{re.escape(user)}>, method=LOGIN", log)
    assert re.search(rf"imap\({re.escape(user)}\).*Disconnected: Logged out .*select=1", log)


def test_serving_survives_a_client_that_vanishes(
    server: SmtpServer, user: str, tmp_path: Path
) -> None:
    raw = socket.create_connection((HOST, server.imap_port), timeout=10)
    raw.sendall(b"a CAPABILITY\r\nb NOOP\r\n")
    raw.close()
    client = imaps(server, user)
    assert client.noop()[0] == "OK"
    client.logout()


def test_pop3_deletions_reach_an_imap_session_as_expunges(server: SmtpServer, user: str) -> None:
    """Issue 5 §5: IMAP, POP3 and SMTP delivery on one mailbox at once. A POP3 client
    that retrieves and deletes at QUIT leaves IMAP with the right numbers: \\Seen on
    the one it read and kept, EXPUNGE for the one it deleted, EXISTS for new mail."""
    deliver(server, user, "p-one", "p-two", "p-three")
    client = imaps(server, user)
    try:
        client.select("INBOX")
        pop = poplib.POP3_SSL(HOST, server.pop3s_port, context=tls_context(server), timeout=10)
        try:
            pop.user(user)
            pop.pass_(PASSWORD)
            pop.retr(1)
            pop.dele(2)
            pop.quit()
        finally:
            pop.close()
        deliver(server, user, "p-four")
        assert client.noop()[0] == "OK"
        assert client.untagged_responses.pop("EXPUNGE") == [b"2"]
        assert client.untagged_responses.pop("EXISTS")[-1] == b"3"
        _, data = client.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        fetched = [item for item in data if isinstance(item, tuple)]
        assert [item[1] for item in fetched] == [
            b"Subject: p-one\r\n\r\n",
            b"Subject: p-three\r\n\r\n",
            b"Subject: p-four\r\n\r\n",
        ]
        assert b"\\Seen" in fetched[0][0] and b"\\Seen" not in fetched[1][0]
    finally:
        client.logout()
