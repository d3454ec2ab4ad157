"""Opening a user's index: provisioning, recovery, adoption, and the UIDVALIDITY counter.

Owns:
- ``open_index``: open the index; a corrupt or unreadable one is set aside
  (``postoffice-index.sqlite3.corrupt-TIME``) and a new one built, which the
  next sync fills from the disk under fresh UIDVALIDITYs (RFC 3501 §2.3.1.1:
  when UIDs cannot be kept, UIDVALIDITY must change).
- ``provision``: INBOX plus the standard folders with their RFC 6154
  special-use attributes, all subscribed, for a new user.
- ``adopt_disk_folders``: folders other programs made enter the index (a
  standard name gets its special use back); folders gone from disk leave it.
- ``UidValidityCounter``: values at least the current time and always above
  every value given before for this user, kept in ``postoffice-uidvalidity``,
  so that no name ever sees the same UIDVALIDITY twice, not even across an
  index rebuild. A new value is written to a temporary file created with
  ``O_EXCL | O_NOFOLLOW`` (a link planted there is never written through),
  fsync'd, renamed over the counter, and the directory fsync'd, all before
  the value is returned: a crash, even a power loss, cannot hand it out
  again. The counter is read with ``O_NOFOLLOW`` too.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable

from postoffice.core.clock import Clock
from postoffice.core.errors import StoreError
from postoffice.store import names
from postoffice.store.backend import FolderFormat
from postoffice.store.fileio import fsync_dir, write_all
from postoffice.store.index import IndexCorrupt, MailIndex
from postoffice.store.layout import UserPaths

STANDARD_FOLDERS: tuple[tuple[str, str], ...] = (
    ("Sent", "\\Sent"),
    ("Drafts", "\\Drafts"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
)
SPECIAL_BY_NAME = dict(STANDARD_FOLDERS)
_UIDVALIDITY_MAX = 2**32 - 1  # RFC 3501 §9: nz-number is 32-bit

UidValiditySource = Callable[[], int]


class UidValidityCounter:
    """The per-user UIDVALIDITY source (see the module docstring). Call under the user lock."""

    def __init__(self, paths: UserPaths, clock: Clock):
        self._path = paths.uidvalidity_path
        self._clock = clock
        self._fsync = paths.layout.fsync

    def __call__(self) -> int:
        last = self._last()
        value = max(int(self._clock.now()), last + 1)
        if value > _UIDVALIDITY_MAX:
            value = 1 + last % _UIDVALIDITY_MAX
        self._store(value)
        return value

    def _last(self) -> int:
        try:
            fd = os.open(self._path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            return 0
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise StoreError(f"{self._path} is a symbolic link: refusing it") from exc
            raise
        with os.fdopen(fd, "rb") as stream:
            text = stream.read(64)
        try:
            return int(text.strip() or 0)
        except ValueError:
            return 0

    def _store(self, value: int) -> None:
        temporary = self._path.with_name(self._path.name + ".tmp")
        # Left over by a crash (we hold the user lock: nobody else writes it).
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(temporary, flags, 0o600)
        try:
            write_all(fd, f"{value}\n".encode("ascii"))
            if self._fsync:
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        os.close(fd)
        os.replace(temporary, self._path)
        if self._fsync:
            fsync_dir(self._path.parent)


def open_index(paths: UserPaths, *, durable: bool, now: float) -> tuple[MailIndex, bool]:
    """Open (or rebuild) the index; returns it and whether the user is new."""
    fresh = not paths.index_path.exists()
    try:
        return MailIndex.open(paths.index_path, durable=durable), fresh
    except IndexCorrupt:
        index_path = paths.index_path
        os.replace(index_path, index_path.with_name(f"{index_path.name}.corrupt-{int(now)}"))
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(index_path.with_name(index_path.name + suffix))
        return MailIndex.open(index_path, durable=durable), False


def ensure_inbox(index: MailIndex, fmt: FolderFormat, uidvalidity: UidValiditySource) -> None:
    if not fmt.folder_exists(names.INBOX):
        fmt.create_folder(names.INBOX)
    if index.mailbox(names.INBOX) is None:
        with index.transaction():
            index.create_mailbox(names.INBOX, uidvalidity())
            index.subscribe(names.INBOX)


def provision(index: MailIndex, fmt: FolderFormat, uidvalidity: UidValiditySource) -> None:
    for name, use in STANDARD_FOLDERS:
        if not fmt.folder_exists(name):
            fmt.create_folder(name)
        if index.mailbox(name) is None:
            with index.transaction():
                index.create_mailbox(name, uidvalidity(), use)
                index.subscribe(name)


def adopt_disk_folders(index: MailIndex, fmt: FolderFormat, uidvalidity: UidValiditySource) -> None:
    on_disk = set(fmt.discover())
    with index.transaction():
        for row in index.mailboxes():
            if row.name in on_disk or names.is_inbox(row.name):
                continue
            if not fmt.folder_exists(row.name):
                index.delete_mailbox(row.id)
        for name in sorted(on_disk):
            if index.mailbox(name) is None:
                index.create_mailbox(name, uidvalidity(), SPECIAL_BY_NAME.get(name))
