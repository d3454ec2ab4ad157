"""Sans-IO conversation harness for ``Pop3ServerConnection``: no sockets, no clock.

``Pop3Harness.converse`` reads a transcript the way RFC 1939 writes examples:

    S: +OK POP3 server ready
    C: USER alice
    S: +OK send PASS

Consecutive ``C:`` lines are one write by the client (a pipelined group): they
are fed together (or octet by octet with ``mode="bytewise"``), then the
``S:`` lines that follow must be exactly what the server wrote (trailing
spaces aside, so ``S: +`` matches an empty SASL challenge). ``S: (none)``
expects silence. A test-side ``FakeDriver`` answers the decisions the way the
asyncio driver will: passwords and APOP digests checked with hashlib, the
maildrop listed with ``wire_size``, messages streamed in chunks.

This module is named ``test_pop3_*`` to sit with the suites that use it; the
few tests at its end check the harness itself.
"""

from __future__ import annotations

import hashlib
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field

from postoffice.protocol.pop3 import (
    Authenticate,
    Closed,
    Event,
    KeysWanted,
    NeedData,
    Pop3ServerConnection,
    Pop3Settings,
    Retrieve,
    StartTls,
    Update,
    dot_lines,
    wire_size,
)
from postoffice.protocol.scram import derive_scram_keys, unknown_user_keys

HOST = "pop.example.test"
RFC_TIMESTAMP = "<1896.697170952@dbc.mtview.ca.us>"  # RFC 1939 §7, §10


def message(subject: str, body: str = "Hello.\r\n") -> bytes:
    return f"From: bob@example.test\r\nSubject: {subject}\r\n\r\n{body}".encode()


def settings(**changes: object) -> Pop3Settings:
    values: dict[str, object] = {"hostname": HOST, "plaintext_auth": True}
    values.update(changes)
    return Pop3Settings(**values)  # type: ignore[arg-type]


@dataclass
class FakeDriver:
    """Answers decisions like the real driver, against in-memory maildrops."""

    passwords: dict[str, str] = field(
        default_factory=lambda: {"alice": "secret", "mrose": "tanstaaf", "jörg": "geheim"}
    )
    maildrops: dict[str, list[bytes]] = field(
        default_factory=lambda: {
            "alice": [message("one"), message("two"), message("three")],
            "mrose": [message("first"), message("second")],
            "jörg": [message("eins")],
        }
    )
    in_use: set[str] = field(default_factory=set)
    chunk_size: int | None = None  # None: each message in one message_data call
    whole: bool = False  # message_whole for messages in wire form (as the real driver)
    unreadable: set[int] = field(default_factory=set)  # indexes that fail before data
    update_ok: bool = True
    updates: list[Update] = field(default_factory=list)
    logins: list[Authenticate] = field(default_factory=list)
    user: str | None = None

    def authenticate(self, conn: Pop3ServerConnection, event: Authenticate) -> None:
        self.logins.append(event)
        secret = self.passwords.get(event.user)
        if event.mechanism == "APOP":
            assert event.password is None and event.apop_timestamp is not None
            expected = None
            if secret is not None:
                expected = hashlib.md5((event.apop_timestamp + secret).encode()).hexdigest()
            good = expected is not None and expected == event.apop_digest
        elif event.proven is not None:  # SCRAM: the exchange checked the proof
            good = event.proven and event.authzid in (None, event.user)
        else:
            good = secret is not None and secret == event.password
            good = good and event.authzid in (None, event.user)
        if not good:
            conn.login_refused("invalid user name or password")
        elif event.user in self.in_use:
            conn.login_refused("maildrop already locked", "IN-USE")
        else:
            self.user = event.user
            drop = self.maildrops[event.user]
            conn.login_accepted([(f"uid-{n}", wire_size(m)) for n, m in enumerate(drop)])

    def scram_keys(self, conn: Pop3ServerConnection, event: KeysWanted) -> None:
        secret = self.passwords.get(event.user)
        if secret is None:
            conn.scram_keys(unknown_user_keys(b"harness secret", event.user))
        else:
            conn.scram_keys(derive_scram_keys(secret, salt=b"harness salt"))

    def retrieve(self, conn: Pop3ServerConnection, event: Retrieve) -> bytes:
        """Stream the message; returns what was written, chunk by chunk."""
        assert self.user is not None
        if event.index in self.unreadable:
            conn.retrieve_failed("message unreadable")
            return conn.data_to_send()
        data = self.maildrops[self.user][event.index]
        dots = dot_lines(data) if self.whole else None
        if dots is not None:
            conn.message_whole(data, dots)
            return conn.data_to_send()
        size = self.chunk_size or max(len(data), 1)
        out = bytearray()
        for start in range(0, len(data), size):
            if not conn.wants_message_data:
                break
            conn.message_data(data[start : start + size])
            out += conn.data_to_send()
        conn.message_end()
        return bytes(out + conn.data_to_send())

    def update(self, conn: Pop3ServerConnection, event: Update) -> None:
        self.updates.append(event)
        if self.update_ok:
            conn.update_done(True)
        else:
            conn.update_done(False, "disk trouble")


