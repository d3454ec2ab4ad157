"""The plumbing of an SMTP client session: settings, buffers, the command queue, replies.

What this module owns, for ``client.SmtpClientConnection`` (which adds the
command methods and the reply handlers on top): the settings, the reply
reader, the output buffer, the event queue and the terminal event, the queue
of commands not yet written and of commands awaiting their reply, the
pipelining rule that moves one to the other, and the session facts
(extensions, TLS, authentication, the transaction in progress).

Invariants:
- a command is written only when nothing is awaited, or when the server
  offered PIPELINING (and ``use_pipelining``) and every command awaited may be
  followed by more (``client_states.PIPELINABLE``, RFC 2920 §3.1);
- replies are matched to awaited commands in order, one reply at a time, and
  no reply is read while events are waiting for the driver;
- every command line ends in CRLF and holds no control character;
- after a terminal event nothing more is read, said or reported.
"""

from __future__ import annotations

import abc
from collections import deque
from dataclasses import dataclass
from typing import Final

from postoffice.core.reply import Reply
from postoffice.protocol.smtp import client_events as ev
from postoffice.protocol.smtp.client_content import DotStuffer, LineEndNormalizer
from postoffice.protocol.smtp.client_extensions import ServerExtensions
from postoffice.protocol.smtp.client_states import (
    PIPELINABLE,
    Awaiting,
    ClientState,
    ClientStateMachine,
)
from postoffice.protocol.smtp.client_transaction import Transaction, refuse_control_characters
from postoffice.protocol.smtp.reply_reader import ReplyReader, ReplySyntaxError

MAX_HELO_OCTETS: Final = 255
_NEED_DATA: Final = ev.NeedData()


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """What one client connection does; ``helo_name`` is one printable token."""

    helo_name: str
    use_pipelining: bool = True  # RFC 2920, when the server offers it
    use_chunking: bool = True  # RFC 3030 BDAT, when the server offers it (and PIPELINING)
    implicit_tls: bool = False  # the transport is TLS from the start (RFC 8314)

    def __post_init__(self) -> None:
        refuse_control_characters(self.helo_name, "HELO name")
        name = self.helo_name
        if not name or " " in name or len(name.encode("utf-8")) > MAX_HELO_OCTETS:
            raise ValueError(f"HELO name must be one domain or address literal: {name!r}")


@dataclass(slots=True)
class PendingCommand:
    """Octets to write (a command line, and content after it) and the reply they await."""

    awaiting: Awaiting
    octets: bytes
    index: int = -1  # RCPT: the recipient's index in the transaction


@dataclass(slots=True)
class TransactionProgress:
    """The transaction being sent and what its replies said so far."""

    transaction: Transaction
    bdat: bool  # the content goes by BDAT (RFC 3030), not DATA
    binary: bool  # BODY=BINARYMIME was declared: the content is sent exactly
    accepted: int = 0
    answered: int = 0
    last_refusal: Reply | None = None
    failed: bool = False


def command_line(text: str) -> bytes:
    """The octets of one command line; ``ValueError`` for a control character."""
    refuse_control_characters(text, "command line")
    return text.encode("utf-8") + b"\r\n"


