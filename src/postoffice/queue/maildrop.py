"""The maildrop: where the ``sendmail`` command leaves mail for the server to queue.

What this module owns: the drop file, its format and its two ends. The
``sendmail`` command (any local user, with or without a running server)
writes one file per message with ``write_drop``; the server's pickup reads
it with ``read_drop``, queues the message durably, and only then removes
the file (Postfix's ``maildrop``/``pickup`` split, the classic way to take
mail from programs on the host without trusting them with the queue).

Format (all octets; the header lines are ASCII, UTF-8 for addresses):

    postoffice-drop 1
    uid 1000
    sender alice@example.test        (empty after "sender" for <>)
    recipient bob@example.test       (once per recipient)
    <empty line>
    the message, CRLF line ends

Invariants:
- a drop file appears under its final name only whole: it is written to
  ``tmp-NAME``, fsync'd, renamed to ``NAME`` and the directory fsync'd
  before ``write_drop`` returns (so ``sendmail`` exiting 0 means the mail
  survives a crash, as a queue file would). A user who is not the
  directory's owner cannot open it to fsync it (mode 1733 hides the list):
  for them the file is fsync'd and the rename is left to the file system;
- names are unique and unguessable (time, pid and 96 random bits), so one
  user cannot predict or replace another's file;
- ``read_drop`` accepts only this format, with at most ``MAX_RECIPIENTS``
  recipients and a bounded header; anything else raises ``DropError``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from postoffice.core.errors import PostofficeError
from postoffice.queue.durable import FsHooks, sync_directory_path, write_all

MAGIC: Final = b"postoffice-drop 1\n"
TMP_PREFIX: Final = "tmp-"
MAX_RECIPIENTS: Final = 10_000
MAX_HEADER_OCTETS: Final = 4 * 1024 * 1024
DIRECTORY_MODE: Final = 0o1733  # like /var/spool/postfix/maildrop: anyone may drop, none may list


class DropError(PostofficeError):
    """A drop file that is not one (damaged, or written by something else)."""


@dataclass(frozen=True, slots=True)
class Drop:
    uid: int
    sender: str  # "" for the null reverse-path
    recipients: tuple[str, ...]
    data: bytes


def ensure_maildrop(path: Path) -> None:
    """Create the maildrop directory with its sticky, write-only mode if it is missing."""
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, DIRECTORY_MODE)


def write_drop(directory: Path, drop: Drop, *, fsync: bool = True) -> Path:
    """Leave ``drop`` in ``directory`` (see the module docstring); its final path."""
    for line in (drop.sender, *drop.recipients):
        if "\n" in line or "\r" in line:
            raise DropError("an address with a line break")
    head = [MAGIC, b"uid %d\n" % drop.uid, b"sender " + drop.sender.encode("utf-8") + b"\n"]
    head += [b"recipient " + r.encode("utf-8") + b"\n" for r in drop.recipients]
    octets = b"".join(head) + b"\n" + drop.data
    name = f"{time.time_ns():x}.{os.getpid()}.{secrets.token_hex(12)}"
    tmp = directory / (TMP_PREFIX + name)
    final = directory / name
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        write_all(fd, octets)
        if fsync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.close(fd)
    os.rename(tmp, final)
    # Mode 1733: a user other than the owner may not open the directory to
    # fsync it (Postfix's postdrop reads it by its setgid group). The file
    # itself is on disk; the rename is as durable as the file system makes it.
    with contextlib.suppress(PermissionError):
        if fsync:
            sync_directory_path(directory, FsHooks())
    return final


def read_drop(path: Path) -> Drop:
    """Read one drop file; ``DropError`` when it is not one."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as stream:
        octets = stream.read()
    if not octets.startswith(MAGIC):
        raise DropError(f"{path.name}: not a drop file")
    end = octets.find(b"\n\n", len(MAGIC) - 1)
    if end < 0 or end > MAX_HEADER_OCTETS:
        raise DropError(f"{path.name}: no end of the envelope")
    uid: int | None = None
    sender: str | None = None
    recipients: list[str] = []
    for raw in octets[len(MAGIC) : end].split(b"\n"):
        key, _, value = raw.partition(b" ")
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DropError(f"{path.name}: an envelope line is not UTF-8") from exc
        if key == b"uid" and uid is None and text.isdigit():
            uid = int(text)
        elif key == b"sender" and sender is None:
            sender = text
        elif key == b"recipient" and text and len(recipients) < MAX_RECIPIENTS:
            recipients.append(text)
        else:
            raise DropError(f"{path.name}: unexpected envelope line {raw[:40]!r}")
    if uid is None or sender is None or not recipients:
        raise DropError(f"{path.name}: an incomplete envelope")
    return Drop(uid, sender, tuple(recipients), octets[end + 2 :])


def pending_drops(directory: Path) -> list[Path]:
    """The drop files waiting, oldest first (names start with the time)."""
    try:
        with os.scandir(directory) as entries:
            names = [e.name for e in entries if not e.name.startswith((TMP_PREFIX, "."))]
    except FileNotFoundError:
        return []
    return [directory / name for name in sorted(names)]


FLUSH_REQUEST = ".flush"  # a file the server's pickup takes as "scan the queue now"


def request_flush(directory: Path) -> None:
    """Ask a running server to scan its queue at once (``queue flush``, ``sendmail -q``).

    The pickup, which looks at the maildrop every second, removes the file and
    wakes the queue runner; with no server running the file waits for it.
    """
    path = directory / FLUSH_REQUEST
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    os.close(fd)


def take_flush_request(directory: Path) -> bool:
    """True (once) when a flush was requested since the last call."""
    try:
        os.unlink(directory / FLUSH_REQUEST)
    except FileNotFoundError:
        return False
    return True
