"""A byte pipe over one asyncio transport that the session driver fully controls.

Owns reading (with an exact view of what is buffered, so that plaintext
pipelined behind STARTTLS can be thrown away before the handshake, RFC 3207
§4.2), writing with flow control, the switch to TLS, and the switch to
compression above the transport (IMAP COMPRESS=DEFLATE, RFC 4978; the codec
is ``deflate.DeflateCodec``). Input is bounded: reading pauses while more
than ``HIGH_WATER`` octets wait to be consumed, and compressed input is
inflated only as far as that room goes (the rest stays compressed). A
connection that never compresses pays one attribute check per read and
per send for it.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import dataclass
from typing import cast

from postoffice.net.deflate import DeflateCodec, DeflateError

HIGH_WATER = 256 * 1024
TIMER_SLACK = 0.001  # a timer may run this early (the loop's clock resolution)


@dataclass(frozen=True, slots=True)
class TlsSessionInfo:
    """What a finished handshake tells the protocol and the Received header."""

    version: str
    cipher: str
    bits: int | None


def session_info(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> TlsSessionInfo:
    cipher = ssl_object.cipher()
    name, _, bits = cipher if cipher else ("unknown", "", None)
    return TlsSessionInfo(ssl_object.version() or "unknown", name, bits)


class Pipe(asyncio.Protocol):
    """Protocol + reader/writer for one connection (see module doc)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._eof = False
        self._waiter: asyncio.Future[None] | None = None  # a read waiting for input
        # The read timeout: one timer per connection, moved lazily (see ``read``).
        self._deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._paused = False
        self._codec: DeflateCodec | None = None  # set once compression is on (RFC 4978)
        self.failure: str | None = None  # why input ended early (corrupt compressed input)

    # -- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport, only alike.
        self.transport = cast(asyncio.Transport, transport)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self._codec is not None:
            self._inflate(data)
            return
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
        self._stop_timer()

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
        seconds. No task and no new timer per read (``asyncio.wait_for`` would
        start a task for every command): the read sets the connection's
        deadline, and the one timer is moved only when the deadline comes
        earlier than it; when a later deadline was set meanwhile, the timer
        that fires sets itself again for it.
        """
        if self._buffer or self._eof:
            return self.take()
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiter = waiter
        if timeout is None:
            self._deadline = None
        else:
            deadline = loop.time() + timeout
            self._deadline = deadline
            if self._timer is None or self._timer.when() > deadline:
                self._stop_timer()
                self._timer = loop.call_at(deadline, self._expire)
        try:
            await waiter
        finally:
            self._waiter = None
        return self.take()

    def _expire(self) -> None:
        self._timer = None
        waiter, deadline = self._waiter, self._deadline
        if waiter is None or waiter.done() or deadline is None:
            return  # no read waits now: the next one sets the timer again
        loop = asyncio.get_running_loop()
        if loop.time() + TIMER_SLACK >= deadline:
            waiter.set_exception(TimeoutError())
        else:
            self._timer = loop.call_at(deadline, self._expire)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def ready(self) -> bool:
        """True when ``read()`` would return at once (input buffered, or end of input)."""
        return bool(self._buffer) or self._eof

    def take(self) -> bytes:
        """What is buffered now (``b""`` if nothing), without waiting."""
        data = bytes(self._buffer)
        self._buffer.clear()
        if self._codec is not None:
            self._inflate(b"")  # the room is back: inflate what was held, resume or stay paused
            return data
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
        if self._codec is not None:
            data = self._codec.compress(data)  # sync-flushed: decodable at once (RFC 4978 §4)
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

    async def start_tls(
        self,
        context: ssl.SSLContext,
        *,
        server_side: bool = True,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> TlsSessionInfo:
        """Switch this connection to TLS (after ``prepare_tls``): as the server, or as
        the client of ``server_hostname`` (remote delivery)."""
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        tls_transport = await loop.start_tls(
            self.transport,
            self,
            context,
            server_side=server_side,
            server_hostname=server_hostname,
            ssl_handshake_timeout=timeout,
        )
        if tls_transport is None:
            raise ConnectionError("the TLS handshake did not produce a transport")
        self.transport = tls_transport
        self._paused = False  # start_tls resumed reading on the new transport
        ssl_object = tls_transport.get_extra_info("ssl_object")
        return session_info(ssl_object)

    # -- compression (RFC 4978) ------------------------------------------------------

    @property
    def compressed(self) -> bool:
        return self._codec is not None

    def start_compression(self, last_plain: bytes = b"") -> int:
        """Write ``last_plain`` (the tagged OK to COMPRESS) as it is, then compress
        both ways; returns the octets of plain input dropped.

        RFC 4978 §3: the server compresses from the octet after the CRLF of
        its tagged OK, and the client sends nothing after COMPRESS until it
        has seen that OK, then compresses from its next command on. So the
        input read but not yet consumed now was sent before the OK: it is not
        compressed, and it is dropped (as plaintext behind STARTTLS is).
        Everything that arrives from here on is inflated. No await in here,
        so no input can slip in between the OK and the switch.
        """
        if self._codec is not None:
            raise RuntimeError("compression is already on")
        self.send(last_plain)
        dropped = self.discard_buffered()
        self._codec = DeflateCodec()
        self._inflate(b"")  # the room is back: resume reading if plain input had paused it
        return dropped

    def _inflate(self, data: bytes) -> None:
        """Compressed ``data`` in: inflate as much as the room under ``HIGH_WATER`` allows.

        The rest stays compressed in the codec and reading pauses until
        ``take`` makes room, so a small input that inflates enormously
        (a compression bomb) never expands past the same bound as plain
        input. Corrupt input ends the input: ``failure`` says why, the reader
        sees end of input, and nothing more is read.
        """
        codec = self._codec
        assert codec is not None
        if self.failure is None:
            room = HIGH_WATER - len(self._buffer)
            try:
                if room > 0:
                    self._buffer += codec.inflate(data, room)
                else:
                    codec.hold(data)
            except DeflateError as exc:
                self.failure = f"corrupt compressed input: {exc}"
                self._eof = True
        if self._buffer or self._eof:  # input that inflated to nothing is no input:
            self._wake()  # a reader woken with none would take it for the end
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        stop = self.failure is not None or codec.held > 0 or len(self._buffer) > HIGH_WATER
        if stop and not self._paused:
            self._paused = True
            transport.pause_reading()
        elif not stop and self._paused:
            self._paused = False
            transport.resume_reading()

    def close(self) -> None:
        self._stop_timer()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    @property
    def at_eof(self) -> bool:
        return self._eof and not self._buffer


async def connect(host: str, port: int, *, timeout: float, bind_address: str | None = None) -> Pipe:
    """A ``Pipe`` over a new TCP connection to ``host``:``port`` (an IP address).

    ``OSError`` when the connection is refused or unreachable, ``TimeoutError``
    after ``timeout`` seconds; ``bind_address`` chooses the local address (so a
    mail host on 127.0.0.2 speaks from 127.0.0.2).
    """
    loop = asyncio.get_running_loop()
    local = (bind_address, 0) if bind_address else None
    async with asyncio.timeout(timeout):
        _, pipe = await loop.create_connection(Pipe, host, port, local_addr=local)
    return pipe
