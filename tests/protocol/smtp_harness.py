"""Sans-IO conversation harness for ``SmtpServerConnection``: no sockets, no clock.

``SmtpHarness.converse`` reads a transcript the way RFC examples are written:

    S: 220 mx.example.test ESMTP postoffice
    C: EHLO client.test
    S: 250-mx.example.test
    ...

Consecutive ``C:`` lines are one write by the client (a pipelined group): they
are fed together (or octet by octet with ``mode="bytewise"``), then the
``S:`` lines that follow must be exactly what the server wrote. ``S: (none)``
expects silence. A test-side ``ScriptedPolicy`` answers the decision events.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field

from postoffice.core.envelope import Envelope
from postoffice.core.reply import Replies, Reply
from postoffice.protocol.scram import ScramKeys, derive_scram_keys, unknown_user_keys
from postoffice.protocol.smtp import (
    AuthCredentials,
    AuthKeysWanted,
    AuthProof,
    Closed,
    Decision,
    Event,
    Expand,
    Hello,
    MailFrom,
    MessageAborted,
    MessageChunk,
    MessageComplete,
    NeedData,
    RcptTo,
    SmtpReplies,
    SmtpServerConnection,
    SmtpServerSettings,
    StartTls,
    Verify,
    render_reply,
)

HOST = "mx.example.test"
TLS_VERSION = "TLSv1.3"
TLS_CIPHER = "TLS_AES_256_GCM_SHA384"
EHLO_LINES = [
    "250-mx.example.test",
    "250-PIPELINING",
    "250-SIZE 10485760",
    "250-ENHANCEDSTATUSCODES",
    "250-8BITMIME",
    "250-DSN",
    "250-SMTPUTF8",
    "250 CHUNKING",
]


def settings(**changes: object) -> SmtpServerSettings:
    values: dict[str, object] = {"hostname": HOST}
    values.update(changes)
    return SmtpServerSettings(**values)  # type: ignore[arg-type]


@dataclass
class ScriptedPolicy:
    """Accept mail for existing users of example.test, refuse the rest."""

    local_domains: frozenset[str] = frozenset({"example.test"})
    unknown_users: frozenset[str] = frozenset({"nobody"})
    passwords: dict[str, str] = field(default_factory=lambda: {"alice": "secret"})
    queued: int = 0
    refuse_messages: Reply | None = None

    def decide(self, event: Decision) -> Reply:
        if isinstance(event, Hello):
            if event.name == "rejected.test":
                return Reply(550, "5.7.1", "Access denied")
            return SmtpReplies.HELLO_OK
        if isinstance(event, MailFrom):
            if event.sender is not None and event.sender.domain == "spammer.test":
                return Reply(550, "5.7.1", "Sender address rejected")
            return SmtpReplies.SENDER_OK
        if isinstance(event, RcptTo):
            address = event.recipient
            if address.domain not in self.local_domains:
                return Replies.RELAY_DENIED
            if address.local_key in self.unknown_users:
                return Replies.NO_SUCH_USER
            return SmtpReplies.RECIPIENT_OK
        if isinstance(event, Verify):
            return SmtpReplies.CANNOT_VRFY
        if isinstance(event, Expand):
            if event.text.lower() == "staff":
                return Reply(250, "2.1.5", "<alice@example.test>\n<bob@example.test>")
            return Replies.NO_SUCH_USER
        if isinstance(event, StartTls):
            return SmtpReplies.READY_TO_START_TLS
        if isinstance(event, AuthCredentials | AuthProof):
            if isinstance(event, AuthProof):
                good = event.proof.proven
            else:
                good = self.passwords.get(event.username) == event.password
            if good and event.authzid in (None, event.username):
                return SmtpReplies.AUTH_SUCCEEDED
            return SmtpReplies.AUTH_FAILED
        if isinstance(event, MessageComplete):
            if self.refuse_messages is not None:
                return self.refuse_messages
            self.queued += 1
            return SmtpReplies.queued(f"Q{self.queued}")
        raise AssertionError(f"unexpected decision {event!r}")

    def scram_keys(self, username: str) -> ScramKeys:
        """A user's SCRAM keys (a fixed salt, so runs repeat), or made-up ones."""
        password = self.passwords.get(username)
        if password is None:
            return unknown_user_keys(b"harness secret", username)
        return derive_scram_keys(password, salt=b"harness salt")


class SmtpHarness:
    """Drives one connection the way the asyncio driver will, recording everything."""

    def __init__(
        self,
        server_settings: SmtpServerSettings | None = None,
        *,
        policy: ScriptedPolicy | None = None,
        mode: str = "whole",
        start: bool = True,
    ) -> None:
        self.conn = SmtpServerConnection(server_settings or settings())
        self.policy = policy or ScriptedPolicy()
        self.mode = mode
        self.events: list[Event] = []
        self.messages: list[tuple[Envelope, bytes]] = []
        self.aborted: list[MessageAborted] = []
        self.closed: Closed | None = None
        self._chunks: list[bytes] = []
        self.greeting = self.conn.start() if start else b""

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
        conn = self.conn
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
            if isinstance(event, MessageChunk):
                self._chunks.append(event.data)
            elif isinstance(event, MessageAborted):
                self._chunks.clear()
                self.aborted.append(event)
            elif isinstance(event, AuthKeysWanted):
                out += conn.send_keys(self.policy.scram_keys(event.username))
            elif isinstance(event, Decision):
                reply = self.policy.decide(event)
                if isinstance(event, MessageComplete):
                    message = b"".join(self._chunks)
                    assert len(message) == event.size
                    self._chunks.clear()
                    if reply.code // 100 == 2:
                        self.messages.append((event.envelope, message))
                out += conn.send(reply)
                if isinstance(event, StartTls) and reply.code // 100 == 2:
                    conn.tls_started(TLS_VERSION, TLS_CIPHER)

    def decisions(self, kind: type[Event]) -> list[Event]:
        return [event for event in self.events if isinstance(event, kind)]

    # ----------------------------------------------------------- transcript

    def converse(self, script: str) -> None:
        lines = [line for line in textwrap.dedent(script).splitlines() if line.strip()]
        client: list[str] = []
        expected: list[str] = []
        first = True

        def check(output: bytes) -> None:
            got = output.decode("utf-8").split("\r\n")
            assert got[-1] == "", f"server output does not end in CRLF: {output!r}"
            got = [line.rstrip(" ") for line in got]  # "334 " reads as "S: 334"
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
    server_settings: SmtpServerSettings | None = None,
    *,
    mode: str = "whole",
    policy: ScriptedPolicy | None = None,
) -> SmtpHarness:
    """Run ``script`` against a fresh connection; returns the harness for more checks."""
    harness = SmtpHarness(server_settings, mode=mode, policy=policy)
    harness.converse(script)
    return harness


MODES = ["whole", "bytewise"]  # every client write fed whole, and octet by octet
EHLO = "\n".join(f"S: {line}" for line in EHLO_LINES)  # the EHLO reply as transcript lines
HELP = render_reply(SmtpReplies.HELP).decode().strip()


def greeted(mode: str = "whole", **changes: object) -> SmtpHarness:
    """A session after EHLO (whose reply is kept in ``harness.greeting``)."""
    harness = SmtpHarness(settings(**changes), mode=mode)
    harness.greeting = harness.feed(b"EHLO client.test\r\n")
    assert harness.greeting.startswith(b"250-")
    return harness
