"""Remote delivery against a scriptable far side: MX order, retries, refusals, TLS.

a.test's runner (``remote_site.Outpost``) sends to far.test, whose mail hosts
the loopback DNS server names and a ``ScriptedSmtpServer`` on 127.0.0.3
plays. Each test runs attempts one at a time with a clock it moves.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from postoffice.queue import RecipientState
from tests.dns_server import LoopbackDnsServer
from tests.integration.remote_site import START, outpost, write_config
from tests.scripted_smtp import Script, ScriptedSmtpServer, self_signed_context

FAR = "127.0.0.3"
UNUSED = "127.0.0.4"  # nothing listens here: connection refused


@pytest.fixture
def dns_server() -> Iterator[LoopbackDnsServer]:
    with LoopbackDnsServer() as server:
        server.add("far.test", "MX", "10 mx1.far.test.")
        server.add("mx1.far.test", "A", FAR)
        server.add("mail.a.test", "A", "127.0.0.2")
        yield server


@pytest.fixture
def far() -> Iterator[ScriptedSmtpServer]:
    with ScriptedSmtpServer(FAR, 0) as server:
        yield server


def config(
    tmp_path: Path, dns: LoopbackDnsServer, far: ScriptedSmtpServer, extra: str = ""
) -> Path:
    return write_config(tmp_path / "a", dns_port=dns.port, smtp_port=far.port, extra=extra)


async def test_a_message_goes_to_the_mx_host_crlf_and_dot_stuffed_and_leaves_the_queue(
    tmp_path: Path, dns_server: LoopbackDnsServer, far: ScriptedSmtpServer
) -> None:
    async with outpost(config(tmp_path, dns_server, far)) as site:
        queue_id = await site.enqueue("bob@far.test", "carol@far.test")
        await site.deliver(queue_id)
        assert await site.entries() == []
    (received,) = far.messages
    assert received.mail_from == "alice@a.test"
    assert [rcpt for rcpt, _ in received.rcpts] == ["bob@far.test", "carol@far.test"]
    assert received.data is not None
    # Stored with LF line ends; sent with CRLF; the far side has unstuffed the dot.
    assert received.data.endswith(b"\r\nfirst line\r\n.leading dot\r\nlast line\r\n")
    assert b"\n" not in received.data.replace(b"\r\n", b"")
    assert far.sessions[0].ehlo == "mail.a.test"
    assert any(line.startswith("MAIL FROM:<alice@a.test> SIZE=") for line in far.sessions[0].lines)


async def test_4xx_at_rcpt_is_retried_on_schedule_and_delivered_once(
    tmp_path: Path, dns_server: LoopbackDnsServer, far: ScriptedSmtpServer
) -> None:
    far.script = Script(rcpt=lambda _, seen: "450 4.2.0 greylisted" if seen == 0 else "250 ok")
    async with outpost(config(tmp_path, dns_server, far)) as site:
        queue_id = await site.enqueue("bob@far.test")
        await site.deliver(queue_id)
        entry = await site.entry(queue_id)
        assert entry is not None
        (status,) = entry.statuses
        assert status.state is RecipientState.DEFERRED
        assert status.next_attempt == START + 300  # Postfix's minimal_backoff_time
        assert status.remote_mta == "mx1.far.test"
        assert "450 4.2.0 greylisted" in (status.reply or "")
        site.clock.advance(100)
        await site.deliver(queue_id)  # not due yet: nothing is sent
        assert len(far.sessions) == 1
        site.clock.advance(200)
        await site.deliver(queue_id)
        assert await site.entries() == []
    assert len(far.messages) == 1
    assert await_no_notice_sent(far)


def await_no_notice_sent(far: ScriptedSmtpServer) -> bool:
    """No DSN went to the far side: every transaction there is alice's message."""
    return all(t.mail_from == "alice@a.test" for s in far.sessions for t in s.transactions)


async def test_connection_refused_at_the_first_mx_then_the_second_takes_it(
    tmp_path: Path, dns_server: LoopbackDnsServer, far: ScriptedSmtpServer
) -> None:
    dns_server.remove("far.test", "MX")
    dns_server.add("far.test", "MX", "10 mx0.far.test.")
    dns_server.add("far.test", "MX", "20 mx1.far.test.")
    dns_server.add("mx0.far.test", "A", UNUSED)
    async with outpost(config(tmp_path, dns_server, far)) as site:
        queue_id = await site.enqueue("bob@far.test")
        await site.deliver(queue_id)
        assert await site.entries() == []
    assert len(far.messages) == 1
    assert ("mx0.far.test", "A") in dns_server.queries


