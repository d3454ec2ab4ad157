"""A loopback authoritative DNS server for tests: real DNS on 127.0.0.1, UDP and TCP.

Owns a small in-memory zone that tests edit while the server runs, and
answers queries from it the way an authoritative server would, so that the
real resolver (dnspython) is exercised end to end without ever sending a
packet off the machine (only loopback addresses are bound or answered).

Rules, as a real server (RFC 1034 §4.3.2, RFC 2308, RFC 8020):
- A name with records of the asked type: those records (AA set), in the
  order they were added (no round-robin shuffle). A CNAME is
  followed inside the zone (at most 8 links).
- A name that exists (it has records of another type, or a name below it
  has records: an empty non-terminal) but none of the type: NOERROR, no
  answer (NODATA). Any other name: NXDOMAIN.
- ``set_failure(name, "SERVFAIL" | "REFUSED" | ...)`` answers with that RCODE;
  ``"TIMEOUT"`` does not answer at all.
- Over UDP an answer is at most 512 octets (RFC 1035 §4.2.1), or the
  client's EDNS payload size (RFC 6891 §6.2.3) if larger; a bigger answer is
  sent empty with TC set, so the client must ask again over TCP (RFC 7766).

Every question is recorded in ``queries`` as ``(name, type)`` (names lower
case, no trailing dot), and in ``tcp_queries`` too when it came over TCP.
"""

from __future__ import annotations

import ipaddress
import selectors
import socket
import struct
import threading
from types import TracebackType

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rrset

UDP_LIMIT = 512  # RFC 1035 §4.2.1
TCP_LIMIT = 65535
MAX_CNAME_CHAIN = 8
FAILURES = frozenset({"SERVFAIL", "REFUSED", "NXDOMAIN", "FORMERR", "NOTIMP", "TIMEOUT"})


def _key(name: str | dns.name.Name) -> str:
    text = name.to_text() if isinstance(name, dns.name.Name) else name
    return text.rstrip(".").lower()


