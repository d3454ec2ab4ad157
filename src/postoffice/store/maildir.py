"""Maildir and Maildir++ on disk: delivery, flags in file names, scanning.

Sources: D. J. Bernstein, "Using maildir format" (cr.yp.to/proto/maildir.html)
and the Maildir++ conventions (Courier, also Dovecot's LAYOUT=maildir++).

Invariants:
- A message becomes visible only by an atomic link (or rename) from ``tmp/``
  into ``new/`` or ``cur/`` after its data is written and fsync'd; a crash
  before that leaves at most a file in ``tmp/``, which is never a message.
  Files in ``tmp/`` older than 36 hours are removed (the spec's rule). A
  crash after the link but before the index commit leaves a complete file
  the index does not know: the next scan adopts it, once, under a new UID.
  So no append intent is needed here (``append_intent`` is None).
- A unique name is ``SECONDS.MUSECPPID QCOUNTER RRANDOM.HOST`` (Bernstein's
  modern recommendation with Dovecot's Q and R fields), so names never clash
  between processes, threads or hosts; ``/`` and ``:`` in the host name are
  written ``\\057`` and ``\\072`` as the spec asks.
- Flags live in the name's info ``:2,LETTERS`` (letters sorted in ASCII
  order: D draft, F flagged, P passed, R replied, S seen, T trashed); setting
  flags renames the file within ``cur/``. Letters we do not map (P, Dovecot's
  lower-case keyword letters) are kept. Keywords live only in the index.
- The message bytes are stored exactly as given; size = file size.
- Folder ``a/b`` is the directory ``.a.b`` holding its own cur/new/tmp and a
  ``maildirfolder`` marker file (Maildir++). A folder is deleted by renaming
  it to ``..postoffice-deleted-*`` first (which can never be a folder name,
  since encoded names never start with a dot), then removing that tree.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import secrets
import shutil
import socket
import stat
import time
from collections.abc import Iterator, Sequence, Set
from dataclasses import dataclass
from pathlib import Path

from postoffice.core.errors import MailboxNameError, StoreError
from postoffice.store import names
from postoffice.store.api import FLAG_BITS
from postoffice.store.backend import AppendMeta, MessageGone, ScanResult, delivery_tag
from postoffice.store.fileio import (
    FileReader,
    MessageSource,
    fsync_dir,
    open_message_file,
    source_chunks,
    write_all,
)
from postoffice.store.index import AppendIntent, MessageRow, NewMessage
from postoffice.store.layout import UserPaths

INFO = ":2,"
_ARRIVAL = re.compile(r"(\d+)\.(?:M(\d+))?")
# Bernstein's info letters for the IMAP system flags.
LETTER_OF_FLAG = {
    "\\Draft": "D",
    "\\Flagged": "F",
    "\\Answered": "R",
    "\\Seen": "S",
    "\\Deleted": "T",
}
_BIT_OF_LETTER = {letter: FLAG_BITS[flag] for flag, letter in LETTER_OF_FLAG.items()}
TMP_MAX_AGE = 36 * 3600
# A directory mtime this recent may not change again for a change made within
# the same timestamp tick: 2 s covers file systems with whole (or FAT's two)
# seconds; where timestamps carry fractions of a second (ext4, xfs, btrfs,
# tmpfs: the kernel's coarse clock, a tick of at most 10 ms), 0.1 s does.
_UNSTABLE_SECONDS = 2.0
_UNSTABLE_SECONDS_FINE = 0.1
_NS = 1_000_000_000
_FOLDER_TEXTS = 1024  # folder paths kept as text, at most (``_folder_text``)
_DELETED_PREFIX = "..postoffice-deleted-"
_counter = itertools.count(1)


def _host() -> str:
    return socket.gethostname().replace("/", "\\057").replace(":", "\\072") or "localhost"


_HOST = _host()


def unique_name(delivery_tag: str | None = None) -> str:
    """A Maildir unique name; a local delivery's tag rides in it as ``K<tag>``, so
    that a file found in new/ without its index row still names its delivery."""
    now = time.time()
    seconds = int(now)
    micro = int((now - seconds) * 1_000_000)
    tag = "" if delivery_tag is None else f"K{delivery_tag}"
    return f"{seconds}.M{micro}P{os.getpid()}Q{next(_counter)}R{secrets.token_hex(8)}{tag}.{_HOST}"


def arrival_key(base: str) -> tuple[int, int, int, str]:
    """Sort key putting unique names in delivery order: by the seconds and the
    microseconds (``M``, not zero-padded, so compared as numbers), then by name.
    Names of another form sort after ours, by name."""
    match = _ARRIVAL.match(base)
    if match is None:
        return 1, 0, 0, base
    return 0, int(match[1]), int(match[2] or 0), base


def split_name(filename: str) -> tuple[str, int, str]:
    """A file name -> (unique base, flag bits, letters we do not map)."""
    base, sep, info = filename.partition(INFO)
    if not sep:
        return filename.partition(":")[0], 0, ""
    bits = 0
    other = []
    for letter in info:
        bit = _BIT_OF_LETTER.get(letter)
        if bit is None:
            other.append(letter)
        else:
            bits |= bit
    return base, bits, "".join(other)


def info_name(base: str, bits: int, other: str = "") -> str:
    """``base:2,LETTERS`` with the letters in ASCII order (as mutt and Dovecot expect)."""
    letters = {letter for letter, bit in _BIT_OF_LETTER.items() if bits & bit}
    letters.update(other)
    return base + INFO + "".join(sorted(letters))


@dataclass
class PreparedMessage:
    folder: Path
    base: str
    tmp: Path
    size: int


class MaildirFormat:
    """The ``FolderFormat`` for Maildir++ (see ``backend.FolderFormat``)."""

    sync_before_append = False
    immutable_messages = True
    flag_changes_detect_moves = True

    def __init__(self, paths: UserPaths, *, fsync: bool = True):
        self._paths = paths
        self._fsync = fsync
        self._dirty: set[Path] = set()
        # (folder, fingerprint, listing) of a ``same_files`` that found a difference,
        # for the ``scan`` called next under the same locks.
        self._listed: tuple[str, str, dict[str, str]] | None = None
        # Each folder's path as text, for the name of every message file opened
        # (a Path made and joined per message was a sixth of a first SEARCH).
        self._folder_texts: dict[str, str] = {}

    def folder(self, name: str) -> Path:
        return self._paths.maildir_folder(name)

    def _folder_text(self, name: str) -> str:
        text = self._folder_texts.get(name)
        if text is None:
            if len(self._folder_texts) >= _FOLDER_TEXTS:
                self._folder_texts.clear()
            text = self._folder_texts[name] = str(self.folder(name))
        return text

    def folder_exists(self, name: str) -> bool:
        folder = self.folder(name)
        # A symbolic link is no folder of ours (it could lead out of the mail directory).
        if not names.is_inbox(name) and folder.is_symlink():
            return False
        try:
            return stat.S_ISDIR(os.lstat(folder / "cur").st_mode)
        except (FileNotFoundError, NotADirectoryError):
            return False

    def discover(self) -> list[str]:
        found = [names.INBOX]
        for entry in os.scandir(self._paths.mail_dir):
            if not entry.name.startswith(".") or entry.name.startswith(".."):
                continue
            if not entry.is_dir(follow_symlinks=False):
                continue
            try:
                if not stat.S_ISDIR(os.lstat(os.path.join(entry.path, "cur")).st_mode):
                    continue
            except OSError:
                continue
            try:
                parts = [names.decode_component(p) for p in entry.name[1:].split(".")]
                name = names.mailbox_name(names.SEPARATOR.join(parts))
            except MailboxNameError:
                continue  # not a folder we can name safely: leave it alone
            if self.folder(name).name == entry.name:
                found.append(name)
        return found

    def create_parent(self, name: str) -> bool:
        self.create_folder(name)  # a Maildir++ folder holds mail and folders alike
        return True

    def create_folder(self, name: str) -> None:
        folder = self.folder(name)
        make_maildir(folder, subfolder=not names.is_inbox(name))
        if self._fsync:
            fsync_dir(folder)
            fsync_dir(folder.parent)

    def delete_folder(self, name: str) -> None:
        folder = self.folder(name)
        if not folder.exists():
            return
        doomed = folder.with_name(_DELETED_PREFIX + secrets.token_hex(8))
        os.rename(folder, doomed)
        if self._fsync:
            fsync_dir(folder.parent)
        shutil.rmtree(doomed, ignore_errors=True)

    def rename_folders(self, pairs: Sequence[tuple[str, str]]) -> None:
        moves = [(self.folder(old), self.folder(new)) for old, new in pairs]
        for _, target in moves:
            if target.exists():
                raise StoreError(f"cannot rename: {target.name} already exists on disk")
        for source, target in moves:
            if source.exists():
                os.rename(source, target)
        if self._fsync:
            fsync_dir(self._paths.mail_dir)

    @contextlib.contextmanager
    def locked(self, names: Sequence[str]) -> Iterator[None]:
        # Maildir needs no lock against other programs: every change is a rename.
        yield

    def fingerprint(self, name: str) -> str:
        folder = self.folder(name)
        try:
            new = os.stat(folder / "new")
            cur = os.stat(folder / "cur")
        except FileNotFoundError:
            return ""
        fine = new.st_mtime_ns % _NS or cur.st_mtime_ns % _NS
        window = _UNSTABLE_SECONDS_FINE if fine else _UNSTABLE_SECONDS
        if time.time() - max(new.st_mtime, cur.st_mtime) < window:
            return ""
        return f"{new.st_ino}:{new.st_mtime_ns}:{cur.st_ino}:{cur.st_mtime_ns}"

    def same_files(self, name: str, indexed: Set[str]) -> bool:
        # The listing's names in one set against the index's: the usual answer
        # after a change of our own within the fingerprint's unstable window,
        # without a row object per message (100,000 of them). When they differ,
        # the ``scan`` that follows uses this listing (and the fingerprint taken
        # before it) rather than reading the folder again.
        self._listed = None
        state = self.fingerprint(name)
        on_disk = _listing(self.folder(name))
        if set(on_disk.values()) == indexed:
            return True
        self._listed = (name, state, on_disk)
        return False

    def scan(self, name: str, known: list[MessageRow], state: str) -> ScanResult:
        folder = self.folder(name)
        listed, self._listed = self._listed, None
        if listed is not None and listed[0] == name:  # ``same_files`` just read it
            result, on_disk = ScanResult(state=listed[1]), listed[2]
        else:
            result = ScanResult(state=self.fingerprint(name))
            on_disk = _listing(folder)
        if any(row.locator not in on_disk for row in known):
            # readdir(3) may miss an entry renamed while the directory is read
            # (another MUA changing flags): look once more before calling a
            # message gone, which would expunge it and give it a new UID.
            for base, filename in _listing(folder).items():
                on_disk.setdefault(base, filename)
        for row in known:
            filename = on_disk.pop(row.locator, "")
            if not filename:
                result.gone.append(row.uid)
            elif filename != row.filename:
                bits: int | None = None
                if filename.startswith("cur/"):
                    bits = split_name(filename[4:])[1]
                    if bits == row.flags:
                        bits = None
                result.renamed.append((row.uid, filename, bits))
        for base, filename in sorted(on_disk.items(), key=lambda item: arrival_key(item[0])):
            try:
                st = os.stat(folder / filename, follow_symlinks=False)
            except FileNotFoundError:
                continue
            bits = split_name(filename[4:])[1] if filename.startswith("cur/") else 0
            result.new.append(
                NewMessage(
                    flags=bits,
                    keywords="",
                    internal_date=st.st_mtime,
                    size=st.st_size,
                    locator=base,
                    filename=filename,
                )
            )
        return result

    def prepare(self, name: str, source: MessageSource, meta: AppendMeta) -> PreparedMessage:
        folder = self.folder(name)
        base = unique_name(None if meta.delivery_key is None else delivery_tag(meta.delivery_key))
        tmp = folder / "tmp" / base
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        size = 0
        try:
            try:
                next_chunk = source_chunks(source)
                while chunk := next_chunk():
                    write_all(fd, chunk)
                    size += len(chunk)
                # futimens(2) before the fsync, so the internal date is durable with the data.
                os.utime(fd, (meta.internal_date, meta.internal_date))
                if self._fsync and not meta.synced_later:
                    os.fsync(fd)
            finally:
                os.close(fd)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return PreparedMessage(folder, base, tmp, size)

    def append_intent(self, name: str, metas: Sequence[AppendMeta]) -> AppendIntent | None:
        return None  # commit is one link: nothing torn to take back after a crash

    def recover_append(self, name: str, intent: AppendIntent) -> None:
        return None

    def commit(self, name: str, prepared: object, meta: AppendMeta) -> NewMessage:
        assert isinstance(prepared, PreparedMessage)
        if meta.flags:
            filename = "cur/" + info_name(prepared.base, meta.flags)
        else:
            filename = "new/" + prepared.base
        target = prepared.folder / filename
        # Bernstein: link() into new/ (it fails rather than overwrite), then unlink tmp/.
        try:
            os.link(prepared.tmp, target)
            os.unlink(prepared.tmp)
        except PermissionError:
            os.rename(prepared.tmp, target)  # file systems without hard links
        return NewMessage(
            flags=meta.flags,
            keywords=meta.keywords,
            internal_date=meta.internal_date,
            size=prepared.size,
            locator=prepared.base,
            filename=filename,
        )

    def durable(self, name: str, message: NewMessage) -> None:
        if self._fsync:
            fsync_dir(self.folder(name) / message.filename.partition("/")[0])

    def discard(self, name: str, message: NewMessage) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.folder(name) / message.filename)

    def abandon(self, prepared: object) -> None:
        assert isinstance(prepared, PreparedMessage)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(prepared.tmp)

    def copy_message(self, src: str, row: MessageRow, dst: str, meta: AppendMeta) -> NewMessage:
        source = self.folder(src) / row.filename
        target_folder = self.folder(dst)
        base = unique_name()
        if meta.flags:
            filename = "cur/" + info_name(base, meta.flags)
        else:
            filename = "new/" + base
        try:
            os.link(source, target_folder / filename)
        except FileNotFoundError as exc:
            raise MessageGone(f"message {row.uid} is no longer on disk") from exc
        except OSError:
            # No hard link possible (other file system, link limit): copy the bytes.
            with open(source, "rb") as stream:
                prepared = self.prepare(dst, stream, meta)
            message = self.commit(dst, prepared, meta)
            self._dirty.add(target_folder / filename.partition("/")[0])
            return message
        self._dirty.add(target_folder / filename.partition("/")[0])
        return NewMessage(
            flags=meta.flags,
            keywords=meta.keywords,
            internal_date=meta.internal_date,
            size=row.size,
            locator=base,
            filename=filename,
        )

    def set_flags(self, name: str, row: MessageRow, flags: int) -> str | None:
        base, _, other = split_name(row.filename.partition("/")[2])
        filename = "cur/" + info_name(base, flags, other)
        if filename == row.filename:
            return None
        folder = self.folder(name)
        try:
            os.rename(folder / row.filename, folder / filename)
        except FileNotFoundError as exc:
            raise MessageGone(f"message {row.uid} was moved or removed by another program") from exc
        # Not synced (no fsync of cur/): a flag change a power cut undoes loses no mail.
        return filename

    def remove(
        self, name: str, doomed: list[MessageRow], kept: list[MessageRow]
    ) -> list[tuple[int, int, int]]:
        folder = self.folder(name)
        for row in doomed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(folder / row.filename)
        # Not synced: an expunge a power cut undoes brings the message back, and
        # the next sync gives it a new UID; no mail is lost.
        return []

    def open_reader(self, name: str, row: MessageRow) -> FileReader:
        reader = open_message_file(f"{self._folder_text(name)}/{row.filename}", row.size)
        if reader is None:
            raise MessageGone(f"message {row.uid} was moved or removed by another program")
        return reader

    def message_paths(self, name: str, rows: Sequence[MessageRow]) -> list[str]:
        folder = self._folder_text(name)
        return [f"{folder}/{row.filename}" for row in rows]

    def finish(self, name: str) -> str | None:
        dirty, self._dirty = self._dirty, set()
        if self._fsync:
            for path in dirty:
                with contextlib.suppress(FileNotFoundError):
                    fsync_dir(path)
        return None

    def clean_tmp(self, name: str, now: float) -> None:
        """Remove files in ``tmp/`` not touched for 36 hours (Bernstein's rule)."""
        tmp = self.folder(name) / "tmp"
        with contextlib.suppress(FileNotFoundError), os.scandir(tmp) as entries:
            for entry in entries:
                with contextlib.suppress(FileNotFoundError):
                    st = entry.stat(follow_symlinks=False)
                    touched = max(st.st_atime, st.st_mtime)
                    if entry.is_file(follow_symlinks=False) and now - touched > TMP_MAX_AGE:
                        os.unlink(entry.path)


def _listing(folder: Path) -> dict[str, str]:
    """Unique base name -> ``new/NAME`` or ``cur/NAME:2,...`` for every message present.

    ``new/`` is read before ``cur/``: a message moved from new to cur by
    another program meanwhile is then seen in one or the other (the other
    order can miss it in both). ``cur/`` wins if a name is in both.
    """
    on_disk: dict[str, str] = {}
    for sub in ("new", "cur"):
        with contextlib.suppress(FileNotFoundError), os.scandir(folder / sub) as entries:
            for entry in entries:
                if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                    continue  # a symbolic link is never a message: it could lead anywhere
                on_disk[entry.name.partition(":")[0]] = f"{sub}/{entry.name}"
    return on_disk


def make_maildir(folder: Path, *, subfolder: bool) -> None:
    """Create cur/new/tmp (and the Maildir++ ``maildirfolder`` marker for a subfolder)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for sub in ("cur", "new", "tmp"):
        (folder / sub).mkdir(mode=0o700, exist_ok=True)
    if subfolder:
        marker = folder / "maildirfolder"
        if not marker.exists():
            marker.touch(mode=0o600)