async def test_a_receiver_that_drops_the_connection_after_the_dot_defers_not_bounces(
    tmp_path: Path, dns_server: LoopbackDnsServer, far: ScriptedSmtpServer
) -> None:
    far.script = Script(drop_after_data=True)
    async with outpost(config(tmp_path, dns_server, far)) as site:
        queue_id = await site.enqueue("bob@far.test")
        await site.deliver(queue_id)
        entry = await site.entry(queue_id)
        assert entry is not None
        (status,) = entry.statuses
        assert status.state is RecipientState.DEFERRED
        assert "4.4.2" in (status.reply or "") and "end of data" in (status.reply or "")
        assert await site.notifications() == []
        far.script = Script()
        site.clock.advance(300)
        await site.deliver(queue_id)
        assert await site.entries() == []
    # At least once: the far side got it twice, the first copy unacknowledged.
    assert [t.accepted for s in far.sessions for t in s.transactions] == [False, True]


@pytest.mark.parametrize(
    ("extensions", "data", "recipient", "code"),
    [
        (("PIPELINING", "SMTPUTF8"), "Subject: caf\u00e9\n\nna\u00efve\n".encode(), "bob", "5.6.3"),
        (("PIPELINING", "8BITMIME"), b"Subject: hi\n\nplain\n", "b\u00f6b", "5.6.7"),
    ],
)
async def test_what_the_receiver_cannot_take_unchanged_is_bounced_not_sent(
    tmp_path: Path,
    dns_server: LoopbackDnsServer,
    far: ScriptedSmtpServer,
    extensions: tuple[str, ...],
    data: bytes,
    recipient: str,
    code: str,
) -> None:
    far.script = Script(extensions=extensions)
    async with outpost(config(tmp_path, dns_server, far)) as site:
        queue_id = await site.enqueue(f"{recipient}@far.test", data=data)
        await site.deliver(queue_id)
        assert await site.entry(queue_id) is None  # failed, so done
        dsn = await site.dsn()
    assert far.messages == []
    assert not any(line.startswith("MAIL") for line in far.sessions[0].lines)
    assert code in dsn.as_string()


async def test_without_8bitmime_a_7bit_message_still_goes(
    tmp_path: Path, dns_server: LoopbackDnsServer, far: ScriptedSmtpServer
) -> None:
    far.script = Script(extensions=())
    async with outpost(config(tmp_path, dns_server, far)) as site:
        await site.deliver(await site.enqueue("bob@far.test"))
        assert await site.entries() == []
    assert len(far.messages) == 1


async def test_starttls_is_used_and_an_injected_reply_is_not_believed(
    tmp_path: Path, dns_server: LoopbackDnsServer, far: ScriptedSmtpServer
) -> None:
    far.script = Script(tls_context=self_signed_context(tmp_path), starttls_injection=True)
    async with outpost(config(tmp_path, dns_server, far)) as site:
        await site.deliver(await site.enqueue("bob@far.test"))
        assert await site.entries() == []
    (session,) = far.sessions
    assert session.tls
    # After the handshake the client said EHLO again before anything else: the
    # "250 injected" line sent with the 220 was not taken as the EHLO's reply.
    after = session.lines[session.lines.index("STARTTLS") + 1 :]
    assert after[0].startswith("EHLO ") and after[1].startswith("MAIL FROM:")
    assert len(far.messages) == 1


async def test_tls_must_defers_when_the_receiver_offers_no_starttls(
    tmp_path: Path, dns_server: LoopbackDnsServer, far: ScriptedSmtpServer
) -> None:
    extra = 'tls_must_domains = ["far.test"]\n'
    async with outpost(config(tmp_path, dns_server, far, extra)) as site:
        queue_id = await site.enqueue("bob@far.test")
        await site.deliver(queue_id)
        entry = await site.entry(queue_id)
        assert entry is not None
        assert entry.statuses[0].state is RecipientState.DEFERRED
        assert "4.7.4" in (entry.statuses[0].reply or "")
    assert far.messages == []


async def test_a_smart_host_with_auth_takes_everything_without_an_mx_lookup(
    tmp_path: Path, dns_server: LoopbackDnsServer, far: ScriptedSmtpServer
) -> None:
    far.script = Script(tls_context=self_signed_context(tmp_path), auth=("relayuser", "s3cret"))
    extra = (
        f'relayhost = "[{FAR}]:{far.port}"\nrelayhost_username = "relayuser"\n'
        'relayhost_password = "s3cret"\n'
    )
    async with outpost(config(tmp_path, dns_server, far, extra)) as site:
        await site.deliver(await site.enqueue("someone@elsewhere.test"))
        assert await site.entries() == []
    (session,) = far.sessions
    assert session.tls and session.authenticated and session.auth == ("relayuser", "s3cret")
    assert [r for r, _ in far.messages[0].rcpts] == ["someone@elsewhere.test"]
    assert not any(name == "elsewhere.test" for name, _ in dns_server.queries)


async def test_a_mailertable_route_overrides_the_mx(
    tmp_path: Path, dns_server: LoopbackDnsServer, far: ScriptedSmtpServer
) -> None:
    site_config = config(tmp_path, dns_server, far)
    tables = tmp_path / "a" / "etc" / "mail"
    (tables / "mailertable").write_text(f"partner.test smtp:[{FAR}]:{far.port}\n")
    async with outpost(site_config) as site:
        await site.deliver(await site.enqueue("bob@partner.test"))
        assert await site.entries() == []
    assert [r for r, _ in far.messages[0].rcpts] == ["bob@partner.test"]
    assert not any(name == "partner.test" for name, _ in dns_server.queries)


