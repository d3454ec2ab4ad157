"""POP3 against a real ``postoffice serve``: stdlib ``poplib`` over STLS and POP3S.

Mail arrives the way it does in life (SMTP into the server, local delivery),
then POP3 clients read it. The suite runs on both store formats.
"""

from __future__ import annotations

import asyncio
import base64
import poplib
import re
import smtplib
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from scramp import ScramClient

from postoffice.config.loader import load_config
from postoffice.store import StoreFactory
from postoffice.store.api import SEEN
from postoffice.store.layout import layout_from_config

from .smtp_fixtures import DOMAIN, HOST, PASSWORD, SmtpServer, set_config_values, wait_for

FAIL_DELAY = 0.3
USERS = tuple(f"u{n}" for n in range(16))
_handed_out: dict[int, int] = {}


@pytest.fixture(scope="module", params=["maildir", "mbox"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SmtpServer]:
    """One server per store format for the module; each test takes users of its own."""
    data = tmp_path_factory.mktemp(f"pop3-{request.param}") / "var"
    srv = SmtpServer(data, users=USERS).setup()
    set_config_values(srv.config, "store", {"format": request.param})
    set_config_values(srv.config, "server", {"workers": 2})  # what one worker knows, both must
    set_config_values(
        srv.config,
        "pop3",
        {"login_failure_delay": FAIL_DELAY, "login_failure_delay_max": 4 * FAIL_DELAY},
    )
    try:
        yield srv.start()
    finally:
        srv.stop()


def fresh_user(server: SmtpServer) -> str:
    number = _handed_out.get(id(server), 0)
    assert number < len(USERS), "more tests than users: add users"
    _handed_out[id(server)] = number + 1
    return f"{USERS[number]}@{DOMAIN}"


@pytest.fixture
def user(server: SmtpServer) -> str:
    return fresh_user(server)


def tls_context(server: SmtpServer) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=server.cafile)
    context.check_hostname = False
    return context


def deliver(server: SmtpServer, user: str, *subjects: str) -> None:
    """Send one message per subject by SMTP, each once the one before is in the mailbox."""
    sent = re.compile(rf"to=<{re.escape(user)}>.*status=sent")
    for subject in subjects:
        before = len(sent.findall(server.maillog()))
        with smtplib.SMTP(HOST, server.port, timeout=10) as client:
            client.sendmail(
                "sender@remote.test",
                [user],
                f"From: sender@remote.test\r\nSubject: {subject}\r\n\r\nbody of {subject}\r\n",
            )
        wait_for(
            lambda count=before: len(sent.findall(server.maillog())) > count,
            what=f"the delivery of {subject!r} to {user}",
        )


def login(server: SmtpServer, user: str, *, ssl_port: bool = False) -> poplib.POP3:
    if ssl_port:
        client: poplib.POP3 = poplib.POP3_SSL(
            HOST, server.pop3s_port, context=tls_context(server), timeout=10
        )
    else:
        client = poplib.POP3(HOST, server.pop3_port, timeout=10)
        client.stls(tls_context(server))
    client.user(user)
    client.pass_(PASSWORD)
    return client


def drop(client: poplib.POP3) -> None:
    """End the connection without QUIT, as a crashed client or a lost network would."""
    client.sock.shutdown(socket.SHUT_RDWR)
    client.sock.close()
    client.file.close()


def subjects(client: poplib.POP3) -> list[str]:
    count, _ = client.stat()
    found = []
    for number in range(1, count + 1):
        _, lines, _ = client.retr(number)
        text = b"\n".join(lines).decode()
        match = re.search(r"^Subject: (.*)$", text, re.M)
        assert match is not None, text
        found.append(match.group(1))
    return found


def test_download_over_stls_and_pop3s(server: SmtpServer, user: str) -> None:
    deliver(server, user, "first", "second")
    for ssl_port in (False, True):
        client = login(server, user, ssl_port=ssl_port)
        assert client.stat()[0] == 2
        assert subjects(client) == ["first", "second"]
        client.quit()
    login_line = (
        rf"pop3-login\[\d+\]: Login: user=<{re.escape(user)}>, method=USER, rip=127\.0\.0\.1, TLS"
    )
    assert len(re.findall(login_line, server.maillog())) == 2