class Pop3Harness:
    """Drives one connection the way the asyncio driver will, recording everything."""

    def __init__(
        self,
        server_settings: Pop3Settings | None = None,
        *,
        driver: FakeDriver | None = None,
        mode: str = "whole",
        greeting_text: str | None = None,
    ) -> None:
        self.conn = Pop3ServerConnection(server_settings or settings())
        self.driver = driver or FakeDriver()
        self.mode = mode
        self.events: list[Event] = []
        self.closed: Closed | None = None
        self.tls_started = 0
        self.greeting = self.conn.start(greeting_text)

    # ------------------------------------------------------------ low level

    def feed(self, data: bytes) -> bytes:
        """Feed octets (whole or octet by octet per ``mode``); return what the server wrote."""
        if self.mode == "bytewise":
            out = bytearray()
            for i in range(len(data)):
                out += self._feed_once(data[i : i + 1])
            return bytes(out)
        return self._feed_once(data)

    def _feed_once(self, data: bytes) -> bytes:
        self.conn.receive_data(data)
        return self.run()

    def run(self) -> bytes:
        out = bytearray()
        conn, driver = self.conn, self.driver
        while True:
            event = conn.next_event()
            self.events.append(event)
            if isinstance(event, NeedData):
                out += conn.data_to_send()
                return bytes(out)
            if isinstance(event, Closed):
                out += conn.data_to_send()
                self.closed = event
                return bytes(out)
            out += conn.data_to_send()
            if isinstance(event, Authenticate):
                driver.authenticate(conn, event)
            elif isinstance(event, KeysWanted):
                driver.scram_keys(conn, event)
            elif isinstance(event, Retrieve):
                out += driver.retrieve(conn, event)
            elif isinstance(event, Update):
                driver.update(conn, event)
            elif isinstance(event, StartTls):
                self.tls_started += 1
                conn.tls_started()
            else:
                raise AssertionError(f"unexpected event {event!r}")

    def of_type(self, kind: type[Event]) -> list[Event]:
        return [event for event in self.events if isinstance(event, kind)]

    def login(self, user: str = "alice", password: str = "secret") -> bytes:
        out = self.feed(f"USER {user}\r\nPASS {password}\r\n".encode())
        assert out.endswith(b"octets)\r\n"), out
        return out

    # ----------------------------------------------------------- transcript

    def converse(self, script: str) -> None:
        lines = [line for line in textwrap.dedent(script).splitlines() if line.strip()]
        client: list[str] = []
        expected: list[str] = []
        first = True

        def check(output: bytes) -> None:
            got = output.decode("utf-8").split("\r\n")
            assert got[-1] == "", f"server output does not end in CRLF: {output!r}"
            got = [line.rstrip(" ") for line in got]
            want = [] if expected == ["(none)"] else [line.rstrip(" ") for line in expected]
            context = "\n".join(f"C: {c}" for c in client)
            assert got[:-1] == want, f"after\n{context}\nserver said\n{got[:-1]}"

        for raw in lines:
            line = raw.lstrip()
            if line.startswith("C:"):
                if expected:
                    self._exchange(client, first, check)
                    first = False
                    client, expected = [], []
                client.append(line[3:] if line.startswith("C: ") else line[2:])
            elif line.startswith("S:"):
                expected.append(line[3:] if line.startswith("S: ") else line[2:])
            else:
                raise AssertionError(f"transcript line must start with C: or S: {raw!r}")
        if client or expected:
            self._exchange(client, first, check)

    def _exchange(self, client: list[str], first: bool, check: Callable[[bytes], None]) -> None:
        if first and not client:
            check(self.greeting)
            return
        data = "".join(f"{line}\r\n" for line in client).encode("utf-8")
        check(self.feed(data))


def transcript(
    script: str,
    server_settings: Pop3Settings | None = None,
    *,
    mode: str = "whole",
    driver: FakeDriver | None = None,
) -> Pop3Harness:
    """Run ``script`` against a fresh connection; returns the harness for more checks."""
    harness = Pop3Harness(server_settings, mode=mode, driver=driver)
    harness.converse(script)
    return harness


# ------------------------------------------------------- the harness itself


def test_harness_sees_the_greeting_and_silence() -> None:
    harness = transcript(
        """
        S: +OK POP3 server ready
        """
    )
    assert harness.feed(b"NO") == b""
    assert harness.conn.buffered_octets == 2


def test_harness_bytewise_mode_feeds_one_octet_at_a_time() -> None:
    harness = transcript(
        """
        S: +OK POP3 server ready
        C: NOOP
        S: -ERR command not valid before login
        """,
        mode="bytewise",
    )
    assert sum(isinstance(event, NeedData) for event in harness.events) == len(b"NOOP\r\n")


def test_fake_driver_lists_wire_sizes() -> None:
    harness = Pop3Harness()
    harness.login()
    listing = harness.feed(b"LIST\r\n").decode()
    sizes = [int(line.split()[1]) for line in listing.split("\r\n")[1:4]]
    assert sizes == [wire_size(m) for m in harness.driver.maildrops["alice"]]