async def test_one_connection_carries_several_messages_to_the_same_host(
    tmp_path: Path, dns_server: LoopbackDnsServer, far: ScriptedSmtpServer
) -> None:
    async with outpost(config(tmp_path, dns_server, far)) as site:
        for _ in range(3):
            await site.deliver(await site.enqueue("bob@far.test"))
        assert await site.entries() == []
    assert len(far.sessions) == 1
    assert len(far.sessions[0].transactions) == 3


async def test_genericstable_rewrites_the_envelope_and_header_sender(
    tmp_path: Path, dns_server: LoopbackDnsServer, far: ScriptedSmtpServer
) -> None:
    site_config = config(tmp_path, dns_server, far)
    tables = tmp_path / "a" / "etc" / "mail"
    (tables / "genericstable").write_text("alice@a.test  alice.smith@public.test\n")
    async with outpost(site_config) as site:
        await site.deliver(await site.enqueue("bob@far.test"))
    (received,) = far.messages
    assert received.mail_from == "alice.smith@public.test"
    assert received.data is not None
    assert b"\r\nFrom: Alice <alice.smith@public.test>\r\n" in b"\r\n" + received.data


@pytest.mark.parametrize(
    "script",
    [
        Script(greeting="554 5.7.1 go away"),
        Script(data_reply="250 2.0.0 Ok but I took nothing"),
        Script(final_reply=lambda _: "354 more please"),
    ],
    ids=["5xx-greeting", "250-to-DATA", "354-to-the-dot"],
)
async def test_a_host_that_refuses_to_talk_or_breaks_the_protocol_defers_never_delivers(
    tmp_path: Path, dns_server: LoopbackDnsServer, far: ScriptedSmtpServer, script: Script
) -> None:
    far.script = script
    async with outpost(config(tmp_path, dns_server, far)) as site:
        queue_id = await site.enqueue("bob@far.test")
        await site.deliver(queue_id)
        entry = await site.entry(queue_id)
        assert entry is not None
        (status,) = entry.statuses
        assert status.state is RecipientState.DEFERRED, status.reply
        assert (status.reply or "").startswith("451 ")
        assert await site.notifications() == []


async def test_a_smart_host_refusing_the_password_defers_the_mail(
    tmp_path: Path, dns_server: LoopbackDnsServer, far: ScriptedSmtpServer
) -> None:
    far.script = Script(tls_context=self_signed_context(tmp_path), auth=("relayuser", "right"))
    extra = (
        f'relayhost = "[{FAR}]:{far.port}"\nrelayhost_username = "relayuser"\n'
        'relayhost_password = "wrong"\n'
    )
    async with outpost(config(tmp_path, dns_server, far, extra)) as site:
        queue_id = await site.enqueue("someone@elsewhere.test")
        await site.deliver(queue_id)
        entry = await site.entry(queue_id)
        assert entry is not None
        assert entry.statuses[0].state is RecipientState.DEFERRED
        assert "535" in (entry.statuses[0].reply or "")  # the host's words are kept
    assert far.messages == []


async def test_a_host_that_never_answers_the_dot_times_out_and_defers(
    tmp_path: Path, dns_server: LoopbackDnsServer, far: ScriptedSmtpServer
) -> None:
    release = threading.Event()

    def stall(_: int) -> str:
        release.wait(10)
        return "250 2.0.0 too late"

    far.script = Script(final_reply=stall)
    site_config = write_config(
        tmp_path / "a", dns_port=dns_server.port, smtp_port=far.port, command_timeout=0.5
    )
    try:
        async with outpost(site_config) as site:
            queue_id = await site.enqueue("bob@far.test")
            started = time.monotonic()
            await site.deliver(queue_id)
            assert time.monotonic() - started < 5
            entry = await site.entry(queue_id)
            assert entry is not None
            assert entry.statuses[0].state is RecipientState.DEFERRED
            assert "4.4.2" in (entry.statuses[0].reply or "")
    finally:
        release.set()


async def test_from_as_the_last_header_field_is_rewritten_without_harm(
    tmp_path: Path, dns_server: LoopbackDnsServer, far: ScriptedSmtpServer
) -> None:
    site_config = config(tmp_path, dns_server, far)
    tables = tmp_path / "a" / "etc" / "mail"
    (tables / "genericstable").write_text("alice@a.test  alice.smith@public.test\n")
    data = b"Subject: last\r\nTo: bob@far.test\r\nFrom: alice@a.test\r\n\r\nbody\r\n"
    async with outpost(site_config) as site:
        await site.deliver(await site.enqueue("bob@far.test", data=data))
    (received,) = far.messages
    assert received.data is not None
    assert received.data.endswith(b"\r\nFrom: alice.smith@public.test\r\n\r\nbody\r\n")
