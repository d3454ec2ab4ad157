"""``SmtpClientConnection``: one SMTP client session (RFC 5321 client side), sans-IO.

What this module owns: the command methods the driver calls, and the
handlers that turn each reply into events, including what the connection
does by itself (HELO after a refused EHLO, RSET after a failed transaction,
``*`` to a challenge that has no answer). The plumbing (buffers, the command
queue and its pipelining rule, end of file) is in ``client_session``; the
states in ``client_states``; the events in ``client_events``; the MAIL/RCPT
text in ``client_transaction``; the content encoding in ``client_content``.

Driver contract (see ``client_events`` for each event):

    conn = SmtpClientConnection(ClientSettings(helo_name="mail.a.test"))
    loop:
        event = conn.next_event()
        NeedData        -> write conn.data_to_send(); read; conn.receive_data(octets)
                           (b"" at end of file)
        Greeting (220)  -> conn.hello()
        HelloDone       -> conn.starttls() / conn.authenticate(...) / conn.begin(t) / conn.quit()
        TlsReady        -> handshake on the transport; conn.tls_started(); conn.hello()
        SendMessage     -> conn.send_message_data(chunk) ...; conn.end_message()
        Ready           -> conn.begin(next transaction) / conn.quit()
        ProtocolViolation, ConnectionClosed -> close the transport; stop
    After a call or an event, conn.data_to_send() holds what is to be written
    (the connection writes HELO, RSET, SASL answers and "*" by itself).

Invariants:
- a command method either raises (``ClientStateError`` when the state does
  not allow it, ``ValueError`` when an address, name or parameter holds a
  control character or is malformed) before anything is queued, or queues
  the whole command;
- a non-pipelining server gets MAIL, each RCPT, then DATA only once a
  recipient was accepted, each after the previous reply (``client_session``
  owns the rule); with PIPELINING, MAIL, the RCPTs and DATA go in one write;
- a reply with nothing awaited is a ``ServiceClosing`` when it is a 421 and a
  ``ProtocolViolation`` otherwise; a 421 to any command is ``ServiceClosing``;
- no clock, no I/O; timeouts are the driver's.

Decisions documented here rather than per method:
- RFC 3207 §4 (the STARTTLS response injection of CVE-2011-0411): the octets
  that follow the 220 to STARTTLS, whether they came with it or before
  ``tls_started()``, are discarded unread; TLS then starts a new session
  (RFC 3207 §4.2): extensions and authentication are forgotten, EHLO again.
- BDAT (RFC 3030) is used when the server offers CHUNKING *and* PIPELINING
  (and ``use_chunking``): chunks stream without waiting for each reply, and
  RFC 3030 §2 only has a server that declared PIPELINING accept and discard
  the chunks already sent after a failed one (§4.2 shows BDAT pipelined so).
  Otherwise DATA is used.
- After a failed transaction the connection sends RSET itself and swallows
  the replies still due for the transaction; ``Ready`` follows the RSET's
  250. A 354 to a pipelined DATA when no recipient was accepted is answered
  with the end of data alone (RFC 2920 §3.1).
- SIZE (RFC 1870 §6): a transaction whose declared size exceeds the server's
  limit is not offered: ``TransactionRefused(552 5.3.4, "size")`` then
  ``Ready``, nothing written. BODY=BINARYMIME is declared only with BDAT and
  BINARYMIME offered, and such content then goes out exactly (RFC 3030 §3);
  SMTPUTF8 is added when offered and asked for or needed by an address.
  Whether a transaction may go to this server at all is the driver's policy
  (``ServerExtensions.accepts_*``, ``needs_smtputf8``).
- QUIT may follow a failed transaction before its RSET was answered: it is
  queued behind the RSET (pipelined or not, per the rule above).
- End of file: ``ConnectionClosed(expected=True)`` after QUIT was sent or a
  421 was read, ``expected=False`` otherwise (even when idle: the server did
  not say it was closing).
"""

from __future__ import annotations

import base64
from collections import deque
from collections.abc import Callable
from typing import Final

