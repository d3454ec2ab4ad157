"""The AUTHORIZATION state of a POP3 session: logins, STLS and UTF8.

What this module owns, for ``server.Pop3ServerConnection``: the handlers of
USER, PASS, APOP (RFC 1939 §7), AUTH with its SASL dialogue (RFC 5034 §4,
framing from ``postoffice.protocol.sasl``), STLS (RFC 2595 §4) and UTF8
(RFC 6856 §2), and the driver's answers to ``KeysWanted`` (SCRAM-SHA-256)
and to ``Authenticate``.

Invariants:
- a login only ever moves the session to TRANSACTION through
  ``login_accepted``: every path that checks a secret ends in one
  ``Authenticate`` event, whose ``repr`` hides the password;
- USER's name is kept only until the next PASS, APOP, AUTH or STLS;
- a SASL exchange in progress reads lines as responses, never as commands,
  until it yields credentials, is cancelled (``*``) or fails.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from postoffice.protocol.errors import ProtocolUsageError
from postoffice.protocol.lines import LineTooLong
from postoffice.protocol.pop3.events import Authenticate, KeysWanted, StartTls
from postoffice.protocol.pop3.maildrop import Maildrop
from postoffice.protocol.pop3.replies import (
    Responses,
    challenge,
    err,
    maildrop_summary,
    multiline,
    ok,
    valid_code,
)
from postoffice.protocol.pop3.session import Pending, Pop3SessionCore
from postoffice.protocol.pop3.states import Command
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

_HEX_DIGEST: Final = re.compile(r"[0-9a-fA-F]{32}")  # RFC 1939 §7 APOP: MD5 in hex


class Pop3Authorization(Pop3SessionCore):
    """AUTHORIZATION-state handlers and the answers to ``Authenticate``."""

    def do_stls(self, argument: str) -> None:
        if not self._no_arguments(Command.STLS, argument):
            return
        if self._tls:
            self._refuse(Responses.TLS_ACTIVE)
            return
        if not self.settings.tls_available:
            self._refuse(Responses.STLS_UNAVAILABLE)
            return
        self._machine.accept(Command.STLS)
        self._write(Responses.STLS_GO)
        # RFC 2595 §4: nothing pipelined behind STLS may be acted upon.
        self._discarded_plaintext += len(self._inbuf)
        self._inbuf.clear()
        self._lines.reset()
        self._tls_pending = True
        self._user_name = None
        self._events.append(StartTls())

    def do_utf8(self, argument: str) -> None:
        if self._no_arguments(Command.UTF8, argument):
            self._machine.accept(Command.UTF8)
            self._utf8 = True  # RFC 6856 §2
            self._write(Responses.UTF8_ENABLED)

    def do_user(self, argument: str) -> None:
        if not self._plaintext_allowed():
            self._refuse(Responses.PLAINTEXT_DISALLOWED)
            return
        names = argument.split()
        if len(names) != 1:
            self._refuse(Responses.BAD_USER)
        elif not names[0].isascii() and not self._utf8:
            self._refuse(Responses.NON_ASCII_USER)
        else:
            self._machine.accept(Command.USER)
            self._user_name = names[0]
            self._write(Responses.SEND_PASS)

    def do_pass(self, argument: str) -> None:
        if not self._plaintext_allowed():
            self._refuse(Responses.PLAINTEXT_DISALLOWED)
        elif self._user_name is None:
            self._refuse(Responses.NEEDS_USER)  # RFC 1939 §7: PASS follows a good USER
        elif not argument:
            self._refuse(Responses.BAD_PASS)
        else:
            # RFC 1939 §7: spaces belong to the password; the argument is taken whole.
            user, self._user_name = self._user_name, None
            self._ask_login(Command.PASS, Authenticate("USER", user, argument))

    def do_apop(self, argument: str) -> None:
        stamp = self.settings.apop_timestamp
        if stamp is None:
            self._refuse(Responses.APOP_UNAVAILABLE)
            return
        words = argument.split()
        if len(words) != 2 or not _HEX_DIGEST.fullmatch(words[1]):
            self._refuse(Responses.BAD_APOP)
        elif not words[0].isascii() and not self._utf8:
            self._refuse(Responses.NON_ASCII_USER)
        else:
            self._user_name = None
            event = Authenticate(
                "APOP", words[0], None, apop_digest=words[1].lower(), apop_timestamp=stamp
            )
            self._ask_login(Command.APOP, event)

    def do_auth(self, argument: str) -> None:
        if not self._plaintext_allowed():
            # SCRAM too: it would hide the password, not the mail read after it.
            self._refuse(Responses.PLAINTEXT_DISALLOWED)
            return
        words = argument.split()
        mechanisms = self.settings.mechanisms
        if not words:  # the mechanism list, as Dovecot and Outlook's probe expect
            self._write(multiline(Responses.OK, mechanisms))
            return
        if len(words) > 2:
            self._refuse(Responses.AUTH_SYNTAX)
            return
        mechanism = words[0].upper()
        if mechanism not in mechanisms:
            self._refuse(Responses.UNKNOWN_MECHANISM)
            return
        self._user_name = None
        self._sasl = server_exchange(mechanism)
        # RFC 5034 §4: without an initial response an empty challenge asks for
        # it; "=" is an empty initial response.
        self._sasl_turn(words[1] if len(words) == 2 else None, initial=True)

    def _sasl_response(self, line: bytes | LineTooLong) -> None:
        if isinstance(line, LineTooLong):
            self._end_auth(Responses.LINE_TOO_LONG)
            return
        self._sasl_turn(line)

    def _sasl_turn(self, line: bytes | str | None, *, initial: bool = False) -> None:
        assert self._sasl is not None
        try:
            result = self._sasl.respond(line, initial=initial)
        except SaslCancelled:
            self._end_auth(Responses.AUTH_CANCELLED)  # RFC 5034 §4: "*" -> -ERR
            return
        except SaslEncodingError:
            self._end_auth(Responses.AUTH_BAD_BASE64)
            return
        except SaslError:
            self._end_auth(Responses.AUTH_MALFORMED)
            return
        if isinstance(result, SaslChallenge):
            self._write(challenge(encode_challenge(result.data)))
            return
        if isinstance(result, SaslKeysWanted):
            self._pending = Pending.KEYS
            self._events.append(KeysWanted(result.mechanism, result.username, result.authzid))
            return
        self._sasl = None
        if isinstance(result, SaslProof):
            event = Authenticate(
                result.mechanism,
                result.username,
                None,
                authzid=result.authzid,
                proven=result.proven,
            )
        else:
            event = Authenticate(
                result.mechanism, result.username, result.password, authzid=result.authzid
            )
        self._ask_login(Command.AUTH, event)

    def scram_keys(self, keys: ScramKeys) -> None:
        """Answer ``KeysWanted``: the user's SCRAM keys (or made-up ones); the
        server-first challenge goes out."""
        if not self._answerable(Pending.KEYS, "scram_keys"):
            return
        assert isinstance(self._sasl, ScramServerExchange)
        self._pending = None
        self._write(challenge(encode_challenge(self._sasl.keys_found(keys).data)))

    def _end_auth(self, response: bytes) -> None:
        self._sasl = None
        self._refuse(response)

    def _ask_login(self, command: Command, event: Authenticate) -> None:
        self._pending, self._login_command = Pending.LOGIN, command
        self._login_user = event.authzid or event.user
        self._events.append(event)

    # --------------------------------------------------- answers to Authenticate

    def login_accepted(self, listing: Sequence[tuple[str, int]]) -> None:
        """The credentials are good and the maildrop is locked: ``listing`` is
        (unique id, ``wire_size``) per message in message-number order."""
        if not self._answerable(Pending.LOGIN, "login_accepted"):
            return
        maildrop = Maildrop(listing)
        assert self._login_command is not None
        self._machine.accept(self._login_command)
        self._pending, self._maildrop, self._user = None, maildrop, self._login_user
        summary = maildrop_summary(*maildrop.stat())
        user = self._user or ""
        if user.isascii() or self._utf8:  # RFC 6856: no UTF-8 to a client that did not ask
            self._write(ok(f"{user}'s maildrop has {summary}"))
        else:
            self._write(ok(f"maildrop has {summary}"))

    def login_refused(self, text: str, code: str | None = "AUTH") -> None:
        """Refuse the login: ``-ERR [code] text`` (RFC 2449 §8, RFC 3206)."""
        if not self._answerable(Pending.LOGIN, "login_refused"):
            return
        if code is not None and not valid_code(code):
            raise ProtocolUsageError(f"not a response code: {code!r}")
        self._pending = self._login_command = self._login_user = None
        if code in (None, "AUTH"):
            self._refuse(err(text, code))  # bad credentials count toward max_errors
        else:
            self._write(err(text, code))  # IN-USE, LOGIN-DELAY, SYS/...: not the client's error
