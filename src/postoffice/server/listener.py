"""Listening sockets: one asyncio server per endpoint, one task per connection.

Owns accepting connections, running a session coroutine for each on its own
``Pipe``, and stopping: ``close()`` stops accepting, lets sessions end by
themselves for a grace period, then cancels what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable

from postoffice.net.pipe import Pipe

SessionHandler = Callable[[Pipe], Awaitable[None]]
BACKLOG = 512


class _AcceptingPipe(Pipe):
    def __init__(self, listener: Listener):
        super().__init__()
        self._listener = listener

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._listener.spawn(self)


class Listener:
    """The servers of one protocol role."""

    def __init__(self, role: str, handler: SessionHandler):
        self.role = role
        self.handler = handler
        self.servers: list[asyncio.Server] = []
        self.sessions: set[asyncio.Task[None]] = set()

    async def listen(self, host: str, port: int) -> None:
        await self.adopt(listening_socket(host, port))

    async def adopt(self, sock: socket.socket) -> None:
        """Serve connections of a socket that is already bound and listening."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _AcceptingPipe(self), sock=sock, backlog=BACKLOG)
        self.servers.append(server)

    def spawn(self, pipe: Pipe) -> None:
        task = asyncio.ensure_future(self.handler(pipe))
        self.sessions.add(task)
        task.add_done_callback(self.sessions.discard)

    @property
    def addresses(self) -> list[tuple[str, int]]:
        found = []
        for server in self.servers:
            for sock in server.sockets:
                name = sock.getsockname()
                found.append((str(name[0]), int(name[1])))
        return found

    async def close(self, grace: float = 5.0) -> None:
        for server in self.servers:
            server.close()
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
