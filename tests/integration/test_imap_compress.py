"""COMPRESS=DEFLATE (RFC 4978) against a real ``postoffice serve``, over real sockets.

stdlib ``imaplib`` has no COMPRESS, so ``DeflateIMAP`` (and its IMAPS twin)
teach it: after the tagged OK its socket writes are deflated with a sync
flush and its reads inflated (raw DEFLATE, zlib window bits -15), the way
RFC 4978 clients do. Compression sits above TLS: on the ``imap`` port after
STARTTLS and on ``imaps``. Mail comes in by SMTP as in life; IDLE under
compression must report it at once.
"""

from __future__ import annotations

import imaplib
import re
import socket
import ssl
import time
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from .smtp_fixtures import DOMAIN, HOST, PASSWORD, SmtpServer, wait_for
from .test_imap_server import deliver, tls_context

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

USERS = tuple(f"z{n}" for n in range(8))
_handed_out: list[str] = []

imaplib.Commands.setdefault("COMPRESS", ("AUTH", "SELECTED"))  # RFC 4978 §3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    data = tmp_path_factory.mktemp("imap-compress") / "var"
    srv = SmtpServer(data, users=USERS).setup()
    try:
        yield srv.start()
    finally:
        srv.stop()


@pytest.fixture
def user() -> str:
    assert len(_handed_out) < len(USERS), "more tests than users: add users"
    name = f"{USERS[len(_handed_out)]}@{DOMAIN}"
    _handed_out.append(name)
    return name


class DeflateMixin:
    """imaplib's socket I/O, compressed once ``compress()`` got its OK."""

    sock: socket.socket
    _deflater: zlib._Compress | None = None

    def compress(self) -> tuple[str, list[bytes]]:
        typ, data = self._simple_command("COMPRESS", "DEFLATE")  # type: ignore[attr-defined]
        if typ == "OK":
            self._deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
            self._inflater = zlib.decompressobj(-15)
            self._plain = bytearray()
            self.wire_in = self.wire_out = 0
        return typ, data

    def send(self, data: ReadableBuffer) -> None:
        if self._deflater is None:
            super().send(data)  # type: ignore[misc]
            return
        wire = self._deflater.compress(data) + self._deflater.flush(zlib.Z_SYNC_FLUSH)
        self.wire_out += len(wire)
        self.sock.sendall(wire)

    def _fill(self) -> None:
        # imaplib's buffered file read nothing past the OK: the server sent nothing more
        chunk = cast_any(self).file.read1(65536)
        if not chunk:
            raise imaplib.IMAP4.abort("socket error: EOF")
        self.wire_in += len(chunk)
        self._plain += self._inflater.decompress(chunk)

    def readline(self) -> bytes:
        if self._deflater is None:
            return super().readline()  # type: ignore[misc,no-any-return]
        while b"\n" not in self._plain:
            self._fill()
        end = self._plain.index(b"\n") + 1
        line = bytes(self._plain[:end])
        del self._plain[:end]
        return line

    def read(self, size: int) -> bytes:
        if self._deflater is None:
            return super().read(size)  # type: ignore[misc,no-any-return]
        while len(self._plain) < size:
            self._fill()
        data = bytes(self._plain[:size])
        del self._plain[:size]
        return data


def cast_any(value: object) -> Any:
    return value


class DeflateIMAP(DeflateMixin, imaplib.IMAP4):
    pass


class DeflateIMAPS(DeflateMixin, imaplib.IMAP4_SSL):
    pass


def over_starttls(server: SmtpServer, user: str) -> DeflateIMAP:
    client = DeflateIMAP(HOST, server.imap_port, timeout=10)
    client.starttls(tls_context(server))
    client.login(user, PASSWORD)
    return client


def over_imaps(server: SmtpServer, user: str) -> DeflateIMAPS:
    client = DeflateIMAPS(HOST, server.imaps_port, ssl_context=tls_context(server), timeout=10)
    client.login(user, PASSWORD)
    return client


def test_compress_is_advertised_after_login_only(server: SmtpServer, user: str) -> None:
    client = over_imaps(server, user)
    try:
        typ, data = client.capability()
        assert typ == "OK" and b"COMPRESS=DEFLATE" in data[0].split()
    finally:
        client.logout()
    fresh = DeflateIMAPS(HOST, server.imaps_port, ssl_context=tls_context(server), timeout=10)
    try:
        assert "COMPRESS=DEFLATE" not in fresh.capabilities
    finally:
        fresh.shutdown()


@pytest.mark.parametrize("connect", [over_starttls, over_imaps], ids=["starttls", "imaps"])
def test_compressed_select_fetch_over_tls(server: SmtpServer, user: str, connect: object) -> None:
    subjects = [f"compressed {n}" for n in range(3)]
    deliver(server, user, *subjects)
    client = connect(server, user)  # type: ignore[operator]
    try:
        assert client.sock.version() is not None  # TLS underneath (ssl.SSLSocket)
        typ, data = client.compress()
        assert (typ, data) == ("OK", [b"DEFLATE active"])
        typ, data = client.select("INBOX")
        assert typ == "OK" and data == [b"3"]
        typ, data = client.fetch("1:3", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[TEXT])")
        assert typ == "OK"
        texts = [part[1] for part in data if isinstance(part, tuple)]
        assert texts[0::2] == [f"Subject: {s}\r\n\r\n".encode() for s in subjects]
        assert texts[1::2] == [f"body of {s}\r\n".encode() for s in subjects]
        typ, data = client.compress()  # RFC 4978 §3: a second one is refused
        assert typ == "NO" and data[0].startswith(b"[COMPRESSIONACTIVE]")
        typ, data = client.noop()
        assert typ == "OK"
        assert client.wire_in > 0 and client.wire_out > 0
    finally:
        client.logout()
    wait_for(
        lambda: re.search(
            rf"imap\({re.escape(user)}\)\[\d+\]: Disconnected: Logged out", server.maillog()
        ),
        what="the logout line",
    )


def test_idle_under_compression_reports_a_delivery_promptly(server: SmtpServer, user: str) -> None:
    deliver(server, user, "before idle")
    client = over_imaps(server, user)
    try:
        assert client.compress()[0] == "OK"
        assert client.select("INBOX") == ("OK", [b"1"])
        client.send(b"i1 IDLE\r\n")
        assert client.readline() == b"+ idling\r\n"
        deliver(server, user, "during idle")  # returns once the delivery is logged
        delivered = time.monotonic()
        client.sock.settimeout(5)
        line = client.readline()
        assert line == b"* 2 EXISTS\r\n"
        assert time.monotonic() - delivered < 2.0
        client.send(b"DONE\r\n")
        lines = [client.readline()]
        while not lines[-1].startswith(b"i1 "):
            lines.append(client.readline())
        assert lines[-1] == b"i1 OK IDLE terminated\r\n"
    finally:
        client.logout()


def test_corrupt_compressed_input_is_logged_and_closes(server: SmtpServer, user: str) -> None:
    client = over_imaps(server, user)
    try:
        assert client.compress()[0] == "OK"
        client.sock.sendall(b"\xff\xfe this is not DEFLATE\r\n")
        client.sock.settimeout(5)
        with pytest.raises((imaplib.IMAP4.abort, OSError, ssl.SSLError)):
            client._fill()
    finally:
        client.shutdown()
    server.wait_log(
        rf"imap\({re.escape(user)}\)\[\d+\]: warning: corrupt compressed input: .*invalid"
    )
    server.wait_log(rf"imap\({re.escape(user)}\)\[\d+\]: Disconnected: Corrupt compressed input")