from postoffice.core.reply import Reply
from postoffice.protocol.smtp import client_events as ev
from postoffice.protocol.smtp.client_content import DotStuffer, LineEndNormalizer
from postoffice.protocol.smtp.client_extensions import ServerExtensions
from postoffice.protocol.smtp.client_session import (
    ClientSettings,
    PendingCommand,
    SmtpClientSession,
    TransactionProgress,
    command_line,
)
from postoffice.protocol.smtp.client_states import (
    TRANSACTION_REPLIES,
    Awaiting,
    Call,
    ClientState,
    ClientStateError,
    Outcome,
)
from postoffice.protocol.smtp.client_transaction import (
    Transaction,
    TransactionRecipient,
    declares_binary,
    mail_from_text,
    needs_smtputf8,
    rcpt_to_text,
)

__all__ = [
    "ClientReplies",
    "ClientSettings",
    "ClientState",
    "ClientStateError",
    "ServerExtensions",
    "SmtpClientConnection",
    "Transaction",
    "TransactionRecipient",
    "needs_smtputf8",
]

A = Awaiting
# RFC 5321 §4.1.4, §3.2: EHLO "not recognised / not implemented": fall back to HELO.
EHLO_NOT_RECOGNISED: Final = frozenset({500, 501, 502, 504, 550})
SASL_MECHANISMS: Final = ("PLAIN", "LOGIN")


class ClientReplies:
    """Replies the client reports on the server's behalf, when it sent nothing."""

    @staticmethod
    def message_too_big(limit: int | None) -> Reply:
        """RFC 1870 §6 (the server declared ``SIZE limit``), RFC 3463 X.3.4."""
        text = f"Message size exceeds fixed maximum message size (server limit {limit})"
        return Reply(552, "5.3.4", text)


def _b64(data: bytes) -> bytes:
    return base64.b64encode(data)


