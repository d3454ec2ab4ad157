"""Fixtures for the queue tests: envelopes (ordinary and hostile), a clock, an open queue.

``async def`` tests run through the suite-wide hook in ``tests/conftest.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pytest

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
from postoffice.queue import FsHooks, Queue, QueueId

T0 = 1_700_000_000.0


def envelope(*recipients: str, sender: str | None = "alice@example.test") -> Envelope:
    rcpts = recipients or ("bob@example.test",)
    return Envelope(
        sender=None if sender is None else parse_address(sender),
        recipients=tuple(EnvelopeRecipient(parse_address(r)) for r in rcpts),
    )


def hostile_envelope() -> Envelope:
    """Every field set, with quotes, spaces, CR/LF, %, =, ;, non-ASCII and a long ORCPT."""
    return Envelope(
        sender=parse_address('"john \\"q\\" doe"@example.net'),
        recipients=(
            EnvelopeRecipient(
                parse_address("bob@example.test"),
                notify=frozenset({Notify.SUCCESS, Notify.FAILURE, Notify.DELAY}),
                orcpt=OriginalRecipient("rfc822", "Bob+x=y;z%20 @Example.TEST\r\nX: y"),
            ),
            EnvelopeRecipient(
                parse_address("jörg@bücher.example"),
                notify=frozenset({Notify.NEVER}),
                orcpt=OriginalRecipient("utf-8", "jörg@bücher.example\u2028rcpt evil@x"),
            ),
            EnvelopeRecipient(
                parse_address('"a b%c=d"@[192.0.2.1]'),
                orcpt=OriginalRecipient("x;weird type", "y" * 3000),
            ),
            EnvelopeRecipient(parse_address("日本@例え.テスト")),
        ),
        body=BodyType.EIGHT_BIT_MIME,
        smtputf8=True,
        ret=Ret.HDRS,
        envid="env id=1%\r\nsender evil@x\x00",
        declared_size=123456,
        client=ClientInfo(
            address="2001:db8::1",
            port=54321,
            hostname="mail.example.net",
            helo="evil\r\nrcpt attacker@evil.test state=delivered\r\n",
            protocol="ESMTPSA",
            tls_version="TLSv1.3",
            tls_cipher="TLS_AES_256_GCM_SHA384",
            authenticated_as='alice ü "x"\n',
        ),
    )


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def queue_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool" / "mqueue"


def fast_hooks() -> FsHooks:
    """Real fsyncs are slow on some CI disks; most tests only count them."""
    return FsHooks(fsync=lambda fd: None, fsync_directory=lambda fd: None)


async def open_queue(queue_dir: Path, clock: FixedClock, **kwargs: object) -> Queue:
    kwargs.setdefault("hooks", fast_hooks())
    return await Queue.open(queue_dir, clock, **kwargs)  # type: ignore[arg-type]


async def put(
    queue: Queue,
    data: bytes = b"Subject: hi\r\n\r\nbody\r\n",
    env: Envelope | None = None,
    chunk: int = 7,
) -> QueueId:
    incoming = queue.begin(env or envelope())
    for start in range(0, len(data), chunk):
        await incoming.write(data[start : start + chunk])
    return await incoming.commit()


def spool_files(queue_dir: Path) -> dict[str, list[str]]:
    return {
        "mqueue": sorted(n for n in os.listdir(queue_dir) if n not in ("tmp", "quarantine")),
        "tmp": sorted(os.listdir(queue_dir / "tmp")),
        "quarantine": sorted(os.listdir(queue_dir / "quarantine")),
    }


def read_all(stream: object, sizes: Iterable[int] = (5, 100, -1)) -> bytes:
    read = stream.read  # type: ignore[attr-defined]
    parts = []
    for size in sizes:
        parts.append(read(size))
    while chunk := read(4096):
        parts.append(chunk)
    return b"".join(parts)
