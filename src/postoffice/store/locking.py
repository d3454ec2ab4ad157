"""File locks: the per-user index lock and the classic mbox lock (fcntl, then dotlock).

Kernel locks are Linux open-file-description locks (``F_OFD_SETLK*``): they
conflict with the classic POSIX ``fcntl`` locks that mutt, procmail and
Dovecot take on an mbox, yet belong to one open file rather than to the
whole process, so that two threads of one process exclude each other and
closing an unrelated descriptor of the same file never drops a lock (the
well-known POSIX ``fcntl`` pitfall). Where OFD locks are missing, BSD
``flock`` is the fallback (also per open file).

mbox locking order, as the mail tools agree on it: the kernel lock on the
mbox first, then the dotlock ``FILE.lock`` created with ``O_EXCL``. A dotlock
whose mtime is older than ``DOTLOCK_STALE_SECONDS`` is considered left over
by a crashed program and removed (Dovecot's ``mbox_dotlock_change_timeout``
default is two minutes). Acquisition retries with exponential backoff and
gives up with ``StoreError`` after ``timeout`` seconds.

Our dotlock holds ``PID:HOST``. One of ours whose process is gone from this
host is left over by a crash (SIGKILL, OOM) and is removed at once rather
than after two minutes: the kernel lock, which died with that process, is
held by us by then, so no process of ours can still be inside. A dotlock
in any other form is judged by its age only.

While held, the dotlock is kept fresh: ``Dotlock.refresh`` (called before
each chunk of a long append, rewrite or scan) sets its mtime to now once
``DOTLOCK_REFRESH_SECONDS`` have passed since the last touch, so that
dotlock-only programs never take a long hold for a stale lock. If the
dotlock is gone or replaced when we come to refresh it, another program
broke it: ``refresh`` raises ``StoreError`` so that the operation stops
(an append is then truncated back) instead of writing alongside it.

mbox files are opened with ``O_NOFOLLOW`` and must be regular files with at
most one link: a link planted in a shared spool directory must not redirect
delivery to another file. After the kernel lock is held, the locked
descriptor is checked to still be the file at the path: an expunge replaces
the mbox by rename, and a waiter that locked the old inode would otherwise
append to a file nobody reads.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import stat
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from postoffice.core.errors import StoreError

DOTLOCK_STALE_SECONDS = 120.0
# A quarter of the stale age: a hold survives three missed refreshes.
DOTLOCK_REFRESH_SECONDS = 30.0
DEFAULT_TIMEOUT = 30.0
_HAVE_OFD = hasattr(fcntl, "F_OFD_SETLKW")


def _flock_struct(lock_type: int) -> bytes:
    # struct flock {short l_type; short l_whence; off_t l_start; off_t l_len; pid_t l_pid;}
    # l_pid must be 0 for OFD locks (fcntl(2)); whole file: start 0, len 0.
    return struct.pack("hhxxxxqqi4x", lock_type, os.SEEK_SET, 0, 0, 0)


def lock_fd(fd: int, *, exclusive: bool = True, blocking: bool = True) -> bool:
    """Lock a whole open file; returns False when ``blocking`` is off and it is taken."""
    if _HAVE_OFD:
        command = fcntl.F_OFD_SETLKW if blocking else fcntl.F_OFD_SETLK
        request = _flock_struct(fcntl.F_WRLCK if exclusive else fcntl.F_RDLCK)
        try:
            fcntl.fcntl(fd, command, request)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES) and not blocking:
                return False
            raise
        return True
    operation = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    if not blocking:
        operation |= fcntl.LOCK_NB
    try:
        fcntl.flock(fd, operation)
    except BlockingIOError:
        return False
    return True


def unlock_fd(fd: int) -> None:
    if _HAVE_OFD:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _flock_struct(fcntl.F_UNLCK))
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)


class UserLock:
    """An exclusive, re-entrant lock over one user's index and folders.

    Re-entrant for the thread that holds it; callers serialise threads of one
    store object with their own ``threading.RLock`` first. The lock file stays
    open between holds (an OFD lock belongs to the open file, so unlocking is
    enough to let others in) until ``close``: a long-lived store does not
    open and close it for every operation.
    """

    def __init__(self, path: Path):
        self._path = path
        self._fd = -1
        self._depth = 0

    def acquire(self) -> None:
        if self._depth:
            self._depth += 1
            return
        if self._fd < 0:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        lock_fd(self._fd, exclusive=True, blocking=True)
        self._depth = 1

    def release(self) -> None:
        self._depth -= 1
        if self._depth:
            return
        unlock_fd(self._fd)

    def close(self) -> None:
        """Close the lock file (when not held; the next ``acquire`` opens it again)."""
        if self._depth == 0 and self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()


def _backoff(attempt: int) -> float:
    return min(0.002 * 2.0 ** min(attempt, 10), 0.1)


def _open_locked(path: Path, deadline: float, create: bool) -> int:
    """Open ``path`` and take the kernel lock on the file now at that path."""
    attempt = 0
    flags = os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW | (os.O_CREAT if create else 0)
    while True:
        try:
            fd = os.open(path, flags, 0o600)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            raise StoreError(f"{path} is a symbolic link: refusing to write through it") from exc
        try:
            _check_plain_file(fd, path)
            if lock_fd(fd, exclusive=True, blocking=False):
                try:
                    same = os.fstat(fd).st_ino == os.stat(path).st_ino
                except FileNotFoundError:
                    same = False
                if same:
                    return fd
                unlock_fd(fd)
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
        if time.monotonic() >= deadline:
            raise StoreError(f"timed out waiting for the lock on {path}")
        time.sleep(_backoff(attempt))
        attempt += 1


def _check_plain_file(fd: int, path: Path) -> None:
    """Refuse anything but a regular file with one name: a hard link planted in a
    shared spool directory would make delivery write to a file of another's choosing
    (the classic /var/spool/mail attack, which O_NOFOLLOW stops for symbolic links)."""
    st = os.fstat(fd)
    # No links at all is fine here: the file was just replaced (an expunge's
    # rename), which the inode check after locking notices.
    if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
        raise StoreError(f"{path} is not a plain mailbox file (a device, or hard-linked)")


def refresh_clock() -> float:
    """The clock ``Dotlock.refresh`` measures its interval with (tests replace it)."""
    return time.monotonic()


def _owner_tag() -> bytes:
    return f"{os.getpid()}:{socket.gethostname()}\n".encode()


def _left_by_dead_process(dotlock: Path) -> bool:
    """True when ``dotlock`` is one of ours whose process no longer runs on this host."""
    try:
        with open(dotlock, "rb") as stream:
            content = stream.read(300)
    except OSError:
        return False
    pid_text, colon, host = content.rstrip(b"\n").partition(b":")
    if not colon or not pid_text.isdigit() or host != socket.gethostname().encode():
        return False
    pid = int(pid_text)
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # EPERM: it runs, as another user
    return False


class Dotlock:
    """A dotlock we hold (see the module docstring); ``release`` removes it."""

    def __init__(self, path: Path, fd: int):
        self.path = path
        self._fd = fd
        self._inode = os.fstat(fd).st_ino
        self._touched = refresh_clock()

    def _ours(self) -> bool:
        try:
            return os.lstat(self.path).st_ino == self._inode
        except FileNotFoundError:
            return False

    def refresh(self) -> None:
        """Touch the dotlock if ``DOTLOCK_REFRESH_SECONDS`` passed since the last touch."""
        now = refresh_clock()
        if now - self._touched < DOTLOCK_REFRESH_SECONDS:
            return
        if not self._ours():
            raise StoreError(f"the dotlock {self.path} was broken by another program")
        os.utime(self._fd)  # futimens(2) on our own file: now
        self._touched = now

    def release(self) -> None:
        try:
            if self._ours():  # never remove a dotlock another program took after breaking ours
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
        finally:
            os.close(self._fd)


def _take_dotlock(path: Path, deadline: float) -> Dotlock:
    dotlock = path.with_name(path.name + ".lock")
    attempt = 0
    while True:
        try:
            fd = os.open(
                dotlock,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW,
                0o600,
            )
        except FileExistsError:
            try:
                age = time.time() - os.stat(dotlock).st_mtime
            except FileNotFoundError:
                continue
            if age > DOTLOCK_STALE_SECONDS or _left_by_dead_process(dotlock):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(dotlock)
                continue
            if time.monotonic() >= deadline:
                raise StoreError(f"timed out waiting for the dotlock {dotlock}") from None
            time.sleep(_backoff(attempt))
            attempt += 1
            continue
        try:
            os.write(fd, _owner_tag())
            return Dotlock(dotlock, fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(dotlock)
            raise


@dataclass(frozen=True)
class MboxLock:
    """The locks of one mbox while held: the locked descriptor and our dotlock."""

    fd: int
    dotlock: Dotlock


@contextlib.contextmanager
def mbox_lock(
    path: Path, *, timeout: float = DEFAULT_TIMEOUT, create: bool = False
) -> Iterator[MboxLock]:
    """Hold the write lock of an mbox; yields the locked descriptor (read/write) and
    the dotlock to refresh during long work.

    A missing file is created with ``create``, else ``FileNotFoundError``.
    Order: kernel lock, then dotlock; released in the reverse order.
    """
    deadline = time.monotonic() + timeout
    fd = _open_locked(path, deadline, create)
    try:
        dotlock = _take_dotlock(path, deadline)
        try:
            yield MboxLock(fd, dotlock)
        finally:
            dotlock.release()
    finally:
        try:
            unlock_fd(fd)
        finally:
            os.close(fd)