def test_sizes_match_the_octets_retr_sends(server: SmtpServer, user: str) -> None:
    deliver(server, user, "sized")
    client = login(server, user)
    count, total = client.stat()
    _, listing, _ = client.list()
    size = int(listing[0].split()[1])
    _, lines, octets = client.retr(1)
    # poplib's octet count is what came on the wire, line ends included, minus
    # the terminating line; undoing dot-stuffing gives RFC 1939's size.
    stuffed = sum(1 for line in lines if line.startswith(b".."))
    assert (count, total) == (1, size)
    assert octets - stuffed == size
    client.quit()


def test_capa_and_plaintext_login_refused_without_tls(server: SmtpServer, user: str) -> None:
    client = poplib.POP3(HOST, server.pop3_port, timeout=10)
    capa = client.capa()
    assert "STLS" in capa and "UIDL" in capa and "TOP" in capa
    assert "USER" not in capa and "SASL" not in capa
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        client.user(user)
    client.quit()
    assert f"user=<{user}>" not in server.maillog()


def test_deletion_happens_only_at_quit(server: SmtpServer, user: str) -> None:
    deliver(server, user, "keep", "drop")
    client = login(server, user)
    client.dele(2)
    with pytest.raises(poplib.error_proto):
        client.retr(2)
    drop(client)  # RFC 1939 §6: no QUIT, no UPDATE state, nothing deleted
    server.wait_log(rf"pop3\({re.escape(user)}\)\[\d+\]: Disconnected: .*nothing deleted")
    client = login(server, user)
    assert subjects(client) == ["keep", "drop"]
    client.dele(2)
    client.rset()
    assert client.stat()[0] == 2
    client.dele(2)
    client.quit()
    client = login(server, user)
    assert subjects(client) == ["keep"]
    client.quit()
    logged_out = rf"pop3\({re.escape(user)}\)\[\d+\]: Disconnected: Logged out .*del=1/2"
    assert re.search(logged_out, server.maillog())


def test_uidl_is_stable_across_sessions_and_restarts(server: SmtpServer, user: str) -> None:
    deliver(server, user, "one", "two")
    client = login(server, user)
    _, before, _ = client.uidl()
    client.quit()
    server.stop()
    server.start()
    deliver(server, user, "three")
    client = login(server, user)
    _, after, _ = client.uidl()
    client.quit()
    assert len(before) == 2 and after[:2] == before
    uids = [line.split()[1] for line in after]
    assert len(set(uids)) == 3
    assert all(re.fullmatch(rb"[\x21-\x7e]{1,70}", uid) for uid in uids)


def test_uidl_survives_a_rebuild_of_the_index(server: SmtpServer, user: str) -> None:
    deliver(server, user, "kept one", "kept two")
    client = login(server, user)
    _, before, _ = client.uidl()
    client.quit()
    loaded = load_config(server.config)
    factory = StoreFactory(layout_from_config(loaded.config, loaded.paths))

    async def uidvalidity() -> int:
        store = await factory.open(user)
        try:
            return (await store.status("INBOX")).uidvalidity
        finally:
            await store.close()

    old = asyncio.run(uidvalidity())
    server.stop()
    # A corrupt index is set aside and rebuilt from the mail files, with a new UIDVALIDITY.
    factory.paths(user).index_path.write_bytes(b"not a database" * 100)
    server.start()
    client = login(server, user)
    _, after, _ = client.uidl()
    client.quit()
    assert asyncio.run(uidvalidity()) != old
    assert [line.split()[1] for line in after] == [line.split()[1] for line in before]


def test_a_second_session_of_the_user_gets_in_use(server: SmtpServer, user: str) -> None:
    first = login(server, user)
    second = poplib.POP3(HOST, server.pop3_port, timeout=10)
    second.stls(tls_context(server))
    second.user(user)
    with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
        second.pass_(PASSWORD)
    other = login(server, fresh_user(server))  # another user is not concerned
    other.quit()
    first.quit()
    second.user(user)
    second.pass_(PASSWORD)  # the lock went with the first session
    second.quit()


def test_a_dropped_session_releases_the_lock(server: SmtpServer, user: str) -> None:
    drop(login(server, user))
    wait_for(lambda: try_login(server, user), what="a login after the drop")


def try_login(server: SmtpServer, user: str) -> bool:
    try:
        login(server, user).quit()
    except poplib.error_proto:
        return False
    return True


