"""One user's maildrop as a POP3 session sees it: locked, numbered, sized, updated at QUIT.

Owns ``Maildrop`` (RFC 1939 §8: the maildrop of one session) over the
store's INBOX, in either store format:

- The lock: an exclusive lock on ``pop3.lock`` in the user's mail directory
  (an OFD lock, see ``store.locking``), taken without waiting when the
  session logs in and held until it ends, so a second POP3 session of the
  same user is refused ``[IN-USE]`` (RFC 2449 §8.1.1). The kernel drops it
  when the process dies, so a crash never leaves the maildrop locked. IMAP
  sessions and local delivery do not take it: new mail arriving during the
  session is simply not in its listing (RFC 1939 numbers are fixed).
- The listing: the INBOX's messages in UID order, each with its UIDL and its
  size as RETR sends it (``protocol.pop3.wire_size``: CRLF line ends). That
  size needs the message's octets once (read in one worker-thread pass over
  the messages not known yet, ``FileMailStore.measure``); ``WireSizes``
  keeps it per process, keyed by the message's identity (mail directory,
  UIDVALIDITY, UID), which never names another message.
- UIDLs are ``%08X%08X`` of UID and UIDVALIDITY (the shape of Dovecot's
  default ``pop3_uidl_format``): stable across sessions and restarts as long
  as the mailbox keeps its UIDVALIDITY, printable, 16 characters (RFC 1939
  §7 allows 1 to 70).
- The update (RFC 1939 §6): at QUIT, the messages fully retrieved get
  ``\\Seen`` (so that IMAP shows them read) and the deleted ones are flagged
  ``\\Deleted`` and expunged. Nothing changes on a dropped connection.
"""

from __future__ import annotations

import contextlib
import os
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence

from postoffice.core.address import Address
from postoffice.core.errors import StoreError
from postoffice.protocol.pop3 import wire_size
from postoffice.store import StoreFactory
from postoffice.store.api import DELETED, SEEN, FlagMode
from postoffice.store.locking import lock_fd
from postoffice.store.names import INBOX
from postoffice.store.service import FileMailStore

LOCK_NAME = "pop3.lock"
WIRE_SIZES_CAPACITY = 500_000


class MaildropInUse(StoreError):
    """Another POP3 session holds this user's maildrop."""


class WireSizes:
    """RETR sizes of messages, by (mail directory, UIDVALIDITY, UID); bounded, LRU."""

    def __init__(self, capacity: int = WIRE_SIZES_CAPACITY):
        self.capacity = capacity
        self._sizes: OrderedDict[tuple[str, int, int], int] = OrderedDict()

    def get(self, key: tuple[str, int, int]) -> int | None:
        size = self._sizes.get(key)
        if size is not None:
            self._sizes.move_to_end(key)
        return size

    def put(self, key: tuple[str, int, int], size: int) -> None:
        self._sizes[key] = size
        self._sizes.move_to_end(key)
        while len(self._sizes) > self.capacity:
            self._sizes.popitem(last=False)


def uidl(uid: int, uidvalidity: int) -> str:
    return f"{uid:08X}{uidvalidity:08X}"


class Maildrop:
    """The locked INBOX of one POP3 session (see the module docstring)."""

    def __init__(
        self, store: FileMailStore, lock: int, uids: Sequence[int], listing: list[tuple[str, int]]
    ):
        self._store = store
        self._lock = lock
        self.uids = tuple(uids)
        self.listing: list[tuple[str, int]] = listing

    @classmethod
    async def open(cls, factory: StoreFactory, address: Address, sizes: WireSizes) -> Maildrop:
        """Lock and list ``address``'s INBOX; ``MaildropInUse`` when another session has it."""
        store = await factory.open(address, create=True)
        lock = -1
        try:
            mail_dir = factory.paths(address).mail_dir
            lock = os.open(mail_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            if not lock_fd(lock, exclusive=True, blocking=False):
                raise MaildropInUse("the maildrop is in use by another session")
            status = await store.status(INBOX)
            infos = await store.messages(INBOX)
            keys = {info.uid: (str(mail_dir), status.uidvalidity, info.uid) for info in infos}
            known = {uid: sizes.get(key) for uid, key in keys.items()}
            missing = [uid for uid, size in known.items() if size is None]
            if missing:  # a mailbox this process has not listed yet: one pass, off the loop
                for uid, size in (await store.measure(INBOX, missing, wire_size)).items():
                    sizes.put(keys[uid], size)
                    known[uid] = size
            # A message expunged between the listing and the measuring is not offered.
            infos = [info for info in infos if known[info.uid] is not None]
            listing = [(uidl(info.uid, status.uidvalidity), known[info.uid] or 0) for info in infos]
        except BaseException:
            if lock >= 0:
                os.close(lock)
            await store.close()
            raise
        return cls(store, lock, [info.uid for info in infos], listing)

    def chunks(self, index: int) -> AsyncIterator[bytes]:
        """The octets of message ``index`` (0-based) as stored, in chunks."""
        return self._store.iter_bytes(INBOX, self.uids[index])

    async def update(self, deleted: Sequence[int], retrieved: Sequence[int]) -> None:
        """RFC 1939 §6: mark the retrieved messages seen, remove the deleted ones."""
        gone = set(deleted)
        seen = [self.uids[i] for i in retrieved if i not in gone]
        if seen:
            await self._store.store_flags(INBOX, seen, [SEEN], mode=FlagMode.ADD)
        if gone:
            uids = [self.uids[i] for i in sorted(gone)]
            await self._store.store_flags(INBOX, uids, [DELETED], mode=FlagMode.ADD)
            await self._store.expunge(INBOX, uids)

    async def close(self) -> None:
        """Release the lock and the store (the end of the session, whatever its end)."""
        try:
            await self._store.close()
        finally:
            with contextlib.suppress(OSError):
                os.close(self._lock)
            self._lock = -1
