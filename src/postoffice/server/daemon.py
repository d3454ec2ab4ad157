"""One serving process: a ``Daemon`` runs the server's work on one event loop.

Owns what one process does while it serves: it opens the directory and the
queue, runs the queue runner (local and remote delivery, bounces) and
(alone, or as worker 0) the pickup of the ``sendmail`` maildrop, serves the
``smtp``, ``submission``, ``submissions``, ``pop3``, ``pop3s``, ``imap`` and
``imaps`` roles, and stops cleanly on SIGTERM and SIGINT. The other roles
join as their issues land, and until then the maillog says they are
configured but not served.

A ``Daemon`` runs either alone (``[server] workers = 1``: it recovers the
queue, binds the ports, logs ``ready:`` and handles SIGHUP itself) or as one
worker of ``server.master`` (a ``WorkerSeat``: the master recovered the
queue, bound the ports and logs for the server; the worker serves the
inherited sockets with the shared connection counts).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from postoffice import __version__
from postoffice.config.loader import LoadedConfig, load_config
from postoffice.config.model import Config, parse_endpoint
from postoffice.core.clock import SystemClock
from postoffice.core.errors import ConfigError, PostofficeError
from postoffice.core.maillog import log_event
from postoffice.directory.directory import Directory
from postoffice.directory.tables.tableset import SERVER_CHECK_INTERVAL
from postoffice.queue import Queue
from postoffice.queue.maildrop import ensure_maildrop
from postoffice.server.change_relay import ChangeRelay
from postoffice.server.delivery_setup import build_queue_runner
from postoffice.server.imap_fetch import ContentLoader
from postoffice.server.imap_service import ImapService
from postoffice.server.limits import ConnectionLimiter, SharedConnectionLimiter
from postoffice.server.listener import Listener, SessionHandler
from postoffice.server.login_penalty import LoginPenalty, SharedFailures
from postoffice.server.pickup import Pickup
from postoffice.server.pop3_maildrop import MessageFacts
from postoffice.server.pop3_service import Pop3Service
from postoffice.server.smtp_service import SmtpService
from postoffice.server.store_pool import StorePool
from postoffice.server.tls import server_tls_context
from postoffice.server.worker_loads import WorkerLoad
from postoffice.store import StoreFactory
from postoffice.store.layout import layout_from_config

# The protocol roles this version serves; the others are configured only.
SERVED_ROLES = ("smtp", "submission", "submissions", "pop3", "pop3s", "imap", "imaps")


@dataclass(frozen=True)
class WorkerSeat:
    """What a worker process gets from the master: its number, the bound
    listening sockets by role, and its face of the shared connection counts."""

    index: int
    sockets: dict[str, list[socket.socket]]
    limiters: dict[str, SharedConnectionLimiter]  # by service: smtp, pop3, imap
    failures: SharedFailures  # failed logins by client address
    ready: Callable[[], None]  # tells the master this worker serves
    relay: ChangeRelay | None = None  # store changes to and from the sibling workers
    load: WorkerLoad | None = None  # its open connections beside the siblings' (accepting)


def not_served_line(config: Config) -> str | None:
    """The maillog line naming the configured roles this version does not serve."""
    not_served = [
        f"{proto}={host}:{port}"
        for proto, host, port in config.listen.endpoints()
        if proto not in SERVED_ROLES
    ]
    if not not_served:
        return None
    return "configured but not served by this version: " + ", ".join(not_served)


class Daemon:
    """One serving process over one loaded configuration."""

    def __init__(
        self,
        loaded: LoadedConfig,
        *,
        listen_overrides: list[str] | None = None,
        seat: WorkerSeat | None = None,
    ):
        self.loaded = loaded
        self.listen_overrides = listen_overrides or []
        self.seat = seat
        self._stop = asyncio.Event()
        self.directory: Directory | None = None

    async def run(self) -> int:
        config, paths = self.loaded.config, self.loaded.paths
        # Tables and the domain list are re-checked at most once a second
        # (reload-on-change within SERVER_CHECK_INTERVAL), not per message.
        self.directory = Directory(
            config,
            paths,
            table_check_interval=SERVER_CHECK_INTERVAL,
            lookup_cache_ttl=SERVER_CHECK_INTERVAL,
        )
        clock = SystemClock()
        # A worker's master recovered the queue before forking it.
        queue = await Queue.open(paths.queue_dir, clock, recover=self.seat is None)
        listeners: list[Listener] = []
        runner: asyncio.Future[None] | None = None
        picker: asyncio.Future[None] | None = None
        pool: StorePool | None = None
        try:
            tls_context = server_tls_context(paths)
            stores = StoreFactory(layout_from_config(config, paths), clock=clock)
            if self.seat is not None and self.seat.relay is not None:
                self.seat.relay.attach(stores.hub)
            queue_runner = build_queue_runner(
                self.loaded, queue=queue, directory=self.directory, stores=stores, clock=clock
            )
            queue.add_listener(queue_runner.notice)
            runner = asyncio.ensure_future(queue_runner.run(self._stop))
            if self.seat is None or self.seat.index == 0:  # one process picks up
                ensure_maildrop(paths.maildrop_dir)
                pickup = Pickup(
                    maildrop=paths.maildrop_dir,
                    queue=queue,
                    hostname=config.hostname,
                    primary_domain=config.primary_domain,
                    on_flush=queue_runner.wake,
                )
                picker = asyncio.ensure_future(pickup.run(self._stop))
            # A failed login from one address is counted across the roles of one
            # service (and across the workers); so are the connections of a client.
            smtp_penalty = self._penalty(
                config.smtp.login_failure_delay, config.smtp.login_failure_delay_max
            )
            smtp_limiter = self._limiter("smtp", config.smtp.max_connections_per_client)
            for role, endpoints in (
                ("smtp", config.listen.smtp),
                ("submission", config.listen.submission),
                ("submissions", config.listen.submissions),
            ):
                if role != "smtp" and not endpoints:
                    continue  # submissions needs a certificate only when it listens
                smtp = SmtpService(
                    config=config,
                    directory=self.directory,
                    queue=queue,
                    tls_context=tls_context,
                    limiter=smtp_limiter,
                    role=role,
                    penalty=smtp_penalty,
                    quota=queue_runner.local.quota,  # over-quota mailboxes refused at RCPT
                )
                listeners.append(await self._listen(role, endpoints, smtp.handle))
            pop3_penalty = self._penalty(
                config.pop3.login_failure_delay, config.pop3.login_failure_delay_max
            )
            pop3_limiter = self._limiter("pop3", config.pop3.max_connections_per_client)
            facts = MessageFacts()
            for role, endpoints in (("pop3", config.listen.pop3), ("pop3s", config.listen.pop3s)):
                pop3 = Pop3Service(
                    config=config,
                    directory=self.directory,
                    stores=stores,
                    tls_context=tls_context,
                    implicit_tls=role == "pop3s",
                    limiter=pop3_limiter,
                    penalty=pop3_penalty,
                    facts=facts,
                )
                listeners.append(await self._listen(role, endpoints, pop3.handle))
            imap_penalty = self._penalty(
                config.imap.login_failure_delay, config.imap.login_failure_delay_max
            )
            imap_limiter = self._limiter("imap", config.imap.max_connections_per_client)
            contents = ContentLoader()
            pool = StorePool(stores)  # imap and imaps sessions share their users' stores
            for role, endpoints in (("imap", config.listen.imap), ("imaps", config.listen.imaps)):
                imap = ImapService(
                    config=config,
                    directory=self.directory,
                    stores=stores,
                    tls_context=tls_context,
                    implicit_tls=role == "imaps",
                    limiter=imap_limiter,
                    penalty=imap_penalty,
                    contents=contents,
                    pool=pool,
                )
                listeners.append(await self._listen(role, endpoints, imap.handle))
            loop = asyncio.get_running_loop()
            self._install_signals(loop)
            if self.seat is None:  # alone: the server's own lines (else the master's)
                log_event(
                    "master",
                    f"daemon started -- version {__version__}, configuration {paths.config_file}",
                )
                unserved = not_served_line(config)
                if unserved:
                    log_event("master", unserved)
                log_event("master", f"ready: {config.hostname}, data in {paths.data_dir}")
            else:
                self.seat.ready()
            await self._stop.wait()
            if self.seat is None:
                log_event("master", "terminating on signal")
            return 0
        finally:
            for listener in listeners:
                await listener.close()
            if pool is not None:
                await pool.close()
            self._stop.set()
            if runner is not None:
                await runner
            if picker is not None:
                await picker
            await queue.close()
            if self.seat is not None and self.seat.relay is not None:
                self.seat.relay.close()
            self.directory.close()

    def _penalty(self, delay: float, delay_max: float) -> LoginPenalty:
        """A service's failed-login delays; a worker counts with the others."""
        return LoginPenalty(
            delay, delay_max, table=None if self.seat is None else self.seat.failures
        )

    def _limiter(
        self, service: str, per_client: int
    ) -> ConnectionLimiter | SharedConnectionLimiter:
        """A service's connections per client; a worker's face of the shared counts."""
        return ConnectionLimiter(per_client) if self.seat is None else self.seat.limiters[service]

    async def _listen(self, role: str, endpoints: list[str], handler: SessionHandler) -> Listener:
        listener = Listener(role, handler, None if self.seat is None else self.seat.load)
        if self.seat is not None:  # a worker serves the sockets the master bound
            for sock in self.seat.sockets.get(role, []):
                await listener.adopt(sock)
            return listener
        for endpoint in endpoints:
            host, port = parse_endpoint(endpoint)
            try:
                await listener.listen(host, port)
            except OSError as exc:
                await listener.close()
                raise ConfigError(
                    f"cannot listen on {endpoint}: {exc.strerror}", key=f"listen.{role}"
                ) from exc
        for host, port in listener.addresses:
            log_event("master", f"listening: {role} on {host}:{port}")
        return listener

    def stop(self) -> None:
        self._stop.set()

    def reload(self) -> None:
        """SIGHUP: re-read the config file; a broken file leaves the running one in place."""
        try:
            fresh = load_config(
                self.loaded.paths.config_file, listen_overrides=self.listen_overrides
            )
        except PostofficeError as exc:
            log_event(
                "master",
                f"reload refused, keeping the running configuration: {exc}",
                level=logging.ERROR,
            )
            return
        self.loaded = fresh
        # The running listeners and limits stay as they are until a restart;
        # the tables reload by themselves when their files change.
        log_event(
            "master",
            "reload -- configuration re-read and valid; listener and limit changes "
            "take effect at the next restart",
        )

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        handlers: dict[signal.Signals, Callable[[], None]] = {
            signal.SIGTERM: self.stop,
            signal.SIGINT: self.stop,
        }
        if self.seat is None:  # a worker leaves SIGHUP to its master
            handlers[signal.SIGHUP] = self.reload
        for signum, handler in handlers.items():
            loop.add_signal_handler(signum, handler)


def ensure_layout(data_dir: Path) -> None:
    """The folders every part expects, with the classic names under ``data_dir``."""
    for sub, mode in (
        ("spool/mail", 0o755),
        ("spool/mqueue", 0o700),
        ("spool/maildrop", 0o1733),  # queue.maildrop: anyone may drop, none may list
        ("log", 0o755),
        ("mail", 0o700),
        ("lib/postoffice", 0o700),
    ):
        path = data_dir / sub
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)