def test_retr_marks_the_message_seen_for_imap(server: SmtpServer, user: str) -> None:
    deliver(server, user, "read me", "leave me")
    client = login(server, user)
    client.retr(1)
    client.top(2, 0)  # TOP is not a download
    client.quit()
    loaded = load_config(server.config)
    factory = StoreFactory(layout_from_config(loaded.config, loaded.paths))

    async def flags() -> list[frozenset[str]]:
        store = await factory.open(user)
        try:
            return [info.flags for info in await store.messages("INBOX")]
        finally:
            await store.close()

    assert [SEEN in f for f in asyncio.run(flags())] == [True, False]


def store_factory(server: SmtpServer) -> StoreFactory:
    loaded = load_config(server.config)
    return StoreFactory(layout_from_config(loaded.config, loaded.paths))


def test_a_message_renamed_by_imap_during_the_session_is_still_read(
    server: SmtpServer, user: str
) -> None:
    # The session read where each message's file was at login; a flag change
    # renames a Maildir file, and RETR must then find it through the index.
    deliver(server, user, "flagged later", "untouched")
    client = login(server, user)

    async def flag_first() -> None:
        store = await store_factory(server).open(user)
        try:
            first = (await store.messages("INBOX"))[0].uid
            await store.store_flags("INBOX", [first], ["\\Flagged", "\\Answered"])
        finally:
            await store.close()

    asyncio.run(flag_first())
    assert subjects(client) == ["flagged later", "untouched"]
    client.quit()
    assert "unreadable" not in server.maillog()


def test_quit_leaves_a_message_seen_before_the_session_as_it_was(
    server: SmtpServer, user: str
) -> None:
    deliver(server, user, "read in imap", "new")

    async def seen_first() -> list[int]:
        store = await store_factory(server).open(user)
        try:
            first = (await store.messages("INBOX"))[0].uid
            await store.store_flags("INBOX", [first], [SEEN])
            return [info.modseq for info in await store.messages("INBOX")]
        finally:
            await store.close()

    async def modseqs() -> list[tuple[int, bool]]:
        store = await store_factory(server).open(user)
        try:
            return [(i.modseq, SEEN in i.flags) for i in await store.messages("INBOX")]
        finally:
            await store.close()

    before = asyncio.run(seen_first())
    client = login(server, user)
    assert subjects(client) == ["read in imap", "new"]
    client.quit()
    (first_modseq, first_seen), (second_modseq, second_seen) = asyncio.run(modseqs())
    assert first_seen and first_modseq == before[0]  # no change was written for it
    assert second_seen and second_modseq > before[1]


def test_each_session_lists_the_mailbox_as_it_is_now(server: SmtpServer, user: str) -> None:
    # A worker keeps the listing of a maildrop whose mailbox has not changed;
    # a delivery, an expunge or a flag change from elsewhere must show at the
    # next login, whichever worker takes it.
    deliver(server, user, "one")

    def session() -> list[str]:
        client = login(server, user)
        try:
            return subjects(client)
        finally:
            client.quit()

    for _ in range(4):
        assert session() == ["one"]
    deliver(server, user, "two")
    for _ in range(4):
        assert session() == ["one", "two"]

    async def change() -> None:
        store = await store_factory(server).open(user)
        try:
            first, second = [info.uid for info in await store.messages("INBOX")]
            await store.store_flags("INBOX", [first], ["\\Deleted"])
            await store.expunge("INBOX", [first])
            await store.store_flags("INBOX", [second], ["\\Flagged"])  # renames its file
        finally:
            await store.close()

    asyncio.run(change())
    for _ in range(4):
        assert session() == ["two"]
    assert "unreadable" not in server.maillog()


def test_failed_logins_wait_and_look_alike(server: SmtpServer, user: str) -> None:
    timings = []
    answers = []
    # A connection each: whichever worker takes it, the count is the server's.
    for name, password in ((user, "wrong"), ("nobody@example.test", PASSWORD), (user, "x")):
        client = poplib.POP3(HOST, server.pop3_port, timeout=10)
        client.stls(tls_context(server))
        client.user(name)
        started = time.monotonic()
        with pytest.raises(poplib.error_proto) as failure:
            client.pass_(password)
        timings.append(time.monotonic() - started)
        answers.append(str(failure.value))
        client.quit()
    assert len(set(answers)) == 1 and "[AUTH]" in answers[0]
    # 0.3 s, then 0.6, then 1.2 (doubling per failure from one address); the
    # password check itself (argon2) adds its own time to each.
    assert timings[0] >= FAIL_DELAY * 0.9
    assert timings[1] >= 2 * FAIL_DELAY * 0.9
    assert timings[2] >= 4 * FAIL_DELAY * 0.9
    assert server.maillog().count("user=<nobody@example.test>, method=USER") == 1
    login(server, user).quit()  # a success starts the count again for the next tests


