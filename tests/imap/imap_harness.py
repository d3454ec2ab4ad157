"""Conversation transcripts against a real ``ImapSession`` over a socket pair.

An ``ImapWorld`` is one mail system in ``tmp_path``: a store of one format
(``maildir`` or ``mbox``) with a fixed clock, an account database holding
``alice@example.test`` (password ``secret``) and ``bob@example.test``
(``hunter2``), and the ``ImapContext`` every session shares (no delay after a
failed login). ``world.connect()`` runs one session in the current event
loop: the server side is a ``Pipe`` accepted from ``socket.socketpair()``,
the client side a plain asyncio stream. Every session of one world shares
one ``StoreFactory``, so its change hub wakes IDLE in any of them.

``client.converse`` reads a transcript the way the RFCs write examples::

    C: a1 LOGIN alice secret
    S: a1 OK [CAPABILITY *] Logged in

Rules:

- the transcript is a run of turns: the ``C:`` lines of a turn are sent (a
  CRLF added to each), then the server's responses are read until the
  tagged answer of every command sent and not yet answered, or a ``+``
  continuation, or the end of the connection; then, while the turn has
  more ``S:`` lines than were read (a BYE after a tagged BAD), one more
  line each. A turn with no ``C:`` lines (news during IDLE) reads as many
  lines as it has ``S:`` lines. The lines
  read must match the turn's ``S:`` lines one for one, in order.
- trailing spaces are not compared (``S: +`` matches an empty challenge).
- ``*`` in an ``S:`` line matches any text, except the ``*`` that starts an
  untagged response and the ``\\*`` of PERMANENTFLAGS; ``S: *`` alone matches
  any untagged response. ``S: (none)`` asserts
  that nothing arrives for a moment.
- a response carrying a literal is split at its CRLFs into lines like any
  other text, so a FETCH of a body reads as in RFC 9051 §6.4.5's example.
- literals sent by the client: a line ending in ``{n}`` waits for the
  server's ``+`` before the next ``C:`` line when the next transcript line is
  a ``C:`` line (when it is an ``S:`` line, that line is where the ``+`` is
  matched); ``{n+}`` (RFC 7888) never waits. The following ``C:`` lines (with
  their CRLFs) are the literal's octets, and the command goes on after them.
- after a ``+`` that is not a literal's (an AUTHENTICATE challenge, IDLE),
  the next ``C:`` line is the answer to it, not a new command.

Lines are compared as text: octets are decoded as UTF-8 with
``surrogateescape``, so 8-bit and NUL octets keep their place.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import textwrap
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from pathlib import Path

from argon2 import PasswordHasher

from postoffice.core.address import parse_address
from postoffice.core.clock import FixedClock
from postoffice.directory.accounts import AccountDatabase
from postoffice.net.pipe import Pipe
from postoffice.protocol.imap.connection import ImapServerConnection, ImapSettings
from postoffice.server.imap_context import ImapContext
from postoffice.server.imap_session import ImapSession
from postoffice.server.login_penalty import LoginPenalty
from postoffice.store import FileMailStore, StoreFactory, StoreLayout
from postoffice.store.layout import StoreFormat

DOMAIN = "example.test"
ALICE = f"alice@{DOMAIN}"
PASSWORD = "secret"
BOB = f"bob@{DOMAIN}"
BOB_PASSWORD = "hunter2"
HOSTNAME = "imap.example.test"
APPEND_LIMIT = 100_000
READ_TIMEOUT = 5.0  # seconds a transcript waits for one response
AFTER_END_TIMEOUT = 1.0  # ... for one expected after the tagged answer (BYE comes at once)
SILENCE = 0.2  # seconds of quiet that ``S: (none)`` asks for
NOW = 1_700_000_000.0  # the world's clock: 14-Nov-2023 22:13:20 +0000

_LITERAL_END = re.compile(rb"~?\{(\d+)(\+?)\}\r\n\Z")
_TAG = re.compile(rb'([^\x00-\x20\x7f(){%*"\\+\]]+)[ \r]')  # RFC 9051 §9 tag


def crlf(text: str) -> bytes:
    """A message written with LF line ends, as the CRLF octets the wire carries."""
    return textwrap.dedent(text).lstrip("\n").replace("\n", "\r\n").encode("utf-8")


def s_literal(data: bytes, rest: str = "") -> str:
    """``S:`` lines for a literal's octets, ``rest`` following on its last line (a
    literal that does not end with CRLF shares its last line with what follows)."""
    lines = data.decode("utf-8", "surrogateescape").split("\r\n")
    lines[-1] += rest
    return "\n".join(f"S: {line}" for line in lines)


def c_literal(data: bytes, rest: str = "") -> str:
    """``C:`` lines for a literal's octets, ``rest`` following on its last line."""
    lines = data.decode("utf-8", "surrogateescape").split("\r\n")
    lines[-1] += rest
    return "\n".join(f"C: {line}" for line in lines)


