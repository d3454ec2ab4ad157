"""The plumbing of a POP3 server session: buffers, output, events, errors, close.

What this module owns, for ``server.Pop3ServerConnection`` (which adds the
command handlers and the answers to decisions on top): the input buffer and
its bounded line reader, the single output buffer every response goes
through, the event queue and the one pending decision, the error counter, the
STLS discard window, and the driver-facing basics (``start``,
``receive_data``, ``next_event``, ``data_to_send``, ``tls_started``,
``close``).

Invariants:
- at most one decision is pending and it is the last event queued; while it
  is, no input is consumed (pipelined commands wait, RFC 2449 §6.6);
- a line longer than ``max_line_length`` is answered as soon as
  ``next_event`` sees it and is dropped up to its LF, later octets included
  as they arrive: between two calls the buffer holds at most one read;
- pipelined input is bounded: once ``PIPELINE_LIMIT`` octets wait unread,
  the driver must stop reading (``receive_data`` beyond that is a usage
  error), so a client cannot grow the buffer while a decision is pending;
- after STLS is accepted, nothing received before ``tls_started()`` is ever
  read (RFC 2595 §4; the STARTTLS command-injection defence); it is counted;
- once closed, the connection reads nothing and says nothing more.
"""

from __future__ import annotations

import abc
import enum
from collections import deque
from typing import Final

from postoffice.protocol.errors import ProtocolUsageError
from postoffice.protocol.lines import LineReader, LineTooLong
from postoffice.protocol.pop3.events import Closed, Event, NeedData
from postoffice.protocol.pop3.maildrop import Maildrop
from postoffice.protocol.pop3.replies import Responses, err, ok, valid_code
from postoffice.protocol.pop3.settings import Pop3Settings
from postoffice.protocol.pop3.states import Command, Pop3State, Pop3StateMachine
from postoffice.protocol.pop3.wire import MessageEncoder
from postoffice.protocol.scram import SaslExchange

PIPELINE_LIMIT: Final = 64 * 1024  # unread input octets after which the driver stops reading

_NEED_DATA: Final = NeedData()


class Pending(enum.Enum):
    """The decision the driver has not answered yet."""

    LOGIN = "login"  # Authenticate
    KEYS = "keys"  # KeysWanted
    RETRIEVE = "retrieve"  # Retrieve
    UPDATE = "update"  # Update


