"""``SmtpServerConnection``: one SMTP server session as a sans-IO object.

What this module owns: the command handlers (``do_<command>``), the AUTH
dialogue and the end of each message: answering what needs no policy, and
asking the driver (``Decision`` events) for what does. The plumbing (buffers,
output FIFO, event queue, error count, close) is in ``session``; the state
transitions are looked up in ``states``; the grammar in ``grammar`` and
``params``; content framing in ``data`` and ``receiver``.

Driver contract (see ``events`` for each event):

    conn = SmtpServerConnection(settings, client)
    out = conn.start()                    # greeting (or conn.start(reject=reply))
    loop:
        event = conn.next_event()
        NeedData       -> write conn.data_to_send(); read; conn.receive_data(octets)
                          (b"" at end of file)
        Decision       -> write conn.send(reply)   # exactly one reply per decision
        MessageChunk   -> append event.data to the spool file
        MessageAborted -> discard the spool file
        Refused        -> log
        Closed         -> write conn.data_to_send(); close the transport; stop
    Before each write, sleep ``conn.delay_replies`` seconds (tarpit).

Invariants:
- replies leave in the order of the commands they answer (one output FIFO;
  ``send`` and ``data_to_send`` both drain it);
- memory is bounded: a command line never grows past ``max_line_length``
  (the rest of an over-long line is dropped as it arrives), and message
  content is streamed out as ``MessageChunk`` events, never accumulated;
- a peer's bytes never raise: every mistake is a reply. Only a driver that
  breaks the contract gets ``ProtocolUsageError``;
- no clock, no I/O: time limits are the driver's (``close(timeout reply)``).

Decisions documented here rather than per handler:
- RFC 2920 §3.1 / Postfix ``smtpd_forbid_unauth_pipelining``: when a command
  that must end a pipelined group (all but RSET, MAIL, RCPT, BDAT; every
  command when the client did not use EHLO) arrives with more input already
  behind it, the server answers ``554 5.5.0 Error: SMTP protocol
  synchronization`` and closes. Input that arrives before the greeting
  (``receive_data`` before ``start``) is treated the same way. Message
  content may be followed by more commands (RFC 2920 §3.1: content is the
  first "command" of the next group); the command after it is checked.
- DATA is answered ``354`` by the connection itself once a recipient was
  accepted: policy speaks at RCPT and at ``MessageComplete``. QUIT is
  answered ``221`` and surfaces as ``Closed("quit")``.
- RFC 3207 §4.2: input pipelined behind STARTTLS is discarded (whatever the
  answer), as is anything fed before ``tls_started``; the session then
  restarts from EHLO with everything learnt in plaintext forgotten.
- An over-long command line is answered at once with ``500 5.5.2 Line too
  long`` and the rest of it is dropped up to its LF; a peer that never ends it
  is the driver's idle timeout to end.
- Errors: every 4xx/5xx reply (the driver's included) counts, except the
  first ``recipient_overshoot_limit`` ``452 Too many recipients``; from
  ``tarpit_after_errors`` on, ``delay_replies`` is the tarpit delay; at
  ``max_errors`` the server adds ``421 4.7.0 Too many errors`` and closes. A
  message accepted with 2xx resets the count (Postfix counts errors "without
  delivering mail").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from postoffice.core.envelope import EnvelopeRecipient
from postoffice.core.reply import Reply
from postoffice.protocol.lines import TOO_LONG, LineTooLong
from postoffice.protocol.sasl import (
    SaslCancelled,
    SaslChallenge,
    SaslEncodingError,
    SaslError,
    SaslKeysWanted,
    SaslProof,
    encode_challenge,
)
from postoffice.protocol.scram import ScramKeys, ScramServerExchange, server_exchange
from postoffice.protocol.smtp.data import BareLineEnd
from postoffice.protocol.smtp.events import (
    AuthCredentials,
    AuthKeysWanted,
    AuthProof,
    Expand,
    Hello,
    MailFrom,
    MessageAborted,
    MessageComplete,
    RcptTo,
    Refused,
    StartTls,
    Verify,
)
from postoffice.protocol.smtp.grammar import (
    GrammarError,
    command_verb,
    parse_auth_argument,
    parse_bdat_argument,
    parse_command_line,
    parse_hello_argument,
    parse_mail_argument,
    parse_rcpt_argument,
    recipient_address,
    sender_address,
)
from postoffice.protocol.smtp.params import validate_mail_parameters, validate_rcpt_parameters
from postoffice.protocol.smtp.receiver import ContentResult
from postoffice.protocol.smtp.replies import SmtpReplies
from postoffice.protocol.smtp.session import SmtpSessionCore
from postoffice.protocol.smtp.settings import BareNewlinePolicy
from postoffice.protocol.smtp.states import PIPELINABLE, SessionState, Trigger, Verb

_VERBS: Final = {verb.value: verb for verb in Verb}


class SmtpServerConnection(SmtpSessionCore):
    """One SMTP server session (see the module doc for the driver contract)."""

    def _step(self) -> bool:
        """Process one unit of input; False when more input is needed."""
        state = self._machine.state
        if self._content.reading:
            return self._read_content()
        if state is SessionState.TLS_HANDSHAKE:
            self._discarded_plaintext += len(self._inbuf)
            self._inbuf.clear()
            return False
        line = self._take_line()
        if line is None:
            return False
        if state is SessionState.AUTH:
            self._auth_response(line)
        elif line is TOO_LONG:
            self._refuse("(line)", SmtpReplies.LINE_TOO_LONG)
        else:
            assert isinstance(line, tuple)
            self._command(*line)
        return True

    # ------------------------------------------------------------- commands

    def _command(self, line: bytes, bare_lf: bool) -> None:
        settings = self.settings
        if bare_lf and settings.bare_newline is BareNewlinePolicy.REJECT:
            self._refuse_bare_line_end("LF")
            return
        verb_text = command_verb(line)
        verb = _VERBS.get(verb_text)
        if verb_text in settings.forbidden_commands:
            self._events.append(Refused(verb_text, SmtpReplies.NON_SMTP_COMMAND))
            self._close(f"non-SMTP command {verb_text}", SmtpReplies.NON_SMTP_COMMAND)
            return
        if verb is Verb.STARTTLS:
            # RFC 3207 §4.2: nothing pipelined behind STARTTLS may be acted upon.
            self._discarded_plaintext += len(self._inbuf)
            self._inbuf.clear()
        elif (
            settings.forbid_unauth_pipelining
            and self._inbuf
            and not (self._extended and verb in PIPELINABLE)
        ):
            after = verb_text or "an empty line"
            self._violation(f"improper command pipelining after {after}")  # RFC 2920 §3.1
            return
        try:
            command = parse_command_line(line)
        except GrammarError as error:
            self._refuse(verb_text, error.reply)
            return
        if verb is None:
            self._refuse(command.verb, SmtpReplies.COMMAND_UNRECOGNIZED)
            return
        refusal = self._machine.refusal(verb)
        if refusal is not None:
            if verb is Verb.BDAT:
                self._refuse_chunk(command.argument, refusal)
            else:
                self._refuse(verb.value, refusal)
            return
        handler: Callable[[str], None] = getattr(self, f"do_{verb.value.lower()}")
        try:
            handler(command.argument)
        except GrammarError as error:
            self._refuse(verb.value, error.reply)

    def do_helo(self, argument: str) -> None:
        self._hello(argument, extended=False)

    def do_ehlo(self, argument: str) -> None:
        self._hello(argument, extended=True)

    def _hello(self, argument: str, *, extended: bool) -> None:
        name = parse_hello_argument(argument, extended=extended)
        verb = Verb.EHLO if extended else Verb.HELO

        def answered(reply: Reply) -> None:
            if reply.code // 100 != 2:
                self._write(reply)
                return
            self._machine.accept(verb)
            self._reset_transaction()  # RFC 5321 §4.1.4: as if RSET
            self._helo, self._extended = name, extended
            hostname = self.settings.hostname
            if extended:
                self._write(SmtpReplies.ehlo(hostname, self.extensions()), enhanced=False)
            else:
                self._write(SmtpReplies.helo(hostname), enhanced=False)

        self._decide(Hello(name, extended), answered)

    def do_mail(self, argument: str) -> None:
        settings = self.settings
        if settings.auth_required and self._authenticated_as is None:
            raise GrammarError(SmtpReplies.AUTH_REQUIRED)  # RFC 6409 §4.3, RFC 4954 §6
        path = parse_mail_argument(argument)
        params = validate_mail_parameters(
            path.parameters,
            max_message_size=settings.max_message_size,
            dsn=settings.dsn,
            smtputf8=settings.smtputf8,
            auth=bool(settings.auth_mechanisms),
        )
        sender = sender_address(path.mailbox) if path.mailbox is not None else None
        if path.mailbox is not None and not path.mailbox.isascii() and not params.smtputf8:
            raise GrammarError(SmtpReplies.SMTPUTF8_REQUIRED)  # RFC 6531 §3.4

        def answered(reply: Reply) -> None:
            if reply.code // 100 == 2:
                self._machine.accept(Verb.MAIL)
                self._reset_transaction()
                self._sender, self._mail = sender, params
            self._write(reply)

        event = MailFrom(
            sender,
            params.size,
            params.body,
            params.smtputf8,
            params.ret,
            params.envid,
            params.auth,
        )
        self._decide(event, answered)

    def do_rcpt(self, argument: str) -> None:
        settings = self.settings
        path = parse_rcpt_argument(argument)
        params = validate_rcpt_parameters(path.parameters, dsn=settings.dsn)
        assert path.mailbox is not None  # the grammar refuses RCPT TO:<>
        recipient = recipient_address(path.mailbox, settings.postmaster)
        if not path.mailbox.isascii() and not self._mail.smtputf8:
            raise GrammarError(SmtpReplies.SMTPUTF8_REQUIRED)  # RFC 6531 §3.4
        if len(self._recipients) >= settings.max_recipients:
            # RFC 5321 §4.5.3.1.10: 452, and the client sends the rest later.
            self._overshoot += 1
            counted = self._overshoot > settings.recipient_overshoot_limit
            self._refuse("RCPT", SmtpReplies.TOO_MANY_RECIPIENTS, counted=counted)
            return

        def answered(reply: Reply) -> None:
            if reply.code // 100 == 2:
                self._machine.accept(Verb.RCPT)
                entry = EnvelopeRecipient(recipient, params.notify, params.orcpt)
                self._recipients.setdefault(recipient.key, entry)
            self._write(reply)

        self._decide(RcptTo(recipient, params.notify, params.orcpt), answered)

    def do_data(self, argument: str) -> None:
        if argument:
            raise GrammarError(SmtpReplies.no_arguments("DATA"))
        self._machine.accept(Verb.DATA)
        self._write(SmtpReplies.START_MAIL_INPUT, enhanced=False)
        self._content.begin_data()

    def do_bdat(self, argument: str) -> None:
        size, last = parse_bdat_argument(argument)
        self._machine.accept(Verb.BDAT)
        self._content.begin_chunk(size, last)

    def do_rset(self, argument: str) -> None:
        if argument:
            raise GrammarError(SmtpReplies.no_arguments("RSET"))
        self._machine.accept(Verb.RSET)
        self._reset_transaction()
        self._write(SmtpReplies.RESET_OK)

    def do_noop(self, argument: str) -> None:
        self._machine.accept(Verb.NOOP)  # RFC 5321 §4.1.1.9: an argument is ignored
        self._write(SmtpReplies.NOOP_OK)

    def do_help(self, argument: str) -> None:
        self._machine.accept(Verb.HELP)
        self._write(SmtpReplies.HELP)

    def do_quit(self, argument: str) -> None:
        self._machine.accept(Verb.QUIT)
        self._close("quit", SmtpReplies.BYE)

    def do_vrfy(self, argument: str) -> None:
        if not self.settings.vrfy_enabled:
            self._refuse("VRFY", SmtpReplies.VRFY_DISABLED)
        elif not argument:
            raise GrammarError(SmtpReplies.SYNTAX_VRFY)
        else:
            self._machine.accept(Verb.VRFY)
            self._decide(Verify(argument), self._write)

    def do_expn(self, argument: str) -> None:
        if not self.settings.expn_enabled:
            self._refuse("EXPN", SmtpReplies.EXPN_DISABLED)
        elif not argument:
            raise GrammarError(SmtpReplies.SYNTAX_EXPN)
        else:
            self._machine.accept(Verb.EXPN)
            self._decide(Expand(argument), self._write)

    def do_starttls(self, argument: str) -> None:
        if argument:
            raise GrammarError(SmtpReplies.no_arguments("STARTTLS"))
        if self._tls:
            self._refuse("STARTTLS", SmtpReplies.TLS_ALREADY_ACTIVE)
            return
        if not self.settings.starttls_available:
            self._refuse("STARTTLS", SmtpReplies.STARTTLS_NOT_OFFERED)
            return

        def answered(reply: Reply) -> None:
            if reply.code // 100 == 2:
                self._machine.accept(Verb.STARTTLS)
                self._discarded_plaintext += len(self._inbuf)
                self._inbuf.clear()
            self._write(reply)

        self._decide(StartTls(), answered)

    def do_auth(self, argument: str) -> None:
        settings = self.settings
        if not settings.auth_mechanisms:
            self._refuse("AUTH", SmtpReplies.AUTH_NOT_ENABLED)
            return
        if self._authenticated_as is not None:
            self._refuse("AUTH", SmtpReplies.ALREADY_AUTHENTICATED)  # RFC 4954 §4
            return
        if not self._auth_offered():
            self._refuse("AUTH", SmtpReplies.ENCRYPTION_REQUIRED)  # RFC 4954 §6
            return
        mechanism, initial = parse_auth_argument(argument)
        if mechanism not in (m.upper() for m in settings.auth_mechanisms):
            self._refuse("AUTH", SmtpReplies.MECHANISM_UNKNOWN)
            return
        self._machine.accept(Verb.AUTH)
        self._sasl = server_exchange(mechanism)
        self._sasl_turn(initial, initial=True)  # RFC 4954 §4: "=" is an empty response

    # ----------------------------------------------------------------- AUTH

    def _auth_response(self, line: tuple[bytes, bool] | LineTooLong) -> None:
        if isinstance(line, LineTooLong):
            self._end_auth(SmtpReplies.AUTH_LINE_TOO_LONG)
            return
        text, bare_lf = line
        if bare_lf and self.settings.bare_newline is BareNewlinePolicy.REJECT:
            self._refuse_bare_line_end("LF")
            return
        self._sasl_turn(text)

    def _sasl_turn(self, line: bytes | str | None, *, initial: bool = False) -> None:
        sasl = self._sasl
        assert sasl is not None
        try:
            result = sasl.respond(line, initial=initial)
        except SaslCancelled:
            self._end_auth(SmtpReplies.AUTH_ABORTED)  # RFC 4954 §4: "*" -> 501
            return
        except SaslEncodingError:
            self._end_auth(SmtpReplies.AUTH_BAD_BASE64)
            return
        except SaslError:
            self._end_auth(SmtpReplies.AUTH_MALFORMED)
            return
        if isinstance(result, SaslChallenge):
            self._challenge(result)
            return
        if isinstance(result, SaslKeysWanted):
            assert isinstance(sasl, ScramServerExchange)

            def found(keys: ScramKeys) -> None:
                self._challenge(sasl.keys_found(keys))  # server-first

            self._pending_keys = found
            self._events.append(AuthKeysWanted(result))
            return
        who = result.authzid or result.username

        def answered(reply: Reply) -> None:
            if reply.code // 100 == 2:
                self._authenticated_as = who
            self._end_auth(reply)

        if isinstance(result, SaslProof):
            self._decide(AuthProof(result), answered)
        else:
            self._decide(AuthCredentials(result), answered)

    def _challenge(self, challenge: SaslChallenge) -> None:
        self._write(SmtpReplies.auth_challenge(encode_challenge(challenge.data)))

    def _end_auth(self, reply: Reply) -> None:
        self._sasl = None
        self._machine.trigger(Trigger.AUTH_DONE)
        if reply.code >= 400:
            self._events.append(Refused("AUTH", reply))
        self._write(reply)

    # -------------------------------------------------------------- content

    def _read_content(self) -> bool:
        content = self._content
        try:
            result = content.read(self._inbuf, self._events.append)
        except BareLineEnd as bare:
            self._refuse_bare_line_end(bare.kind)
            return True
        if result is ContentResult.NEED_DATA:
            return False
        if result is ContentResult.SKIPPED:
            self._refuse("BDAT", content.take_skip_reply())
        elif result is ContentResult.MESSAGE_END:
            self._finish_message()
        elif result is ContentResult.CHUNK_END:
            if content.failure is not None:
                failure = content.failure
                self._machine.trigger(Trigger.TRANSACTION_FAILED)  # RFC 3030 §2
                self._reset_transaction()
                self._refuse("BDAT", failure)
            else:
                self._write(SmtpReplies.chunk_received(content.chunk_size))
        return True

    def _refuse_bare_line_end(self, kind: str) -> None:
        reply = SmtpReplies.BARE_LF if kind == "LF" else SmtpReplies.BARE_CR
        if self._content.abandon():
            self._events.append(MessageAborted(f"bare <{kind}> received", reply))
        self._events.append(Refused("content" if self._content.reading else "line", reply))
        self._close(f"bare <{kind}> received", reply)

    def _finish_message(self) -> None:
        content = self._content
        if content.failure is not None:
            command, failure = ("BDAT" if content.chunked else "DATA"), content.failure
            self._machine.trigger(Trigger.MESSAGE_DONE)
            self._reset_transaction()
            self._refuse(command, failure)
            return
        content.open = False
        event = MessageComplete(self._envelope(), content.size)

        def answered(reply: Reply) -> None:
            self._machine.trigger(Trigger.MESSAGE_DONE)
            self._reset_transaction()
            if reply.code // 100 == 2:
                self._errors = self._overshoot = 0
            self._write(reply)

        self._decide(event, answered)

    def _refuse_chunk(self, argument: str, refusal: Reply) -> None:
        """A BDAT that is refused still owns its octets (RFC 3030 §2): swallow them first."""
        try:
            size, _ = parse_bdat_argument(argument)
        except GrammarError as error:
            self._refuse("BDAT", error.reply)
            return
        self._content.begin_skip(size, refusal)