def line_matches(pattern: str, line: str) -> bool:
    """Whether ``line`` matches the ``S:`` pattern (see the module docstring)."""
    pattern, line = pattern.rstrip(" "), line.rstrip(" ")
    if pattern == "*":  # any untagged response
        return line.startswith("* ")
    parts: list[str] = []
    i = 0
    if pattern.startswith("* "):  # the untagged marker is not a wildcard
        parts.append(re.escape("* "))
        i = 2
    while i < len(pattern):
        if pattern.startswith("\\*", i):
            parts.append(re.escape("\\*"))
            i += 2
        elif pattern[i] == "*":
            parts.append(".*")
            i += 1
        else:
            parts.append(re.escape(pattern[i]))
            i += 1
    return re.fullmatch("".join(parts), line, re.DOTALL) is not None


def parse_transcript(script: str) -> list[tuple[str, str]]:
    """``(side, text)`` for each ``C:``/``S:`` line; blank lines are ignored."""
    entries: list[tuple[str, str]] = []
    for raw in textwrap.dedent(script).split("\n"):
        stripped = raw.lstrip()
        if not stripped:
            continue
        side, colon, rest = stripped[:1], stripped[1:2], stripped[2:]
        if side not in ("C", "S") or colon != ":":
            raise ValueError(f"a transcript line starts with C: or S:, not {raw!r}")
        if rest.startswith(" "):
            rest = rest[1:]
        entries.append((side, rest))
    return entries


class TranscriptMismatch(AssertionError):
    pass


