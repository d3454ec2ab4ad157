"""Sans-IO conversation harness for ``SmtpClientConnection``: no sockets, no clock.

A transcript reads like the RFC examples, seen from the client's side:

    C: MAIL FROM:<alice@a.test>        what the client must have written by now
    S: 250 2.1.0 Ok                    fed to the client (consecutive S: lines: one packet)
    E: RecipientResult 0 250 2.1.5     the events it must have reported since the last E:

The test calls the driver's methods (``h.conn.hello()``...) between
transcripts. Every write and every event must appear in the transcript:
an S: block with unread client output, or a transcript that ends with
unchecked output or events, fails. ``C: (none)`` expects silence, ``E: (none)``
no event; ``S: <EOF>`` (last of its block) is the server closing. With
``mode="bytewise"`` each S: block is fed one octet at a time, and the events
must be the same.
"""

from __future__ import annotations

import textwrap

from postoffice.core.reply import Reply
from postoffice.protocol.smtp import client_events as ev
from postoffice.protocol.smtp.client import (
    ClientSettings,
    SmtpClientConnection,
    Transaction,
    TransactionRecipient,
)

HELO = "client.test"
MODES = ["whole", "bytewise"]
TERMINAL = (ev.ConnectionClosed, ev.ProtocolViolation)

# An EHLO reply offering everything the client knows of.
EHLO_ALL = """
    S: 250-mx.example.test greets client.test
    S: 250-PIPELINING
    S: 250-SIZE 10485760
    S: 250-ENHANCEDSTATUSCODES
    S: 250-8BITMIME
    S: 250-DSN
    S: 250-SMTPUTF8
    S: 250-STARTTLS
    S: 250-AUTH PLAIN LOGIN
    S: 250-BINARYMIME
    S: 250 CHUNKING
"""


def settings(**changes: object) -> ClientSettings:
    values: dict[str, object] = {"helo_name": HELO}
    values.update(changes)
    return ClientSettings(**values)  # type: ignore[arg-type]


def transaction(*recipients: str, **changes: object) -> Transaction:
    values: dict[str, object] = {
        "sender": "alice@a.test",
        "recipients": tuple(TransactionRecipient(r) for r in recipients or ("bob@b.test",)),
    }
    values.update(changes)
    return Transaction(**values)  # type: ignore[arg-type]


def _reply(reply: Reply | None) -> str:
    if reply is None:
        return "-"
    return f"{reply.code} {reply.enhanced}" if reply.enhanced else str(reply.code)


def describe(event: ev.ClientEvent) -> str:
    """One line per event: its name, then what the transcript checks of it."""
    name = type(event).__name__
    if isinstance(event, ev.HelloDone):
        return f"{name} {_reply(event.reply)} {'EHLO' if event.extended else 'HELO'}"
    if isinstance(event, ev.RecipientResult):
        return f"{name} {event.index} {_reply(event.reply)}"
    if isinstance(event, ev.TransactionRefused):
        return f"{name} {event.stage} {_reply(event.reply)}"
    if isinstance(event, ev.ConnectionClosed):
        return f"{name} {'expected' if event.expected else 'unexpected'}"
    reply = getattr(event, "reply", False)
    if reply is not False:
        assert reply is None or isinstance(reply, Reply)
        return f"{name} {_reply(reply)}"
    return name


class ClientHarness:
    """Drives one client connection the way the asyncio driver will, recording everything."""

    def __init__(self, client_settings: ClientSettings | None = None, *, mode: str = "whole"):
        self.conn = SmtpClientConnection(client_settings or settings())
        self.mode = mode
        self.events: list[ev.ClientEvent] = []
        self.unchecked: list[ev.ClientEvent] = []
        self.written = bytearray()
        self.terminal: ev.ClientEvent | None = None

    # ------------------------------------------------------------ low level

    def feed(self, data: bytes) -> None:
        """Give the client octets from the server (whole or octet by octet), then pump."""
        if not data:
            self.conn.receive_data(b"")
            self.pump()
            return
        pieces = [data[i : i + 1] for i in range(len(data))] if self.mode == "bytewise" else [data]
        for piece in pieces:
            self.conn.receive_data(piece)
            self.pump()

    def pump(self) -> None:
        """Take events until the client needs data (or ends); collect what it wrote."""
        while self.terminal is None:
            event = self.conn.next_event()
            if isinstance(event, ev.NeedData):
                break
            self.events.append(event)
            self.unchecked.append(event)
            if isinstance(event, TERMINAL):
                self.terminal = event
        self.collect()

    def collect(self) -> None:
        self.written += self.conn.data_to_send()

    def take_written(self) -> bytes:
        self.collect()
        out = bytes(self.written)
        self.written.clear()
        return out

    def take_events(self) -> list[str]:
        self.pump()
        described = [describe(event) for event in self.unchecked]
        self.unchecked.clear()
        return described

    # ----------------------------------------------------------- transcript

    def converse(self, script: str) -> None:
        lines = [line.strip() for line in textwrap.dedent(script).splitlines() if line.strip()]
        block: list[str] = []
        kind = ""
        for line in [*lines, "END"]:
            tag = line[:2]
            if tag not in ("C:", "S:", "E:") and line != "END":
                raise AssertionError(f"transcript line must start with C:, S: or E: {line!r}")
            if tag != kind and block:
                self._block(kind, block)
                block = []
            kind = tag
            block.append(line[3:] if line[2:3] == " " else line[2:])
        self.collect()
        assert not self.written, f"client wrote, unchecked: {bytes(self.written)!r}"
        assert not self.unchecked, f"events unchecked: {[describe(e) for e in self.unchecked]}"

    def _block(self, kind: str, block: list[str]) -> None:
        if kind == "C:":
            want = b"" if block == ["(none)"] else "".join(f"{b}\r\n" for b in block).encode()
            got = self.take_written()
            assert got == want, f"client wrote\n{got!r}\nexpected\n{want!r}"
        elif kind == "S:":
            self.collect()
            assert not self.written, f"client wrote, unchecked: {bytes(self.written)!r}"
            lines = block[:-1] if block[-1] == "<EOF>" else block
            if lines:
                self.feed("".join(f"{b}\r\n" for b in lines).encode())
            if lines is not block:
                self.feed(b"")
        else:
            want_events = [] if block == ["(none)"] else block
            got_events = self.take_events()
            assert got_events == want_events, f"events\n{got_events}\nexpected\n{want_events}"


def greeted(
    ehlo: str = EHLO_ALL, client_settings: ClientSettings | None = None, *, mode: str = "whole"
) -> ClientHarness:
    """A connection after the greeting and a positive EHLO (with ``ehlo``'s S: lines)."""
    h = ClientHarness(client_settings, mode=mode)
    h.converse("""
        S: 220 mx.example.test ESMTP postoffice
        E: Greeting 220
    """)
    h.conn.hello()
    h.converse(f"""
        C: EHLO {HELO}
        {ehlo}
        E: HelloDone 250 EHLO
    """)
    return h


def ehlo_with(*keywords: str) -> str:
    """The S: lines of an EHLO reply offering ``keywords`` (one extension a line)."""
    lines = ["mx.example.test", *keywords]
    return "\n".join(
        f"S: 250{'-' if i < len(lines) - 1 else ' '}{line}" for i, line in enumerate(lines)
    )
