"""The serving process: start, report ready, run until told to stop.

Owns the process lifecycle of ``postoffice serve``: the maillog, the
directory, the signal handling (SIGTERM and SIGINT stop cleanly, SIGHUP
re-reads the configuration and keeps the old one if the new one is wrong).
The protocol listeners join here as their issues land; until then the
process starts no listener and says so in its ready line.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from pathlib import Path

from postoffice import __version__
from postoffice.config.loader import LoadedConfig, load_config
from postoffice.core.errors import PostofficeError
from postoffice.core.maillog import log_event, setup_maillog, teardown_maillog
from postoffice.directory.directory import Directory


class Daemon:
    """One serving process over one loaded configuration."""

    def __init__(self, loaded: LoadedConfig, *, listen_overrides: list[str] | None = None):
        self.loaded = loaded
        self.listen_overrides = listen_overrides or []
        self._stop = asyncio.Event()
        self.directory: Directory | None = None

    async def run(self) -> int:
        config, paths = self.loaded.config, self.loaded.paths
        self.directory = Directory(config, paths)
        try:
            loop = asyncio.get_running_loop()
            self._install_signals(loop)
            configured = ", ".join(
                f"{proto}={host}:{port}" for proto, host, port in config.listen.endpoints()
            )
            log_event(
                "master",
                f"daemon started -- version {__version__}, configuration {paths.config_file}",
            )
            log_event(
                "master",
                "listeners configured (served once their protocol is built): "
                + (configured or "none"),
            )
            log_event("master", f"ready: {config.hostname}, data in {paths.data_dir}")
            await self._stop.wait()
            log_event("master", "terminating on signal")
            return 0
        finally:
            self.directory.close()

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
        log_event("master", "reload -- configuration re-read")

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
