"""``Pop3ServerConnection``: one POP3 server session as a sans-IO object.

What this module owns: the command handlers (``do_<command>``), the SASL
dialogue of AUTH, and the driver's answers to the decisions (login, message
retrieval, update). Everything that needs no policy is answered here: CAPA,
STAT, LIST, UIDL, DELE, RSET, NOOP, LAST, and the refusals. The plumbing
(buffers, output, events, error count, close) is in ``session``; the state
table in ``states``; the maildrop's numbers and marks in ``maildrop``; the
message encoding in ``wire``; the response texts in ``replies``.

Driver contract (see ``events`` for each event):

    conn = Pop3ServerConnection(settings)
    out = conn.start()                         # "+OK POP3 server ready [<timestamp>]"
    loop:
        event = conn.next_event()
        NeedData     -> write conn.data_to_send(); read; conn.receive_data(octets)
                        (b"" at end of file)
        Authenticate -> conn.login_accepted(listing) | conn.login_refused(text, code)
        Retrieve     -> conn.message_data(chunk) ... then conn.message_end(),
                        or conn.message_whole(octets, dots) for all of it
                        (or conn.retrieve_failed(text) before any data); write
                        conn.data_to_send() as it grows (after each chunk)
        Update       -> remove the deleted messages; conn.update_done(ok, text)
        StartTls     -> write conn.data_to_send(); handshake; conn.tls_started()
        Closed       -> write conn.data_to_send(); close the transport; stop
    The answers return nothing: every octet leaves through ``data_to_send()``,
    so output is never lost by a caller that ignores a return value (only
    ``start()`` and ``close()`` hand back the octets they produced, drained).
    A driver that reads while a decision is pending stops once
    ``buffered_octets`` reaches ``PIPELINE_LIMIT``; ``close(text)`` ends the
    session from the driver's side, and answers given after it are ignored.

Decisions documented here rather than per handler:
- errors that count toward ``max_errors``: unknown commands, commands in the
  wrong state, bad arguments, over-long lines, refused or malformed logins
  (``login_refused`` with code ``AUTH`` or no code). "No such message" does
  not count: it answers a well-formed command. At ``max_errors`` the server
  adds ``-ERR [SYS/PERM] too many errors`` and closes.
- plaintext logins (USER/PASS, AUTH PLAIN/LOGIN) need TLS unless
  ``plaintext_auth``; APOP sends no password and is always allowed when a
  timestamp is configured. A failed PASS forgets the USER name.
- a user name outside ASCII is refused in USER and APOP until UTF8 was given
  (RFC 6856 §2); SASL carries UTF-8 by definition and is not restricted.
  The capability is the bare ``UTF8``: no SASLprep is applied, so ``UTF8
  USER`` is not claimed.
- ``retrieve_failed`` after data was sent closes the connection at once:
  a message cut short must not look complete to the client.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Final

from postoffice.protocol.errors import ProtocolUsageError
from postoffice.protocol.lines import LineTooLong
from postoffice.protocol.pop3.events import Retrieve, Update
from postoffice.protocol.pop3.login import Pop3Authorization
from postoffice.protocol.pop3.replies import (
    Responses,
    err,
    maildrop_summary,
    multiline,
    ok,
    signing_off,
    valid_code,
)
from postoffice.protocol.pop3.session import PIPELINE_LIMIT, Pending
from postoffice.protocol.pop3.settings import Pop3Settings
from postoffice.protocol.pop3.states import COMMANDS, Command, Pop3State
from postoffice.protocol.pop3.wire import TERMINATOR, MessageEncoder

__all__ = ["PIPELINE_LIMIT", "Pop3ServerConnection", "Pop3Settings"]

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


def _number(token: str) -> int | None:
    return int(token) if token.isascii() and token.isdigit() else None


class Pop3ServerConnection(Pop3Authorization):
    """One POP3 server session (see the module doc for the driver contract)."""

    # ------------------------------------------------------------ counters

    @property
    def retrieved_octets(self) -> int:
        """Message octets sent for RETR (dot-stuffed, without the terminator)."""
        return self._retrieved_octets

    @property
    def retrieved_count(self) -> int:
        """RETR commands answered with a whole message."""
        return self._retrieved_count

    @property
    def wants_message_data(self) -> bool:
        """True while a Retrieve is pending and more message octets are useful."""
        return (
            self._pending is Pending.RETRIEVE
            and self._encoder is not None
            and not self._encoder.done
        )

    def capabilities(self) -> list[str]:
        """The CAPA list for the current state (RFC 2449 §5, §6)."""
        settings = self.settings
        capabilities = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "UTF8"]
        capabilities.append(f"IMPLEMENTATION {settings.implementation}")
        if settings.expire is not None:
            capabilities.append(f"EXPIRE {settings.expire}")
        if settings.login_delay is not None:
            capabilities.append(f"LOGIN-DELAY {settings.login_delay}")
        # RFC 2449 §5: the list may differ per state; login means nothing after login.
        if self.state is Pop3State.AUTHORIZATION:
            if settings.tls_available and not self._tls:
                capabilities.append("STLS")  # RFC 2595 §4
            if self._plaintext_allowed():
                capabilities.append("USER")
                if settings.mechanisms:
                    capabilities.append("SASL " + " ".join(settings.mechanisms))
        return capabilities

    # -------------------------------------------------------------- input

    def _step(self) -> bool:
        line = self._take_line()
        if line is None:
            return False
        if self._sasl is not None:
            self._sasl_response(line)
        elif isinstance(line, LineTooLong):
            self._refuse(Responses.LINE_TOO_LONG)
        else:
            self._command(line)
        return True

    def _command(self, line: bytes) -> None:
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            self._refuse(Responses.BAD_CHARACTERS)
            return
        if _CONTROL.search(text):
            self._refuse(Responses.BAD_CHARACTERS)
            return
        keyword, _, argument = text.partition(" ")
        # RFC 1939 §3: keywords are case-insensitive; ASCII only, since str.upper()
        # maps some non-ASCII letters onto ASCII ones (U+017F LONG S becomes "S").
        command = COMMANDS.get(keyword.upper()) if keyword.isascii() else None
        if command is None:
            self._refuse(Responses.UNKNOWN_COMMAND)
            return
        refusal = self._machine.refusal(command)
        if refusal is not None:
            self._refuse(err(refusal))
            return
        handler: Callable[[str], None] = getattr(self, f"do_{command.value.lower()}")
        handler(argument)

    # ------------------------------------------------- commands of both states

    def do_capa(self, argument: str) -> None:
        if self._no_arguments(Command.CAPA, argument):
            self._write(multiline(Responses.CAPA_FOLLOWS, self.capabilities()))

    def do_quit(self, argument: str) -> None:
        if not self._no_arguments(Command.QUIT, argument):
            return
        before = self.state
        self._machine.accept(Command.QUIT)
        if before is Pop3State.AUTHORIZATION:
            self._close("quit", Responses.BYE)  # RFC 1939 §4: no UPDATE
            return
        maildrop = self._maildrop
        self._pending = Pending.UPDATE  # RFC 1939 §6
        self._events.append(Update(maildrop.deleted, maildrop.retrieved))

    # -------------------------------------------------- TRANSACTION commands

    def do_noop(self, argument: str) -> None:
        if self._no_arguments(Command.NOOP, argument):
            self._write(Responses.OK)

    def do_stat(self, argument: str) -> None:
        if self._no_arguments(Command.STAT, argument):
            count, octets = self._maildrop.stat()
            self._write(ok(f"{count} {octets}"))  # RFC 1939 §5: the drop listing

    def do_list(self, argument: str) -> None:
        maildrop = self._maildrop
        words = argument.split()
        if not words:
            lines = [f"{index + 1} {maildrop.size(index)}" for index in maildrop.live()]
            self._write(multiline(ok(maildrop_summary(*maildrop.stat())), lines))
        elif len(words) == 1:
            index = self._message(words[0], listing=True)
            if index is not None:
                self._write(ok(f"{index + 1} {maildrop.size(index)}"))  # scan listing
        else:
            self._refuse(err("LIST takes at most one message number"))

    def do_uidl(self, argument: str) -> None:
        maildrop = self._maildrop
        words = argument.split()
        if not words:
            lines = [f"{index + 1} {maildrop.uidl(index)}" for index in maildrop.live()]
            self._write(multiline(Responses.UIDL_FOLLOWS, lines))
        elif len(words) == 1:
            index = self._message(words[0], listing=True)
            if index is not None:
                self._write(ok(f"{index + 1} {maildrop.uidl(index)}"))  # RFC 1939 §7
        else:
            self._refuse(err("UIDL takes at most one message number"))

    def do_retr(self, argument: str) -> None:
        words = argument.split()
        if len(words) != 1:
            self._refuse(err("RETR needs one message number"))
            return
        index = self._message(words[0])
        if index is not None:
            self._ask_retrieve(index, None)

    def do_top(self, argument: str) -> None:
        words = argument.split()
        lines = _number(words[1]) if len(words) == 2 else None
        if lines is None:
            self._refuse(Responses.BAD_TOP)
            return
        index = self._message(words[0])
        if index is not None:
            self._ask_retrieve(index, lines)

    def do_dele(self, argument: str) -> None:
        words = argument.split()
        if len(words) != 1:
            self._refuse(err("DELE needs one message number"))
            return
        index = self._message(words[0])
        if index is not None:
            self._maildrop.delete(index)
            self._write(ok(f"message {index + 1} deleted"))

    def do_rset(self, argument: str) -> None:
        if self._no_arguments(Command.RSET, argument):
            self._maildrop.reset()
            self._write(ok("maildrop has " + maildrop_summary(*self._maildrop.stat())))

    def do_last(self, argument: str) -> None:
        if self._no_arguments(Command.LAST, argument):
            self._write(ok(str(self._maildrop.last)))  # RFC 1460 §5

    def _message(self, token: str, *, listing: bool = False) -> int | None:
        """The 0-based index named by ``token``, or None once the -ERR is written."""
        number = _number(token)
        if number is None:
            self._refuse(Responses.INVALID_NUMBER)
            return None
        maildrop = self._maildrop
        if not maildrop.exists(number):
            count = maildrop.count
            self._write(
                Responses.no_such_message_of(count) if listing else Responses.NO_SUCH_MESSAGE
            )
            return None
        if maildrop.is_deleted(number - 1):
            self._write(Responses.already_deleted(number))  # RFC 1939 §5
            return None
        return number - 1

    def _ask_retrieve(self, index: int, body_lines: int | None) -> None:
        self._pending = Pending.RETRIEVE
        self._retrieve_index, self._retrieve_lines = index, body_lines
        self._retrieve_started = False
        self._encoder = MessageEncoder(body_lines)
        self._events.append(Retrieve(index + 1, index, body_lines))

    # --------------------------------------------------- answers to decisions

    def message_data(self, chunk: bytes) -> None:
        """The next stored octets of the message being retrieved."""
        if not self._answerable(Pending.RETRIEVE, "message_data"):
            return
        assert self._encoder is not None
        self._begin_message()
        out = self._encoder.feed(chunk)
        self._outbuf += out
        if self._retrieve_lines is None:
            self._retrieved_octets += len(out)

    def message_end(self) -> None:
        """The whole message was fed: end it with ``.CRLF`` (RFC 1939 §3)."""
        if not self._answerable(Pending.RETRIEVE, "message_end"):
            return
        assert self._encoder is not None
        self._begin_message()
        self._message_done(self._encoder.finish())

    def message_whole(self, data: bytes, dots: Sequence[int]) -> None:
        """The whole message at once, in canonical form, its "." lines starting at
        ``dots`` (``wire.dot_lines``, known from an earlier read): ``message_data``
        and ``message_end`` in one, without a search of the octets."""
        if not self._answerable(Pending.RETRIEVE, "message_whole"):
            return
        assert self._encoder is not None
        if self._retrieve_lines is not None:  # TOP cuts lines: the encoder reads them
            self.message_data(data)
            self.message_end()
            return
        self._begin_message()
        self._message_done(self._encoder.whole(data, dots))

    def _message_done(self, tail: bytes) -> None:
        """Send the last of the message (``tail`` ends with the terminator)."""
        self._outbuf += tail
        index = self._retrieve_index
        self._maildrop.accessed(index)  # RFC 1460 §5 LAST
        if self._retrieve_lines is None:
            self._retrieved_octets += len(tail) - len(TERMINATOR)
            self._retrieved_count += 1
            self._maildrop.retrieved_whole(index)
        self._pending, self._encoder = None, None

    def retrieve_failed(self, text: str, code: str | None = "SYS/TEMP") -> None:
        """The message cannot be read: ``-ERR [code] text``; after data, close."""
        if not self._answerable(Pending.RETRIEVE, "retrieve_failed"):
            return
        if code is not None and not valid_code(code):
            raise ProtocolUsageError(f"not a response code: {code!r}")
        if self._retrieve_started:
            self._close("message retrieval failed mid-message")
        else:
            self._pending, self._encoder = None, None
            self._write(err(text, code))

    def update_done(self, ok: bool, text: str | None = None) -> None:
        """The UPDATE state's work is done (RFC 1939 §6); the connection closes."""
        if not self._answerable(Pending.UPDATE, "update_done"):
            return
        self._pending = None
        if ok:
            response = signing_off(self.settings.hostname, self._maildrop.stat()[0])
        else:
            response = err(text or Responses.UPDATE_FAILED, "SYS/TEMP")
        self._close("quit", response)

    def _begin_message(self) -> None:
        if self._retrieve_started:
            return
        self._retrieve_started = True
        if self._retrieve_lines is None:  # RFC 1939 §10: "+OK 120 octets"
            self._outbuf += b"+OK %d octets\r\n" % self._maildrop.size(self._retrieve_index)
        else:
            self._outbuf += Responses.OK
