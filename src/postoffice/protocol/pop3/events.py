"""What a ``Pop3ServerConnection`` tells its driver.

Two kinds of event:

- ``Decision`` events need the layers above (directory, store). The driver
  answers each with the methods named on its class before it asks for the
  next event; until then the connection reads no further command (pipelined
  input waits in its buffer, RFC 2449 §6.6).
- Informational events need no answer: ``NeedData``, ``StartTls`` (which
  asks the driver to act, see there) and the terminal ``Closed``.

Events are immutable values; they never hold the connection. No event's
``repr`` shows a password.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class Event:
    """Base of every event."""

    __slots__ = ()


class Decision(Event):
    """An event the driver must answer (the methods are named on each class)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class NeedData(Event):
    """Write ``conn.data_to_send()``, then read and call ``conn.receive_data()``."""


@dataclass(frozen=True, slots=True)
class Closed(Event):
    """Terminal: write ``conn.data_to_send()`` and close the transport."""

    reason: str


@dataclass(frozen=True, slots=True)
class StartTls(Event):
    """STLS was accepted and its ``+OK`` is queued (RFC 2595 §4). The driver
    writes ``conn.data_to_send()``, runs the TLS handshake on the raw
    transport, then calls ``conn.tls_started()``. Octets the client sent in
    plaintext after STLS are discarded, never read as commands."""


@dataclass(frozen=True, slots=True)
class Authenticate(Decision):
    """The client presented credentials: check them.

    ``mechanism`` is ``"USER"`` (USER/PASS, RFC 1939 §7), ``"APOP"`` (then
    ``password`` is None and the driver checks that ``apop_digest`` is the
    lower-case hex MD5 of ``apop_timestamp`` followed by the shared secret),
    or the SASL mechanism (``"PLAIN"``, ``"LOGIN"``, RFC 5034). ``authzid``
    is the SASL authorization identity when the client gave one. After
    ``"SCRAM-SHA-256"`` there is no password to check: ``proven`` says
    whether the client proved it knows it (RFC 5802 §5).

    Answer with ``conn.login_accepted(listing)`` once the maildrop is locked,
    or ``conn.login_refused(text, code=...)`` (RFC 2449 §8 / RFC 3206 codes:
    ``"AUTH"`` for bad credentials, ``"IN-USE"``, ``"LOGIN-DELAY"``,
    ``"SYS/TEMP"``, ``"SYS/PERM"``, or None).
    """

    mechanism: str
    user: str
    password: str | None = field(repr=False)  # never in a log through repr()
    authzid: str | None = None
    apop_digest: str | None = None
    apop_timestamp: str | None = None
    proven: bool | None = None  # SCRAM only: the client's proof matched the stored keys


@dataclass(frozen=True, slots=True)
class KeysWanted(Decision):
    """AUTH SCRAM-SHA-256 reached the point where the stored keys of ``user`` are
    needed (RFC 5802 §5). Answer with ``conn.scram_keys(keys)``: the account's
    keys, or made-up ones for an unknown user (the exchange then fails at its
    end, as with a wrong password)."""

    mechanism: str
    user: str
    authzid: str | None = None


@dataclass(frozen=True, slots=True)
class Retrieve(Decision):
    """RETR (``body_lines`` None) or TOP (``body_lines`` n) of message
    ``number`` (1-based; ``index`` is the 0-based position in the listing).

    Answer by calling ``conn.message_data(chunk)`` with the stored octets as
    they are read (any line ends, any chunking; the connection normalises and
    dot-stuffs them) and then ``conn.message_end()``; or, before any data,
    ``conn.retrieve_failed(text)``. For TOP the driver may stop reading as
    soon as ``conn.wants_message_data`` is False."""

    number: int
    index: int
    body_lines: int | None


@dataclass(frozen=True, slots=True)
class Update(Decision):
    """QUIT in TRANSACTION (RFC 1939 §6): remove the messages at ``deleted``
    (0-based indexes into the listing) and release the maildrop; ``retrieved``
    are the messages sent whole by RETR (not TOP), e.g. to mark them seen.
    Answer with ``conn.update_done(ok, text)``; the connection then closes."""

    deleted: tuple[int, ...]
    retrieved: tuple[int, ...]
