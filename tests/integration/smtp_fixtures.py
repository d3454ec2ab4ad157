"""A real ``postoffice serve`` process for SMTP integration tests, and a raw SMTP client.

``SmtpServer`` owns one data dir (``postoffice init`` run in this process),
the ``[smtp]`` limits written into its config file, and the server subprocess
(``sys.executable -m postoffice serve --listen smtp=127.0.0.1:0``, and the
same for ``pop3``, ``pop3s``, ``imap`` and ``imaps``): it waits for the ``listening:`` lines of
the maillog to learn the ports, and is always
stopped (SIGTERM, then SIGKILL) by ``stop()``. It also reads what the tests
assert on: the Maildir of a user, the spool (``spool/mqueue``), the maillog
and the memory of the server's processes (``/proc/PID/status``).

``RawClient`` speaks SMTP octet by octet over a plain socket (bound to a
chosen source address: 127.0.0.1 is ``mynetworks``, 127.0.0.2 and up are
Internet clients), for what smtplib refuses to send.

Nothing here ever connects anywhere but 127.0.0.0/8.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from postoffice.cli.main import main
from postoffice.directory.tables.tableset import SERVER_CHECK_INTERVAL
from postoffice.queue.spares import is_spare

HOST = "127.0.0.1"
TRUSTED = "127.0.0.1"  # in the default mynetworks
OUTSIDER = "127.0.0.2"  # an Internet client (DESIGN.md §5)
DOMAIN = "example.test"
SERVE = (sys.executable, "-m", "postoffice")
PASSWORD = "pw"
NO_DNS: dict[str, object] = {"nameservers": ["127.0.0.1:9"], "dns_timeout": 1.0}


def run_main(*args: str) -> str:
    """``postoffice ARGS`` in this process (fast: no interpreter start); its stdout."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise AssertionError(f"postoffice {' '.join(args)}: {err.getvalue()}") from exc
    return out.getvalue()


def wait_for(predicate: Callable[[], object], timeout: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"condition not met in {timeout}s: {what or predicate}")


def set_config_values(config: Path, section: str, values: dict[str, object]) -> None:
    """Replace ``key = value`` lines of ``[section]`` in a config ``postoffice init`` wrote."""
    text = config.read_text(encoding="utf-8")
    head, marker, rest = text.partition(f"[{section}]\n")
    assert marker, f"no [{section}] in {config}"
    body, next_marker, tail = rest.partition("\n[")
    for key, value in values.items():
        literal = repr(value).lower() if isinstance(value, bool) else repr(value)
        if isinstance(value, str):
            literal = '"' + value + '"'
        body, count = re.subn(rf"(?m)^{key} = [^#\n]*", f"{key} = {literal} ", body)
        if not count:
            body += f"\n{key} = {literal}"
    config.write_text(head + marker + body + next_marker + tail, encoding="utf-8")


def add_config_values(config: Path, section: str, values: dict[str, object]) -> None:
    """Set ``key = value`` lines of ``[section]``, adding the section when it is missing."""
    text = config.read_text(encoding="utf-8")
    if f"[{section}]\n" not in text:
        config.write_text(text.rstrip("\n") + f"\n\n[{section}]\n", encoding="utf-8")
    set_config_values(config, section, values)


ROLES = ("smtp", "submission", "submissions", "pop3", "pop3s", "imap", "imaps")


