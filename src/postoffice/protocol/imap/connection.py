"""``ImapServerConnection``: one IMAP server session as a sans-IO object.

What this module owns: turning the client's octets into commands the driver
can carry out (framing, the literal decisions, parsing, the state check,
counting bad commands), the sub-dialogues that are not commands (an
AUTHENTICATE exchange, RFC 9051 §6.2.2; IDLE until DONE, RFC 2177 §3), and
the tagged end of each command with its state transition. The driver
(``server``) does the work of each command against the store and writes
the untagged data through ``send``.

Driver contract:

    conn = ImapServerConnection(settings)
    conn.greet(text, code)                      # "* OK [CAPABILITY ...] ready"
    loop:
        event = conn.next_event()
        NeedData        -> write conn.data_to_send(); read; conn.receive_data(octets)
                           (b"" at end of file)
        CommandReceived -> carry it out: conn.send(untagged) ...; then
                           conn.finish(command, "OK"|"NO"|"BAD", text, code)
                           (AUTHENTICATE may first conn.challenge(data) and
                           wait for SaslResponse; IDLE conn.start_idle() and
                           wait for IdleDone, sending untagged data meanwhile)
        SaslResponse    -> the client's answer line
        IdleDone        -> the client ended IDLE (``done`` False: it sent
                           something other than DONE)
        Closed          -> write conn.data_to_send(); close; stop

Decisions documented here rather than per handler:
- a synchronising literal is answered before its octets come: ``+ Ready``
  when the command may have it, else the tagged refusal (no ``+``, so the
  client sends nothing more of that command, RFC 9051 §7.5). APPEND's
  literals are held to ``append_limit`` (``NO [TOOBIG]``, RFC 7889 §4),
  every other literal to ``literal_limit``. A non-synchronising literal
  (RFC 7888) over its limit cannot be refused without reading it: the
  session answers and ends with BYE.
- bad commands (syntax errors, unknown commands, commands in the wrong
  state, over-long lines) are counted: at ``max_bad_before_login`` or
  ``max_bad_after_login`` the session says BYE and closes.
- STARTTLS: octets that came in behind the command are discarded when its
  OK is written (RFC 9051 §6.2.1, the plaintext command injection defence).
  COMPRESS likewise: the client may send nothing behind it before its
  result (RFC 4978 §3), and what follows the OK is compressed.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass
from typing import Final

from postoffice.protocol.errors import ProtocolUsageError
from postoffice.protocol.imap.commands import Command, command_word
from postoffice.protocol.imap.framer import (
    CommandFramer,
    CompleteCommand,
    LineOverflow,
    LiteralAnnounced,
)
from postoffice.protocol.imap.parser import CommandError, CommandParser
from postoffice.protocol.imap.responses import (
    continuation,
    continuation_data,
    tagged,
    untagged_status,
)
from postoffice.protocol.imap.states import ImapState, ImapStateMachine

PIPELINE_LIMIT: Final = 256 * 1024  # octets buffered while a command is carried out
_HEAD: Final = re.compile(
    rb"([^ (){\x00-\x1f\x7f-\xff%*\"\\+]+) (?:UID )?([A-Za-z]+)", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class ImapSettings:
    """The bounds of one session (DESIGN.md §5; issue figures as defaults)."""

    line_limit_before_login: int = 8 * 1024
    line_limit_after_login: int = 64 * 1024
    literal_limit_before_login: int = 8 * 1024
    literal_limit: int = 64 * 1024
    append_limit: int = 50 * 1024 * 1024
    max_bad_before_login: int = 3
    max_bad_after_login: int = 20


@dataclass(frozen=True, slots=True)
class NeedData:
    pass


@dataclass(frozen=True, slots=True)
class CommandReceived:
    command: Command
    word: str  # the state table's name of it (UID FETCH -> FETCH)


@dataclass(frozen=True, slots=True)
class SaslResponse:
    line: bytes  # as sent: base64, or "*" to cancel (RFC 9051 §6.2.2); ``protocol.sasl`` decodes


@dataclass(frozen=True, slots=True)
class IdleDone:
    done: bool


@dataclass(frozen=True, slots=True)
class Closed:
    pass


ImapEvent = NeedData | CommandReceived | SaslResponse | IdleDone | Closed
_NEED_DATA: Final = NeedData()
_CLOSED: Final = Closed()


class ImapServerConnection:
    """See the module docstring."""

    def __init__(self, settings: ImapSettings | None = None, *, preauth: bool = False):
        self.settings = settings or ImapSettings()
        self._states = ImapStateMachine(
            ImapState.AUTHENTICATED if preauth else ImapState.NOT_AUTHENTICATED
        )
        self._parser = CommandParser()
        self._framer = CommandFramer(self._line_limit())
        self._input = bytearray()
        self._output: list[bytes] = []
        self._output_octets = 0
        self._pending: Command | None = None  # carried out by the driver now
        self._mode = "command"  # or "sasl", "idle"
        self._eof = False
        self._closing = False
        self.bad_commands = 0

    # -- properties ----------------------------------------------------------

    @property
    def state(self) -> ImapState:
        return self._states.state

    @property
    def utf8(self) -> bool:
        return self._parser.utf8

    def enable_utf8(self) -> None:
        """RFC 9051 §5.1 / RFC 6855 §3: from now on names and strings are UTF-8."""
        self._parser.utf8 = True

    @property
    def buffered_octets(self) -> int:
        return len(self._input)

    @property
    def buffered_output(self) -> int:
        return self._output_octets

    @property
    def closed(self) -> bool:
        return self._closing

    # -- I/O -----------------------------------------------------------------

    def greet(self, text: str, code: str | None = None, *, preauth: bool = False) -> None:
        self._output.append(untagged_status("PREAUTH" if preauth else "OK", text, code))

    def receive_data(self, data: bytes) -> None:
        if not data:
            self._eof = True
            return
        self._input += self._framer.skip(data)

    def data_to_send(self) -> bytes:
        data = b"".join(self._output)
        self._output.clear()
        self._output_octets = 0
        return data

    def send(self, octets: bytes) -> None:
        """Untagged data (already rendered by ``responses``)."""
        if not self._closing:
            self._output.append(octets)
            self._output_octets += len(octets)

    # -- the driver's answers ------------------------------------------------

    def finish(self, command: Command, status: str, text: str, code: str | None = None) -> None:
        """The tagged end of ``command``; applies its state transition."""
        if command is not self._pending:
            raise ProtocolUsageError("finish() for a command that is not being carried out")
        self._pending = None
        self._mode = "command"
        if self._closing:
            return
        word = command_word(command)
        self._output.append(tagged(command.tag, status, text, code))
        if status == "BAD":
            self._count_bad()
            return
        before = self._states.state
        self._states.finish(word, status == "OK")
        if word in ("STARTTLS", "COMPRESS") and status == "OK":
            # RFC 9051 §6.2.1: nothing sent before TLS is kept; RFC 4978 §3: nor
            # plain input behind COMPRESS (the layer below starts afresh)
            self._input.clear()
            self._framer.reset()
        if before is ImapState.NOT_AUTHENTICATED and self.state is ImapState.AUTHENTICATED:
            self._framer.line_limit = self.settings.line_limit_after_login
        if self.state is ImapState.LOGOUT:
            self._closing = True

    def challenge(self, data: bytes) -> None:
        """Send an AUTHENTICATE challenge; the next line is a ``SaslResponse``."""
        if self._pending is None:
            raise ProtocolUsageError("challenge() outside a command")
        self._output.append(continuation_data(binascii.b2a_base64(data, newline=False)))
        self._mode = "sasl"

    def start_idle(self) -> None:
        """RFC 2177 §3: ``+ idling``; the next line should be DONE."""
        if self._pending is None:
            raise ProtocolUsageError("start_idle() outside a command")
        self._output.append(continuation("idling"))
        self._mode = "idle"

    def bye(self, text: str, code: str | None = None) -> None:
        """End the session from the server's side (``* BYE``, RFC 9051 §7.1.5)."""
        if not self._closing:
            self._output.append(untagged_status("BYE", text, code))
        self._closing = True
        self._states.logout()

    # -- events --------------------------------------------------------------

    def next_event(self) -> ImapEvent:
        if self._closing:
            return _CLOSED
        if self._mode != "command":
            return self._dialogue_line()
        if self._pending is not None:
            return _NEED_DATA if not self._eof else self._end_of_input()
        while True:
            found = self._framer.next(self._input)
            if found is None:
                return _NEED_DATA if not self._eof else self._end_of_input()
            if isinstance(found, LineOverflow):
                tag = _HEAD.match(found.head)
                self._refuse(tag.group(1).decode("ascii") if tag else None, "line too long")
            elif isinstance(found, LiteralAnnounced):
                self._decide_literal(found)
            else:
                event = self._command(found)
                if event is not None:
                    return event
            if self._closing:
                return _CLOSED

    def _end_of_input(self) -> ImapEvent:
        self._closing = True
        self._states.logout()
        return _CLOSED

    def _command(self, found: CompleteCommand) -> CommandReceived | None:
        try:
            command = self._parser.parse(found.data)
        except CommandError as exc:
            if exc.status == "NO":
                self._output.append(tagged(exc.tag or "*", "NO", str(exc), exc.code))
            else:
                self._refuse(exc.tag, str(exc))
            return None
        word = command_word(command)
        refusal = self._states.refusal(word)
        if refusal is not None:
            self._refuse(command.tag, refusal)
            return None
        self._pending = command
        return CommandReceived(command, word)

    def _refuse(self, tag: str | None, text: str) -> None:
        if tag is None:
            self._output.append(untagged_status("BAD", text))
        else:
            self._output.append(tagged(tag, "BAD", text))
        self._count_bad()

    def _count_bad(self) -> None:
        self.bad_commands += 1
        limit = (
            self.settings.max_bad_before_login
            if self.state is ImapState.NOT_AUTHENTICATED
            else self.settings.max_bad_after_login
        )
        if self.bad_commands >= limit:
            self.bye("too many invalid commands")

    def _line_limit(self) -> int:
        if self._states.state is ImapState.NOT_AUTHENTICATED:
            return self.settings.line_limit_before_login
        return self.settings.line_limit_after_login

    def _decide_literal(self, announced: LiteralAnnounced) -> None:
        head = _HEAD.match(announced.head)
        tag = head.group(1).decode("ascii") if head else None
        word = head.group(2).decode("ascii").upper() if head else ""
        refusal: tuple[str, str | None, str] | None = None
        if tag is None:
            refusal = ("BAD", None, "missing or invalid tag")
        elif self._states.refusal(word) is not None and word != "":
            refusal = ("BAD", None, self._states.refusal(word) or "")
        elif word == "APPEND" and self.state is not ImapState.NOT_AUTHENTICATED:
            if announced.size > self.settings.append_limit:
                refusal = ("NO", "TOOBIG", "message too big")  # RFC 7889 §4
        elif announced.size > self._literal_limit():
            refusal = ("BAD", None, "literal too big")
        if (
            refusal is None
            and self._framer.command_octets + announced.size
            > max(self.settings.append_limit, self._literal_limit()) * 2
        ):
            refusal = ("BAD", None, "command too big")
        if refusal is None:
            self._framer.accept_literal()
            if announced.synchronizing:
                self._output.append(continuation("Ready for literal data"))
            return
        self._framer.reject_literal()
        status, code, text = refusal
        self._output.append(tagged(tag or "*", status, text, code))
        if status == "BAD":
            self._count_bad()
        if not announced.synchronizing:
            # RFC 7888 §4: its octets are on their way and will not be read.
            self.bye("literal refused; closing")

    def _literal_limit(self) -> int:
        if self.state is ImapState.NOT_AUTHENTICATED:
            return self.settings.literal_limit_before_login
        return self.settings.literal_limit

    def _take_line(self) -> bytes | None:
        newline = self._input.find(b"\n", 0, self._framer.line_limit)
        if newline < 0:
            if len(self._input) >= self._framer.line_limit:
                self.bye("line too long")
            return None
        line = bytes(self._input[:newline]).rstrip(b"\r")
        del self._input[: newline + 1]
        return line

    def _dialogue_line(self) -> ImapEvent:
        """The line that answers an AUTHENTICATE challenge or ends IDLE (not a command)."""
        line = self._take_line()
        if line is None:
            if self._closing:
                return _CLOSED
            return _NEED_DATA if not self._eof else self._end_of_input()
        mode, self._mode = self._mode, "command"
        if mode == "sasl":
            return SaslResponse(line)
        return IdleDone(line.upper() == b"DONE")  # RFC 2177 §3