class SmtpClientConnection(SmtpClientSession):
    """One SMTP client session (see the module doc for the driver contract)."""

    # ------------------------------------------------------------- commands

    def hello(self) -> None:
        """EHLO, falling back to HELO by itself (RFC 5321 §3.2)."""
        self._machine.accept(Call.HELLO)
        self._send(A.EHLO, command_line(f"EHLO {self.settings.helo_name}"))

    def starttls(self) -> None:
        """RFC 3207 §4; only when the server offered STARTTLS."""
        self._machine.require(Call.STARTTLS)
        if self._tls:
            raise ClientStateError("TLS is already active")
        if not (self._extensions and self._extensions.starttls):
            raise ClientStateError("the server did not offer STARTTLS")
        self._machine.accept(Call.STARTTLS)
        self._send(A.STARTTLS, b"STARTTLS\r\n")

    def tls_started(self) -> None:
        """The driver finished the TLS handshake: a new session starts (RFC 3207 §4.2)."""
        self._machine.accept(Call.TLS_STARTED)
        self._tls = True
        self._extensions, self._authenticated = None, False
        self._discarded += self._replies.discard()

    def authenticate(self, mechanism: str, username: str, password: str) -> None:
        """AUTH PLAIN with an initial response, or AUTH LOGIN (RFC 4954 §4)."""
        self._machine.require(Call.AUTHENTICATE)
        mechanism = mechanism.upper()
        if mechanism not in SASL_MECHANISMS:
            raise ValueError(f"unsupported SASL mechanism {mechanism}")
        if self._authenticated:
            raise ClientStateError("already authenticated (RFC 4954 §4)")
        if not (self._extensions and mechanism in self._extensions.auth):
            raise ClientStateError(f"the server did not offer AUTH {mechanism}")
        user, secret = username.encode("utf-8"), password.encode("utf-8")
        if not user:
            raise ValueError("empty user name")
        if mechanism == "PLAIN":
            if b"\x00" in user or b"\x00" in secret:
                raise ValueError("PLAIN credentials cannot contain NUL (RFC 4616 §2)")
            message = _b64(b"\x00" + user + b"\x00" + secret)  # RFC 4616 §2, no authzid
            command, answers = f"AUTH PLAIN {message.decode('ascii')}", []
        else:  # LOGIN: the user name, then the password, each to a 334
            command, answers = "AUTH LOGIN", [_b64(user), _b64(secret)]
        self._machine.accept(Call.AUTHENTICATE)
        self._sasl = deque(answers)
        self._send(A.AUTH, command_line(command))

    def begin(self, transaction: Transaction) -> None:
        """MAIL, the RCPTs and (without BDAT) DATA; see the module doc."""
        self._machine.require(Call.BEGIN)
        ext = self._extensions or ServerExtensions.none()
        bdat = self.uses_chunking
        mail = command_line(mail_from_text(transaction, ext, bdat=bdat))
        rcpts = [command_line(rcpt_to_text(r, ext)) for r in transaction.recipients]
        if not ext.accepts_size(transaction.size):
            # RFC 1870 §6: a message larger than the server's maximum is not offered.
            refusal = ClientReplies.message_too_big(ext.size_limit)
            self._events += (ev.TransactionRefused(refusal, "size"), ev.Ready())
            return
        self._machine.accept(Call.BEGIN)
        binary = declares_binary(transaction, ext, bdat=bdat)
        self._progress = TransactionProgress(transaction, bdat, binary)
        self._unsent.append(PendingCommand(A.MAIL, mail))
        self._unsent += (PendingCommand(A.RCPT, rcpt, i) for i, rcpt in enumerate(rcpts))
        if not bdat:
            self._unsent.append(PendingCommand(A.DATA, b"DATA\r\n"))
        self._flush()

    def send_message_data(self, chunk: bytes) -> None:
        """Content octets in order, with any line ends; an empty chunk sends nothing."""
        self._machine.accept(Call.SEND_MESSAGE_DATA)
        progress, content = self._progress, self._content
        assert progress is not None and content is not None
        out = content.feed(chunk)
        if not out:
            return
        if progress.bdat:
            self._send(A.BDAT, b"BDAT %d\r\n" % len(out) + out)  # RFC 3030 §2: exact count
        else:
            self._out += out

    def end_message(self) -> None:
        """End the content: ``.`` after DATA, ``BDAT n LAST`` with chunking."""
        self._machine.accept(Call.END_MESSAGE)
        progress, content = self._progress, self._content
        assert progress is not None and content is not None
        self._content = None
        tail = content.finish()
        if progress.bdat:
            self._send(A.BDAT_LAST, b"BDAT %d LAST\r\n" % len(tail) + tail)
        else:
            self._send(A.DATA_END, tail)

    def reset(self) -> None:
        """RSET (RFC 5321 §4.1.1.5); ``Ready`` follows its reply."""
        self._machine.accept(Call.RESET)
        self._send(A.RSET, b"RSET\r\n")

    def quit(self) -> None:
        """QUIT (RFC 5321 §4.1.1.10); ``Closing`` follows its reply."""
        self._machine.accept(Call.QUIT)
        self._send(A.QUIT, b"QUIT\r\n")

    # ----------------------------------------------------------- transaction

    def _answer(self, command: PendingCommand, reply: Reply) -> None:
        if not _plausible(command.awaiting, reply.code):
            # A 250 to DATA or a 354 to the final dot would otherwise pass for
            # the server's word on the message: never take it.
            self._finish(
                ev.ProtocolViolation(f"{reply.code} is no reply to {command.awaiting.value}")
            )
            return
        _HANDLERS[command.awaiting](self, command, reply)

    def _fail_transaction(self) -> None:
        """The transaction is over and failed: drop what was not sent, then RSET."""
        progress = self._progress
        assert progress is not None
        progress.failed = True
        self._content = None
        self._unsent = deque(c for c in self._unsent if c.awaiting not in TRANSACTION_REPLIES)
        self._unsent.append(PendingCommand(A.RSET, b"RSET\r\n"))
        self._machine.outcome(Outcome.TRANSACTION_FAILED)

    def _refuse_recipients(self, progress: TransactionProgress) -> None:
        assert progress.last_refusal is not None
        self._events.append(ev.TransactionRefused(progress.last_refusal, "rcpt"))
        self._fail_transaction()

    def _start_content(self, reply: Reply | None, progress: TransactionProgress) -> None:
        if progress.bdat:  # RFC 3030 §3: BINARYMIME content goes out exactly
            self._content = LineEndNormalizer(binary=progress.binary)
        else:
            self._content = DotStuffer()
        self._events.append(ev.SendMessage(reply))
        self._machine.outcome(Outcome.MESSAGE_READY)

    def _current(self) -> TransactionProgress:
        progress = self._progress
        assert progress is not None
        return progress

    # ------------------------------------------------------- reply handlers

    def _on_greeting(self, _: PendingCommand, reply: Reply) -> None:
        self._events.append(ev.Greeting(reply))
        greeted = reply.code == 220  # RFC 5321 §4.2, §3.1
        self._machine.outcome(Outcome.GREETED if greeted else Outcome.GREETING_REFUSED)

    def _on_ehlo(self, _: PendingCommand, reply: Reply) -> None:
        if reply.code // 100 == 2:
            self._extensions = ServerExtensions.from_ehlo(reply)
            self._events.append(ev.HelloDone(reply, self._extensions, extended=True))
            self._machine.outcome(Outcome.HELLO_DONE)
        elif reply.code in EHLO_NOT_RECOGNISED:
            self._unsent.append(
                PendingCommand(A.HELO, command_line(f"HELO {self.settings.helo_name}"))
            )
        else:
            self._hello_refused(reply)

    def _on_helo(self, _: PendingCommand, reply: Reply) -> None:
        if reply.code // 100 == 2:
            self._extensions = ServerExtensions.none()
            self._events.append(ev.HelloDone(reply, self._extensions, extended=False))
            self._machine.outcome(Outcome.HELLO_DONE)
        else:
            self._hello_refused(reply)

    def _hello_refused(self, reply: Reply) -> None:
        self._extensions = None
        self._events.append(ev.HelloRefused(reply))
        self._machine.outcome(Outcome.HELLO_REFUSED)

    def _on_starttls(self, _: PendingCommand, reply: Reply) -> None:
        if reply.code == 220:
            # RFC 3207 §4: what came after the 220 was sent before the handshake,
            # so anyone on the path may have written it: drop it unread.
            self._discarded += self._replies.discard()
            self._events.append(ev.TlsReady(reply))
            self._machine.outcome(Outcome.TLS_READY)
        else:
            self._events.append(ev.TlsRefused(reply))
            self._machine.outcome(Outcome.TLS_REFUSED)

    def _on_auth(self, _: PendingCommand, reply: Reply) -> None:
        if reply.code == 235:  # RFC 4954 §6
            self._authenticated = True
            self._events.append(ev.AuthDone(reply))
            self._machine.outcome(Outcome.AUTH_ENDED)
        elif reply.code == 334 and self._sasl:
            self._unsent.append(PendingCommand(A.AUTH, self._sasl.popleft() + b"\r\n"))
        elif reply.code == 334:  # RFC 4954 §4: a challenge with no answer: cancel
            self._unsent.append(PendingCommand(A.AUTH_CANCEL, b"*\r\n"))
        else:
            self._auth_refused(reply)

    def _on_auth_cancel(self, _: PendingCommand, reply: Reply) -> None:
        self._auth_refused(reply)

    def _auth_refused(self, reply: Reply) -> None:
        self._sasl.clear()
        self._events.append(ev.AuthRefused(reply))
        self._machine.outcome(Outcome.AUTH_ENDED)

    def _on_mail(self, _: PendingCommand, reply: Reply) -> None:
        progress = self._current()
        if progress.failed or reply.code // 100 == 2:
            return
        self._events.append(ev.SenderRefused(reply))
        self._fail_transaction()

    def _on_rcpt(self, command: PendingCommand, reply: Reply) -> None:
        progress = self._current()
        if progress.failed:
            return
        self._events.append(ev.RecipientResult(command.index, reply))
        if reply.code // 100 == 2:
            progress.accepted += 1
        else:
            progress.last_refusal = reply
        progress.answered += 1
        if progress.answered < len(progress.transaction.recipients):
            return
        if progress.bdat:
            # RFC 3030 §2: the content follows once every MAIL and RCPT reply is in.
            if progress.accepted:
                self._start_content(None, progress)
            else:
                self._refuse_recipients(progress)
        elif not progress.accepted and any(c.awaiting is A.DATA for c in self._unsent):
            self._refuse_recipients(progress)  # not pipelined: DATA is never sent

    def _on_data(self, _: PendingCommand, reply: Reply) -> None:
        progress = self._current()
        if progress.failed or not progress.accepted:
            if not progress.failed:
                self._refuse_recipients(progress)
            if reply.code == 354:
                # RFC 2920 §3.1: 354 although no recipient was accepted: the
                # client sends the end of data alone (ahead of the RSET).
                self._unsent.appendleft(PendingCommand(A.DATA_END, b".\r\n"))
            return
        if reply.code == 354:  # RFC 5321 §4.1.1.4
            self._start_content(reply, progress)
        else:
            self._events.append(ev.TransactionRefused(reply, "data"))
            self._fail_transaction()

    def _on_message_end(self, _: PendingCommand, reply: Reply) -> None:
        """The reply to the final ``.`` or to ``BDAT n LAST``."""
        progress = self._current()
        if progress.failed:
            return
        if reply.code // 100 == 2:
            self._events += (ev.MessageAccepted(reply), ev.Ready())
            self._progress = None
            self._machine.outcome(Outcome.MESSAGE_DONE)
        else:
            self._events.append(ev.MessageRefused(reply))
            self._fail_transaction()

    def _on_bdat(self, _: PendingCommand, reply: Reply) -> None:
        progress = self._current()
        if progress.failed or reply.code // 100 == 2:
            return
        # RFC 3030 §2: a refused chunk fails the transaction; the replies to the
        # chunks already sent are swallowed, and RSET clears the server.
        self._events.append(ev.MessageRefused(reply))
        self._fail_transaction()

    def _on_rset(self, _: PendingCommand, reply: Reply) -> None:
        if self._machine.state is ClientState.QUIT:
            return  # QUIT follows: nobody waits for Ready
        if reply.code // 100 != 2:
            # RFC 5321 §4.1.1.5: the server MUST answer RSET with 250.
            self._finish(ev.ProtocolViolation(f"RSET refused: {reply}"))
            return
        self._progress = None
        self._events.append(ev.Ready())
        self._machine.outcome(Outcome.RESET_DONE)

    def _on_quit(self, _: PendingCommand, reply: Reply) -> None:
        self._events.append(ev.Closing(reply))
        self._machine.closing()
        self._drop_pending()