@dataclass
class SmtpServer:
    """One data dir and the ``postoffice serve`` process over it (see the module doc)."""

    data: Path
    users: tuple[str, ...] = ("demo",)
    smtp: dict[str, object] = field(default_factory=dict)
    store_format: str | None = None  # written before the users are provisioned
    password: str = PASSWORD
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    pop3_port: int = 0
    pop3s_port: int = 0
    imap_port: int = 0
    imaps_port: int = 0
    submission_port: int = 0
    submissions_port: int = 0
    host: str = HOST  # every role listens here
    domain: str = DOMAIN
    hostname: str | None = None  # ``init --hostname``; None: init's default
    sections: dict[str, dict[str, object]] = field(default_factory=dict)  # more config
    fixed_ports: dict[str, int] = field(default_factory=dict)  # role -> port (else 0)
    _stderr: io.BufferedWriter | None = None

    @property
    def config(self) -> Path:
        return self.data / "postoffice.toml"

    @property
    def maillog_path(self) -> Path:
        return self.data / "log" / "maillog"

    @property
    def spool(self) -> Path:
        return self.data / "spool" / "mqueue"

    @property
    def cafile(self) -> str:
        return str(self.data / "etc" / "tls" / "cert.pem")

    @property
    def access_file(self) -> Path:
        return self.data / "etc" / "mail" / "access"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    # -- life cycle -----------------------------------------------------------------

    def setup(self) -> SmtpServer:
        """``postoffice init``, the users, the ``[smtp]`` values."""
        named = ("--hostname", self.hostname) if self.hostname else ()
        run_main("init", "--data-dir", str(self.data), "--domain", self.domain, *named)
        if self.store_format is not None:
            set_config_values(self.config, "store", {"format": self.store_format})
        for user in self.users:
            run_main(
                "-c",
                str(self.config),
                "user",
                "add",
                f"{user}@{self.domain}",
                "--password",
                self.password,
            )
        if self.smtp:
            set_config_values(self.config, "smtp", self.smtp)
        # Mail for other domains must never look for a real mail host: unless a test
        # serves DNS itself, the resolver asks a loopback port where nothing
        # listens, so remote recipients wait in the queue (deferred).
        sections = {**self.sections}
        sections["delivery"] = {**NO_DNS, **sections.get("delivery", {})}
        for section, values in sections.items():
            add_config_values(self.config, section, values)
        return self

    def start(self) -> SmtpServer:
        """Start ``postoffice serve``; return once it listens and said ready."""
        assert self.process is None or self.process.poll() is not None
        offset = self.maillog_path.stat().st_size if self.maillog_path.exists() else 0
        if self._stderr is not None:
            self._stderr.close()
        self._stderr = open(self.data / "serve.stderr", "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [*SERVE, "-c", str(self.config), "serve"]
            + [f"--listen={role}={self.host}:{self.fixed_ports.get(role, 0)}" for role in ROLES],
            stdin=subprocess.DEVNULL,
            stdout=self._stderr,
            stderr=self._stderr,
        )
        found: list[tuple[str, str]] = []

        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited: {(self.data / 'serve.stderr').read_text()}")
            if not self.maillog_path.exists():
                return False
            text = self.maillog_path.read_text(encoding="utf-8", errors="replace")[offset:]
            found[:] = re.findall(rf"listening: (\w+) on {re.escape(self.host)}:(\d+)", text)
            return bool(found) and "ready:" in text

        try:
            wait_for(ready, timeout=30, what="the server's ready line")
        except BaseException:
            self.stop()
            raise
        ports = {role: int(port) for role, port in found}
        self.port, self.pop3_port, self.pop3s_port = (ports[r] for r in ("smtp", "pop3", "pop3s"))
        self.imap_port, self.imaps_port = ports["imap"], ports["imaps"]
        self.submission_port = ports["submission"]
        self.submissions_port = ports["submissions"]
        return self

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a few seconds; never leaves the process behind."""
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=8)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def kill(self) -> None:
        """SIGKILL now (a crash), and reap it."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    # -- what tests look at ---------------------------------------------------------

    def maillog(self) -> str:
        if not self.maillog_path.exists():
            return ""
        return self.maillog_path.read_text(encoding="utf-8", errors="replace")

    def wait_log(self, pattern: str, timeout: float = 15.0) -> str:
        """Wait for a maillog line matching the regular expression; the line."""
        regex = re.compile(pattern)
        found: list[str] = []

        def seen() -> bool:
            found[:] = [line for line in self.maillog().splitlines() if regex.search(line)]
            return bool(found)

        wait_for(seen, timeout=timeout, what=f"maillog line {pattern!r}")
        return found[-1]

    def maildir(self, user: str = "demo") -> Path:
        return self.data / "mail" / self.domain / user

    def mailbox(self, user: str = "demo") -> list[bytes]:
        """The messages delivered to ``user``'s INBOX (new/ and cur/), oldest first."""
        root = self.maildir(user)
        files = [p for sub in ("new", "cur") for p in (root / sub).glob("*") if p.is_file()]
        return [p.read_bytes() for p in sorted(files, key=lambda p: p.stat().st_mtime_ns)]

    def messages_with(self, token: bytes, user: str = "demo") -> list[bytes]:
        return [m for m in self.mailbox(user) if token in m]

    def wait_delivered(
        self, token: bytes, user: str = "demo", count: int = 1, timeout: float = 15.0
    ) -> list[bytes]:
        found: list[bytes] = []

        def delivered() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited with status {self.process.returncode}")
            found[:] = self.messages_with(token, user)
            return len(found) >= count

        wait_for(delivered, timeout=timeout, what=f"{count} message(s) with {token!r} for {user}")
        return found

    def queue_ids(self) -> list[str]:
        """Ids of the messages in the queue: one ``qfID`` file each."""
        return sorted(p.name[2:] for p in self.spool.glob("qf*"))

    def queue_files(self) -> list[str]:
        """Everything in the spool but its two folders, plus what ``tmp/`` holds
        (but spare files: emptied inodes kept for reuse, no message's)."""
        names = [p.name for p in self.spool.iterdir() if p.name not in ("tmp", "quarantine")]
        names += ["tmp/" + p.name for p in (self.spool / "tmp").iterdir() if not is_spare(p.name)]
        return sorted(names)

    def control_files(self) -> str:
        """Every control file's text (the envelopes the queue holds)."""
        return "\n".join(
            p.read_text(encoding="utf-8", errors="replace") for p in self.spool.glob("qf*")
        )

    def wait_queue_empty(self, timeout: float = 15.0) -> None:
        wait_for(lambda: not self.queue_files(), timeout=timeout, what="an empty queue")

    def cli(self, *args: str) -> str:
        """``postoffice -c CONFIG ARGS`` as its own process (as an administrator runs it)."""
        result = subprocess.run(
            [sys.executable, "-m", "postoffice", "-c", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def worker_pids(self) -> list[int]:
        """The worker processes the server's master forked (none when it works alone)."""
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        return [int(pid) for pid in children.read_text(encoding="ascii").split()]

    def processes(self) -> list[int]:
        """Every process of the server: the one ``serve`` started and its workers."""
        return [self.pid, *self.worker_pids()]

    def memory_kb(self, key: str = "VmRSS") -> int:
        """``VmRSS`` (resident now) or ``VmHWM`` (peak) of the server's processes, summed, in kB.

        Whichever worker takes a connection, its growth shows in the sum.
        """
        total = 0
        for pid in self.processes():
            status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
            match = re.search(rf"^{key}:\s+(\d+) kB", status, re.MULTILINE)
            assert match is not None
            total += int(match.group(1))
        return total

    def reset_peak_memory(self) -> None:
        """Start ``VmHWM`` afresh from the current resident size (proc(5) ``clear_refs`` 5)."""
        for pid in self.processes():
            Path(f"/proc/{pid}/clear_refs").write_text("5", encoding="ascii")

    def write_access(self, text: str) -> None:
        """Replace ``etc/mail/access``; the server re-reads it when it changed."""
        path = self.access_file
        before = path.stat().st_mtime_ns if path.exists() else 0
        path.write_text(text, encoding="utf-8")
        stat = path.stat()
        if stat.st_mtime_ns <= before:  # make the change visible whatever the clock granularity
            os.utime(path, ns=(stat.st_atime_ns, before + 1_000_000_000))
        # The server re-checks its tables at most once per SERVER_CHECK_INTERVAL.
        time.sleep(SERVER_CHECK_INTERVAL + 0.1)

    # -- clients --------------------------------------------------------------------

    def connect(
        self, source: str = TRUSTED, *, greeting: bool = True, timeout: float = 10.0
    ) -> RawClient:
        client = RawClient(self.port, source=source, timeout=timeout)
        if greeting:
            reply = client.reply()
            assert reply.code == 220, reply
        return client


@dataclass(frozen=True)
class Reply:
    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def __str__(self) -> str:
        return f"{self.code} {self.text}"


class RawClient:
    """SMTP over a plain socket: send octets, read whole replies (multi-line aware)."""

    def __init__(self, port: int, *, source: str = TRUSTED, timeout: float = 10.0):
        assert source.startswith("127."), "tests talk to 127.0.0.0/8 only"
        self.sock = socket.create_connection(
            (HOST, port), timeout=timeout, source_address=(source, 0)
        )
        self.buffer = bytearray()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes | str) -> None:
        self.sock.sendall(data.encode("utf-8") if isinstance(data, str) else data)

    def _line(self) -> bytes:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed by the server; unread: {bytes(self.buffer)!r}")
            self.buffer += chunk
        end = self.buffer.index(b"\n") + 1
        line = bytes(self.buffer[:end])
        del self.buffer[:end]
        return line

    def reply(self) -> Reply:
        lines: list[str] = []
        while True:
            line = self._line().rstrip(b"\r\n").decode("utf-8", "replace")
            assert len(line) >= 3 and line[:3].isdigit(), f"not a reply line: {line!r}"
            lines.append(line[4:])
            if len(line) == 3 or line[3] == " ":
                return Reply(int(line[:3]), tuple(lines))

    def replies(self, count: int) -> list[Reply]:
        return [self.reply() for _ in range(count)]

    def command(self, line: str) -> Reply:
        self.send(line + "\r\n")
        return self.reply()

    def ehlo(self, name: str = "client.test") -> Reply:
        reply = self.command(f"EHLO {name}")
        assert reply.code == 250, reply
        return reply

    def rest(self, timeout: float = 5.0) -> bytes:
        """Everything the server still sends until it closes the connection (or ``timeout``)."""
        self.sock.settimeout(timeout)
        data = bytes(self.buffer)
        self.buffer.clear()
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := self.sock.recv(65536):
                data += chunk
        return data

    def closed_by_server(self, timeout: float = 5.0) -> bool:
        """True when the server has closed its side (EOF or reset) within ``timeout``."""
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(65536):
                pass
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True
        return True


@contextlib.contextmanager
def running(server: SmtpServer) -> Iterator[SmtpServer]:
    """Set up and start ``server``; stop it however the block ends."""
    server.setup()
    try:
        server.start()
        yield server
    finally:
        server.stop()


QUEUED = re.compile(r"queued as (\w+)")


def queue_id_of(reply: Reply | str) -> str:
    match = QUEUED.search(str(reply))
    assert match is not None, f"no queue id in {reply}"
    return match.group(1)
