"""Bounces: one RFC 3464 notification per failed attempt, to the sender, from ``<>``.

Failures come from the far side (5xx at RCPT), from DNS (null MX, an MX
pointing back at this host) and from the clock (expiry). Each notification
is parsed back with the ``email`` package and delivered into alice's mailbox
by the same runner, as any local mail.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from postoffice.core.envelope import Notify
from postoffice.queue import RecipientState
from tests.dns_server import LoopbackDnsServer
from tests.integration.remote_site import delivery_status, outpost, write_config
from tests.scripted_smtp import Script, ScriptedSmtpServer

FAR = "127.0.0.3"
DAY = 86400.0


@pytest.fixture
def dns_server() -> Iterator[LoopbackDnsServer]:
    with LoopbackDnsServer() as server:
        server.add("far.test", "MX", "10 mx1.far.test.")
        server.add("mx1.far.test", "A", FAR)
        yield server


@pytest.fixture
def far() -> Iterator[ScriptedSmtpServer]:
    with ScriptedSmtpServer(FAR, 0) as server:
        yield server


@pytest.fixture
def site_config(tmp_path: Path, dns_server: LoopbackDnsServer, far: ScriptedSmtpServer) -> Path:
    return write_config(tmp_path / "a", dns_port=dns_server.port, smtp_port=far.port)


async def test_5xx_at_rcpt_bounces_only_that_recipient_with_status_and_remote_mta(
    site_config: Path, far: ScriptedSmtpServer
) -> None:
    far.script = Script(
        rcpt=lambda rcpt, _: (
            "550 5.1.1 <nobody@far.test>: no such user"
            if rcpt.startswith("nobody")
            else "250 2.1.5 Ok"
        )
    )
    async with outpost(site_config) as site:
        queue_id = await site.enqueue("bob@far.test", "nobody@far.test")
        await site.deliver(queue_id)
        assert await site.entry(queue_id) is None  # bob delivered, nobody bounced: done
        (notice,) = await site.notifications()
        assert notice.envelope.sender is None
        assert [str(r.address) for r in notice.envelope.recipients] == ["alice@a.test"]
        dsn = await site.dsn()
        await site.deliver(notice.id)  # the DSN is local mail for alice
        assert await site.entries() == []
        store = await site.stores.open("alice@a.test")
        try:
            (info,) = await store.messages("INBOX")
            in_mailbox = await store.read("INBOX", info.uid)
        finally:
            await store.close()
    assert [r for r, _ in far.messages[0].rcpts] == ["bob@far.test"]
    assert dsn.get_content_type() == "multipart/report"
    assert dsn.get_param("report-type") == "delivery-status"
    assert "MAILER-DAEMON@mail.a.test" in str(dsn["From"])
    per_message, *recipients = delivery_status(dsn)
    assert per_message["Reporting-MTA"] == "dns; mail.a.test"
    (failed,) = recipients
    assert failed["Final-Recipient"] == "rfc822; nobody@far.test"
    assert failed["Action"] == "failed"
    assert failed["Status"] == "5.1.1"
    assert failed["Remote-MTA"] == "dns; mx1.far.test"
    assert "550 5.1.1" in failed["Diagnostic-Code"]
    returned = next(p for p in dsn.walk() if p.get_content_type() == "message/rfc822")
    assert "outbound" in returned.as_string()  # the whole original comes back
    assert b"Return-Path: <>" in in_mailbox


async def test_expiry_bounces_with_action_failed_after_the_queue_lifetime(
    site_config: Path, far: ScriptedSmtpServer
) -> None:
    far.script = Script(rcpt=lambda _, __: "451 4.3.0 try again later")
    async with outpost(site_config) as site:
        queue_id = await site.enqueue("bob@far.test")
        await site.deliver(queue_id)
        assert await site.notifications() == []  # deferred: no notification yet
        site.clock.advance(5 * DAY + 1)
        await site.deliver(queue_id)
        assert await site.entry(queue_id) is None
        dsn = await site.dsn()
    _, failed = delivery_status(dsn)
    assert failed["Action"] == "failed"
    assert failed["Status"] == "5.4.7"
    assert "451 4.3.0 try again later" in failed["Diagnostic-Code"]
    assert len(far.sessions) == 2


async def test_a_null_mx_bounces_at_once_without_a_connection(
    site_config: Path, dns_server: LoopbackDnsServer, far: ScriptedSmtpServer
) -> None:
    dns_server.add("nomail.test", "MX", "0 .")
    async with outpost(site_config) as site:
        await site.deliver(await site.enqueue("bob@nomail.test"))
        dsn = await site.dsn()
    _, failed = delivery_status(dsn)
    assert failed["Status"] == "5.1.10"
    assert far.sessions == []


async def test_an_mx_pointing_back_at_this_host_bounces_as_a_loop(
    site_config: Path, dns_server: LoopbackDnsServer
) -> None:
    dns_server.add("loop.test", "MX", "10 mail.a.test.")  # mail.a.test is this host's name
    dns_server.add("mail.a.test", "A", "127.0.0.2")
    async with outpost(site_config) as site:
        await site.deliver(await site.enqueue("bob@loop.test"))
        dsn = await site.dsn()
    _, failed = delivery_status(dsn)
    assert failed["Status"] == "5.4.6"


async def test_a_domain_that_does_not_exist_bounces_and_a_servfail_defers(
    site_config: Path, dns_server: LoopbackDnsServer
) -> None:
    dns_server.set_failure("broken.test", "SERVFAIL")
    async with outpost(site_config) as site:
        gone = await site.enqueue("bob@nowhere.test")
        await site.deliver(gone)
        later = await site.enqueue("bob@broken.test")
        await site.deliver(later)
        entry = await site.entry(later)
        assert entry is not None and entry.statuses[0].state is RecipientState.DEFERRED
        dsn = await site.dsn()
    _, failed = delivery_status(dsn)
    assert failed["Final-Recipient"] == "rfc822; bob@nowhere.test"
    assert failed["Status"] == "5.1.2"


@pytest.mark.parametrize(
    ("sender", "notify"),
    [(None, None), ("alice@a.test", frozenset({Notify.NEVER}))],
    ids=["null-sender", "notify-never"],
)
async def test_no_notification_for_mail_from_null_or_notify_never(
    site_config: Path, far: ScriptedSmtpServer, sender: str | None, notify: frozenset[Notify]
) -> None:
    far.script = Script(rcpt=lambda _, __: "550 5.1.1 no such user")
    async with outpost(site_config) as site:
        queue_id = await site.enqueue("bob@far.test", sender=sender, notify=notify)
        await site.deliver(queue_id)
        assert await site.entries() == []  # failed, and nothing sent back


async def test_a_delay_warning_goes_once_when_configured(
    tmp_path: Path, dns_server: LoopbackDnsServer, far: ScriptedSmtpServer
) -> None:
    config = write_config(
        tmp_path / "w",
        dns_port=dns_server.port,
        smtp_port=far.port,
        extra="[queue]\ndelay_warning = 3600\n",
    )
    far.script = Script(rcpt=lambda _, __: "450 4.2.1 mailbox busy")
    async with outpost(config) as site:
        queue_id = await site.enqueue("bob@far.test")
        await site.deliver(queue_id)
        assert await site.notifications() == []
        for _ in range(3):
            site.clock.advance(4000)
            await site.deliver(queue_id)
        dsn = await site.dsn()  # exactly one
    assert "Delayed" in str(dsn["Subject"])
    _, delayed = delivery_status(dsn)
    assert delayed["Action"] == "delayed"
    assert delayed["Status"] == "4.2.1"
    assert "Will-Retry-Until" in delayed


@pytest.mark.parametrize(
    ("extensions", "action"),
    [(("PIPELINING", "8BITMIME", "DSN"), None), (("PIPELINING", "8BITMIME"), "relayed")],
    ids=["receiver-speaks-dsn", "receiver-without-dsn"],
)
async def test_notify_success_is_passed_on_or_reported_as_relayed(
    site_config: Path, far: ScriptedSmtpServer, extensions: tuple[str, ...], action: str | None
) -> None:
    far.script = Script(extensions=extensions)
    success = frozenset({Notify.SUCCESS, Notify.FAILURE})
    async with outpost(site_config) as site:
        await site.deliver(await site.enqueue("bob@far.test", notify=success))
        notices = await site.notifications()
        dsn = await site.dsn() if notices else None
    ((_, params),) = far.messages[0].rcpts
    if action is None:
        assert dsn is None  # the far side reports success itself (RFC 3461 §6.2.4)
        (notify,) = [p for p in params if p.startswith("NOTIFY=")]
        assert set(notify.removeprefix("NOTIFY=").split(",")) == {"SUCCESS", "FAILURE"}
    else:
        assert not any(p.startswith("NOTIFY") for p in params)
        assert dsn is not None
        _, relayed = delivery_status(dsn)
        assert relayed["Action"] == "relayed"
        assert relayed["Status"].startswith("2.")


async def test_notify_success_on_a_local_mailbox_reports_delivered(site_config: Path) -> None:
    async with outpost(site_config) as site:
        queue_id = await site.enqueue(
            "alice@a.test", sender="alice@a.test", notify=frozenset({Notify.SUCCESS})
        )
        await site.deliver(queue_id)
        dsn = await site.dsn()
    assert "Successful" in str(dsn["Subject"])
    _, delivered = delivery_status(dsn)
    assert delivered["Action"] == "delivered"
    assert delivered["Status"] == "2.0.0"
