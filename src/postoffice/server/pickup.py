"""Pickup: the server's end of the maildrop, where ``sendmail`` leaves local mail.

What this module owns: ``Pickup``, which takes each drop file
(``queue.maildrop``) in arrival order, queues its message durably with a
``Received:`` header that says it was submitted locally and by which user
id, and only then removes the file (Postfix's pickup daemon). It runs in
one process of the server (the lone daemon, or worker 0), at start and
then every ``interval`` seconds: a directory scan that finds nothing costs
one ``getdents``. The same look finds a flush request (``postoffice queue
flush``) and wakes the queue runner.

Invariants: a drop file leaves the maildrop only after its message is in
the queue (a crash in between queues it twice, never loses it); a file
that is not a drop file, or whose addresses do not parse, is set aside as
``.bad-NAME`` with a maillog line and never retried; the envelope sender is
the one the file names (``sendmail -f``), and recipients are qualified
with the primary domain as sendmail does for local names.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from postoffice.core.address import parse_address
from postoffice.core.envelope import ClientInfo, Envelope, EnvelopeRecipient
from postoffice.core.errors import AddressError
from postoffice.core.maillog import log_event
from postoffice.mime.trace import received_header
from postoffice.queue import Queue
from postoffice.queue.errors import QueueError
from postoffice.queue.maildrop import (
    Drop,
    DropError,
    pending_drops,
    read_drop,
    take_flush_request,
)

COMPONENT = "pickup"
INTERVAL = 1.0


class Pickup:
    """See the module docstring."""

    def __init__(
        self,
        *,
        maildrop: Path,
        queue: Queue,
        hostname: str,
        primary_domain: str,
        interval: float = INTERVAL,
        on_flush: Callable[[], None] | None = None,
    ):
        self.maildrop = maildrop
        self.queue = queue
        self.hostname = hostname
        self.primary_domain = primary_domain
        self.interval = interval
        self.on_flush = on_flush
        self.picked = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Pick up what waits now, then again every ``interval`` until ``stop``."""
        while not stop.is_set():
            await self.pick_all()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)

    async def pick_all(self) -> int:
        """Queue every drop file waiting; how many were queued. A flush request
        (``queue.maildrop.request_flush``) wakes the queue runner."""
        if take_flush_request(self.maildrop) and self.on_flush is not None:
            log_event(COMPONENT, "queue flush requested")
            self.on_flush()
        count = 0
        for path in pending_drops(self.maildrop):
            if await self._pick(path):
                count += 1
        return count

    def _set_aside(self, path: Path, why: str) -> None:
        log_event(COMPONENT, f"{path.name}: {why}; set aside", level=logging.WARNING)
        with contextlib.suppress(OSError):
            os.rename(path, path.with_name(".bad-" + path.name))

    def _envelope(self, drop: Drop) -> Envelope:
        sender = None if not drop.sender else parse_address(drop.sender)
        recipients = tuple(
            EnvelopeRecipient(parse_address(r, default_domain=self.primary_domain))
            for r in drop.recipients
        )
        unique = tuple({r.address.key: r for r in recipients}.values())
        return Envelope(sender, unique, client=ClientInfo(protocol="local"))

    async def _pick(self, path: Path) -> bool:
        try:
            drop = read_drop(path)
        except FileNotFoundError:
            return False  # taken meanwhile
        except (DropError, OSError) as exc:
            self._set_aside(path, f"unreadable: {exc}")
            return False
        try:
            envelope = self._envelope(drop)
        except AddressError as exc:
            self._set_aside(path, f"bad address: {exc}")
            return False
        incoming = self.queue.begin(envelope)
        try:
            only = envelope.recipients[0].address if len(envelope.recipients) == 1 else None
            await incoming.write(
                received_header(
                    client=envelope.client,
                    by_host=self.hostname,
                    queue_id=incoming.queue_id,
                    when=datetime.now(UTC),
                    recipient=only,
                )
            )
            await incoming.write(drop.data)
            queue_id = await incoming.commit()
        except QueueError as exc:
            await incoming.abort()
            log_event(COMPONENT, f"{path.name}: not queued: {exc}", level=logging.ERROR)
            return False
        # The line is logged before the file goes, so whoever sees the drop
        # gone also finds the line that says where it went.
        log_event(COMPONENT, f"{queue_id}: uid={drop.uid} from=<{drop.sender}>")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self.picked += 1
        return True
