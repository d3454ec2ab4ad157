"""The IMAP session driver: feeds octets to ``ImapServerConnection``, carries out its commands.

Owns the awaits of one IMAP connection (DESIGN.md §7 "a thin driver"):
reading and writing with the idle timeout (30 minutes outside IDLE, RFC
9051 §5.4), STARTTLS, COMPRESS (RFC 4978, ``imap_compress``), LOGIN and
AUTHENTICATE against the accounts (with the failed-login delay of
``LoginPenalty``, unknown users and wrong passwords answered alike), the
commands that need no mailbox (CAPABILITY, NOOP, ID, ENABLE, LOGOUT,
IDLE), dispatching the others to
``imap_mailboxes`` and ``imap_selected``, and keeping the client told of
changes to its selected mailbox: after every command, and while in IDLE as
the store's change feed reports them (RFC 2177, RFC 9051 §7.5.1), with
their MODSEQ once a CONDSTORE enabling command was given (RFC 7162 §3.1).

Maillog lines, in Dovecot's shape: ``imap-login: Login: user=<...>,
method=..., rip=...``, ``imap-login: Aborted login (auth failed, N
attempts): ...`` and ``imap(user): Disconnected: Logged out in=... fetch=N``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time

from postoffice.core.address import Address, parse_address
from postoffice.core.errors import AddressError, StoreError
from postoffice.core.maillog import log_event
from postoffice.net.pipe import Pipe
from postoffice.protocol.imap.commands import (
    Append,
    Authenticate,
    Command,
    Create,
    Enable,
    Fetch,
    Id,
    ListMailboxes,
    Login,
    MailboxCommand,
    Rename,
    Search,
    Select,
    Sort,
    Status,
    StoreFlags,
    Transfer,
    UidExpunge,
    enables_condstore,
    qresync_refused,
)
from postoffice.protocol.imap.compress import Compress
from postoffice.protocol.imap.connection import (
    Closed,
    CommandReceived,
    IdleDone,
    ImapServerConnection,
    NeedData,
    SaslResponse,
)
from postoffice.protocol.imap.responses import (
    capability,
    enabled,
    server_id,
    untagged_status,
)
from postoffice.protocol.imap.sequence import SequenceRangeError
from postoffice.protocol.imap.states import ImapState
from postoffice.protocol.sasl import (
    SaslCancelled,
    SaslCredentials,
    SaslError,
    SaslKeysWanted,
    SaslProof,
)
from postoffice.protocol.scram import ScramServerExchange, server_exchange
from postoffice.server import (
    imap_compress,
    imap_mailboxes,
    imap_quota,
    imap_selected,
    imap_sort,
    imap_thread,
)
from postoffice.server.imap_context import ImapContext, Reply, SessionState
from postoffice.server.imap_view import shown_modseq

LOGIN_COMPONENT = "imap-login"
DISK_CHECK_INTERVAL = 5.0  # seconds between looks at the disk for other programs' changes
POLL_CHECK_INTERVAL = 1.0  # the same, for NOOP, CHECK and IDLE
DISK_CHECKS_KEPT = 100_000
SERVER_ID = (("name", "postoffice"), ("vendor", "postoffice"))
ENABLEABLE = frozenset({"IMAP4REV2", "CONDSTORE", "QRESYNC"})


class ImapSession:
    """One connection of the ``imap`` or ``imaps`` role."""

    def __init__(
        self,
        *,
        pipe: Pipe,
        connection: ImapServerConnection,
        context: ImapContext,
        is_tls: bool,
        plaintext_auth: bool,
    ):
        self.pipe = pipe
        self.conn = connection
        self.ctx = context
        self.ip = pipe.peer[0]
        self.is_tls = is_tls
        self.plaintext_auth = plaintext_auth
        self.state = SessionState(connection, context, flush=self._flush)
        self.reason = "Connection closed"

    # -- capabilities -------------------------------------------------------------------

    @property
    def login_allowed(self) -> bool:
        return self.is_tls or self.plaintext_auth

    def capabilities(self, *, logged_in: bool | None = None) -> list[str]:
        caps = ["IMAP4rev1", "IMAP4rev2", "LITERAL+", "ENABLE", "ID", "IDLE", "SASL-IR"]
        if logged_in is None:
            logged_in = self.conn.state is not ImapState.NOT_AUTHENTICATED
        if not logged_in:
            if self.ctx.tls_context is not None and not self.is_tls:
                caps.append("STARTTLS")
            if self.login_allowed:
                caps += ["AUTH=PLAIN", "AUTH=LOGIN", "AUTH=SCRAM-SHA-256"]
            else:
                caps.append("LOGINDISABLED")  # RFC 9051 §6.2.3
            return caps
        return [
            *caps,
            "NAMESPACE",
            "UNSELECT",
            "CHILDREN",
            "LIST-EXTENDED",
            "LIST-STATUS",
            "SPECIAL-USE",
            "CREATE-SPECIAL-USE",
            "UIDPLUS",
            "MOVE",
            "ESEARCH",
            "SEARCHRES",
            "SORT",  # RFC 5256 §3
            "SORT=DISPLAY",  # RFC 5957 §4
            "ESORT",  # RFC 5267 §3
            *imap_thread.CAPABILITIES,  # RFC 5256 §3
            "BINARY",
            "MULTIAPPEND",
            f"APPENDLIMIT={self.ctx.append_limit}",
            "STATUS=SIZE",
            "CONDSTORE",
            "QRESYNC",
            *imap_compress.CAPABILITIES,  # RFC 4978 §1: after login, as Dovecot does
            *imap_quota.CAPABILITIES,  # RFC 9208 §3.1, §5 (no QUOTASET: no SETQUOTA)
        ]

    def _capability_code(self, *, logged_in: bool | None = None) -> str:
        return "CAPABILITY " + " ".join(self.capabilities(logged_in=logged_in))

    # -- the loop -----------------------------------------------------------------------

    async def run(self) -> str:
        """Serve the connection until it closes; the reason it closed."""
        self.conn.greet(f"{self.ctx.hostname} IMAP ready", self._capability_code())
        try:
            while True:
                event = self.conn.next_event()
                if isinstance(event, Closed):
                    await self._flush()
                    failed = imap_compress.log_failure(self.pipe, self._component(), self._who())
                    return failed or self.reason
                if isinstance(event, NeedData):
                    await self._flush()
                    await self._receive(self.ctx.idle_timeout)
                elif isinstance(event, CommandReceived):
                    await self._carry_out(event.command, event.word)
                else:  # a SASL line or DONE outside their command: cannot happen
                    self.conn.bye("internal error")
        finally:
            await self._release()
            self.pipe.close()

    async def _release(self) -> None:
        store, self.state.store = self.state.store, None
        self.state.view = None
        if store is not None:
            self.ctx.pool.release(store)

    def _who(self) -> str:
        return f"rip={self.ip}" + (", TLS" if self.is_tls else "")

    async def _flush(self) -> None:
        out = self.conn.data_to_send()
        if not out or not self.pipe.send(out):
            return
        try:
            await asyncio.wait_for(self.pipe.drain(), timeout=self.ctx.idle_timeout)
        except TimeoutError:
            self.reason = "write timeout"
            self.conn.bye("write timeout")
            self.pipe.close()

    async def _receive(self, timeout: float) -> None:
        if self.pipe.ready():
            self.conn.receive_data(self.pipe.take())
            return
        try:
            data = await self.pipe.read(timeout=timeout)
        except TimeoutError:
            self.reason = "Inactivity"
            self.conn.bye("Disconnected for inactivity")
            return
        self.conn.receive_data(data)

    # -- commands -----------------------------------------------------------------------

    async def _carry_out(self, command: Command, word: str) -> None:
        # RFC 7162 §3.1: a CONDSTORE enabling command turns MODSEQ reporting on for
        # the rest of the session, this command's own answers included.
        if qresync_refused(command, self.state.qresync):  # BAD: enables nothing either
            self.conn.finish(command, "BAD", "QRESYNC is not enabled (ENABLE QRESYNC)")
            return
        enabling = not self.state.condstore and enables_condstore(command)
        if enabling:
            self.state.condstore = True
        before = self.state.view
        # CLOSE expunges silently and deselects: its HIGHESTMODSEQ (RFC 7162 §3.2.8)
        # is the picture's before it, a value the client can resync from safely.
        closing_modseq = before.highestmodseq if word == "CLOSE" and before else None
        try:
            reply = await self._dispatch(command, word)
        except SequenceRangeError as exc:
            reply = Reply("BAD", str(exc))
        except (StoreError, OSError) as exc:
            log_event(self._component(), f"{word} failed: {exc}", level=logging.ERROR)
            reply = Reply("NO", "Temporary failure; try again", "UNAVAILABLE")
        if reply is None:
            return  # the command ended itself (LOGOUT, IDLE, AUTHENTICATE)
        await self._report_changes(word, by_uid=getattr(command, "uid", False))
        view = self.state.view
        if view is not None and self.state.qresync and view.held_since is not None:
            # Expunges held back (no VANISHED while answering by number) while newer
            # MODSEQs went out: the client must not take those as its resync
            # point, or it would never hear of the expunge (RFC 7162 §3.2.10,
            # RFC 5162 erratum 1810): a HIGHESTMODSEQ from before the expunges.
            code = f"HIGHESTMODSEQ {shown_modseq(view.held_since)}"
            self.conn.send(untagged_status("OK", "Highest", code))
        elif enabling and view is not None and not isinstance(command, Select):
            # Enabled with a mailbox selected whose SELECT said no HIGHESTMODSEQ: say it
            # now, as of the news just reported, so the client has a starting point.
            code = f"HIGHESTMODSEQ {shown_modseq(view.highestmodseq)}"
            self.conn.send(untagged_status("OK", "Highest", code))
        after = view.highestmodseq if word == "EXPUNGE" and view else closing_modseq
        if self.state.qresync and reply.status == "OK" and reply.code is None and after:
            # RFC 7162 §3.2.7-§3.2.8: where the mailbox stands after the expunge.
            reply = reply._replace(code=f"HIGHESTMODSEQ {shown_modseq(after)}")
        self.conn.finish(command, reply.status, reply.text, reply.code)

    async def _report_changes(self, word: str, *, by_uid: bool = False) -> None:
        """Tell the client what changed in its mailbox (RFC 9051 §7.5.1: no EXPUNGE
        while answering FETCH, STORE, SEARCH, SORT or THREAD by number)."""
        state = self.state
        view = state.view
        if view is None or state.store is None:
            return
        # The index knows every change made through a store, by any process; the
        # disk is looked at for other programs' changes (a Maildir written by
        # another MDA) by one session of the process at a time: at most
        # POLL_CHECK_INTERVAL apart for NOOP, CHECK and IDLE (the commands a
        # client polls with), DISK_CHECK_INTERVAL for the others.
        now = time.monotonic()
        key = (state.user or "", view.name)
        polling = word in ("NOOP", "CHECK", "IDLE")
        interval = POLL_CHECK_INTERVAL if polling else DISK_CHECK_INTERVAL
        sync = now - self.ctx.disk_checks.get(key, 0.0) >= interval
        try:
            status = await state.store.version(view.name, sync=sync)
        except (StoreError, OSError):
            self.conn.bye("The selected mailbox is gone")
            self.reason = "mailbox gone"
            return
        if status.uidvalidity != view.uidvalidity:
            self.conn.bye("The mailbox was reset (new UIDVALIDITY)")  # RFC 9051 §2.3.1.1
            return
        if sync:
            if len(self.ctx.disk_checks) > DISK_CHECKS_KEPT:
                self.ctx.disk_checks.clear()
            self.ctx.disk_checks[key] = now
        # Every change takes a new MODSEQ (``MailboxVersion``): appends and expunges too.
        if status.highestmodseq != view.highestmodseq:
            changes = await state.store.changed_since(view.name, view.highestmodseq)
            view.catch_up(changes, status.highestmodseq, status.uidnext)
        allow = word not in ("FETCH", "STORE", "SEARCH", "SORT", "THREAD") or by_uid
        news = view.updates(allow_expunge=allow, modseq=state.condstore, vanished=state.qresync)
        for line in news:
            self.conn.send(line)

    async def _dispatch(self, command: Command, word: str) -> Reply | None:
        state = self.state
        if word == "CAPABILITY":
            self.conn.send(capability(self.capabilities()))
            return Reply("OK", "CAPABILITY completed")
        if word in ("NOOP", "CHECK"):
            return Reply("OK", f"{word} completed")
        if word == "LOGOUT":
            self.conn.send(untagged_status("BYE", "Logging out"))
            self.reason = "Logged out"
            await self._report_changes("LOGOUT")
            self.conn.finish(command, "OK", "LOGOUT completed")
            return None
        if word == "ID":
            assert isinstance(command, Id)
            self.conn.send(server_id(SERVER_ID))
            return Reply("OK", "ID completed")
        if word == "STARTTLS":
            return await self._starttls(command)
        if isinstance(command, Compress):
            return imap_compress.do_compress(
                self.pipe, self.conn, command, self._component(), self._who()
            )
        if word == "LOGIN":
            assert isinstance(command, Login)
            return await self._login(command)
        if word == "AUTHENTICATE":
            assert isinstance(command, Authenticate)
            return await self._authenticate(command)
        if word == "ENABLE":
            assert isinstance(command, Enable)
            return self._enable(command)
        if word == "IDLE":
            await self._idle(command)
            return None
        return await self._mailbox_command(state, command, word)

    async def _mailbox_command(
        self, state: SessionState, command: Command, word: str
    ) -> Reply | None:
        if isinstance(command, Select):
            return await imap_mailboxes.do_select(state, command)
        if isinstance(command, Create):
            return await imap_mailboxes.do_create(state, command)
        if isinstance(command, MailboxCommand):
            return await imap_mailboxes.do_mailbox_verb(state, command)
        if isinstance(command, Rename):
            return await imap_mailboxes.do_rename(state, command)
        if isinstance(command, ListMailboxes):
            return await imap_mailboxes.do_list(state, command)
        if word == "NAMESPACE":
            return await imap_mailboxes.do_namespace(state)
        if isinstance(command, Status):
            return await imap_mailboxes.do_status(state, command)
        if isinstance(command, Append):
            return await imap_mailboxes.do_append(state, command)
        if isinstance(command, imap_quota.QUOTA_COMMANDS):
            return await imap_quota.do_quota(state, command)
        if isinstance(command, Fetch):
            return await imap_selected.do_fetch(state, command)
        if isinstance(command, StoreFlags):
            return await imap_selected.do_store(state, command)
        if isinstance(command, Search):
            return await imap_selected.do_search(state, command)
        if isinstance(command, Sort):
            return await imap_sort.do_sort(state, command)
        if isinstance(command, imap_thread.Thread):
            return await imap_thread.do_thread(state, command)
        if isinstance(command, Transfer):
            return await imap_selected.do_transfer(state, command)
        if isinstance(command, UidExpunge):
            return await imap_selected.do_expunge(state, command)
        if word == "EXPUNGE":
            return await imap_selected.do_expunge(state, None)
        if word == "CLOSE":
            return await imap_selected.do_close(state)
        if word == "UNSELECT":
            state.view = None
            state.saved = []
            return Reply("OK", "UNSELECT completed")
        return Reply("BAD", f"{word} is not implemented")

    # -- TLS, login -----------------------------------------------------------------------

    async def _starttls(self, command: Command) -> Reply | None:
        if self.ctx.tls_context is None or self.is_tls:
            return Reply("BAD", "STARTTLS is not available")
        discarded = self.pipe.prepare_tls()
        self.conn.finish(command, "OK", "Begin TLS negotiation now")
        await self._flush()
        if discarded:
            log_event(LOGIN_COMPONENT, f"{discarded} octets after STARTTLS dropped: {self._who()}")
        try:
            await asyncio.wait_for(
                self.pipe.start_tls(self.ctx.tls_context), timeout=self.ctx.idle_timeout
            )
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as exc:
            log_event(LOGIN_COMPONENT, f"TLS handshake failed: {exc}: {self._who()}")
            self.reason = "TLS handshake failed"
            self.conn.bye("TLS handshake failed")
            return None
        self.is_tls = True
        return None

    def _address(self, user: str) -> Address | None:
        try:
            return parse_address(user, default_domain=self.ctx.primary_domain)
        except AddressError:
            return None

    async def _login(self, command: Login) -> Reply:
        if not self.login_allowed:
            return Reply("NO", "Plaintext login needs TLS first", "PRIVACYREQUIRED")
        try:
            user = command.user.decode("utf-8")
            password = command.password.decode("utf-8")
        except UnicodeDecodeError:
            user, password = "", ""
        return await self._check(user, password, "LOGIN")

    async def _authenticate(self, command: Authenticate) -> Reply | None:
        if not self.login_allowed:
            return Reply("NO", "Authentication needs TLS first", "PRIVACYREQUIRED")
        try:
            exchange = server_exchange(command.mechanism)
        except SaslError:
            return Reply("NO", "Unsupported authentication mechanism", "CANNOT")
        line: str | bytes | None = command.initial
        initial = command.initial is not None
        while True:
            try:
                step = exchange.respond(line, initial=initial)
                if isinstance(step, SaslKeysWanted):  # SCRAM: the server-first needs them
                    assert isinstance(exchange, ScramServerExchange)
                    keys = await asyncio.to_thread(
                        self.ctx.accounts.login_scram_keys,
                        self._address(step.username),
                        step.username,
                    )
                    step = exchange.keys_found(keys)
            except SaslCancelled:
                return Reply("BAD", "Authentication cancelled")  # RFC 9051 §6.2.2
            except SaslError as exc:
                return Reply("BAD", f"Malformed authentication response: {exc}")
            if isinstance(step, SaslCredentials | SaslProof):
                if step.authzid not in (None, "", step.username):
                    return await self._refuse(step.username, step.mechanism)
                if isinstance(step, SaslCredentials):
                    return await self._check(step.username, step.password, step.mechanism)
                address = self._address(step.username) if step.proven else None
                return await self._logged_in(step.username, address, step.mechanism)
            self.conn.challenge(step.data)
            response = await self._next_line()
            if response is None:
                return None
            line, initial = response, False

    async def _next_line(self) -> bytes | None:
        """The client's next line of an AUTHENTICATE exchange (None: the session ended)."""
        while True:
            event = self.conn.next_event()
            if isinstance(event, SaslResponse):
                return event.line
            if isinstance(event, Closed):
                return None
            await self._flush()
            await self._receive(self.ctx.idle_timeout)

    async def _refuse(self, user: str, method: str) -> Reply:
        delay = self.ctx.penalty.failed(self.ip)
        log_event(
            LOGIN_COMPONENT,
            f"Aborted login (auth failed, {self.ctx.penalty.failures(self.ip)} attempts): "
            f"user=<{user}>, method={method}, {self._who()}",
            level=logging.WARNING,
        )
        await self._flush()
        await asyncio.sleep(delay)
        return Reply("NO", "Authentication failed.", "AUTHENTICATIONFAILED")

    async def _check(self, user: str, password: str, method: str) -> Reply:
        address = self._address(user) if user else None
        ok = False
        if address is not None and password:
            ok = await asyncio.to_thread(self.ctx.accounts.verify_password, address, password)
        return await self._logged_in(user, address if ok else None, method)

    async def _logged_in(self, user: str, address: Address | None, method: str) -> Reply:
        """Open the session of ``address``, whose secret was just proven; None: refuse."""
        if address is None:
            return await self._refuse(user, method)
        self.ctx.penalty.succeeded(self.ip)
        try:
            self.state.store = await self.ctx.pool.acquire(address)
        except (StoreError, OSError) as exc:
            log_event(
                LOGIN_COMPONENT,
                f"Aborted login (mailbox unavailable: {exc}): user=<{address}>, {self._who()}",
                level=logging.ERROR,
            )
            return Reply("NO", "Mailbox unavailable; try again later", "UNAVAILABLE")
        self.state.user = str(address)
        log_event(LOGIN_COMPONENT, f"Login: user=<{address}>, method={method}, {self._who()}")
        # RFC 9051 §6.2.3: the capabilities change at login; say them with the OK.
        return Reply("OK", "Logged in", self._capability_code(logged_in=True))

    def _enable(self, command: Enable) -> Reply:
        # RFC 9051 §6.3.1: ENABLED lists what this command newly enabled
        newly = [
            name
            for name in dict.fromkeys(command.capabilities)
            if name in ENABLEABLE and name not in self.state.enabled
        ]
        for name in newly:
            if name == "IMAP4REV2":
                self.state.rev2 = True
                self.conn.enable_utf8()  # RFC 9051 §6.3.1: names and strings are UTF-8
            elif name == "CONDSTORE":
                self.state.condstore = True  # RFC 7162 §3.1: ENABLE CONDSTORE
            elif name == "QRESYNC":  # RFC 7162 §3.2.3: it implies CONDSTORE
                self.state.condstore = self.state.qresync = True
            self.state.enabled.add(name)
        self.conn.send(enabled("IMAP4rev2" if n == "IMAP4REV2" else n for n in newly))
        return Reply("OK", "ENABLE completed")

    # -- IDLE ------------------------------------------------------------------------------

    async def _idle(self, command: Command) -> None:
        """RFC 2177: report changes as they happen until the client says DONE."""
        state = self.state
        assert state.store is not None
        await self._report_changes("IDLE")
        self.conn.start_idle()
        await self._flush()
        feed = state.store.changes(state.view.name if state.view is not None else None)
        reader: asyncio.Task[bytes] | None = None
        try:
            while True:
                event = self.conn.next_event()
                if isinstance(event, IdleDone):
                    status, text = (
                        ("OK", "IDLE terminated") if event.done else ("BAD", "Expected DONE")
                    )
                    await self._report_changes("IDLE")
                    self.conn.finish(command, status, text)
                    return
                if isinstance(event, Closed):
                    return
                if self.pipe.ready():
                    self.conn.receive_data(self.pipe.take())
                    continue
                if reader is None:
                    # RFC 2177 §3: a client re-issues IDLE within 29 minutes; one
                    # silent for longer than the idle timeout is gone.
                    reader = asyncio.ensure_future(self.pipe.read(timeout=self.ctx.idle_timeout))
                change = asyncio.ensure_future(anext(feed))
                done, _ = await asyncio.wait(
                    {reader, change},
                    timeout=self.ctx.idle_check_interval,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if change not in done:
                    change.cancel()
                if reader in done:
                    finished, reader = reader, None
                    try:
                        self.conn.receive_data(finished.result())
                    except TimeoutError:
                        self.reason = "Inactivity in IDLE"
                        self.conn.bye("Disconnected for inactivity")
                    continue
                await self._report_changes("IDLE")
                await self._flush()
        finally:
            if reader is not None:
                reader.cancel()
            feed.close()

    def _component(self) -> str:
        return LOGIN_COMPONENT if self.state.user is None else f"imap({self.state.user})"
