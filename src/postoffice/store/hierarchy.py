"""The tree of one user's mailboxes: list, create, delete, rename, subscriptions.

Owns ``MailboxTree``, the part of ``engine.UserEngine`` that changes which
mailboxes exist and what they are called (RFC 3501 §6.3.3-§6.3.9), as
opposed to the messages in them. Its methods run on the engine's own parts
(``_EngineParts``: the index, the on-disk format, the locks) and keep the
engine's rules: the locks in the engine's order, disk first and index
second, every change reported to the caller's ``changes`` list.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from postoffice.core.errors import MailboxExists, MailboxNotFound, StoreError
from postoffice.store import names
from postoffice.store.api import Change, ChangeKind, MailboxInfo, special_use
from postoffice.store.backend import FolderFormat
from postoffice.store.index import MailboxRow, MailIndex
from postoffice.store.rules import mailbox_listing


class _EngineParts(Protocol):
    """What ``MailboxTree`` uses of ``UserEngine``."""

    @property
    def _fmt(self) -> FolderFormat: ...

    @property
    def _thread_lock(self) -> AbstractContextManager[Any]: ...

    @property
    def _new_uidvalidity(self) -> Callable[[], int]: ...

    @property
    def _index(self) -> MailIndex: ...

    def _exclusive(self, mailboxes: Sequence[str] = ()) -> AbstractContextManager[None]: ...

    def _adopt_disk_folders(self) -> None: ...

    def _box(self, name: str) -> MailboxRow: ...

    def _sync(self, box: MailboxRow, changes: list[Change]) -> MailboxRow: ...

    def _transfer(
        self, src: str, uids: Collection[int], dst: str, changes: list[Change], *, remove: bool
    ) -> dict[int, int]: ...

    def _rename_inbox(self, new: str, changes: list[Change]) -> None: ...


class MailboxTree:
    """The mailbox-tree operations of ``UserEngine`` (see the module docstring)."""

    def list_mailboxes(self: _EngineParts, changes: list[Change]) -> list[MailboxInfo]:
        with self._exclusive():
            self._adopt_disk_folders()
            rows = self._index.mailboxes()
            subscribed = set(self._index.subscriptions())
        return mailbox_listing(rows, subscribed)

    def create_mailbox(
        self: _EngineParts,
        name: str,
        use: str | None,
        changes: list[Change],
        *,
        parent: bool = False,
    ) -> None:
        name = names.mailbox_name(name)
        use = special_use(use)
        with self._exclusive():
            if self._index.mailbox(name) is not None or self._fmt.folder_exists(name):
                raise MailboxExists(f"mailbox already exists: {name}")
            if parent and use is None:
                if not self._fmt.create_parent(name):
                    return  # a directory for mailboxes, not a mailbox (mbox)
            else:
                self._fmt.create_folder(name)
            with self._index.transaction():
                self._index.create_mailbox(name, self._new_uidvalidity(), use)
        changes.append(Change(ChangeKind.CREATED, name))

    def delete_mailbox(self: _EngineParts, name: str, changes: list[Change]) -> None:
        name = names.mailbox_name(name)
        if names.is_inbox(name):
            raise StoreError("INBOX cannot be deleted")
        with self._exclusive():
            box = self._box(name)
            self._fmt.delete_folder(name)  # disk first (module docstring)
            with self._index.transaction():
                self._index.delete_mailbox(box.id)
        changes.append(Change(ChangeKind.DELETED, name))

    def rename_mailbox(self: _EngineParts, old: str, new: str, changes: list[Change]) -> None:
        old = names.mailbox_name(old)
        new = names.mailbox_name(new)
        if names.is_inbox(new):
            raise StoreError("cannot rename a mailbox to INBOX")
        # INBOX's inferiors stay where they are (RFC 3501 §6.3.5), so INBOX
        # may be renamed below itself; any other mailbox may not.
        if new == old or (names.is_inferior(new, old) and not names.is_inbox(old)):
            raise StoreError(f"cannot rename {old} to {new}: a mailbox cannot move into itself")
        with self._exclusive():
            if self._index.mailbox(new) is not None or self._fmt.folder_exists(new):
                raise MailboxExists(f"mailbox already exists: {new}")
            if names.is_inbox(old):
                self._rename_inbox(new, changes)
                return
            self._adopt_disk_folders()
            own = self._index.mailbox(old)
            rows = [self._box(old)] if own is not None else []
            rows += [r for r in self._index.mailboxes() if names.is_inferior(r.name, old)]
            if not rows:
                raise MailboxNotFound(f"no such mailbox: {old}")
            pairs = [(row.name, new + row.name[len(old) :]) for row in rows]
            if own is None:
                pairs.insert(0, (old, new))  # the bare parent of the hierarchy
            self._fmt.rename_folders(pairs)
            subscribed = set(self._index.subscriptions())
            renamed = dict(pairs)
            with self._index.transaction():
                for row in rows:
                    self._index.rename_mailbox(row.id, renamed[row.name])
                for before, after in pairs:
                    if before in subscribed:
                        self._index.unsubscribe(before)
                        self._index.subscribe(after)
        for before, after in pairs:
            changes.append(Change(ChangeKind.RENAMED, before, new_name=after))

    def _rename_inbox(self: _EngineParts, new: str, changes: list[Change]) -> None:
        # RFC 3501 §6.3.5: renaming INBOX moves its messages to a new mailbox
        # and leaves INBOX empty; its inferiors are not renamed.
        self._fmt.create_folder(new)
        with self._index.transaction():
            self._index.create_mailbox(new, self._new_uidvalidity())
        changes.append(Change(ChangeKind.CREATED, new))
        inbox = self._sync(self._box(names.INBOX), changes)
        uids = [row.uid for row in self._index.messages(inbox.id)]
        self._transfer(names.INBOX, uids, new, changes, remove=True)

    def subscribe(self: _EngineParts, name: str, changes: list[Change]) -> None:
        name = names.mailbox_name(name)
        with self._exclusive(), self._index.transaction():
            self._index.subscribe(name)

    def unsubscribe(self: _EngineParts, name: str, changes: list[Change]) -> None:
        name = names.mailbox_name(name)
        with self._exclusive(), self._index.transaction():
            self._index.unsubscribe(name)

    def subscriptions(self: _EngineParts, changes: list[Change]) -> list[str]:
        with self._thread_lock:
            return self._index.subscriptions()
