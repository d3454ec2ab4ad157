"""Where a user's mail lives on disk.

This module owns the mapping from (address, mailbox name) to paths. Its
invariants: every path it returns lies inside ``DATA/mail/DOMAIN/LOCAL/``
(the user's mail directory) or is the user's mbox INBOX in
``DATA/spool/mail/``; local parts and domains are validated by
``names.safe_local_part``/``safe_domain`` and mailbox components are encoded
by ``names.encode_component`` before they are joined to a path.

Maildir (the default):
- ``DATA/mail/DOMAIN/LOCAL/`` is the Maildir; INBOX is its ``cur/new/tmp``
  (D. J. Bernstein, "Using maildir format").
- Other mailboxes are Maildir++ folders ``.a.b`` for ``a/b`` (Maildir++
  conventions, Courier/Dovecot LAYOUT=maildir++).

mbox (classic):
- INBOX is ``DATA/spool/mail/LOCAL`` when the domain is the primary domain,
  the textbook ``/var/spool/mail`` layout; for any other domain it is
  ``DATA/spool/mail/LOCAL@DOMAIN`` so that ``alice@a.test`` and
  ``alice@b.test`` (virtual domains) do not share one spool file. A spool
  name ending in ``.lock`` is refused: it is another spool file's dotlock.
- Other mailboxes are mbox files under the user's mail directory: ``a/b`` is
  the file ``b`` in the directory ``a``.

In both formats the user's mail directory also holds our own files, all
named ``postoffice-*`` (the SQLite index and its WAL, the lock file, the
POP3 maildrop lock, the UIDVALIDITY counter, and mbox octets set aside after a crashed append,
``postoffice-torn-*``): they do not start with ``.``, so they never look like
a Maildir++ folder, and mbox folder names that would collide are escaped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from postoffice.config.model import Config, Paths
from postoffice.core.address import Address
from postoffice.core.errors import MailboxNameError
from postoffice.store import names

StoreFormat = Literal["maildir", "mbox"]
FORMATS: tuple[StoreFormat, ...] = ("maildir", "mbox")

INDEX_FILE = "postoffice-index.sqlite3"
MAILDROP_LOCK_FILE = "postoffice-pop3.lock"
LOCK_FILE = "postoffice-index.lock"
UIDVALIDITY_FILE = "postoffice-uidvalidity"
# NAME_MAX on Linux file systems.
_NAME_MAX = 255
MAX_REMEMBERED_USERS = 4096


@dataclass(frozen=True, slots=True)
class StoreLayout:
    """Where and how mail is stored for every user of one data directory."""

    data_dir: Path
    format: StoreFormat = "maildir"
    primary_domain: str = "localhost"
    fsync: bool = True
    # Made once (every delivery asks for them): the paths below data_dir.
    mail_root: Path = field(init=False, repr=False, compare=False)
    spool_dir: Path = field(init=False, repr=False, compare=False)
    # The paths of users already asked for (a delivery asks several times).
    _users: dict[tuple[str, str], UserPaths] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"unknown mailbox format {self.format!r} (use maildir or mbox)")
        object.__setattr__(self, "mail_root", self.data_dir / "mail")
        object.__setattr__(self, "spool_dir", self.data_dir / "spool" / "mail")

    def user(self, address: Address) -> UserPaths:
        """The paths of one user; raises ``MailboxNameError`` for an unsafe address."""
        known = self._users.get((address.local, address.domain))
        if known is not None:
            return known
        paths = self._user(address)
        if len(self._users) >= MAX_REMEMBERED_USERS:
            self._users.clear()
        self._users[(address.local, address.domain)] = paths
        return paths

    def _user(self, address: Address) -> UserPaths:
        local = names.safe_local_part(address.local)
        domain = names.safe_domain(address.domain)
        paths = UserPaths(self, local, domain)
        if self.format == "mbox" and paths.mbox_inbox.name.endswith(names.DOTLOCK_SUFFIX):
            # spool/mail/alice.lock is alice's dotlock: as an INBOX it would block
            # alice's mail, and breaking alice's stale dotlock would unlink it.
            raise MailboxNameError(
                f"{local}@{domain} cannot have an mbox spool file: its name would be "
                "another spool file's dotlock"
            )
        return paths


@dataclass(frozen=True, slots=True)
class UserPaths:
    """The files of one user (see the module docstring for the layout)."""

    layout: StoreLayout
    local: str
    domain: str
    mail_dir: Path = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mail_dir", self.layout.mail_root / self.domain / self.local)

    @property
    def index_path(self) -> Path:
        return self.mail_dir / INDEX_FILE

    @property
    def lock_path(self) -> Path:
        return self.mail_dir / LOCK_FILE

    @property
    def maildrop_lock_path(self) -> Path:
        """The lock a POP3 session holds on the user's INBOX (RFC 1939 §8)."""
        return self.mail_dir / MAILDROP_LOCK_FILE

    @property
    def uidvalidity_path(self) -> Path:
        return self.mail_dir / UIDVALIDITY_FILE

    @property
    def mbox_inbox(self) -> Path:
        if self.domain == self.layout.primary_domain.lower():
            return self.layout.spool_dir / self.local
        return self.layout.spool_dir / f"{self.local}@{self.domain}"

    def maildir_folder(self, name: str) -> Path:
        """The Maildir directory of mailbox ``name`` (already validated)."""
        if names.is_inbox(name):
            return self.mail_dir
        encoded = ".".join(
            names.encode_component(part, maildir=True) for part in name.split(names.SEPARATOR)
        )
        dirname = "." + encoded
        if len(dirname.encode("utf-8")) > _NAME_MAX:
            raise MailboxNameError(f"mailbox name {name!r} is too long for a Maildir++ folder")
        return self.mail_dir / dirname

    def mbox_file(self, name: str) -> Path:
        """The mbox file of mailbox ``name`` (already validated)."""
        if names.is_inbox(name):
            return self.mbox_inbox
        return self.mbox_dir_of(name)

    def mbox_dir_of(self, name: str) -> Path:
        """The path named by ``name`` under the mail directory (a file or a parent dir)."""
        path = self.mail_dir
        for depth, part in enumerate(name.split(names.SEPARATOR)):
            encoded = names.encode_component(part, maildir=False, top_level=depth == 0)
            if len(encoded.encode("utf-8")) > _NAME_MAX:
                raise MailboxNameError(f"mailbox name {name!r} has a component too long")
            path = path / encoded
        return path

    def contains(self, path: Path) -> bool:
        """True when ``path`` is inside the user's mail directory or is the mbox INBOX."""
        resolved = path.resolve()
        if resolved == self.mbox_inbox.resolve():
            return True
        return resolved.is_relative_to(self.mail_dir.resolve())


def layout_from_config(config: Config, paths: Paths) -> StoreLayout:
    """The layout a configuration asks for (``[store]`` and the resolved data dir)."""
    return StoreLayout(
        data_dir=paths.data_dir,
        format=config.store.format,
        primary_domain=config.primary_domain,
        fsync=config.store.fsync,
    )
