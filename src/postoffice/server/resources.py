"""The process limits a server raises for itself at start: open files.

What this module owns: ``raise_open_files``. Every connection holds a socket,
and an IMAP session may hold a few files besides (index, messages); the
usual soft limit of 1,024 open files would stop a server at a few hundred
clients, long before its memory or CPU. An unprivileged process may raise its
soft limit up to the hard limit (setrlimit(2)), so the server does that at
start, before its workers are forked (they inherit it), and says in the
maillog what it has. It never lowers a limit and never needs root.
"""

from __future__ import annotations

import contextlib
import resource

WANTED_OPEN_FILES = 65_536  # enough for thousands of IMAP IDLE clients a process


def raise_open_files(wanted: int = WANTED_OPEN_FILES) -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE towards ``wanted`` (capped by the hard limit);
    the (soft, hard) limits in force afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        # A container may forbid it: the server then runs with what it has.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft, hard
