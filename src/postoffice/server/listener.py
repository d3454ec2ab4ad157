"""Listening sockets: accepting connections, one task per connection.

Owns accepting connections, running a session coroutine for each on its own
``Pipe``, and stopping: ``close()`` stops accepting, lets sessions end by
themselves for a grace period, then cancels what is left.

The accepting is this module's own, not ``loop.create_server``'s, for the
workers of a master (``server.worker_loads``): asyncio's server accepts
every pending connection at once, so the worker that wakes first takes them
all. Here a worker accepts a few at a time, and when a sibling serves fewer
connections it steps aside for ``ACCEPT_DEFER`` seconds: the sibling, woken
by the same arrival, takes the connection meanwhile. What nobody took by then
the worker accepts itself, so a connection never waits on a sibling that is
stuck.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Awaitable, Callable

from postoffice.core.maillog import log_event
from postoffice.net.pipe import Pipe
from postoffice.server.worker_loads import WorkerLoad

SessionHandler = Callable[[Pipe], Awaitable[None]]
BACKLOG = 512
ACCEPT_BATCH = 16  # connections accepted per readiness of a listening socket at most
ACCEPT_DEFER = 0.002  # seconds a busier worker leaves a new connection to a sibling
# accept() failing for want of descriptors or memory: stop accepting for this
# long instead of spinning on a socket that stays readable.
ACCEPT_PAUSE = 1.0
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


class Listener:
    """The listening sockets of one protocol role (see module doc)."""

    def __init__(self, role: str, handler: SessionHandler, load: WorkerLoad | None = None):
        self.role = role
        self.handler = handler
        self.load = load  # None: a lone process, which accepts whatever arrives
        self.sockets: list[socket.socket] = []
        self.sessions: set[asyncio.Task[None]] = set()
        self._waiting: dict[int, asyncio.TimerHandle] = {}  # fd -> when accepting resumes
        self._closed = False

    async def listen(self, host: str, port: int) -> None:
        await self.adopt(listening_socket(host, port))

    async def adopt(self, sock: socket.socket) -> None:
        """Serve connections of a socket that is already bound and listening."""
        sock.setblocking(False)
        self.sockets.append(sock)
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable, sock)

    def _readable(self, sock: socket.socket) -> None:
        if self.load is not None and self.load.sibling_less_busy():
            self._pause(sock, ACCEPT_DEFER)
            return
        self._accept(sock, ACCEPT_BATCH)

    def _pause(self, sock: socket.socket, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(sock.fileno())
        self._waiting[sock.fileno()] = loop.call_later(seconds, self._resume, sock)

    def _resume(self, sock: socket.socket) -> None:
        """After a pause: take what no sibling took (it is busy with something
        else: no stepping aside this time), then wait for arrivals again."""
        if self._closed:  # (close() cancels the timers: a guard, not a path)
            return
        del self._waiting[sock.fileno()]
        if self._accept(sock, ACCEPT_BATCH, step_aside=False):
            asyncio.get_running_loop().add_reader(sock.fileno(), self._readable, sock)

    def _accept(self, sock: socket.socket, most: int, *, step_aside: bool = True) -> bool:
        """Accept up to ``most`` waiting connections, fewer when a sibling is less
        busy (``step_aside``); False when accepting is paused."""
        for _ in range(most):
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return True
            except ConnectionAbortedError:
                continue  # the client gave up while it waited in the backlog
            except OSError as exc:
                log_event(
                    self.role,
                    f"cannot accept a connection: {exc.strerror or exc}",
                    level=logging.ERROR,
                )
                if exc.errno in _OUT_OF_RESOURCES:
                    self._pause(sock, ACCEPT_PAUSE)
                    return False
                return True
            self._start(conn)
            if step_aside and self.load is not None and self.load.sibling_less_busy():
                return True  # leave the rest to a less busy sibling
        return True

    def _start(self, conn: socket.socket) -> None:
        task = asyncio.ensure_future(self._serve(conn))
        self.sessions.add(task)
        if self.load is not None:
            self.load.opened()
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self.sessions.discard(task)
        if self.load is not None:
            self.load.closed()

    async def _serve(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, pipe = await loop.connect_accepted_socket(Pipe, sock=conn)
        except OSError:
            conn.close()  # reset before it could be served
            return
        await self.handler(pipe)

    @property
    def addresses(self) -> list[tuple[str, int]]:
        found = []
        for sock in self.sockets:
            name = sock.getsockname()
            found.append((str(name[0]), int(name[1])))
        return found

    async def close(self, grace: float = 5.0) -> None:
        self._closed = True
        loop = asyncio.get_running_loop()
        for timer in self._waiting.values():
            timer.cancel()
        self._waiting.clear()
        for sock in self.sockets:
            loop.remove_reader(sock.fileno())
            sock.close()
        if self.sessions:
            _, pending = await asyncio.wait(set(self.sessions), timeout=grace)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task


def listening_socket(host: str, port: int) -> socket.socket:
    """A non-blocking socket bound to (host, port) and listening (port 0: a free one).

    The one way the server binds: a lone process serves it at once; a master
    binds it before forking, and every worker serves the same socket.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not 0: the accepted sockets inherit it, and asyncio
    # turns Nagle's algorithm off (TCP_NODELAY) only on sockets that say TCP.
    # With Nagle on, a reply written in two parts (a POP3 message, then its
    # ".") waited for the client's delayed ACK: 40 ms a message.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
