"""Store changes passed between the worker processes of one server.

What this module owns: ``ChangeRelay``, which lets a change made in one
worker (a delivery, a flag set over IMAP or POP3) wake the IMAP sessions
that watch that mailbox in the other workers, so IDLE reports it at once
(RFC 2177) rather than at its next re-read.

How: each worker binds a Linux abstract-namespace datagram socket named
after the master's PID and its own index; ``attach`` hooks the relay into
the worker's ``ChangeHub``, and every change published there is sent, as
"user and mailboxes touched", to each sibling. A sibling publishes an
``OVERFLOW`` change ("re-read") for each of those mailboxes on its own hub.

Invariants: sending never blocks and never fails the operation that made
the change: a full or missing socket drops the datagram (the IMAP session
still re-reads its mailbox on its own, at every command and at least every
``idle_check_interval`` in IDLE). A datagram is bounded (``MAX_MAILBOXES``
names, ``MAX_DATAGRAM`` octets); a malformed one is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Sequence
from typing import Final

from postoffice.store.api import Change, ChangeKind
from postoffice.store.changes import ChangeHub

MAX_DATAGRAM: Final = 16 * 1024
MAX_MAILBOXES: Final = 64


def _address(group: str, index: int) -> str:
    return f"\0postoffice-changes-{group}-{index}"


class ChangeRelay:
    """One worker's end of the relay (see the module docstring)."""

    def __init__(self, group: str, index: int, workers: int):
        self.group = group
        self.index = index
        self.workers = workers
        self._socket: socket.socket | None = None
        self._hub: ChangeHub | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self, hub: ChangeHub) -> None:
        """Bind this worker's socket and hook into ``hub`` (on the running loop)."""
        if self.workers < 2:
            return
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(_address(self.group, self.index))
        except OSError:
            sock.close()
            return  # another server with our master's PID? Then IDLE falls back to re-reads.
        sock.setblocking(False)
        self._socket = sock
        self._hub = hub
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._receive)
        hub.relay = self.forward

    def close(self) -> None:
        if self._hub is not None:
            self._hub.relay = None
        if self._socket is not None:
            if self._loop is not None:
                with contextlib.suppress(Exception):
                    self._loop.remove_reader(self._socket.fileno())
            self._socket.close()
            self._socket = None

    def forward(self, user: str, changes: Sequence[Change]) -> None:
        """Tell the siblings which of ``user``'s mailboxes changed."""
        sock = self._socket
        if sock is None:
            return
        mailboxes = sorted({change.mailbox for change in changes})[:MAX_MAILBOXES]
        payload = json.dumps([user, mailboxes]).encode("utf-8")
        if len(payload) > MAX_DATAGRAM:
            return
        for index in range(self.workers):
            if index == self.index:
                continue
            with contextlib.suppress(OSError):  # full, or that worker is restarting
                sock.sendto(payload, _address(self.group, index))

    def _receive(self) -> None:
        sock, hub = self._socket, self._hub
        if sock is None or hub is None:
            return
        for _ in range(64):  # then let the loop run other work
            try:
                payload = sock.recv(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            try:
                user, mailboxes = json.loads(payload)
            except ValueError:
                continue
            if not isinstance(user, str) or not isinstance(mailboxes, list):
                continue
            changes = [Change(ChangeKind.OVERFLOW, m) for m in mailboxes if isinstance(m, str)]
            hub.publish_relayed(user, changes)