class SmtpClientSession(abc.ABC):
    """Session plumbing shared by the command methods of ``SmtpClientConnection``."""

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self._machine = ClientStateMachine()
        self._replies = ReplyReader()
        self._out = bytearray()
        self._events: deque[ev.ClientEvent] = deque()
        self._unsent: deque[PendingCommand] = deque()
        self._awaited: deque[PendingCommand] = deque([PendingCommand(Awaiting.GREETING, b"")])
        self._blocking = 1  # awaited commands that end a pipelined group (the greeting)
        self._terminal: ev.ClientEvent | None = None
        self._eof = False
        self._extensions: ServerExtensions | None = None
        self._last_reply: Reply | None = None
        self._tls = settings.implicit_tls
        self._authenticated = False
        self._sasl: deque[bytes] = deque()  # answers still to give to 334 challenges
        self._progress: TransactionProgress | None = None
        self._content: DotStuffer | LineEndNormalizer | None = None
        self._discarded = 0

    # ------------------------------------------------------------------ API

    @property
    def state(self) -> ClientState:
        return self._machine.state

    @property
    def extensions(self) -> ServerExtensions | None:
        """What the last accepted EHLO offered (``none()`` after HELO); None before."""
        return self._extensions

    @property
    def last_reply(self) -> Reply | None:
        """The last reply read, whatever it answered."""
        return self._last_reply

    @property
    def is_tls(self) -> bool:
        return self._tls

    @property
    def authenticated(self) -> bool:
        return self._authenticated

    @property
    def discarded_octets(self) -> int:
        """Plaintext octets dropped after a 220 to STARTTLS (for the log)."""
        return self._discarded

    @property
    def uses_chunking(self) -> bool:
        """Whether a transaction begun now sends its content with BDAT (RFC 3030):
        CHUNKING and PIPELINING offered, and both enabled in the settings."""
        ext = self._extensions
        return bool(self.settings.use_chunking and ext and ext.chunking and self._pipelining())

    def receive_data(self, data: bytes) -> None:
        """Feed octets read from the server; ``b""`` means it closed the connection."""
        if not data:
            self._eof = True
            return
        state = self._machine.state
        if state is ClientState.TLS_HANDSHAKE:
            self._discarded += len(data)  # RFC 3207 §4.2: never read as a reply
        elif state not in (ClientState.CLOSING, ClientState.CLOSED):
            self._replies.feed(data)

    def next_event(self) -> ev.ClientEvent:
        """The next event; ``NeedData`` when no whole reply is buffered."""
        while True:
            if self._events:
                return self._events.popleft()
            if self._terminal is not None:
                return self._terminal
            if self._step():
                continue
            if self._eof:
                expected = self._machine.state in (ClientState.QUIT, ClientState.CLOSING)
                self._finish(ev.ConnectionClosed(expected=expected))
                continue
            return _NEED_DATA

    def data_to_send(self) -> bytes:
        """Every octet queued for the server since the last call (may be empty)."""
        out = bytes(self._out)
        self._out.clear()
        return out

    # ------------------------------------------------------------ machinery

    @abc.abstractmethod
    def _answer(self, command: PendingCommand, reply: Reply) -> None:
        """Act on ``reply``, the answer to ``command`` (see client)."""

    def _pipelining(self) -> bool:
        ext = self._extensions
        return bool(self.settings.use_pipelining and ext and ext.pipelining)

    def _send(self, awaiting: Awaiting, octets: bytes, index: int = -1) -> None:
        self._unsent.append(PendingCommand(awaiting, octets, index))
        self._flush()

    def _flush(self) -> None:
        """Write what the pipelining rule allows now (see the module doc)."""
        while self._unsent:
            if self._awaited and (self._blocking or not self._pipelining()):
                return
            command = self._unsent.popleft()
            self._awaited.append(command)
            if command.awaiting not in PIPELINABLE:
                self._blocking += 1
            self._out += command.octets

    def _step(self) -> bool:
        """Read and act on one reply; False when none is complete."""
        if self._machine.state is ClientState.CLOSING:
            return False
        try:
            reply = self._replies.next_reply()
        except ReplySyntaxError as error:
            self._finish(ev.ProtocolViolation(f"not an SMTP reply: {error}"))
            return True
        if reply is None:
            return False
        self._last_reply = reply
        if not self._awaited:
            if reply.code == 421:  # RFC 5321 §3.8: the server may say it at any time
                self._service_closing(reply)
            else:
                self._finish(ev.ProtocolViolation(f"reply when none was awaited: {reply}"))
            return True
        command = self._awaited.popleft()
        if command.awaiting not in PIPELINABLE:
            self._blocking -= 1
        if reply.code == 421 and command.awaiting not in (Awaiting.GREETING, Awaiting.QUIT):
            self._service_closing(reply)  # RFC 5321 §3.8
            return True
        self._answer(command, reply)
        self._flush()
        return True

    def _finish(self, terminal: ev.ClientEvent) -> None:
        """Terminal: ``terminal`` is returned by every later ``next_event``."""
        self._machine.close()
        self._terminal = terminal
        self._drop_pending()

    def _service_closing(self, reply: Reply) -> None:
        self._events.append(ev.ServiceClosing(reply))
        self._machine.closing()
        self._drop_pending()

    def _drop_pending(self) -> None:
        """Nothing more will be written or read: forget what was pending."""
        self._replies.discard()
        self._unsent.clear()
        self._awaited.clear()
        self._blocking = 0
        self._progress, self._content = None, None
        self._sasl.clear()