class LoopbackDnsServer:
    """An authoritative DNS server on a loopback address, in a background thread.

    Use as a context manager; ``port`` is the kernel-chosen port (the same
    number for UDP and TCP), ``nameservers`` the pair to give a resolver.
    """

    def __init__(self, host: str = "127.0.0.1"):
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"LoopbackDnsServer only binds loopback addresses, not {host!r}")
        self.host = host
        self.port = 0
        self.queries: list[tuple[str, str]] = []
        self.tcp_queries: list[tuple[str, str]] = []
        self.errors: list[BaseException] = []
        self._records: dict[str, dict[str, list[tuple[int, dns.rdata.Rdata]]]] = {}
        self._failures: dict[tuple[str, str | None], str] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._sockets: list[socket.socket] = []
        self._wake: socket.socket | None = None

    # -- the zone -----------------------------------------------------------------

    @property
    def nameservers(self) -> list[tuple[str, int]]:
        return [(self.host, self.port)]

    def add(self, name: str, rdtype: str, text: str, ttl: int = 300) -> None:
        """Add one record: ``add("b.test", "MX", "10 mx.b.test.")``."""
        rdata = dns.rdata.from_text(
            dns.rdataclass.IN,
            dns.rdatatype.from_text(rdtype),
            text,
            origin=dns.name.root,
            relativize=False,
        )
        with self._lock:
            types = self._records.setdefault(_key(name), {})
            types.setdefault(rdtype.upper(), []).append((ttl, rdata))

    def remove(self, name: str, rdtype: str | None = None) -> None:
        """Remove the records of ``name`` (of one type, or all)."""
        with self._lock:
            if rdtype is None:
                self._records.pop(_key(name), None)
                return
            types = self._records.get(_key(name), {})
            types.pop(rdtype.upper(), None)
            if not types:
                self._records.pop(_key(name), None)

    def set_failure(self, name: str, failure: str, rdtype: str | None = None) -> None:
        """Answer questions about ``name`` (of one type, or all) with ``failure``."""
        if failure.upper() not in FAILURES:
            raise ValueError(f"unknown failure {failure!r} (known: {sorted(FAILURES)})")
        with self._lock:
            self._failures[(_key(name), rdtype and rdtype.upper())] = failure.upper()

    def clear_failure(self, name: str, rdtype: str | None = None) -> None:
        with self._lock:
            self._failures.pop((_key(name), rdtype and rdtype.upper()), None)

    def clear_queries(self) -> None:
        with self._lock:
            self.queries.clear()
            self.tcp_queries.clear()

    # -- answering ----------------------------------------------------------------

    def _exists(self, key: str) -> bool:
        if key in self._records:
            return True
        suffix = "." + key
        return any(name.endswith(suffix) for name in self._records)

    def respond(self, query: dns.message.Message, *, tcp: bool) -> dns.message.Message | None:
        """The response to ``query``, or None for no answer (a simulated timeout)."""
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response
        question = query.question[0]
        key = _key(question.name)
        type_text = dns.rdatatype.to_text(question.rdtype)
        with self._lock:
            self.queries.append((key, type_text))
            if tcp:
                self.tcp_queries.append((key, type_text))
            failure = self._failures.get((key, type_text)) or self._failures.get((key, None))
            if failure == "TIMEOUT":
                return None
            if failure is not None:
                response.set_rcode(dns.rcode.from_text(failure))
                return response
            self._answer(response, question.name, question.rdtype)
        return response

    def _answer(
        self, response: dns.message.Message, owner: dns.name.Name, rdtype: dns.rdatatype.RdataType
    ) -> None:
        type_text = dns.rdatatype.to_text(rdtype)
        for _ in range(MAX_CNAME_CHAIN):
            types = self._records.get(_key(owner), {})
            wanted = types.get(type_text)
            if wanted:
                response.answer.append(_rrset(owner, wanted))
                return
            cname = types.get("CNAME")
            if not cname or rdtype == dns.rdatatype.CNAME:
                break
            # RFC 1034 §4.3.2 step 3a: the CNAME, then the answer for its target.
            response.answer.append(_rrset(owner, cname))
            target = cname[0][1]
            assert isinstance(target, dns.rdtypes.ANY.CNAME.CNAME)
            owner = target.target
        if not self._exists(_key(owner)):
            response.set_rcode(dns.rcode.NXDOMAIN)

    def _wire(self, query: dns.message.Message, response: dns.message.Message, limit: int) -> bytes:
        try:
            # dnspython shuffles the records of an RRset on output unless told
            # not to (round robin); tests want the order the records were added.
            return response.to_wire(max_size=limit, want_shuffle=False)
        except dns.exception.TooBig:
            # RFC 2181 §9: too big for the transport: no records, TC set.
            truncated = dns.message.make_response(query)
            truncated.flags |= dns.flags.AA | dns.flags.TC
            return truncated.to_wire(max_size=limit)

    def _handle(self, data: bytes, *, tcp: bool) -> bytes | None:
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return None  # not a DNS message: a real server drops it too
        response = self.respond(query, tcp=tcp)
        if response is None:
            return None
        if tcp:
            limit = TCP_LIMIT
        else:
            limit = UDP_LIMIT if query.edns < 0 else max(UDP_LIMIT, query.payload)
        return self._wire(query, response, limit)

    # -- the thread ---------------------------------------------------------------

    def start(self) -> LoopbackDnsServer:
        if self._thread is not None:
            raise RuntimeError("the DNS server is running already")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        udp, tcp = self._bind_pair(family)
        wake_read, wake_write = socket.socketpair()
        self._sockets = [udp, tcp, wake_read]
        self._wake = wake_write
        self._thread = threading.Thread(
            target=self._serve, args=(udp, tcp, wake_read), name="loopback-dns", daemon=True
        )
        self._thread.start()
        return self

    def _bind_pair(self, family: socket.AddressFamily) -> tuple[socket.socket, socket.socket]:
        """A UDP and a TCP socket bound to the same kernel-chosen port."""
        for _ in range(50):
            udp = socket.socket(family, socket.SOCK_DGRAM)
            tcp = socket.socket(family, socket.SOCK_STREAM)
            try:
                udp.bind((self.host, 0))
                self.port = udp.getsockname()[1]
                tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                tcp.bind((self.host, self.port))
                tcp.listen(16)
            except OSError:
                udp.close()
                tcp.close()
                continue
            udp.setblocking(False)
            tcp.setblocking(False)
            return udp, tcp
        raise RuntimeError("no port free for both UDP and TCP")

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        assert self._wake is not None
        self._wake.send(b"x")
        thread.join(timeout=10)
        self._wake.close()
        self._wake = None
        for sock in self._sockets:
            sock.close()
        self._sockets = []
        if thread.is_alive():
            raise RuntimeError("the DNS server thread did not stop")
        if self.errors:
            raise RuntimeError(f"the DNS server failed: {self.errors[0]!r}") from self.errors[0]

    def __enter__(self) -> LoopbackDnsServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _serve(self, udp: socket.socket, tcp: socket.socket, wake: socket.socket) -> None:
        buffers: dict[socket.socket, bytearray] = {}
        with selectors.DefaultSelector() as selector:
            for sock in (udp, tcp, wake):
                selector.register(sock, selectors.EVENT_READ)
            try:
                while True:
                    for key, _events in selector.select():
                        ready = key.fileobj
                        assert isinstance(ready, socket.socket)
                        if ready is wake:
                            return
                        try:
                            self._ready(ready, udp, tcp, selector, buffers)
                        except Exception as exc:  # stop() raises it: a bug here fails the test
                            self.errors.append(exc)
            finally:
                for conn in buffers:
                    conn.close()

    def _ready(
        self,
        sock: socket.socket,
        udp: socket.socket,
        tcp: socket.socket,
        selector: selectors.BaseSelector,
        buffers: dict[socket.socket, bytearray],
    ) -> None:
        if sock is udp:
            self._serve_udp(udp)
        elif sock is tcp:
            conn, _peer = tcp.accept()
            conn.setblocking(False)
            buffers[conn] = bytearray()
            selector.register(conn, selectors.EVENT_READ)
        elif not self._serve_tcp(sock, buffers[sock]):
            selector.unregister(sock)
            del buffers[sock]
            sock.close()

    def _serve_udp(self, udp: socket.socket) -> None:
        try:
            data, peer = udp.recvfrom(65535)
        except BlockingIOError:
            return
        reply = self._handle(data, tcp=False)
        if reply is not None:
            udp.sendto(reply, peer)

    def _serve_tcp(self, conn: socket.socket, buffer: bytearray) -> bool:
        """Read from one TCP client and answer its complete messages; False: it is gone."""
        try:
            chunk = conn.recv(65535)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not chunk:
            return False
        buffer += chunk
        # RFC 1035 §4.2.2: each message is preceded by its two-octet length.
        while len(buffer) >= 2:
            (length,) = struct.unpack("!H", buffer[:2])
            if len(buffer) < 2 + length:
                break
            data = bytes(buffer[2 : 2 + length])
            del buffer[: 2 + length]
            reply = self._handle(data, tcp=True)
            if reply is None:
                continue
            conn.settimeout(5)
            try:
                conn.sendall(struct.pack("!H", len(reply)) + reply)
            except OSError:
                return False
            finally:
                conn.setblocking(False)
        return True


def _rrset(owner: dns.name.Name, records: list[tuple[int, dns.rdata.Rdata]]) -> dns.rrset.RRset:
    ttl = min(ttl for ttl, _rdata in records)
    return dns.rrset.from_rdata_list(owner, ttl, [rdata for _ttl, rdata in records])
