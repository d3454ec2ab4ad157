"""The POP3 session driver: feeds bytes to ``Pop3ServerConnection``, carries out its events.

Owns the awaits of one POP3 connection (DESIGN.md §7 "a thin driver"):
reading and writing the socket with the idle timeout, the STLS handshake,
checking passwords (with the failed-login delay of ``LoginPenalty``),
opening and locking the maildrop at login, streaming RETR and TOP from the
store, the update at QUIT, and the maillog lines of the session in
Dovecot's shape (``pop3-login: Login: user=<...>, method=..., rip=...`` and
``pop3(user): Disconnected: ... retr=N/octets, del=N/M``).

Rules it keeps (issue 4):
- A dropped connection, a timeout or an error changes nothing in the
  mailbox: only QUIT in the TRANSACTION state updates it.
- The maildrop lock is released whatever ends the session.
- Unknown users and wrong passwords get the same answer after the same
  delay; every refusal is logged.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass

from postoffice.core.address import Address, parse_address
from postoffice.core.errors import AddressError, StoreError
from postoffice.core.maillog import log_event
from postoffice.directory.accounts import AccountDatabase
from postoffice.net.pipe import Pipe
from postoffice.protocol.pop3 import (
    Authenticate,
    Closed,
    KeysWanted,
    NeedData,
    Pop3ServerConnection,
    Retrieve,
    StartTls,
    Update,
)
from postoffice.server.login_penalty import LoginPenalty
from postoffice.server.pop3_maildrop import Maildrop, MaildropInUse, MessageFacts
from postoffice.store import StoreFactory

LOGIN_COMPONENT = "pop3-login"


@dataclass(frozen=True)
class Pop3Context:
    """What every session of one service shares."""

    accounts: AccountDatabase
    stores: StoreFactory
    facts: MessageFacts
    penalty: LoginPenalty
    tls_context: ssl.SSLContext | None
    primary_domain: str
    idle_timeout: float


class Pop3Session:
    """One connection of the ``pop3`` or ``pop3s`` role."""

    def __init__(self, *, pipe: Pipe, connection: Pop3ServerConnection, context: Pop3Context):
        self.pipe = pipe
        self.conn = connection
        self.ctx = context
        self.ip = pipe.peer[0]
        self.maildrop: Maildrop | None = None
        self.user: str | None = None
        self.tls: tuple[str, str] | None = None

    async def run(self) -> str:
        """Serve the connection until it closes; the reason it closed."""
        await self.pipe.write(self.conn.start())
        try:
            while True:
                event = self.conn.next_event()
                if isinstance(event, Closed):
                    await self._flush()
                    return event.reason
                if isinstance(event, NeedData):
                    await self._flush()
                    await self._receive()
                elif isinstance(event, Authenticate):
                    await self._authenticate(event)
                elif isinstance(event, KeysWanted):
                    accounts, user = self.ctx.accounts, event.user
                    keys = await asyncio.to_thread(
                        accounts.login_scram_keys, self._address(user), user
                    )
                    self.conn.scram_keys(keys)
                elif isinstance(event, Retrieve):
                    await self._retrieve(event)
                elif isinstance(event, Update):
                    await self._update(event)
                elif isinstance(event, StartTls):
                    await self._start_tls()
        finally:
            await self._release()
            self.pipe.close()

    async def _release(self) -> None:
        """Unlock the maildrop and close its store (at once, whatever ends the session)."""
        maildrop, self.maildrop = self.maildrop, None
        if maildrop is not None:
            await maildrop.close()

    def _who(self) -> str:
        return f"rip={self.ip}" + (", TLS" if self.tls or self.conn.is_tls else "")

    # -- I/O --------------------------------------------------------------------------

    async def _flush(self) -> None:
        await self._write(self.conn.data_to_send())

    async def _write(self, out: bytes) -> None:
        if not out:
            return
        if not self.pipe.send(out):
            return
        try:
            # A client that never reads must not hold the session (and its lock) forever.
            await asyncio.wait_for(self.pipe.drain(), timeout=self.ctx.idle_timeout)
        except TimeoutError:
            log_event(LOGIN_COMPONENT, f"write timeout, closing: {self._who()}")
            self.conn.close()
            self.pipe.close()

    async def _receive(self) -> None:
        if self.pipe.ready():
            self.conn.receive_data(self.pipe.take())
            return
        try:
            data = await self.pipe.read(timeout=self.ctx.idle_timeout)
        except TimeoutError:
            log_event(self._component(), f"Disconnected: Inactivity {self._summary()}")
            await self._write(self.conn.close("Disconnected for inactivity"))
            return
        self.conn.receive_data(data)

    def _component(self) -> str:
        return LOGIN_COMPONENT if self.user is None else f"pop3({self.user})"

    def _summary(self) -> str:
        retrieved = f"retr={self.conn.retrieved_count}/{self.conn.retrieved_octets}"
        total = 0 if self.maildrop is None else len(self.maildrop.listing)
        return f"{retrieved}, del={self.conn.deleted_count}/{total}, {self._who()}"

    async def _start_tls(self) -> None:
        assert self.ctx.tls_context is not None  # STLS is offered only with a certificate
        discarded = self.pipe.prepare_tls()
        await self._flush()
        if discarded:
            log_event(
                LOGIN_COMPONENT, f"{discarded} octets pipelined after STLS dropped: {self._who()}"
            )
        try:
            info = await asyncio.wait_for(
                self.pipe.start_tls(self.ctx.tls_context), timeout=self.ctx.idle_timeout
            )
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as exc:
            log_event(LOGIN_COMPONENT, f"TLS handshake failed: {exc}: {self._who()}")
            self.conn.close()
            return
        self.tls = (info.version, info.cipher)
        self.conn.tls_started()

    # -- login ------------------------------------------------------------------------

    def _address(self, user: str) -> Address | None:
        try:
            return parse_address(user, default_domain=self.ctx.primary_domain)
        except AddressError:
            return None

    async def _authenticate(self, event: Authenticate) -> None:
        address = self._address(event.user)
        ok = False
        if address is not None and event.authzid in (None, "", event.user):
            if event.proven is not None:  # SCRAM: the exchange checked the proof
                ok = event.proven
            elif event.password is not None:
                accounts = self.ctx.accounts
                ok = await asyncio.to_thread(accounts.verify_password, address, event.password)
        if not ok or address is None:
            delay = self.ctx.penalty.failed(self.ip)
            log_event(
                LOGIN_COMPONENT,
                f"Aborted login (auth failed, {self.ctx.penalty.failures(self.ip)} attempts): "
                f"user=<{event.user}>, method={event.mechanism}, {self._who()}",
                level=logging.WARNING,
            )
            await self._flush()
            await asyncio.sleep(delay)
            self.conn.login_refused("Authentication failed.", code="AUTH")
            return
        self.ctx.penalty.succeeded(self.ip)
        try:
            maildrop = await Maildrop.open(self.ctx.stores, address, self.ctx.facts)
        except MaildropInUse:
            log_event(
                LOGIN_COMPONENT,
                f"Aborted login (maildrop in use): user=<{address}>, {self._who()}",
            )
            self.conn.login_refused("The maildrop is locked by another POP3 session.", "IN-USE")
            return
        except (StoreError, OSError) as exc:
            log_event(
                LOGIN_COMPONENT,
                f"Aborted login (mailbox unavailable: {exc}): user=<{address}>, {self._who()}",
                level=logging.ERROR,
            )
            self.conn.login_refused("The mailbox is unavailable now; try later.", "SYS/TEMP")
            return
        self.maildrop = maildrop
        self.user = str(address)
        log_event(
            LOGIN_COMPONENT,
            f"Login: user=<{address}>, method={event.mechanism}, {self._who()}, "
            f"messages={len(maildrop.listing)}",
        )
        self.conn.login_accepted(maildrop.listing)

    # -- transaction ------------------------------------------------------------------

    async def _retrieve(self, event: Retrieve) -> None:
        assert self.maildrop is not None
        try:
            # TOP streams: it may need only the first chunk of a big message.
            whole = self.maildrop.whole(event.index) if event.body_lines is None else None
        except (StoreError, OSError) as exc:
            self._unreadable(event, exc)
            return
        if whole is not None:  # one read, one write with the "+OK" and the "."
            self.conn.message_whole(*whole)
            return
        chunks = self.maildrop.chunks(event.index)
        try:
            first = await anext(chunks, b"")
        except (StoreError, OSError) as exc:
            self._unreadable(event, exc)
            return
        try:
            chunk = first
            while True:
                following = await anext(chunks, None)
                self.conn.message_data(chunk)
                if following is None or not self.conn.wants_message_data:
                    break  # the last part leaves with the "." in one write
                await self._flush()
                if self.pipe.at_eof or self.conn.closed:
                    break
                chunk = following
        except (StoreError, OSError) as exc:
            # Half the message is on the wire: all that is left is to end the session.
            log_event(
                self._component(),
                f"message {event.number} failed while sent: {exc}",
                level=logging.ERROR,
            )
            self.conn.close()
            return
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]
        self.conn.message_end()

    def _unreadable(self, event: Retrieve, exc: Exception) -> None:
        log_event(
            self._component(), f"message {event.number} unreadable: {exc}", level=logging.ERROR
        )
        self.conn.retrieve_failed("The message cannot be read now.", "SYS/TEMP")

    async def _update(self, event: Update) -> None:
        assert self.maildrop is not None
        summary = self._summary()
        try:
            await self.maildrop.update(event.deleted, event.retrieved)
        except (StoreError, OSError) as exc:
            log_event(
                self._component(),
                f"update failed, nothing deleted: {exc}",
                level=logging.ERROR,
            )
            await self._release()
            self.conn.update_done(False, "Some deleted messages were not removed.")
            return
        # The lock goes before the answer: a client that logs in again as soon
        # as it reads the +OK must find the maildrop free (RFC 1939 §6).
        await self._release()
        log_event(self._component(), f"Disconnected: Logged out {summary}")
        self.conn.update_done(True)
