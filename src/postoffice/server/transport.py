"""A byte pipe over one asyncio transport that the session driver fully controls.

Owns reading (with an exact view of what is buffered, so that plaintext
pipelined behind STARTTLS can be thrown away before the handshake, RFC 3207
§4.2), writing with flow control, and the switch to TLS. Input is bounded:
reading pauses while more than ``HIGH_WATER`` octets wait to be consumed.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import cast

from postoffice.server.tls import TlsSessionInfo, session_info

HIGH_WATER = 256 * 1024


class Pipe(asyncio.Protocol):
    """Protocol + reader/writer for one connection (see module doc)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._eof = False
        self._waiter: asyncio.Future[None] | None = None  # a read waiting for input
        self._writable = asyncio.Event()
        self._writable.set()
        self._paused = False

    # -- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport, only alike.
        self.transport = cast(asyncio.Transport, transport)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._wake()
        if len(self._buffer) > HIGH_WATER and self.transport is not None and not self._paused:
            self._paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._wake()
        self._writable.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- the driver's side ----------------------------------------------------------

    @property
    def peer(self) -> tuple[str, int]:
        assert self.transport is not None
        name = self.transport.get_extra_info("peername")
        return (str(name[0]), int(name[1])) if name else ("", 0)

    async def read(self, timeout: float | None = None) -> bytes:
        """What has arrived (at least one octet), or ``b""`` at end of input.

        With ``timeout``, ``TimeoutError`` when nothing came within that many
        seconds: a timer on one future (``asyncio.wait_for`` would start a task
        for every read of every command).
        """
        if self._buffer or self._eof:
            return self.take()
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiter = waiter
        timer = None if timeout is None else loop.call_later(timeout, _expire, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()
        return self.take()

    def ready(self) -> bool:
        """True when ``read()`` would return at once (input buffered, or end of input)."""
        return bool(self._buffer) or self._eof

    def take(self) -> bytes:
        """What is buffered now (``b""`` if nothing), without waiting."""
        data = bytes(self._buffer)
        self._buffer.clear()
        if self._paused and self.transport is not None and not self.transport.is_closing():
            self._paused = False
            self.transport.resume_reading()
        return data

    def input_pending(self) -> bool:
        """True when the client has sent octets not read yet (a peek: nothing is consumed)."""
        if self._buffer:
            return True
        if self.transport is None or self.transport.get_extra_info("ssl_object") is not None:
            return False  # under TLS the socket holds records, not the client's commands
        sock = self.transport.get_extra_info("socket")
        if sock is None:
            return False
        try:
            with socket.fromfd(sock.fileno(), sock.family, sock.type) as peek:
                return bool(peek.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
        except OSError:  # BlockingIOError: nothing there
            return False

    def discard_buffered(self) -> int:
        """Throw away input not yet read; how many octets went."""
        count = len(self._buffer)
        self._buffer.clear()
        return count

    async def write(self, data: bytes) -> None:
        if self.send(data):
            await self.drain()

    def send(self, data: bytes) -> bool:
        """Hand ``data`` to the transport; True when the caller should ``drain()``."""
        if not data or self.transport is None or self.transport.is_closing():
            return False
        self.transport.write(data)
        return not self._writable.is_set()

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its high-water mark."""
        await self._writable.wait()

    def prepare_tls(self) -> int:
        """Before the ``220`` to STARTTLS: stop reading and drop the plaintext read so far.

        Everything the client sends after it has seen the ``220`` (its TLS
        ClientHello) stays in the kernel until ``start_tls`` hands it to TLS, so
        it can never be mistaken for plaintext pipelined behind STARTTLS
        (RFC 3207 §4.2). Returns the octets dropped.
        """
        assert self.transport is not None
        if not self._paused:
            self._paused = True
            self.transport.pause_reading()
        return self.discard_buffered()

    async def start_tls(self, context: ssl.SSLContext) -> TlsSessionInfo:
        """Switch this connection to TLS as the server (after ``prepare_tls``)."""
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        tls_transport = await loop.start_tls(self.transport, self, context, server_side=True)
        if tls_transport is None:
            raise ConnectionError("the TLS handshake did not produce a transport")
        self.transport = tls_transport
        self._paused = False  # start_tls resumed reading on the new transport
        ssl_object = tls_transport.get_extra_info("ssl_object")
        return session_info(ssl_object)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    @property
    def at_eof(self) -> bool:
        return self._eof and not self._buffer


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())
