"""``postoffice queue ...`` and ``postoffice mailq`` against a real queue.

Messages are put in the queue through ``Queue.begin/write/commit`` (as the
SMTP server does), their recipients' states set with ``Queue.update``; then
each command runs as the operator would run it, and the queue is read back
to check what the command changed. Arrival times come from a fixed clock and
the local time zone is UTC, so the listing can be compared line by line.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from postoffice.config.loader import load_config
from postoffice.core.address import parse_address
from postoffice.core.clock import FixedClock
from postoffice.core.envelope import (
    BodyType,
    ClientInfo,
    Envelope,
    EnvelopeRecipient,
    Notify,
    OriginalRecipient,
    Ret,
)
from postoffice.core.maillog import maillog
from postoffice.queue import Queue, QueueEntry, QueueId, RecipientState, RecipientStatus
from postoffice.queue.errors import UnknownQueueId
from tests.integration.conftest import CliRunner

T0 = 1_700_000_000.0  # Tue Nov 14 22:13:20 2023 UTC
T0_MAILQ = "Tue Nov 14 22:13:20"
HEADER = "-Queue ID-      --Size-- ----Arrival Time---- -Sender/Recipient-------"
INDENT = " " * 46
MESSAGE = (
    b"Received: from mx.example.net\r\n"
    b"From: Alice <alice@example.net>\r\n"
    b"To: bob@example.test\r\n"
    b"Subject: quarterly figures\r\n"
    b"\r\n"
    b"The body line nobody should see without --body.\r\n"
)


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def queue_dir(config: Path) -> Path:
    return load_config(config).paths.queue_dir


def envelope(
    *recipients: str | EnvelopeRecipient,
    sender: str | None = "alice@example.net",
    **fields: object,
) -> Envelope:
    rcpts = tuple(
        r if isinstance(r, EnvelopeRecipient) else EnvelopeRecipient(parse_address(r))
        for r in recipients or ("bob@example.test",)
    )
    return Envelope(
        sender=None if sender is None else parse_address(sender),
        recipients=rcpts,
        **fields,  # type: ignore[arg-type]
    )


def enqueue(
    config: Path,
    env: Envelope,
    data: bytes = MESSAGE,
    *,
    statuses: Mapping[int, RecipientStatus] | None = None,
    hold: bool = False,
    clock: FixedClock | None = None,
) -> QueueId:
    """Commit one message (arrival ``T0`` unless ``clock`` says otherwise), then set states."""

    async def run() -> QueueId:
        async with await Queue.open(queue_dir(config), clock or FixedClock(T0)) as queue:
            incoming = queue.begin(env)
            await incoming.write(data)
            queue_id = await incoming.commit()
            if statuses:
                await queue.update(queue_id, statuses)
            if hold:
                await queue.hold(queue_id)
            return queue_id

    return asyncio.run(run())


def load(config: Path, queue_id: str) -> QueueEntry:
    async def run() -> QueueEntry:
        async with await Queue.open(queue_dir(config), recover=False) as queue:
            return await queue.load(queue_id)

    return asyncio.run(run())


def ids_in_queue(config: Path) -> list[str]:
    async def run() -> list[str]:
        async with await Queue.open(queue_dir(config), recover=False) as queue:
            return [entry.id for entry in await queue.list()]

    return asyncio.run(run())


def due_ids(config: Path) -> list[QueueId]:
    async def run() -> list[QueueId]:
        async with await Queue.open(queue_dir(config), recover=False) as queue:
            return await queue.pending(time.time())

    return asyncio.run(run())


def deferred(reply: str, *, attempts: int = 2, later: float = 3600.0) -> RecipientStatus:
    """Deferred after ``attempts`` tries, next attempt ``later`` seconds from real now."""
    now = time.time()
    return RecipientStatus.deferred(reply, at=now - 60, attempts=attempts, next_attempt=now + later)


# ----------------------------------------------------------------------- listing


def test_empty_queue(setup_dir: Path, run_cli: CliRunner) -> None:
    for args in (("queue", "list"), ("mailq",)):
        result = run_cli(*args, "-c", str(setup_dir))
        assert result.code == 0, result.err
        assert result.out == "Mail queue is empty\n"


def test_listing_layout_with_a_deferred_recipient(setup_dir: Path, run_cli: CliRunner) -> None:
    queue_id = enqueue(
        setup_dir,
        envelope("bob@example.net", "carol@example.org", "dave@example.test"),
        statuses={
            0: deferred("451 4.3.0 mailbox busy"),
            2: RecipientStatus.delivered("250 2.0.0 ok", at=T0),
        },
    )
    result = run_cli("-c", str(setup_dir), "mailq")
    assert result.code == 0, result.err
    reason = "(451 4.3.0 mailbox busy)"
    assert result.out.splitlines() == [
        HEADER,
        f"{queue_id}* {len(MESSAGE):>8} {T0_MAILQ}  alice@example.net",
        " " * (76 - len(reason) + 2) + reason,
        f"{INDENT}bob@example.net",
        f"{INDENT}carol@example.org",  # pending: no reason of its own
        "",
        "-- 0 Kbytes in 1 Request.",
    ]
    assert "dave@example.test" not in result.out  # delivered: not listed


def test_queue_list_and_mailq_print_the_same(setup_dir: Path, run_cli: CliRunner) -> None:
    enqueue(setup_dir, envelope("bob@example.test"))
    enqueue(setup_dir, envelope("carol@example.test"), hold=True)
    listing = run_cli("-c", str(setup_dir), "queue", "list")
    mailq = run_cli("mailq", "-c", str(setup_dir))
    assert listing.code == mailq.code == 0
    assert listing.out == mailq.out


def test_marks_held_due_and_waiting_messages(setup_dir: Path, run_cli: CliRunner) -> None:
    due = enqueue(setup_dir, envelope("a@example.test"))
    held = enqueue(setup_dir, envelope("b@example.test"), hold=True)
    waiting = enqueue(setup_dir, envelope("c@example.net"), statuses={0: deferred("421 busy")})
    result = run_cli("-c", str(setup_dir), "mailq")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert any(line.startswith(f"{due}* ") for line in lines)
    assert any(line.startswith(f"{held}! ") for line in lines)
    assert any(line.startswith(f"{waiting}  ") for line in lines)


def test_several_messages_and_the_total(setup_dir: Path, run_cli: CliRunner) -> None:
    big = b"Subject: big\r\n\r\n" + b"x" * 3000 + b"\r\n"
    first = enqueue(setup_dir, envelope("a@example.test"), big)
    second = enqueue(setup_dir, envelope("b@example.test"), big, clock=FixedClock(T0 + 60))
    result = run_cli("-c", str(setup_dir), "mailq")
    lines = result.out.splitlines()
    assert lines[0] == HEADER
    assert lines[1].startswith(first) and lines[4].startswith(second)  # oldest first
    assert lines[3] == ""  # a blank line between messages
    assert lines[-2:] == ["", f"-- {2 * len(big) // 1024} Kbytes in 2 Requests."]


def test_null_sender_is_mailer_daemon(setup_dir: Path, run_cli: CliRunner) -> None:
    queue_id = enqueue(setup_dir, envelope("bob@example.test", sender=None))
    result = run_cli("-c", str(setup_dir), "mailq")
    assert f"{queue_id}* {len(MESSAGE):>8} {T0_MAILQ}  MAILER-DAEMON" in result.out.splitlines()


def test_non_ascii_sender_and_recipient(setup_dir: Path, run_cli: CliRunner) -> None:
    env = envelope("日本@example.test", sender="jörg@example.net", smtputf8=True)
    queue_id = enqueue(setup_dir, env)
    listing = run_cli("-c", str(setup_dir), "mailq")
    assert listing.code == 0, listing.err
    assert f"{queue_id}* {len(MESSAGE):>8} {T0_MAILQ}  jörg@example.net" in listing.out
    assert f"{INDENT}日本@example.test" in listing.out.splitlines()
    shown = run_cli("-c", str(setup_dir), "queue", "show", queue_id)
    assert shown.code == 0, shown.err
    assert "Sender:        <jörg@example.net>" in shown.out
    assert "  #1 <日本@example.test>" in shown.out
    assert "SMTPUTF8" in shown.out


def test_hostile_reply_cannot_forge_listing_lines(setup_dir: Path, run_cli: CliRunner) -> None:
    reply = "451-4.3.0 first\r\n451 4.3.0 \x1b[2Jgone\u202e"
    enqueue(setup_dir, envelope("bob@example.net"), statuses={0: deferred(reply)})
    result = run_cli("-c", str(setup_dir), "mailq")
    assert "\x1b" not in result.out and "\u202e" not in result.out
    assert "(451-4.3.0 first 451 4.3.0 \\x1b[2Jgone\\u202e)" in result.out
    assert len(result.out.splitlines()) == 6  # header, message, reason, rcpt, blank, total


def test_recipients_with_the_same_reply_share_it(setup_dir: Path, run_cli: CliRunner) -> None:
    enqueue(
        setup_dir,
        envelope("a@example.net", "b@example.net", "c@example.org"),
        statuses={0: deferred("421 later"), 1: deferred("421 later"), 2: deferred("450 no")},
    )
    lines = run_cli("-c", str(setup_dir), "mailq").out.splitlines()
    body = [line.strip() for line in lines[2:-2]]
    assert body == ["(421 later)", "a@example.net", "b@example.net", "(450 no)", "c@example.org"]


def test_missing_queue_directory_is_an_error(setup_dir: Path, run_cli: CliRunner) -> None:
    queue = queue_dir(setup_dir)
    queue.rename(queue.with_name("elsewhere"))
    result = run_cli("-c", str(setup_dir), "mailq")
    assert result.code == 1
    assert "no queue directory" in result.err and str(queue) in result.err
    assert not queue.exists()  # not created behind the operator's back


def test_unreadable_config_is_an_error(tmp_path: Path, run_cli: CliRunner) -> None:
    result = run_cli("-c", str(tmp_path / "nothing.toml"), "queue", "list")
    assert result.code == 1
    assert "nothing.toml" in result.err


# -------------------------------------------------------------------------- show


def rich_envelope() -> Envelope:
    return Envelope(
        sender=parse_address("alice@example.net"),
        recipients=(
            EnvelopeRecipient(
                parse_address("bob@example.net"),
                notify=frozenset({Notify.FAILURE, Notify.DELAY}),
                orcpt=OriginalRecipient("rfc822", "Bob@Example.NET"),
            ),
            EnvelopeRecipient(parse_address("carol@example.test")),
        ),
        body=BodyType.EIGHT_BIT_MIME,
        ret=Ret.HDRS,
        envid="QQ314159",
        declared_size=4096,
        client=ClientInfo(
            address="192.0.2.25",
            port=40123,
            hostname="mx.example.net",
            helo="mx.example.net\r\nForged: line",
            protocol="ESMTPSA",
            tls_version="TLSv1.3",
            tls_cipher="TLS_AES_256_GCM_SHA384",
            authenticated_as="alice",
        ),
    )


def test_show_envelope_and_header(setup_dir: Path, run_cli: CliRunner) -> None:
    queue_id = enqueue(
        setup_dir,
        rich_envelope(),
        statuses={0: deferred("451-4.7.1 greylisted\r\n451 4.7.1 come back later", attempts=3)},
    )
    result = run_cli("-c", str(setup_dir), "queue", "show", queue_id)
    assert result.code == 0, result.err
    out = result.out
    lines = out.splitlines()
    assert lines[0] == f"*** ENVELOPE {queue_id} ***"
    assert f"Queue ID:      {queue_id}" in lines
    assert "Arrival:       2023-11-14 22:13:20 +0000" in out
    assert f"Size:          {len(MESSAGE)} octets" in lines
    assert "Sender:        <alice@example.net>" in lines
    assert "Parameters:    BODY=8BITMIME RET=HDRS ENVID=QQ314159 SIZE=4096" in lines
    assert "Client:        mx.example.net [192.0.2.25]:40123" in lines
    assert "HELO:          mx.example.net\\x0d\\x0aForged: line" in lines
    assert "Protocol:      ESMTPSA (TLSv1.3 TLS_AES_256_GCM_SHA384)" in lines
    assert "Authenticated: alice" in lines
    assert "Recipients:    2 (1 deferred, 1 pending)" in lines
    bob = lines.index("  #1 <bob@example.net>")
    assert lines[bob + 1 : bob + 9] == [
        "      state:        deferred",
        "      attempts:     3",
        lines[bob + 3],
        lines[bob + 4],
        "      last reply:   451-4.7.1 greylisted",
        "                    451 4.7.1 come back later",
        "      NOTIFY:       FAILURE,DELAY",
        "      ORCPT:        rfc822;Bob@Example.NET",
    ]
    assert re.fullmatch(r" {6}last attempt: \S+ \S+ \+0000 \(1m ago\)", lines[bob + 3])
    assert re.fullmatch(r" {6}next attempt: \S+ \S+ \+0000 \(in (59m|1h 0m)\)", lines[bob + 4])
    carol = lines.index("  #2 <carol@example.test>")
    assert lines[carol + 1 : carol + 5] == [
        "      state:        pending",
        "      attempts:     0",
        "      next attempt: now",
        "      NOTIFY:       not given (acts as FAILURE,DELAY)",
    ]
    header = lines.index(f"*** HEADER {queue_id} ***")
    assert lines[header + 1 : header + 5] == [
        "Received: from mx.example.net",
        "From: Alice <alice@example.net>",
        "To: bob@example.test",
        "Subject: quarterly figures",
    ]
    assert lines[header + 5].startswith(f"*** END OF HEADER {queue_id}")
    assert "--body" in lines[header + 5]
    assert "nobody should see" not in out
    assert "\r" not in out


def test_show_with_body(setup_dir: Path, run_cli: CliRunner) -> None:
    queue_id = enqueue(setup_dir, envelope("bob@example.test"))
    result = run_cli("-c", str(setup_dir), "queue", "show", "--body", queue_id)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    start = lines.index(f"*** MESSAGE {queue_id} ***")
    assert lines[start + 1 :] == [
        *MESSAGE.decode().splitlines(),
        f"*** END OF MESSAGE {queue_id} ***",
    ]


def test_show_escapes_control_characters_in_headers(setup_dir: Path, run_cli: CliRunner) -> None:
    data = b"Subject: \x1b]0;owned\x07 caf\xc3\xa9 \xff\r\n\r\nbody\r\n"
    queue_id = enqueue(setup_dir, envelope("bob@example.test"), data)
    result = run_cli("-c", str(setup_dir), "queue", "show", queue_id)
    assert result.code == 0, result.err
    assert "Subject: \\x1b]0;owned\\x07 café \ufffd" in result.out.splitlines()
    assert "\x1b" not in result.out and "\x07" not in result.out


def test_show_a_message_without_body(setup_dir: Path, run_cli: CliRunner) -> None:
    data = b"Subject: only a header\r\n"
    queue_id = enqueue(setup_dir, envelope("bob@example.test"), data)
    result = run_cli("-c", str(setup_dir), "queue", "show", queue_id)
    assert result.code == 0, result.err
    assert "Subject: only a header" in result.out.splitlines()


def test_show_held_message_and_null_sender(setup_dir: Path, run_cli: CliRunner) -> None:
    queue_id = enqueue(setup_dir, envelope("bob@example.test", sender=None), hold=True)
    result = run_cli("-c", str(setup_dir), "queue", "show", queue_id)
    assert result.code == 0, result.err
    assert "Sender:        <>" in result.out.splitlines()
    assert "Status:        on hold" in result.out
    assert "Client:        local submission" in result.out.splitlines()


def test_show_notices_a_corrupt_data_file(setup_dir: Path, run_cli: CliRunner) -> None:
    queue_id = enqueue(setup_dir, envelope("bob@example.test"), b"Subject: x\r\n\r\nshort\r\n")
    data_file = queue_dir(setup_dir) / f"df{queue_id}"
    os.chmod(data_file, 0o600)
    data_file.write_bytes(b"Subject: x\r\n\r\nSHORT\r\n")  # same size, other octets
    result = run_cli("-c", str(setup_dir), "queue", "show", "--body", queue_id)
    assert result.code == 1
    assert "SHA-256 mismatch" in result.err


@pytest.mark.parametrize("command", ["show", "delete", "hold", "release"])
def test_unknown_id_is_an_error(setup_dir: Path, run_cli: CliRunner, command: str) -> None:
    kept = enqueue(setup_dir, envelope("bob@example.test"))
    result = run_cli("-c", str(setup_dir), "queue", command, "1xWdU90Q6B7EFy")
    assert result.code == 1
    assert result.out == ""
    assert result.err == (
        "postoffice: 1xWdU90Q6B7EFy: no such message in the queue "
        "(delivered, deleted or never there)\n"
    )
    assert ids_in_queue(setup_dir) == [kept]


@pytest.mark.parametrize("command", ["show", "delete", "hold", "release"])
def test_malformed_id_is_an_error(setup_dir: Path, run_cli: CliRunner, command: str) -> None:
    result = run_cli("-c", str(setup_dir), "queue", command, "../qf\x1bX")
    assert result.code == 1
    assert "'../qf\\x1bX' is not a queue id" in result.err
    assert "\x1b" not in result.err


def test_missing_id_is_a_usage_error(setup_dir: Path, run_cli: CliRunner) -> None:
    result = run_cli("-c", str(setup_dir), "queue", "delete")
    assert result.code == 2
    assert "Missing argument 'ID'" in result.err


# ------------------------------------------------------- delete, hold, release


def test_delete_removes_the_message_whatever_its_state(setup_dir: Path, run_cli: CliRunner) -> None:
    doomed = enqueue(setup_dir, envelope("a@example.net"), statuses={0: deferred("421 busy")})
    kept = enqueue(setup_dir, envelope("b@example.test"))
    result = run_cli("-c", str(setup_dir), "queue", "delete", doomed)
    assert result.code == 0, result.err
    assert result.out == f"{doomed}: deleted\n"
    assert ids_in_queue(setup_dir) == [kept]
    with pytest.raises(UnknownQueueId):
        load(setup_dir, doomed)
    assert not (queue_dir(setup_dir) / f"df{doomed}").exists()
    again = run_cli("-c", str(setup_dir), "queue", "delete", doomed)
    assert again.code == 1 and "no such message" in again.err
    maillog_text = load_config(setup_dir).paths.maillog.read_text()
    assert f"{doomed}: deleted by the administrator" in maillog_text


def test_delete_a_held_message_empties_the_queue(setup_dir: Path, run_cli: CliRunner) -> None:
    queue_id = enqueue(setup_dir, envelope("a@example.test"), hold=True)
    assert run_cli("-c", str(setup_dir), "queue", "delete", queue_id).code == 0
    assert run_cli("-c", str(setup_dir), "mailq").out == "Mail queue is empty\n"


def test_hold_and_release(setup_dir: Path, run_cli: CliRunner) -> None:
    queue_id = enqueue(setup_dir, envelope("bob@example.test"))
    assert due_ids(setup_dir) == [queue_id]

    held = run_cli("-c", str(setup_dir), "queue", "hold", queue_id)
    assert held.code == 0, held.err
    assert held.out == f"{queue_id}: placed on hold\n"
    assert load(setup_dir, queue_id).held
    assert due_ids(setup_dir) == []  # the runner no longer sees it
    assert f"{queue_id}! " in run_cli("-c", str(setup_dir), "mailq").out

    again = run_cli("-c", str(setup_dir), "queue", "hold", queue_id)
    assert (again.code, again.out) == (0, f"{queue_id}: already on hold\n")

    released = run_cli("-c", str(setup_dir), "queue", "release", queue_id)
    assert released.code == 0, released.err
    assert released.out == f"{queue_id}: released from hold\n"
    assert not load(setup_dir, queue_id).held
    assert due_ids(setup_dir) == [queue_id]

    again = run_cli("-c", str(setup_dir), "queue", "release", queue_id)
    assert (again.code, again.out) == (0, f"{queue_id}: was not on hold\n")

    maillog_text = load_config(setup_dir).paths.maillog.read_text()
    assert f"{queue_id}: placed on hold" in maillog_text
    assert f"{queue_id}: released from hold" in maillog_text


def test_hold_keeps_recipient_states(setup_dir: Path, run_cli: CliRunner) -> None:
    status = deferred("451 later", attempts=4)
    queue_id = enqueue(setup_dir, envelope("a@example.net", "b@example.net"), statuses={1: status})
    assert run_cli("-c", str(setup_dir), "queue", "hold", queue_id).code == 0
    entry = load(setup_dir, queue_id)
    assert entry.held
    assert entry.statuses == (RecipientStatus(), status)


def test_commands_leave_the_maillog_logger_as_they_found_it(
    setup_dir: Path, run_cli: CliRunner
) -> None:
    queue_id = enqueue(setup_dir, envelope("bob@example.test"))
    before = (maillog.level, maillog.propagate, list(maillog.handlers))
    assert run_cli("-c", str(setup_dir), "queue", "hold", queue_id).code == 0
    assert run_cli("-c", str(setup_dir), "queue", "flush").code == 0
    assert (maillog.level, maillog.propagate, list(maillog.handlers)) == before
    assert logging.getLogger(maillog.name) is maillog


# ------------------------------------------------------------------------- flush


def test_flush_makes_deferred_recipients_due(setup_dir: Path, run_cli: CliRunner) -> None:
    waiting = enqueue(
        setup_dir,
        envelope("a@example.net", "b@example.net", "c@example.net"),
        statuses={
            0: deferred("421 try later", attempts=3),
            1: RecipientStatus.delivered("250 ok", at=T0),
            2: deferred("450 greylisted", attempts=1),
        },
    )
    fresh = enqueue(setup_dir, envelope("d@example.test"))  # pending: due already
    assert due_ids(setup_dir) == [fresh]
    before = time.time()
    result = run_cli("-c", str(setup_dir), "queue", "flush")
    after = time.time()
    assert result.code == 0, result.err
    assert result.out.splitlines() == ["2 deferred recipients in 1 message made due now"]
    # A running server finds the request in its maildrop and scans the queue.
    assert (load_config(setup_dir).paths.maildrop_dir / ".flush").exists()
    entry = load(setup_dir, waiting)
    for index in (0, 2):
        status = entry.statuses[index]
        assert status.state is RecipientState.DEFERRED  # still deferred, reply and count kept
        assert status.next_attempt is not None and before <= status.next_attempt <= after
    assert entry.statuses[0].attempts == 3 and entry.statuses[0].reply == "421 try later"
    assert entry.statuses[1].state is RecipientState.DELIVERED
    assert load(setup_dir, fresh).statuses == (RecipientStatus(),)
    assert set(due_ids(setup_dir)) == {waiting, fresh}
    assert f"{waiting}* " in run_cli("-c", str(setup_dir), "mailq").out
    assert f"{waiting}: 2 deferred recipients made due now" in (
        load_config(setup_dir).paths.maillog.read_text()
    )


def test_flush_leaves_held_messages_alone(setup_dir: Path, run_cli: CliRunner) -> None:
    status = deferred("421 later")
    held = enqueue(setup_dir, envelope("a@example.net"), statuses={0: status}, hold=True)
    result = run_cli("-c", str(setup_dir), "queue", "flush")
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "no deferred recipients to flush",
        "1 message on hold left alone (`postoffice queue release ID`)",
    ]
    entry = load(setup_dir, held)
    assert entry.held and entry.statuses == (status,)


def test_flush_on_an_empty_queue(setup_dir: Path, run_cli: CliRunner) -> None:
    result = run_cli("-c", str(setup_dir), "queue", "flush")
    assert (result.code, result.out) == (0, "no deferred recipients to flush\n")


def test_flush_help_says_how_a_running_server_learns_of_it(run_cli: CliRunner) -> None:
    result = run_cli("queue", "flush", "--help")
    assert result.code == 0
    assert "through the maildrop, within a second" in " ".join(result.out.split())


def test_queue_help_lists_every_command(run_cli: CliRunner) -> None:
    result = run_cli("queue", "--help")
    assert result.code == 0
    for command in ("list", "show", "delete", "hold", "release", "flush"):
        assert f"  {command} " in result.out
    assert "mailq" in run_cli("--help").out
