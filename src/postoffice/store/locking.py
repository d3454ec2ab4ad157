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
import stat
import struct
import time
from collections.abc import Iterator
from pathlib import Path

from postoffice.core.errors import StoreError

DOTLOCK_STALE_SECONDS = 120.0
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
    store object with their own ``threading.RLock`` first.
    """

    def __init__(self, path: Path):
        self._path = path
        self._fd = -1
        self._depth = 0

    def acquire(self) -> None:
        if self._depth:
            self._depth += 1
            return
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            lock_fd(fd, exclusive=True, blocking=True)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._depth = 1

    def release(self) -> None:
        self._depth -= 1
        if self._depth:
            return
        fd, self._fd = self._fd, -1
        try:
            unlock_fd(fd)
        finally:
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


def _take_dotlock(path: Path, deadline: float) -> Path:
    dotlock = path.with_name(path.name + ".lock")
    attempt = 0
    while True:
        try:
            fd = os.open(dotlock, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            try:
                age = time.time() - os.stat(dotlock).st_mtime
            except FileNotFoundError:
                continue
            if age > DOTLOCK_STALE_SECONDS:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(dotlock)
                continue
            if time.monotonic() >= deadline:
                raise StoreError(f"timed out waiting for the dotlock {dotlock}") from None
            time.sleep(_backoff(attempt))
            attempt += 1
            continue
        try:
            os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        finally:
            os.close(fd)
        return dotlock


@contextlib.contextmanager
def mbox_lock(
    path: Path, *, timeout: float = DEFAULT_TIMEOUT, create: bool = False
) -> Iterator[int]:
    """Hold the write lock of an mbox; yields the locked descriptor (read/write).

    A missing file is created with ``create``, else ``FileNotFoundError``.
    Order: kernel lock, then dotlock; released in the reverse order.
    """
    deadline = time.monotonic() + timeout
    fd = _open_locked(path, deadline, create)
    try:
        dotlock = _take_dotlock(path, deadline)
        try:
            yield fd
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(dotlock)
    finally:
        try:
            unlock_fd(fd)
        finally:
            os.close(fd)