def test_text_pipelined_behind_stls_is_dropped(server: SmtpServer, user: str) -> None:
    with socket.create_connection((HOST, server.pop3_port), timeout=10) as raw:
        assert raw.recv(1024).startswith(b"+OK")
        raw.sendall(b"STLS\r\nUSER " + user.encode() + b"\r\n")
        reply = b""
        while not reply.endswith(b"\r\n"):
            reply += raw.recv(1)
        assert reply.startswith(b"+OK")
        with tls_context(server).wrap_socket(raw) as tls:
            tls.sendall(b"PASS " + PASSWORD.encode() + b"\r\n")
            answer = tls.recv(1024)
    assert answer.startswith(b"-ERR")  # the USER sent in plaintext was never seen
    assert f"user=<{user}>" not in server.maillog()


def test_a_long_line_without_crlf_is_refused_with_bounded_memory(server: SmtpServer) -> None:
    before = server.memory_kb()
    with socket.create_connection((HOST, server.pop3_port), timeout=30) as raw:
        raw.recv(1024)
        chunk = b"x" * 65536
        for _ in range(160):  # 10 MiB, no line end
            raw.sendall(chunk)
        raw.sendall(b"\r\nNOOP\r\n")
        answers = b""
        while answers.count(b"\r\n") < 2:
            data = raw.recv(4096)
            if not data:
                break
            answers += data
    assert answers.startswith(b"-ERR")
    assert server.memory_kb() - before < 16 * 1024


def test_an_idle_session_is_closed_and_its_maildrop_freed(tmp_path: Path) -> None:
    srv = SmtpServer(tmp_path / "var", users=("idle",)).setup()
    set_config_values(srv.config, "pop3", {"idle_timeout": 1.0})
    user = f"idle@{DOMAIN}"
    try:
        srv.start()
        client = login(srv, user)
        time.sleep(1.5)
        with pytest.raises(poplib.error_proto, match=r"\[SYS/TEMP\]"):
            client.noop()  # what the server said as it closed
        client.close()
        srv.wait_log(rf"pop3\({re.escape(user)}\)\[\d+\]: Disconnected: Inactivity")
        login(srv, user).quit()  # the lock went with the idle session
    finally:
        srv.stop()


def scram_auth(client: poplib.POP3, user: str, password: str) -> bytes:
    """AUTH SCRAM-SHA-256 (RFC 5034 §4) with scramp as the client; the last line."""
    scram = ScramClient(["SCRAM-SHA-256"], user, password)
    first = base64.b64encode(scram.get_client_first().encode()).decode()
    line = client._shortcmd(f"AUTH SCRAM-SHA-256 {first}")
    assert line.startswith(b"+ "), line
    scram.set_server_first(base64.b64decode(line[2:]).decode())
    final = base64.b64encode(scram.get_client_final().encode()).decode()
    try:
        line = client._shortcmd(final)
    except poplib.error_proto as refused:
        return bytes(refused.args[0])
    if line.startswith(b"+ "):
        scram.set_server_final(base64.b64decode(line[2:]).decode())  # the server had the keys
        line = client._shortcmd("")
    return line


def test_scram_sha_256_login(server: SmtpServer, user: str) -> None:
    deliver(server, user, "scram")
    client = poplib.POP3(HOST, server.pop3_port, timeout=10)
    client.stls(context=tls_context(server))
    assert "SCRAM-SHA-256" in client.capa()["SASL"]
    assert scram_auth(client, user, PASSWORD).startswith(b"+OK")
    assert client.stat()[0] == 1
    assert b"Subject: scram" in b"\r\n".join(client.retr(1)[1])
    client.quit()
    for name, password in ((user, "wrong"), (f"nobody@{DOMAIN}", PASSWORD)):
        client = poplib.POP3(HOST, server.pop3_port, timeout=10)
        client.stls(context=tls_context(server))
        assert scram_auth(client, name, password).startswith(b"-ERR [AUTH]")
        client.quit()