class Pop3SessionCore(abc.ABC):
    """Session plumbing shared by the command handlers of ``Pop3ServerConnection``."""

    def __init__(self, settings: Pop3Settings | None = None) -> None:
        self.settings = settings or Pop3Settings()
        self._machine = Pop3StateMachine()
        self._inbuf = bytearray()
        self._outbuf = bytearray()
        self._events: deque[Event] = deque()
        self._closed: Closed | None = None
        self._started = False
        self._eof = False
        self._lines = LineReader(self.settings.max_line_length)
        self._errors = 0
        self._discarded_plaintext = 0
        self._tls = self.settings.is_tls
        self._tls_pending = False
        # AUTHORIZATION
        self._utf8 = False
        self._user_name: str | None = None  # given by USER, waiting for PASS
        self._sasl: SaslExchange | None = None
        # TRANSACTION
        self._user: str | None = None
        self._maildrop = Maildrop(())
        self._retrieved_octets = 0
        self._retrieved_count = 0
        # the pending decision and what answering it needs
        self._pending: Pending | None = None
        self._login_command: Command | None = None
        self._encoder: MessageEncoder | None = None
        self._login_user: str | None = None
        self._retrieve_index = 0
        self._retrieve_lines: int | None = None
        self._retrieve_started = False

    # ------------------------------------------------------------------ API

    @property
    def state(self) -> Pop3State:
        return self._machine.state

    @property
    def closed(self) -> bool:
        return self._closed is not None

    @property
    def user(self) -> str | None:
        """The authenticated user (the SASL authzid when one was given), else None."""
        return self._user

    @property
    def is_tls(self) -> bool:
        return self._tls

    @property
    def utf8(self) -> bool:
        """True once the client enabled UTF8 (RFC 6856 §2)."""
        return self._utf8

    @property
    def error_count(self) -> int:
        return self._errors

    @property
    def buffered_octets(self) -> int:
        """Input octets held and not yet processed (see ``PIPELINE_LIMIT``)."""
        return len(self._inbuf)

    @property
    def discarded_plaintext_octets(self) -> int:
        """Octets dropped because they came after STLS and before TLS (for the log)."""
        return self._discarded_plaintext

    @property
    def deleted_count(self) -> int:
        """Messages marked deleted now (RSET clears the marks)."""
        return len(self._maildrop.deleted)

    def start(self, greeting_text: str | None = None) -> bytes:
        """The greeting (RFC 1939 §4), with the APOP timestamp when APOP is offered."""
        if self._started:
            raise ProtocolUsageError("start() was already called")
        self._started = True
        if self._closed is None:
            text = greeting_text if greeting_text is not None else "POP3 server ready"
            stamp = self.settings.apop_timestamp
            self._outbuf += ok(f"{text} {stamp}" if stamp else text)  # RFC 1939 §7 APOP
        return self.data_to_send()

    def receive_data(self, data: bytes) -> None:
        """Feed octets read from the client; ``b""`` means the client closed."""
        if self._closed is not None:
            return
        if not data:
            self._eof = True
            return
        if self._tls_pending:
            self._discarded_plaintext += len(data)  # RFC 2595 §4
            return
        if len(self._inbuf) >= PIPELINE_LIMIT:
            raise ProtocolUsageError("stop reading while buffered_octets >= PIPELINE_LIMIT")
        self._inbuf += self._lines.skip(data)

    def next_event(self) -> Event:
        if not self._started:
            raise ProtocolUsageError("call start() before next_event()")
        while True:
            if self._events:
                return self._events.popleft()
            if self._pending is not None:
                raise ProtocolUsageError("answer the pending decision first")
            if self._closed is not None:
                return self._closed
            if self._tls_pending:
                raise ProtocolUsageError("call tls_started() (or close()) after StartTls")
            if self._step():
                continue
            if self._eof:
                self._close("client closed the connection")
                continue
            return _NEED_DATA

    def data_to_send(self) -> bytes:
        out = bytes(self._outbuf)
        self._outbuf.clear()
        return out

    def tls_started(self) -> None:
        """The driver finished the TLS handshake after STLS (RFC 2595 §4)."""
        if not self._tls_pending:
            raise ProtocolUsageError("tls_started() without an accepted STLS")
        self._tls_pending = False
        self._tls = True
        # Forget whatever the client said in plaintext (RFC 2595 §4 asks the
        # client to forget the capabilities; the server keeps nothing either).
        self._user_name, self._utf8 = None, False
        self._discarded_plaintext += len(self._inbuf)
        self._inbuf.clear()
        self._lines.reset()

    def close(self, text: str | None = None) -> bytes:
        """Driver-side close (idle timeout, shutdown): say ``-ERR [SYS/TEMP] text``
        when given and no message is half sent, then stop. No UPDATE happens
        (RFC 1939 §6), and any pending decision is cancelled: answering it
        afterwards does nothing."""
        if self._closed is None:
            mid_message = self._pending is Pending.RETRIEVE and self._retrieve_started
            if text is not None and not mid_message:
                # RFC 3206 §4 [SYS/TEMP], unless the driver's text brings its own code.
                has_code = text.startswith("[") and valid_code(text[1:].partition("]")[0])
                self._outbuf += err(text) if has_code else err(text, "SYS/TEMP")
            self._close("closed by the server")
        return self.data_to_send()

    # ------------------------------------------------------------ machinery

    @abc.abstractmethod
    def _step(self) -> bool:
        """Process one unit of input; False when more input is needed."""

    def _take_line(self) -> bytes | LineTooLong | None:
        """The next line without its CRLF (or bare LF), TOO_LONG, or None for "need more"."""
        line = self._lines.take(self._inbuf)
        return line[0] if isinstance(line, tuple) else line

    def _answerable(self, kind: Pending, method: str) -> bool:
        """Check an answer to a decision: False (ignore it) once the connection
        is closed, since a driver-side ``close()`` cancels what was pending."""
        if self._closed is not None:
            return False
        if self._pending is not kind:
            raise ProtocolUsageError(f"{method}() without a pending {kind.value} decision")
        if self._events:
            raise ProtocolUsageError("next_event() has not returned the pending decision yet")
        return True

    def _no_arguments(self, command: Command, argument: str) -> bool:
        if argument.strip():
            self._refuse(Responses.no_arguments(command.value))
            return False
        return True

    def _plaintext_allowed(self) -> bool:
        return self._tls or self.settings.plaintext_auth

    def _write(self, response: bytes) -> None:
        if self._closed is None:
            self._outbuf += response

    def _refuse(self, response: bytes) -> None:
        """A -ERR that counts as the client's error (syntax, state, credentials)."""
        if self._closed is not None:
            return
        self._outbuf += response
        self._errors += 1
        if self._errors >= self.settings.max_errors:
            self._close("too many errors", Responses.TOO_MANY_ERRORS)

    def _close(self, reason: str, response: bytes | None = None) -> None:
        if self._closed is not None:
            return
        if response is not None:
            self._outbuf += response
        self._machine.close()
        self._closed = Closed(reason)
        self._inbuf.clear()
        self._sasl = None
        self._tls_pending = False
        self._pending, self._encoder = None, None
