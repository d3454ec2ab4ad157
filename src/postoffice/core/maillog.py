"""The maillog: one line per mail event, in a format close to Postfix's.

Every layer logs mail events through the functions here so that the lines
look alike and an administrator's ``grep QUEUEID /var/log/maillog`` tells a
message's whole story::

    Nov 26 16:40:01 mail postoffice/smtpd[4242]: 4Xk2...: from=<a@x.test>, size=1024, nrcpt=1
    Nov 26 16:40:01 mail postoffice/local[4242]: 4Xk2...: to=<b@example.test>, relay=local,
        delay=0.03, dsn=2.0.0, status=sent (delivered to maildir)

``setup_maillog`` (called once by the process that serves) attaches the file
and, in the foreground, stderr. Until then the lines go wherever the root
logger sends them, so libraries and tests never need a log file.

Once attached, ``log_event`` writes its line straight through the one
``MaillogHandler`` (no ``LogRecord``, one ``write`` per line to the file,
which is opened for appending so that the worker processes of one server
never cut into each other's lines); records that reach the ``logging``
logger by other paths go through the same handler.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from pathlib import Path

LOGGER_NAME = "postoffice.maillog"
maillog = logging.getLogger(LOGGER_NAME)


class MaillogFormatter(logging.Formatter):
    """``Mon DD HH:MM:SS host postoffice/COMPONENT[pid]: message`` (syslog style)."""

    def __init__(self, hostname: str):
        super().__init__()
        self.hostname = hostname.split(".", maxsplit=1)[0] or hostname

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%b %d %H:%M:%S", time.localtime(record.created))
        component = getattr(record, "component", "master")
        line = f"{stamp} {self.hostname} postoffice/{component}[{record.process}]: "
        if record.levelno >= logging.ERROR:
            line += "error: "
        elif record.levelno >= logging.WARNING:
            line += "warning: "
        line += record.getMessage()
        if record.exc_info:
            line += " " + self.formatException(record.exc_info).replace("\n", " | ")
        return line


# Control characters in a logged text become "?" (and a line break "|"), so one
# event is always one line of the maillog.
_CONTROLS = dict.fromkeys((*range(32), 127), "?") | {10: "|", 13: None}


# This process's id for the lines (a system call each time otherwise); a forked
# worker gets its own.
_pid = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _pid.__setitem__(0, os.getpid()))


class MaillogHandler(logging.Handler):
    """Writes each line once to the maillog file (``O_APPEND``) and, if asked, to stderr."""

    def __init__(self, path: Path | None, *, hostname: str, foreground: bool):
        super().__init__()
        self.formatter_ = MaillogFormatter(hostname)
        self.setFormatter(self.formatter_)
        self.foreground = foreground
        self._fd: int | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
            self._fd = os.open(path, flags, 0o644)
        self._stamp = (-1, "")  # (second, its text): one strftime per second
        self._lock = threading.Lock()
        self.lost = 0  # lines a write failed for

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._write(self.format(record))
        except Exception:
            self.handleError(record)

    def event(self, component: str, level: int, message: str) -> None:
        """``log_event``'s line, without a ``LogRecord``."""
        now = time.time()
        second = int(now)
        if second != self._stamp[0]:
            self._stamp = (second, time.strftime("%b %d %H:%M:%S", time.localtime(now)))
        prefix = (
            "error: " if level >= logging.ERROR else "warning: " if level >= logging.WARNING else ""
        )
        host = self.formatter_.hostname
        if not message.isprintable():
            # A remote reply or a client's text must not start a line of its own.
            message = message.translate(_CONTROLS)
        self._write(f"{self._stamp[1]} {host} postoffice/{component}[{_pid[0]}]: {prefix}{message}")

    def _write(self, line: str) -> None:
        # A log that cannot be written (a full disk, a closed terminal) must never
        # fail the mail work that logs: the line is lost, the mail is not.
        with self._lock:
            if self._fd is not None:
                data = (line + "\n").encode("utf-8", "replace")
                try:
                    while data:
                        data = data[os.write(self._fd, data) :]
                except OSError:
                    self.lost += 1
            if self.foreground:
                try:
                    sys.stderr.write(line + "\n")
                    sys.stderr.flush()
                except (OSError, ValueError):
                    self.lost += 1

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
        super().close()


# The attached handler (the last one attached), for log_event's short path.
_attached: list[MaillogHandler] = []


def setup_maillog(
    path: Path | None, *, hostname: str, foreground: bool, level: str = "info"
) -> list[logging.Handler]:
    """Attach the maillog file (created with its folder) and, in the foreground, stderr."""
    handler = MaillogHandler(path, hostname=hostname, foreground=foreground)
    maillog.addHandler(handler)
    maillog.setLevel(level.upper())
    maillog.propagate = False
    _attached.append(handler)
    return [handler]


def teardown_maillog(handlers: list[logging.Handler]) -> None:
    for handler in handlers:
        maillog.removeHandler(handler)
        handler.close()
        if handler in _attached:
            _attached.remove(handler)


def log_event(component: str, message: str, *, level: int = logging.INFO) -> None:
    """A free-form event line: ``postoffice/COMPONENT[pid]: message``."""
    if _attached:
        if maillog.isEnabledFor(level):
            _attached[-1].event(component, level, message)
        return
    maillog.log(level, "%s", message, extra={"component": component})


def log_received(component: str, queue_id: str, *, sender: str, size: int, nrcpt: int) -> None:
    """A message entered the queue (Postfix's qmgr ``from=`` line)."""
    log_event(component, f"{queue_id}: from=<{sender}>, size={size}, nrcpt={nrcpt}")


def log_delivery(
    component: str,
    queue_id: str,
    *,
    recipient: str,
    relay: str,
    delay: float,
    dsn: str,
    status: str,
    detail: str,
    orig_to: str | None = None,
) -> None:
    """One recipient's outcome: ``status`` is sent, deferred, bounced or expired."""
    orig = f", orig_to=<{orig_to}>" if orig_to and orig_to != recipient else ""
    log_event(
        component,
        f"{queue_id}: to=<{recipient}>{orig}, relay={relay}, delay={delay:.2f}, "
        f"dsn={dsn}, status={status} ({detail})",
        level=logging.INFO if status == "sent" else logging.WARNING,
    )
