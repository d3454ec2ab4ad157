"""The sans-IO transcript harness of the ``ImapServerConnection`` tests (see
``test_imap_connection``): ``Session.converse`` and a small fake driver."""

from __future__ import annotations

import base64
import textwrap

from postoffice.protocol.imap.commands import (
    Authenticate,
    Command,
    Login,
    Select,
)
from postoffice.protocol.imap.connection import (
    Closed,
    CommandReceived,
    IdleDone,
    ImapEvent,
    ImapServerConnection,
    ImapSettings,
    NeedData,
    SaslResponse,
)
from postoffice.protocol.imap.states import ImapState

PLAIN = base64.b64encode(b"\x00alice\x00secret").decode()  # AGFsaWNlAHNlY3JldA==
MODES = ["whole", "bytewise"]


class Session:
    """One connection, a fake driver, and the transcript reader."""

    def __init__(
        self,
        settings: ImapSettings | None = None,
        *,
        preauth: bool = False,
        mode: str = "whole",
        hold: frozenset[str] = frozenset(),
        answer: str = "OK",
    ):
        self.conn = ImapServerConnection(settings, preauth=preauth)
        self.conn.greet(
            "postoffice ready", None if preauth else "CAPABILITY IMAP4rev2", preauth=preauth
        )
        self.mode = mode
        self.hold = hold  # command words the test answers itself
        self.answer = answer  # "NO": refuse every command (the fuzz driver)
        self.events: list[ImapEvent] = []
        self.commands: list[Command] = []
        self.current: Command | None = None

    # -- the driver ------------------------------------------------------------

    def pump(self) -> None:
        while True:
            event = self.conn.next_event()
            if isinstance(event, NeedData):
                return
            self.events.append(event)
            if isinstance(event, Closed):
                return
            self.handle(event)

    def handle(self, event: ImapEvent) -> None:
        if isinstance(event, CommandReceived):
            self.commands.append(event.command)
            self.current = event.command
            if event.word in self.hold:
                return
            if self.answer != "OK":
                self.finish(self.answer, "refused")
                return
            self.carry_out(event.command, event.word)
        elif isinstance(event, SaslResponse):
            if event.line == b"*":
                self.finish("BAD", "AUTHENTICATE cancelled")  # RFC 9051 §6.2.2
            else:
                self.check_plain(event.line)
        elif isinstance(event, IdleDone):
            if event.done:
                self.finish("OK", "IDLE terminated")
            else:
                self.finish("BAD", "expected DONE")

    def carry_out(self, command: Command, word: str) -> None:
        if isinstance(command, Login):
            if (command.user, command.password) == (b"alice", b"secret"):
                self.finish("OK", "LOGIN completed")
            else:
                self.finish("NO", "Invalid credentials", "AUTHENTICATIONFAILED")
        elif isinstance(command, Authenticate):
            if command.initial is None:
                self.conn.challenge(b"")
            else:
                self.check_plain(command.initial.encode())
        elif word == "IDLE":
            self.conn.start_idle()
        elif word == "LOGOUT":
            self.conn.send(b"* BYE logging out\r\n")
            self.finish("OK", "LOGOUT completed")
        elif isinstance(command, Select) and command.mailbox == "nosuch":
            self.finish("NO", "no such mailbox", "NONEXISTENT")
        elif word == "STARTTLS":
            self.finish("OK", "Begin TLS negotiation now")
        else:
            self.finish("OK", f"{word} completed")

    def check_plain(self, line: bytes) -> None:
        if line == PLAIN.encode():
            self.finish("OK", "AUTHENTICATE completed")
        else:
            self.finish("NO", "Invalid credentials", "AUTHENTICATIONFAILED")

    def finish(self, status: str, text: str, code: str | None = None) -> None:
        assert self.current is not None
        command, self.current = self.current, None
        self.conn.finish(command, status, text, code)

    # -- the client ------------------------------------------------------------

    def feed(self, data: bytes) -> bytes:
        """One write of the client; what the server wrote in answer."""
        if data == b"":
            self.conn.receive_data(b"")
            self.pump()
        elif self.mode == "whole":
            self.conn.receive_data(data)
            self.pump()
        else:
            for octet in data:
                self.conn.receive_data(bytes([octet]))
                self.pump()
        return self.conn.data_to_send()

    def converse(self, transcript: str) -> None:
        for client, expected in _steps(transcript):
            written = self.feed(client) if client else self.conn.data_to_send()
            assert written.endswith(b"\r\n") or written == b"", written
            assert _lines(written) == _lines(expected), f"after C: {client!r}"

    def login(self) -> None:
        self.conn.data_to_send()
        assert self.feed(b"L1 LOGIN alice secret\r\n") == b"L1 OK LOGIN completed\r\n"
        assert self.conn.state is ImapState.AUTHENTICATED

    @property
    def closed(self) -> bool:
        return bool(self.events) and isinstance(self.events[-1], Closed)


def _lines(wire: bytes) -> list[str]:
    return [line.rstrip(" ") for line in wire.decode("utf-8", "replace").split("\r\n")]


def _steps(transcript: str) -> list[tuple[bytes, bytes]]:
    steps: list[tuple[bytes, bytes]] = []
    client: list[str] = []
    server: list[str] = []
    for line in textwrap.dedent(transcript).strip("\n").splitlines():
        who, _, rest = line.partition(":")
        text = rest[1:] if rest.startswith(" ") else rest
        if who.strip() == "C":
            if server:
                steps.append(_step(client, server))
                client, server = [], []
            client.append(text)
        elif who.strip() == "S":
            server.append(text)
        else:
            raise AssertionError(f"bad transcript line {line!r}")
    steps.append(_step(client, server))
    return steps


def _step(client: list[str], server: list[str]) -> tuple[bytes, bytes]:
    wire = b"".join(line.encode() + b"\r\n" for line in client)
    if server == ["(nothing)"]:
        return wire, b""
    return wire, b"".join(line.encode() + b"\r\n" for line in server)