def _plausible(awaiting: Awaiting, code: int) -> bool:
    """Whether ``code`` can answer what is awaited (RFC 5321 §4.3.2, RFC 4954 §4):
    354 only to DATA, 334 only within AUTH, 220 only as greeting or to STARTTLS,
    2xx to anything but DATA; 4xx and 5xx to anything."""
    if code >= 400:
        return True
    if awaiting is A.DATA:
        return code == 354
    if code == 354:
        return False
    if code // 100 == 3:
        return awaiting in (A.AUTH, A.AUTH_CANCEL) and code == 334
    return True


_Handler = Callable[[SmtpClientConnection, PendingCommand, Reply], None]
_C = SmtpClientConnection
_HANDLERS: Final[dict[Awaiting, _Handler]] = {
    A.GREETING: _C._on_greeting,
    A.EHLO: _C._on_ehlo,
    A.HELO: _C._on_helo,
    A.STARTTLS: _C._on_starttls,
    A.AUTH: _C._on_auth,
    A.AUTH_CANCEL: _C._on_auth_cancel,
    A.MAIL: _C._on_mail,
    A.RCPT: _C._on_rcpt,
    A.DATA: _C._on_data,
    A.DATA_END: _C._on_message_end,
    A.BDAT: _C._on_bdat,
    A.BDAT_LAST: _C._on_message_end,
    A.RSET: _C._on_rset,
    A.QUIT: _C._on_quit,
}
