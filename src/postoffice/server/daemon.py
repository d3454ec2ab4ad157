"""The serving process: start, report ready, run until told to stop.

Owns the process lifecycle of ``postoffice serve``: the maillog, the
directory, the signal handling (SIGTERM and SIGINT stop cleanly, SIGHUP
re-reads the configuration and keeps the old one if the new one is wrong).
It opens the queue (recovering what a crash left), runs the local delivery
runner, and serves the ``smtp`` role; the other roles join as their issues
land, and until then the maillog says they are configured but not served.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from pathlib import Path

from postoffice import __version__
from postoffice.config.loader import LoadedConfig, load_config
from postoffice.config.model import parse_endpoint
from postoffice.core.clock import SystemClock
from postoffice.core.errors import ConfigError, PostofficeError
from postoffice.core.maillog import log_event, setup_maillog, teardown_maillog
from postoffice.delivery.local import LocalDeliveryAgent
from postoffice.directory.directory import Directory
from postoffice.directory.tables.tableset import SERVER_CHECK_INTERVAL
from postoffice.queue import Queue
from postoffice.server.listener import Listener, SessionHandler
from postoffice.server.smtp_service import SmtpService
from postoffice.server.tls import server_tls_context
from postoffice.store import StoreFactory
from postoffice.store.layout import layout_from_config

# The protocol roles this version serves; the others are configured only.
SERVED_ROLES = ("smtp",)


class Daemon:
    """One serving process over one loaded configuration."""

    def __init__(self, loaded: LoadedConfig, *, listen_overrides: list[str] | None = None):
        self.loaded = loaded
        self.listen_overrides = listen_overrides or []
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
        queue = await Queue.open(paths.queue_dir, clock)
        listeners: list[Listener] = []
        runner: asyncio.Future[None] | None = None
        try:
            tls_context = server_tls_context(paths)
            stores = StoreFactory(layout_from_config(config, paths), clock=clock)
            agent = LocalDeliveryAgent(
                queue=queue,
                directory=self.directory,
                stores=stores,
                clock=clock,
                loop_received_limit=config.smtp.loop_received_headers,
            )
            queue.add_listener(agent.notice)
            runner = asyncio.ensure_future(agent.run(self._stop))
            smtp = SmtpService(
                config=config, directory=self.directory, queue=queue, tls_context=tls_context
            )
            listeners.append(await self._listen("smtp", config.listen.smtp, smtp.handle))
            loop = asyncio.get_running_loop()
            self._install_signals(loop)
            log_event(
                "master",
                f"daemon started -- version {__version__}, configuration {paths.config_file}",
            )
            not_served = [
                f"{proto}={host}:{port}"
                for proto, host, port in config.listen.endpoints()
                if proto not in SERVED_ROLES
            ]
            if not_served:
                log_event(
                    "master",
                    "configured but not served by this version: " + ", ".join(not_served),
                )
            log_event("master", f"ready: {config.hostname}, data in {paths.data_dir}")
            await self._stop.wait()
            log_event("master", "terminating on signal")
            return 0
        finally:
            for listener in listeners:
                await listener.close()
            self._stop.set()
            if runner is not None:
                await runner
            await queue.close()
            self.directory.close()

    async def _listen(self, role: str, endpoints: list[str], handler: SessionHandler) -> Listener:
        listener = Listener(role, handler)
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
            signal.SIGHUP: self.reload,
        }
        for signum, handler in handlers.items():
            loop.add_signal_handler(signum, handler)


def serve(
    loaded: LoadedConfig, *, foreground: bool = True, listen_overrides: list[str] | None = None
) -> int:
    """Run the server until SIGTERM/SIGINT; the exit status."""
    paths = loaded.paths
    handlers = setup_maillog(
        paths.maillog,
        hostname=loaded.config.hostname,
        foreground=foreground,
        level=loaded.config.log.level,
    )
    try:
        return asyncio.run(Daemon(loaded, listen_overrides=listen_overrides).run())
    finally:
        teardown_maillog(handlers)


def ensure_layout(data_dir: Path) -> None:
    """The folders every part expects, with the classic names under ``data_dir``."""
    for sub, mode in (
        ("spool/mail", 0o755),
        ("spool/mqueue", 0o700),
        ("log", 0o755),
        ("mail", 0o700),
        ("lib/postoffice", 0o700),
    ):
        path = data_dir / sub
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)
