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
"""

from __future__ import annotations

import logging
import sys
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
        # The file and stderr share this formatter: the line is made once per record.
        made = record.__dict__.get("_maillog_line")
        if isinstance(made, str):
            return made
        line = self._make(record)
        record.__dict__["_maillog_line"] = line
        return line

    def _make(self, record: logging.LogRecord) -> str:
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


def setup_maillog(
    path: Path | None, *, hostname: str, foreground: bool, level: str = "info"
) -> list[logging.Handler]:
    """Attach the maillog file (created with its folder) and, in the foreground, stderr."""
    formatter = MaillogFormatter(hostname)
    handlers: list[logging.Handler] = []
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(path, encoding="utf-8"))
    if foreground:
        handlers.append(logging.StreamHandler(sys.stderr))
    for handler in handlers:
        handler.setFormatter(formatter)
        maillog.addHandler(handler)
    maillog.setLevel(level.upper())
    maillog.propagate = False
    return handlers


def teardown_maillog(handlers: list[logging.Handler]) -> None:
    for handler in handlers:
        maillog.removeHandler(handler)
        handler.close()


def log_event(component: str, message: str, *, level: int = logging.INFO) -> None:
    """A free-form event line: ``postoffice/COMPONENT[pid]: message``."""
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
