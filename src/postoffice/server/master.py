"""``postoffice serve``: the master process and the worker processes it forks.

Owns the process model of the server. One Python process runs one event
loop on one core, so the server uses the others as Postfix and Dovecot do,
with processes (the ``[server] workers`` setting, default one per core):

- The master loads the configuration, recovers the queue once
  (``Queue.open(recover=True)``), binds every listening socket, creates the
  shared per-client connection counts, and forks the workers. Then it only
  waits for signals: SIGTERM/SIGINT stop the workers and then itself, SIGHUP
  re-reads and checks the configuration, and a worker that dies is logged and
  replaced (and its connections stop counting). The ``listening:``,
  ``daemon started`` and ``ready:`` maillog lines are the master's.
- Each worker is a ``Daemon`` over the inherited sockets: it accepts
  connections (the kernel hands each to one of the workers waiting on the
  socket), commits what it receives to the shared queue, and delivers what
  it committed. A delivery attempt claims its message (``Queue.claim``), so
  the queue scans that every worker runs never deliver a message twice.
- A worker never outlives the master: it asks the kernel for SIGKILL when
  the master dies (``PR_SET_PDEATHSIG``), so a master killed by SIGKILL is a
  crash of the whole server, and a new server can bind the ports at once.

With ``workers = 1`` there is no master: one process does everything
(``Daemon`` binds and recovers itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import select
import signal
import socket
import time
from dataclasses import dataclass

from postoffice import __version__
from postoffice.config.loader import LoadedConfig, load_config
from postoffice.core.errors import ConfigError, PostofficeError
from postoffice.core.maillog import log_event, setup_maillog, teardown_maillog
from postoffice.queue import Queue
from postoffice.server.change_relay import ChangeRelay
from postoffice.server.daemon import SERVED_ROLES, Daemon, WorkerSeat, not_served_line
from postoffice.server.event_loop import loop_name, run_served
from postoffice.server.limits import SharedConnectionCounts
from postoffice.server.listener import listening_socket
from postoffice.server.login_penalty import SharedFailures
from postoffice.server.resources import raise_open_files
from postoffice.server.tls import server_tls_context
from postoffice.server.worker_loads import WorkerLoads

COMPONENT = "master"
MAX_WORKERS_AUTO = 16
STOP_GRACE_SECONDS = 15.0
READY_TIMEOUT_SECONDS = 60.0
# A worker that dies this often within RESPAWN_WINDOW seconds stops the server.
RESPAWN_LIMIT = 5
RESPAWN_WINDOW = 30.0
PR_SET_PDEATHSIG = 1
_MASTER_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD}


def worker_count(setting: int) -> int:
    """``[server] workers``: the setting, or one per CPU core for 0."""
    if setting > 0:
        return setting
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, MAX_WORKERS_AUTO))


def serve(
    loaded: LoadedConfig, *, foreground: bool = True, listen_overrides: list[str] | None = None
) -> int:
    """Run the server until SIGTERM/SIGINT; the exit status."""
    handlers = setup_maillog(
        loaded.paths.maillog,
        hostname=loaded.config.hostname,
        foreground=foreground,
        level=loaded.config.log.level,
    )
    try:
        soft, hard = raise_open_files()
        log_event(COMPONENT, f"open files: up to {soft} a process (hard limit {hard})")
        # Before any worker starts: a uvloop asked for and missing is a config error.
        log_event(COMPONENT, f"event loop: {loop_name(loaded.config.server.event_loop)}")
        workers = worker_count(loaded.config.server.workers)
        if workers == 1:
            daemon = Daemon(loaded, listen_overrides=listen_overrides)
            return run_served(daemon.run(), loaded.config.server.event_loop)
        return Master(loaded, workers, listen_overrides=listen_overrides).run()
    finally:
        teardown_maillog(handlers)


@dataclass
class _Worker:
    index: int
    pid: int


class Master:
    """The master process of a server with several workers (see the module docstring)."""

    def __init__(
        self, loaded: LoadedConfig, workers: int, *, listen_overrides: list[str] | None = None
    ):
        self.loaded = loaded
        # Workers, the first ones and those that replace a dead one, run the
        # configuration the server started with: a SIGHUP only checks a new one.
        self._serving = loaded
        self.workers = workers
        self.listen_overrides = listen_overrides or []
        self._running: dict[int, _Worker] = {}  # pid -> worker
        self._deaths: list[float] = []

    def run(self) -> int:
        config, paths = self.loaded.config, self.loaded.paths
        server_tls_context(paths)  # a broken certificate stops the start here, not in a worker
        asyncio.run(_recover_queue(self.loaded))
        sockets = self._bind()
        # Per-client connection counts shared by the workers, one table a service
        # (pop3 and pop3s count together, and imap and imaps: the same mailbox service).
        counts = {
            "smtp": SharedConnectionCounts(config.smtp.max_connections_per_client, self.workers),
            "pop3": SharedConnectionCounts(config.pop3.max_connections_per_client, self.workers),
            "imap": SharedConnectionCounts(config.imap.max_connections_per_client, self.workers),
        }
        # Failed logins by client address, counted together by the workers.
        failures = SharedFailures()
        # Open connections by worker, so that new ones go to the least busy.
        loads = WorkerLoads(self.workers)
        # Signals wait in the kernel until sigwait() takes them (none is lost
        # between two waits); the workers unblock them for themselves. They stay
        # blocked until the process exits: one still pending after the stop (a
        # second Ctrl-C) must not kill the master half-way through its clean-up.
        signal.pthread_sigmask(signal.SIG_BLOCK, _MASTER_SIGNALS)
        ready_read, ready_write = os.pipe()
        try:
            seat = _Seats(sockets, counts, failures, loads, ready_write, self.workers)
            for index in range(self.workers):
                self._spawn(index, seat)
            started = self._await_ready(ready_read)
            if started is not None:
                return started
            log_event(
                COMPONENT,
                f"daemon started -- version {__version__}, configuration {paths.config_file}, "
                f"{self.workers} worker processes",
            )
            unserved = not_served_line(config)
            if unserved:
                log_event(COMPONENT, unserved)
            log_event(COMPONENT, f"ready: {config.hostname}, data in {paths.data_dir}")
            return self._supervise(seat)
        finally:
            # The ports first: no new connection waits in a backlog nobody serves.
            for bound in sockets.values():
                for sock in bound:
                    sock.close()
            os.close(ready_read)
            os.close(ready_write)
            self._stop_workers()
            for table in counts.values():
                table.close()
            failures.close()
            loads.close()

    # -- start ------------------------------------------------------------------------

    def _bind(self) -> dict[str, list[socket.socket]]:
        """A listening socket for every served endpoint, logged as ``listening:``."""
        bound: dict[str, list[socket.socket]] = {}
        try:
            for role, host, port in self.loaded.config.listen.endpoints():
                if role not in SERVED_ROLES:
                    continue
                try:
                    sock = listening_socket(host, port)
                except OSError as exc:
                    raise ConfigError(
                        f"cannot listen on {host}:{port}: {exc.strerror}", key=f"listen.{role}"
                    ) from exc
                bound.setdefault(role, []).append(sock)
        except BaseException:
            for socks in bound.values():
                for sock in socks:
                    sock.close()
            raise
        for role, socks in bound.items():
            for sock in socks:
                name = sock.getsockname()
                log_event(COMPONENT, f"listening: {role} on {name[0]}:{name[1]}")
        return bound

    def _spawn(self, index: int, seat: _Seats) -> None:
        master = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker: whatever happens, it ends here, never in master code
            status = 1
            try:
                status = _worker_main(self._serving, self.listen_overrides, master, index, seat)
            finally:
                os._exit(status)
        self._running[pid] = _Worker(index, pid)

    def _await_ready(self, ready_read: int) -> int | None:
        """Wait until every worker said it serves (one octet each on the pipe).

        ``ready:`` then means what it says: the directory, queue and store of
        every worker are open. None once they all serve; otherwise the exit
        status: 0 when SIGTERM or SIGINT came first (a clean stop), 1 when a
        worker died or the wait timed out (logged).
        """
        waiting = self.workers
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while waiting > 0:
            if time.monotonic() > deadline:
                log_event(COMPONENT, "workers did not start in time", level=logging.ERROR)
                return 1
            readable, _, _ = select.select([ready_read], [], [], 0.05)
            if readable:
                waiting -= len(os.read(ready_read, waiting))
                continue
            pending = signal.sigtimedwait(_MASTER_SIGNALS, 0)  # a look, no wait
            if pending is not None and pending.si_signo in (signal.SIGTERM, signal.SIGINT):
                log_event(COMPONENT, "terminating on signal while starting")
                return 0
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid:
                worker = self._running.pop(pid, None)
                index = "?" if worker is None else worker.index
                log_event(
                    COMPONENT,
                    f"worker {index} (pid {pid}) {_exit_text(status)} while starting",
                    level=logging.ERROR,
                )
                return 1
        return None

    # -- running ----------------------------------------------------------------------

    def _supervise(self, seat: _Seats) -> int:
        while True:
            signum = signal.sigwait(_MASTER_SIGNALS)
            if signum in (signal.SIGTERM, signal.SIGINT):
                log_event(COMPONENT, "terminating on signal")
                return 0
            if signum == signal.SIGHUP:
                self._reload()
            elif signum == signal.SIGCHLD and not self._reap(seat):
                return 1

    def _reap(self, seat: _Seats) -> bool:
        """Replace the workers that died; False when they die too often to go on."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return True
            if pid == 0:
                return True
            worker = self._running.pop(pid, None)
            if worker is None:
                continue
            for table in seat.counts.values():
                table.forget_worker(worker.index)
            seat.loads.forget_worker(worker.index)
            log_event(
                COMPONENT,
                f"worker {worker.index} (pid {pid}) {_exit_text(status)}; starting another",
                level=logging.ERROR,
            )
            now = time.monotonic()
            self._deaths = [t for t in self._deaths if now - t < RESPAWN_WINDOW] + [now]
            if len(self._deaths) > RESPAWN_LIMIT:
                log_event(
                    COMPONENT,
                    f"workers died {len(self._deaths)} times in {RESPAWN_WINDOW:.0f} s; stopping",
                    level=logging.ERROR,
                )
                return False
            self._spawn(worker.index, seat)

    def _reload(self) -> None:
        """SIGHUP: re-read the config file; a broken file leaves the running one in place."""
        try:
            self.loaded = load_config(
                self._serving.paths.config_file, listen_overrides=self.listen_overrides
            )
        except PostofficeError as exc:
            log_event(
                COMPONENT,
                f"reload refused, keeping the running configuration: {exc}",
                level=logging.ERROR,
            )
            return
        log_event(
            COMPONENT,
            "reload -- configuration re-read and valid; listener, limit and worker changes "
            "take effect at the next restart",
        )

    # -- stop -------------------------------------------------------------------------

    def _stop_workers(self) -> None:
        """SIGTERM to every worker; SIGKILL to those still there after the grace time."""
        for pid in list(self._running):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while self._running:
            for pid in list(self._running):
                try:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    done = pid
                if done:
                    del self._running[pid]
            if not self._running:
                break
            if time.monotonic() > deadline:
                for pid in list(self._running):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(pid, 0)
                    log_event(COMPONENT, f"worker pid {pid} killed after the grace time")
                self._running.clear()
                break
            time.sleep(0.02)


