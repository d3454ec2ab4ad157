"""A scriptable receiving SMTP server for failure tests: it plays the far side of the network.

A real TCP server on an IPv4 loopback address, one thread per connection, so
sync tests and tests running their own asyncio loop can both use it. The
``Script`` (defaults: a well-behaved ESMTP server) decides the replies; it may
be replaced live, each command reads the current one. ``sessions`` records
every connection (``done`` once closed), ``messages`` the accepted mail.
As a real server (RFC 5321, 2920, 3030, 3207, 4954): pipelined commands are
read from one buffer; DATA ends only at CRLF "." CRLF and is dot-unstuffed;
plaintext after STARTTLS is discarded and the state reset; a greeting other
than 220 refuses service (503 to all but QUIT), 421 hangs up. Reads time out
after 30 s. An unexpected exception in a server thread (a bug, a script
callable raising) is kept in ``errors`` and raised again by ``__exit__``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

READ_TIMEOUT = 30.0
MAX_COMMAND_LINE = 16384  # generous: RFC 4954 §4 allows 12288 octets of SASL response
MAX_DATA_LINE = 1 << 20
MAX_MESSAGE = 64 << 20
JOIN_TIMEOUT = 10.0
INJECTION = b"220 2.0.0 Ready to start TLS\r\n250 2.0.0 injected\r\n"
EXTENSIONS = ("PIPELINING", "8BITMIME", "SMTPUTF8", "SIZE 10485760", "ENHANCEDSTATUSCODES", "DSN")


@dataclass
class Script:
    """What the far side answers; replies are full reply lines (several: split by newlines)."""

    greeting: str = "220 far.test ESMTP scripted"
    extensions: tuple[str, ...] = EXTENSIONS
    ehlo_reply: str | None = None  # replaces the whole EHLO reply (HELO still answers 250)
    rcpt: Callable[[str, int], str] | None = None  # (address, times seen before) -> reply
    mail: Callable[[str], str] | None = None  # reverse-path -> reply
    data_reply: str = "354 End data with <CR><LF>.<CR><LF>"
    final_reply: Callable[[int], str] | None = None  # (messages received before) -> reply
    drop_after_data: bool = False
    starttls_injection: bool = False
    tls_context: ssl.SSLContext | None = None
    offer_starttls: bool = True  # advertise STARTTLS (it works whenever tls_context is set)
    auth: tuple[str, str] | None = None
    chunking: bool = False
    max_size: int | None = None  # replaces the SIZE extension and is enforced
    hostname: str = "far.test"


@dataclass
class Received:
    """One mail transaction, from an accepted MAIL on; ``accepted`` once the final reply is 2xx."""

    mail_from: str
    mail_params: list[str] = field(default_factory=list)
    rcpts: list[tuple[str, list[str]]] = field(default_factory=list)  # accepted recipients
    data: bytes | None = None
    accepted: bool = False
    reply: str | None = None  # the reply to the final dot or BDAT LAST (None if dropped)


@dataclass
class SessionRecord:
    peer: tuple[str, int]
    ehlo: str | None = None  # the name given in the last HELO or EHLO
    tls: bool = False  # the STARTTLS handshake succeeded
    tls_error: str | None = None
    auth: tuple[str, str] | None = None  # the last credentials the client sent
    authenticated: bool = False
    transactions: list[Received] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # command (and SASL) lines, not data
    done: bool = False  # the connection is closed: this record is complete


class _Hangup(Exception):
    """End the session: the client went away, or the script closes the connection."""


class _Cancelled(Exception):  # "*" in answer to an AUTH challenge
    pass


def _wire(text: str) -> bytes:
    return ("\r\n".join(text.splitlines() or [""]) + "\r\n").encode("utf-8")


def _path(arg: str, keyword: str) -> tuple[str, list[str]] | None:
    """``FROM:<a> P=1`` -> ``("a", ["P=1"])``; brackets are optional, as lenient servers do."""
    match = re.fullmatch(rf"{keyword}\s*(?:<([^>]*)>|([^<>\s]+))(.*)", arg, re.IGNORECASE)
    if match is None:
        return None
    return match[1] if match[1] is not None else match[2], match[3].split()


def _b64(text: str) -> str:
    return base64.b64decode(text, validate=True).decode("utf-8")


class _Session:
    def __init__(self, server: ScriptedSmtpServer, sock: socket.socket, record: SessionRecord):
        self.server = server
        self.sock = sock
        self.record = record
        self.buf = bytearray()
        self.greeted = False
        self.esmtp = False
        self.txn: Received | None = None
        self.chunks: bytearray | None = None

    def send(self, text: str) -> None:
        self.sock.sendall(_wire(text))

    def readline(self, limit: int, too_long: str) -> bytes:
        start = 0
        while (end := self.buf.find(b"\n", start)) < 0:
            if len(self.buf) > limit:
                self.send(too_long)
                raise _Hangup
            start = len(self.buf)
            self.fill()
        line, self.buf[: end + 1] = bytes(self.buf[: end + 1]), b""
        return line

    def read_exact(self, size: int) -> bytes:
        while len(self.buf) < size:
            self.fill()
        chunk, self.buf[:size] = bytes(self.buf[:size]), b""
        return chunk

    def fill(self) -> None:
        chunk = self.sock.recv(65536)
        self.buf += chunk
        if not chunk:
            raise _Hangup

    def command(self) -> str:
        line = self.readline(MAX_COMMAND_LINE, "500 5.5.6 Line too long")
        text = line.rstrip(b"\r\n").decode("utf-8", "surrogateescape")
        self.record.lines.append(text)
        return text

    def run(self) -> None:
        greeting = self.server.script.greeting
        self.send(greeting)
        if greeting.startswith("421"):
            return
        refusing = not greeting.startswith("220")
        while True:
            verb, _, arg = self.command().partition(" ")
            verb = verb.upper()
            if verb == "QUIT":
                self.send("221 2.0.0 Bye")
                return
            if refusing:
                self.send("503 5.5.1 No service here")
                continue
            handler = getattr(self, f"do_{verb.lower()}", None) if verb.isalpha() else None
            if handler is None:
                self.send("500 5.5.2 Command unrecognized")
            else:
                handler(arg.strip())

    def reset(self) -> None:
        self.txn = None
        self.chunks = None

    def hello(self, arg: str, esmtp: bool) -> bool:
        if not arg:
            self.send("501 5.5.4 Syntax: EHLO/HELO domain")
            return False
        self.record.ehlo = arg
        self.reset()
        self.greeted, self.esmtp = True, esmtp
        return True

    def do_helo(self, arg: str) -> None:
        if self.hello(arg, esmtp=False):
            self.send(f"250 {self.server.script.hostname}")

    def do_ehlo(self, arg: str) -> None:
        script = self.server.script
        if not self.hello(arg, esmtp=True):
            return None
        if script.ehlo_reply is not None:
            self.greeted = self.esmtp = script.ehlo_reply.startswith("2")
            return self.send(script.ehlo_reply)
        extensions = list(script.extensions)
        if script.max_size is not None:
            extensions = [e for e in extensions if e.split()[0].upper() != "SIZE"]
            extensions.append(f"SIZE {script.max_size}")
        if script.chunking:
            extensions.append("CHUNKING")
        if script.tls_context is not None and script.offer_starttls and not self.record.tls:
            extensions.append("STARTTLS")
        if script.auth is not None:
            extensions.append("AUTH PLAIN LOGIN")
        lines = [f"{script.hostname} greets {arg}", *extensions]
        return self.send("".join(f"250-{x}\n" for x in lines[:-1]) + f"250 {lines[-1]}")

    def do_noop(self, arg: str) -> None:
        self.send("250 2.0.0 Ok")

    def do_rset(self, arg: str) -> None:
        self.reset()
        self.send("250 2.0.0 Ok")

    def do_starttls(self, arg: str) -> None:
        context = self.server.script.tls_context
        if context is None:
            return self.send("502 5.5.1 STARTTLS not available")
        if self.record.tls:
            return self.send("503 5.5.1 TLS already active")
        if self.server.script.starttls_injection:
            if self.sock.send(INJECTION) != len(INJECTION):
                raise _Hangup
        else:
            self.send("220 2.0.0 Ready to start TLS")
        self.buf.clear()  # RFC 3207 §6: nothing sent before the handshake counts
        tls = self.server._wrap(self, context)
        try:
            tls.do_handshake()
        except (OSError, ValueError) as exc:
            self.record.tls_error = repr(exc)
            raise _Hangup from exc
        self.record.tls = True
        self.record.authenticated = self.greeted = self.esmtp = False
        return self.reset()

    def do_auth(self, arg: str) -> None:
        script = self.server.script
        if script.auth is None:
            return self.send("502 5.5.1 AUTH not available")
        if not self.esmtp or self.record.authenticated or self.txn is not None:
            return self.send("503 5.5.1 AUTH not allowed now")
        mechanism, _, initial = arg.partition(" ")
        authzid = ""
        try:
            if mechanism.upper() == "PLAIN":
                response = initial if initial else self.challenge("")
                parts = _b64("" if response == "=" else response).split("\0")
                if len(parts) != 3:
                    raise ValueError("PLAIN needs authzid NUL user NUL password")
                authzid, user, password = parts
            elif mechanism.upper() == "LOGIN":
                user = _b64(initial if initial else self.challenge("Username:"))
                password = _b64(self.challenge("Password:"))
            else:
                return self.send("504 5.5.4 Unrecognized authentication type")
        except _Cancelled:
            return self.send("501 5.7.0 Authentication cancelled")
        except ValueError:
            return self.send("501 5.5.2 Cannot decode response")
        self.record.auth = (user, password)
        if (user, password) == script.auth and authzid in ("", user):
            self.record.authenticated = True
            return self.send("235 2.7.0 Authentication successful")
        return self.send("535 5.7.8 Authentication credentials invalid")

    def challenge(self, prompt: str) -> str:
        self.send("334 " + base64.b64encode(prompt.encode()).decode())
        line = self.command()
        if line == "*":
            raise _Cancelled
        return line

    def do_mail(self, arg: str) -> None:
        script = self.server.script
        if not self.greeted:
            return self.send("503 5.5.1 Send HELO/EHLO first")
        if self.txn is not None:
            return self.send("503 5.5.1 Nested MAIL command")
        parsed = _path(arg, "FROM:")
        if parsed is None:
            return self.send("501 5.5.4 Syntax: MAIL FROM:<address>")
        address, params = parsed
        sizes = [p[5:] for p in params if p.upper().startswith("SIZE=") and p[5:].isdigit()]
        if script.max_size is not None and any(int(n) > script.max_size for n in sizes):
            return self.send("552 5.3.4 Message size exceeds fixed limit")
        reply = script.mail(address) if script.mail else "250 2.1.0 Ok"
        if reply.startswith("2"):
            self.txn = Received(address, params)
            self.record.transactions.append(self.txn)
        return self.send(reply)

    def do_rcpt(self, arg: str) -> None:
        script = self.server.script
        if self.txn is None:
            return self.send("503 5.5.1 Need MAIL command")
        parsed = _path(arg, "TO:")
        if parsed is None:
            return self.send("501 5.5.4 Syntax: RCPT TO:<address>")
        address, params = parsed
        seen = self.server._count(f"rcpt:{address}")
        reply = script.rcpt(address, seen) if script.rcpt else "250 2.1.5 Ok"
        if reply.startswith("2"):
            self.txn.rcpts.append((address, params))
        return self.send(reply)

    def ready_for_data(self) -> bool:
        if self.txn is None:
            self.send("503 5.5.1 Need MAIL command")
        elif not self.txn.rcpts:
            self.send("554 5.5.1 No valid recipients")
        else:
            return True
        return False

    def do_data(self, arg: str) -> None:
        if self.chunks is not None:
            return self.send("503 5.5.1 BDAT in progress")
        if not self.ready_for_data():
            return None
        reply = self.server.script.data_reply
        self.send(reply)
        if not reply.startswith("3"):
            return None
        body = bytearray()
        at_line_start = True
        while True:
            line = self.readline(MAX_DATA_LINE, "552 5.3.4 Line too long")
            if at_line_start and line == b".\r\n":
                return self.finish(bytes(body))
            body += line[1:] if at_line_start and line.startswith(b".") else line
            if len(body) > MAX_MESSAGE:
                self.send("552 5.3.4 Message too big")
                raise _Hangup
            at_line_start = line.endswith(b"\r\n")

    def do_bdat(self, arg: str) -> None:
        if not self.server.script.chunking:
            return self.send("500 5.5.2 Command unrecognized")
        parts = arg.split()
        size = parts[0] if parts else ""
        last = len(parts) == 2 and parts[1].upper() == "LAST"
        if not (size.isascii() and size.isdigit()) or len(parts) != 1 + last:
            self.send("501 5.5.4 Syntax: BDAT size [LAST]")
            raise _Hangup  # the chunk's length is unknown: no way to find the next command
        if int(size) + len(self.chunks or b"") > MAX_MESSAGE:
            self.send("552 5.3.4 Message too big")
            raise _Hangup
        chunk = self.read_exact(int(size))  # RFC 3030 §2: read the chunk even to refuse it
        if not self.ready_for_data():
            return None
        self.chunks = (self.chunks or bytearray()) + chunk
        if last:
            return self.finish(bytes(self.chunks))
        return self.send(f"250 2.0.0 {size} octets received")

    def finish(self, data: bytes) -> None:
        txn = self.txn
        assert txn is not None
        self.reset()
        txn.data = data
        before = self.server._count("messages")
        script = self.server.script
        if script.drop_after_data:
            raise _Hangup
        if script.max_size is not None and len(data) > script.max_size:
            reply = "552 5.3.4 Message too big"
        elif script.final_reply is not None:
            reply = script.final_reply(before)
        else:
            reply = f"250 2.0.0 Ok: queued as SCRIPTED{before + 1}"
        txn.reply, txn.accepted = reply, reply.startswith("2")
        self.send(reply)


class ScriptedSmtpServer:
    """The far side, as a context manager: ``with ScriptedSmtpServer(script=...) as far:``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, script: Script | None = None):
        address = ipaddress.ip_address(host)
        if address.version != 4 or not address.is_loopback:
            raise ValueError(f"ScriptedSmtpServer binds IPv4 loopback only, not {host!r}")
        self.host = host
        self.port = port
        self.script = script if script is not None else Script()
        self.sessions: list[SessionRecord] = []
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._stopping = False
        self._counts: dict[str, int] = {}
        self._live: set[_Session] = set()
        self._threads: list[threading.Thread] = []
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None

    @property
    def messages(self) -> list[Received]:
        return [t for s in list(self.sessions) for t in list(s.transactions) if t.accepted]

    def wait_for(self, predicate: Callable[[], object], timeout: float = 10.0) -> None:
        """Block until ``predicate()`` is true; TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met in {timeout} s; sessions: {self.sessions}")
            time.sleep(0.005)

    async def wait_for_async(self, predicate: Callable[[], object], timeout: float = 10.0) -> None:
        """``wait_for`` for a test running an asyncio loop (it does not block the loop)."""
        await asyncio.to_thread(self.wait_for, predicate, timeout)

    def __enter__(self) -> ScriptedSmtpServer:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.host, self.port))
            listener.listen(16)
            listener.settimeout(0.05)  # the acceptor polls for the stop flag
        except BaseException:
            listener.close()
            raise
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept, name="scripted-smtp", daemon=True)
        self._acceptor.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        with self._lock:
            self._stopping = True
        if self._acceptor is not None:
            self._acceptor.join(JOIN_TIMEOUT)
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            for session in self._live:
                with contextlib.suppress(OSError):  # the plain call, also on an SSLSocket
                    socket.socket.shutdown(session.sock, socket.SHUT_RDWR)  # wakes a blocked read
        for thread in self._threads:
            thread.join(JOIN_TIMEOUT)
            if thread.is_alive():
                self.errors.append(RuntimeError(f"{thread.name} did not stop"))
        if self.errors and exc_type is None:
            raise RuntimeError(f"scripted SMTP server failed: {self.errors!r}") from self.errors[0]

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopping:
            try:
                conn, peer = self._listener.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                if not self._stopping:
                    self.errors.append(exc)
                return
            conn.settimeout(READ_TIMEOUT)
            session = _Session(self, conn, SessionRecord(peer=peer))
            thread = threading.Thread(
                target=self._serve, args=(session,), name=f"scripted-smtp-{peer[1]}", daemon=True
            )
            with self._lock:
                if self._stopping:
                    conn.close()
                    return
                self.sessions.append(session.record)
                self._live.add(session)
                self._threads.append(thread)
            thread.start()

    def _serve(self, session: _Session) -> None:
        try:
            session.run()
        except (_Hangup, OSError):
            pass
        except Exception as exc:
            self.errors.append(exc)
        finally:
            with self._lock:
                self._live.discard(session)
                session.sock.close()
            session.record.done = True

    def _wrap(self, session: _Session, context: ssl.SSLContext) -> ssl.SSLSocket:
        """Swap the session's socket for TLS, under the lock that ``__exit__`` shuts down under."""
        with self._lock:
            if self._stopping:
                raise _Hangup
            tls = context.wrap_socket(session.sock, server_side=True, do_handshake_on_connect=False)
            session.sock = tls
            return tls

    def _count(self, key: str) -> int:
        """How many times ``key`` was counted before (0 the first time), across sessions."""
        with self._lock:
            seen = self._counts.get(key, 0)
            self._counts[key] = seen + 1
            return seen


def self_signed_context(directory: Path, hostname: str = "far.test") -> ssl.SSLContext:
    """A server context with a fresh self-signed P-256 certificate for ``hostname``.

    The certificate is left in ``directory/<hostname>.pem``, for a client that
    wants to verify it (``ssl.create_default_context(cafile=...)``).
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path = Path(directory) / f"{hostname}.pem"
    key_path = Path(directory) / f"{hostname}.key"
    cert_path.write_bytes(cert.public_bytes(Encoding.PEM))
    key_path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context