class ImapClient:
    """The client end of one session (see the module docstring)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.greeting = ""
        self.open_tags: list[str] = []
        self._literal_left = 0  # octets of a literal still to send
        self._command_open = False  # the command goes on after its literal
        self._reply_expected = False  # the next line answers a "+" (SASL, IDLE)
        self.log: list[str] = []  # every line read, for failure messages

    # -- low level --------------------------------------------------------------------

    async def read_response(self, timeout: float = READ_TIMEOUT) -> bytes:
        """One whole response, literals included; ``b""`` at the end of the connection."""
        data = b""
        while True:
            try:
                line = await asyncio.wait_for(self.reader.readuntil(b"\r\n"), timeout)
            except asyncio.IncompleteReadError as exc:
                return data + exc.partial
            except TimeoutError:
                raise TranscriptMismatch(
                    f"no response within {timeout}s; read so far: {self.log[-8:]!r}"
                    + (f" and {data!r}" if data else "")
                ) from None
            data += line
            found = _LITERAL_END.search(line)
            if found is None:
                return data
            try:
                data += await asyncio.wait_for(
                    self.reader.readexactly(int(found.group(1))), timeout
                )
            except asyncio.IncompleteReadError as exc:
                return data + exc.partial

    @staticmethod
    def lines_of(response: bytes) -> list[str]:
        text = response.decode("utf-8", "surrogateescape")
        if text.endswith("\r\n"):
            text = text[:-2]
        return text.split("\r\n")

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def silence(self, seconds: float = SILENCE) -> None:
        """Assert that the server sends nothing for ``seconds``."""
        try:
            data = await asyncio.wait_for(self.reader.read(1), seconds)
        except TimeoutError:
            return
        rest = b""
        with contextlib.suppress(TimeoutError):
            rest = await asyncio.wait_for(self.reader.read(4096), 0.05)
        raise TranscriptMismatch(f"expected silence, got {data + rest!r}")

    async def at_eof(self, timeout: float = READ_TIMEOUT) -> bool:
        """True when the server closed the connection (nothing more to read)."""
        data = await asyncio.wait_for(self.reader.read(1), timeout)
        return data == b""

    # -- transcripts ------------------------------------------------------------------

    async def converse(self, script: str) -> list[str]:
        """Play ``script``; the lines the server sent (see the module docstring)."""
        entries = parse_transcript(script)
        everything: list[str] = []
        i = 0
        while i < len(entries):
            sent = False
            while i < len(entries) and entries[i][0] == "C":
                follows_c = i + 1 < len(entries) and entries[i + 1][0] == "C"
                await self._send_line(entries[i][1], wait_for_continuation=follows_c)
                sent = True
                i += 1
            expected: list[str] = []
            while i < len(entries) and entries[i][0] == "S":
                expected.append(entries[i][1])
                i += 1
            if expected == ["(none)"]:
                await self.silence()
                continue
            got = await (self._read_turn if sent else self._read_lines)(len(expected))
            everything += got
            self._compare(expected, got)
        return everything

    def _compare(self, expected: Sequence[str], got: Sequence[str]) -> None:
        ok = len(expected) == len(got) and all(
            line_matches(e, g) for e, g in zip(expected, got, strict=True)
        )
        if ok:
            return
        report = ["transcript mismatch:"]
        for n in range(max(len(expected), len(got))):
            e = expected[n] if n < len(expected) else "<nothing>"
            g = got[n] if n < len(got) else "<nothing>"
            mark = "  " if n < len(expected) and n < len(got) and line_matches(e, g) else "!!"
            report.append(f"{mark} S: {e}\n   got {g}")
        raise TranscriptMismatch("\n".join(report))

    async def _send_line(self, text: str, *, wait_for_continuation: bool) -> None:
        data = text.encode("utf-8", "surrogateescape") + b"\r\n"
        if self._literal_left >= len(data):
            self._literal_left -= len(data)
            await self.send_raw(data)
            return
        starts_command = self._literal_left == 0 and not self._command_open
        command_part = data[self._literal_left :]
        self._literal_left = 0
        if starts_command:
            if self._reply_expected:
                self._reply_expected = False
            else:
                tag = _TAG.match(command_part)
                if tag is not None:  # a line without a tag is answered by an untagged BAD
                    self.open_tags.append(tag.group(1).decode("ascii"))
        literal = _LITERAL_END.search(command_part)
        self._command_open = literal is not None
        await self.send_raw(data)
        if literal is None:
            return
        self._literal_left = int(literal.group(1))
        if literal.group(2) or not wait_for_continuation:
            return
        response = await self.read_response()
        self.log += self.lines_of(response)
        if not response.startswith(b"+"):
            raise TranscriptMismatch(f"expected '+' for the literal of {text!r}, got {response!r}")

    def _note_tagged(self, response: bytes) -> None:
        tag = response.split(b" ", 1)[0].decode("ascii", "replace")
        if tag in self.open_tags:
            if tag == self.open_tags[-1] and (self._literal_left or self._command_open):
                self._literal_left = 0  # the literal was refused: it is not sent
                self._command_open = False
            self.open_tags.remove(tag)

    async def _read_turn(self, count: int) -> list[str]:
        got: list[str] = []
        while self.open_tags:
            response = await self.read_response()
            if not response:
                return got
            lines = self.lines_of(response)
            self.log += lines
            got += lines
            if response.startswith(b"+"):
                if not (self._literal_left or self._command_open):
                    self._reply_expected = True
                break
            if not response.startswith(b"* "):
                self._note_tagged(response)
        if len(got) < count:  # what the server says after the end (BYE), or to a tagless line
            got += await self._read_lines(count - len(got), timeout=AFTER_END_TIMEOUT)
        return got

    async def _read_lines(self, count: int, timeout: float = READ_TIMEOUT) -> list[str]:
        got: list[str] = []
        while len(got) < count:
            response = await self.read_response(timeout)
            if not response:
                break
            lines = self.lines_of(response)
            self.log += lines
            got += lines
            if response.startswith(b"+"):
                self._reply_expected = True
            elif not response.startswith(b"* "):
                self._note_tagged(response)
        return got

    # -- shortcuts -------------------------------------------------------------------

    async def read_until(self, pattern: str, max_lines: int = 20) -> list[str]:
        """Read untagged lines until one matches ``pattern``; the lines read. For news
        whose grouping depends on timing (a flag change may or may not be seen before
        the expunge that follows it)."""
        got: list[str] = []
        while len(got) < max_lines:
            got += await self._read_lines(1)
            if line_matches(pattern, got[-1]):
                return got
            if not got[-1].startswith("* "):
                break
        raise TranscriptMismatch(f"no line matching {pattern!r} in {got!r}")

    async def command(self, line: str) -> list[str]:
        """Send one command line and read its answer, checking nothing; the lines."""
        await self._send_line(line, wait_for_continuation=False)
        return await self._read_turn(0)

    async def login(self, user: str = ALICE, password: str = PASSWORD) -> None:
        await self.converse(f"""
            C: L1 LOGIN {user} {password}
            S: L1 OK [CAPABILITY *] Logged in
        """)

    async def select(self, mailbox: str = "INBOX", *, tag: str = "S1") -> list[str]:
        """SELECT (answers not checked beyond the tagged OK); the lines sent."""
        lines = await self.command(f"{tag} SELECT {mailbox}")
        if not lines or not lines[-1].startswith(f"{tag} OK"):
            raise TranscriptMismatch(f"SELECT {mailbox} failed: {lines!r}")
        return lines


class ImapWorld:
    """One mail system on disk, with accounts, for any number of sessions."""

    def __init__(
        self,
        root: Path,
        fmt: StoreFormat,
        *,
        append_limit: int = APPEND_LIMIT,
        settings: ImapSettings | None = None,
    ):
        self.root = root
        self.fmt = fmt
        self.clock = FixedClock(NOW)
        self.layout = StoreLayout(root / "data", fmt, DOMAIN, fsync=False)
        self.factory = StoreFactory(self.layout, clock=self.clock, lock_timeout=5.0)
        self.accounts = AccountDatabase(
            root / "accounts.sqlite3",
            hasher=PasswordHasher(time_cost=1, memory_cost=64, parallelism=1),
        )
        self.accounts.add_domain(DOMAIN)
        self.accounts.add_user(parse_address(ALICE), PASSWORD)
        self.accounts.add_user(parse_address(BOB), BOB_PASSWORD)
        self.settings = settings or ImapSettings(append_limit=append_limit)
        self.context = ImapContext(
            accounts=self.accounts,
            stores=self.factory,
            penalty=LoginPenalty(0, 0),
            tls_context=None,
            primary_domain=DOMAIN,
            hostname=HOSTNAME,
            idle_timeout=60.0,
            append_limit=self.settings.append_limit,
        )
        self.sessions: list[ImapSession] = []

    @contextlib.asynccontextmanager
    async def connect(self, *, plaintext_auth: bool = True) -> AsyncIterator[ImapClient]:
        """One session, served in this loop until the block ends (or the server closes)."""
        loop = asyncio.get_running_loop()
        server_sock, client_sock = socket.socketpair()
        _, pipe = await loop.connect_accepted_socket(Pipe, server_sock)
        session = ImapSession(
            pipe=pipe,
            connection=ImapServerConnection(self.settings),
            context=self.context,
            is_tls=False,
            plaintext_auth=plaintext_auth,
        )
        self.sessions.append(session)
        task = asyncio.create_task(session.run())
        reader, writer = await asyncio.open_connection(sock=client_sock)
        client = ImapClient(reader, writer)
        try:
            greeting = await client.read_response()
            client.greeting = greeting.decode("utf-8", "surrogateescape").rstrip("\r\n")
            yield client
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            await asyncio.wait_for(task, READ_TIMEOUT)  # the session ended, and without error

    @contextlib.asynccontextmanager
    async def logged_in(
        self, user: str = ALICE, password: str = PASSWORD
    ) -> AsyncIterator[ImapClient]:
        async with self.connect() as client:
            await client.login(user, password)
            yield client

    @contextlib.asynccontextmanager
    async def store(self, user: str = ALICE) -> AsyncIterator[FileMailStore]:
        """The user's store, opened from the sessions' factory (its changes wake IDLE)."""
        store = await self.factory.open(user, create=True)
        try:
            yield store
        finally:
            await store.close()

    async def deliver(self, *messages: bytes, user: str = ALICE) -> list[int]:
        """Local delivery into INBOX, as the MTA does it; the UIDs given."""
        async with self.store(user) as store:
            return [await store.deliver(m) for m in messages]

    async def append(
        self,
        mailbox: str,
        *messages: bytes,
        flags: Iterable[str] = (),
        keywords: Iterable[str] = (),
        internal_date: datetime | None = None,
        user: str = ALICE,
    ) -> list[int]:
        """Messages put straight into ``mailbox``; the UIDs given."""
        async with self.store(user) as store:
            return [
                await store.append(mailbox, m, list(flags), list(keywords), internal_date)
                for m in messages
            ]


async def capabilities_around_login(world: ImapWorld) -> tuple[list[str], list[str]]:
    """The words of CAPABILITY before LOGIN and after it, on one connection."""
    async with world.connect() as client:
        before = await client.command("c1 CAPABILITY")
        await client.login()
        after = await client.command("c2 CAPABILITY")
    return before[0].split(), after[0].split()


async def select_behind_an_expunge(
    world: ImapWorld, client: ImapClient, messages: Iterable[tuple[bytes, datetime]]
) -> None:
    """INBOX holding ``messages`` (with their internal dates) after one expunged
    message, so that numbers and UIDs differ by one; logged in and selected."""
    await world.append("INBOX", b"Subject: gone\r\n\r\nx\r\n", flags=["\\Deleted"])
    for message, day in messages:
        await world.append("INBOX", message, internal_date=day)
    await client.login()
    await client.select()
    await client.converse("""
        C: x1 EXPUNGE
        S: * 1 EXPUNGE
        S: x1 OK *
    """)


# A new account: INBOX and the RFC 6154 folders, as LIST shows them.
INBOX_UIDVALIDITY = 1_700_000_000  # the world's clock at the INBOX's creation
STANDARD_LIST = r"""
    S: * LIST (\HasNoChildren) "/" "INBOX"
    S: * LIST (\HasNoChildren \Archive) "/" "Archive"
    S: * LIST (\HasNoChildren \Drafts) "/" "Drafts"
    S: * LIST (\HasNoChildren \Junk) "/" "Junk"
    S: * LIST (\HasNoChildren \Sent) "/" "Sent"
    S: * LIST (\HasNoChildren \Trash) "/" "Trash"
"""