@dataclass(frozen=True)
class _Seats:
    """What every worker inherits from the master."""

    sockets: dict[str, list[socket.socket]]
    counts: dict[str, SharedConnectionCounts]  # by service: smtp, pop3, imap
    failures: SharedFailures
    loads: WorkerLoads  # open connections by worker
    ready_write: int  # the pipe each worker writes one octet to once it serves
    workers: int  # how many workers serve side by side (for the change relay)


def _worker_main(
    loaded: LoadedConfig, listen_overrides: list[str], master: int, index: int, seat: _Seats
) -> int:
    """The forked worker: serve until told to stop; its exit status (never returns)."""
    status = 1
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the master reloads
        _die_with(master)

        def ready() -> None:
            with contextlib.suppress(OSError):  # the master stopped listening after its start
                os.write(seat.ready_write, b"r")

        limiters = {service: table.limiter(index) for service, table in seat.counts.items()}
        worker = WorkerSeat(
            index=index,
            sockets=seat.sockets,
            limiters=limiters,
            failures=seat.failures,
            ready=ready,
            relay=ChangeRelay(f"{master}", index, seat.workers),
            load=seat.loads.seat(index),
        )
        daemon = Daemon(loaded, listen_overrides=listen_overrides, seat=worker)
        status = run_served(daemon.run(), loaded.config.server.event_loop)
    except BaseException as exc:  # the worker must end in os._exit, whatever happened
        with contextlib.suppress(Exception):
            log_event(COMPONENT, f"worker {index}: {exc!r}", level=logging.ERROR)
    finally:
        logging.shutdown()  # flush the maillog
    return status


def _die_with(master: int) -> None:
    """Ask for SIGKILL when the master dies (Linux ``prctl``); exit if it already did."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != master:
        os._exit(1)


async def _recover_queue(loaded: LoadedConfig) -> None:
    """Recovery once, in the master, before any worker opens the queue."""
    queue = await Queue.open(loaded.paths.queue_dir)
    await queue.close()


def _exit_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by signal {os.WTERMSIG(status)}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"
