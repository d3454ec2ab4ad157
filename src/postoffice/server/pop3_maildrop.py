"""One user's maildrop as a POP3 session sees it: locked, numbered, sized, updated at QUIT.

Owns ``Maildrop`` (RFC 1939 §8: the maildrop of one session) over the
store's INBOX, in either store format:

- The lock: an exclusive lock on the user's ``maildrop_lock_path``
  (an OFD lock, see ``store.locking``), taken without waiting when the
  session logs in and held until it ends, so a second POP3 session of the
  same user is refused ``[IN-USE]`` (RFC 2449 §8.1.1). The kernel drops it
  when the process dies, so a crash never leaves the maildrop locked. IMAP
  sessions and local delivery do not take it: new mail arriving during the
  session is simply not in its listing (RFC 1939 numbers are fixed).
- The listing: the INBOX's messages in UID order, each with its UIDL and its
  size as RETR sends it (``protocol.pop3.wire_size``: CRLF line ends). Both
  need the message's octets once (read in one worker-thread pass over the
  messages not known yet, ``FileMailStore.measure``); ``MessageFacts`` keeps
  them per process, keyed by the message's identity (mail directory,
  UIDVALIDITY, UID), which never names another message.
- The listing a session made is kept per process with the mailbox's version
  (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ after a look at the disk): the next
  session of the user in this process whose mailbox has not changed since
  takes it as it is (``MessageFacts.listing``); any change (a delivery, a
  flag, an expunge) gives the mailbox a new version and a new listing.
- UIDLs come from the message's octets: 32 hex digits of its SHA-256 (line
  ends made CRLF and the final ones dropped, so that mbox's lost knowledge
  of a missing last newline does not count), and for the second and later
  copies of identical octets in one mailbox ``-N`` after it. They stay the
  same across sessions, restarts, flag changes and a rebuild of the index
  (which gives the mailbox a new UIDVALIDITY and may renumber its UIDs), so
  "leave mail on server" clients never download a message twice (RFC 1939
  §7 allows 1 to 70 printable characters).
- Reading: a Maildir message up to ``WHOLE_READ_LIMIT`` octets is read
  whole on the loop from the file the index named at login
  (``MailStore.message_files``: no index look-up per RETR) when it is already
  in wire form but for dot-stuffing, and sent with the "." lines its facts
  located (``protocol.pop3.dot_lines``: no search of its octets per RETR); a
  bigger one, one with bare LFs, an mbox one, or one whose file has moved
  since (a flag change from IMAP) is streamed from the store in chunks.
- The update (RFC 1939 §6): at QUIT, the messages fully retrieved get
  ``\\Seen`` (so that IMAP shows them read; those that had it at login are
  left alone) and the deleted ones are flagged ``\\Deleted`` and expunged.
  Nothing changes on a dropped connection.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import NamedTuple

from postoffice.core.address import Address
from postoffice.core.errors import StoreError
from postoffice.protocol.pop3 import dot_lines, wire_size
from postoffice.store import StoreFactory
from postoffice.store.api import DELETED, SEEN, FlagMode, MessageFile
from postoffice.store.locking import lock_fd
from postoffice.store.names import INBOX
from postoffice.store.service import FileMailStore

FACTS_CAPACITY = 500_000
WHOLE_READ_LIMIT = 256 * 1024  # octets a RETR reads at once on the loop; more are streamed


class MaildropInUse(StoreError):
    """Another POP3 session holds this user's maildrop."""


class Facts(NamedTuple):
    """What one read of a message's octets tells a POP3 session (``message_facts``)."""

    size: int  # as RETR sends it, before dot-stuffing (``wire_size``)
    digest: str  # what its UIDL is made of (module docstring)
    # Already in wire form but for dot-stuffing: where its "." lines start; else None.
    dots: tuple[int, ...] | None  # (``protocol.pop3.dot_lines``)


class Listing(NamedTuple):
    """What a session lists of a maildrop at login: its messages in UID order with
    their ``Facts``, their (UIDL, size) as the protocol lists them, those that
    were ``\\Seen``, and where their files are."""

    uids: tuple[int, ...]
    facts: tuple[Facts, ...]
    entries: tuple[tuple[str, int], ...]
    seen: frozenset[int]
    files: Mapping[int, MessageFile]


class MessageFacts:
    """What one process knows of the maildrops its POP3 sessions opened: ``Facts``
    of messages, by (mail directory, UIDVALIDITY, UID), and the last ``Listing`` of
    each maildrop with the version of the mailbox it was made at. Bounded by
    ``capacity`` messages for each, least recently used first out."""

    def __init__(self, capacity: int = FACTS_CAPACITY):
        self.capacity = capacity
        self._facts: OrderedDict[tuple[str, int, int], Facts] = OrderedDict()
        self._listings: OrderedDict[str, tuple[tuple[int, ...], Listing]] = OrderedDict()
        self._listed = 0  # messages in the kept listings

    def get(self, key: tuple[str, int, int]) -> Facts | None:
        facts = self._facts.get(key)
        if facts is not None:
            self._facts.move_to_end(key)
        return facts

    def put(self, key: tuple[str, int, int], facts: Facts) -> None:
        self._facts[key] = facts
        self._facts.move_to_end(key)
        while len(self._facts) > self.capacity:
            self._facts.popitem(last=False)

    def listing(self, mail_dir: str, version: tuple[int, ...]) -> Listing | None:
        """The listing kept for ``mail_dir`` if it was made at ``version``."""
        kept = self._listings.get(mail_dir)
        if kept is None or kept[0] != version:
            return None
        self._listings.move_to_end(mail_dir)
        return kept[1]

    def keep_listing(self, mail_dir: str, version: tuple[int, ...], listing: Listing) -> None:
        old = self._listings.pop(mail_dir, None)
        if old is not None:
            self._listed -= len(old[1].uids)
        self._listings[mail_dir] = (version, listing)
        self._listed += len(listing.uids)
        while self._listed > self.capacity:
            _, (_, gone) = self._listings.popitem(last=False)
            self._listed -= len(gone.uids)


def message_facts(octets: bytes) -> Facts:
    """A message's ``Facts``, from its octets."""
    lines = octets.replace(b"\r\n", b"\n").rstrip(b"\n").replace(b"\n", b"\r\n")
    digest = hashlib.sha256(lines).hexdigest()[:32]
    return Facts(wire_size(octets), digest, dot_lines(octets))


def uidls(digests: Sequence[str]) -> list[str]:
    """Unique UIDLs for digests in UID order: ``-N`` for repeated octets."""
    seen: dict[str, int] = {}
    out = []
    for digest in digests:
        count = seen.get(digest, 0)
        seen[digest] = count + 1
        out.append(digest if count == 0 else f"{digest}-{count + 1}")
    return out


class Maildrop:
    """The locked INBOX of one POP3 session (see the module docstring)."""

    def __init__(self, store: FileMailStore, lock: int, listing: Listing):
        self._store = store
        self._lock = lock
        self.uids = listing.uids
        self._facts = listing.facts
        self.listing: list[tuple[str, int]] = list(listing.entries)
        self._seen = listing.seen  # UIDs that had \\Seen at login
        self._files = listing.files
        self._moved: set[int] = set()  # UIDs whose file is no longer where it was

    @classmethod
    async def open(cls, factory: StoreFactory, address: Address, known: MessageFacts) -> Maildrop:
        """Lock and list ``address``'s INBOX; ``MaildropInUse`` when another session has it."""
        store = await factory.open(address, create=True)
        lock = -1
        try:
            paths = factory.paths(address)
            mail_dir = str(paths.mail_dir)
            flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
            lock = os.open(paths.maildrop_lock_path, flags, 0o600)
            if not lock_fd(lock, exclusive=True, blocking=False):
                raise MaildropInUse("the maildrop is in use by another session")
            now = await store.version(INBOX)  # after a look at the disk
            version = (now.uidvalidity, now.uidnext, now.highestmodseq)
            listing = known.listing(mail_dir, version)
            if listing is None:
                listing = await _list(store, mail_dir, now.uidvalidity, known)
                known.keep_listing(mail_dir, version, listing)
        except BaseException:
            if lock >= 0:
                os.close(lock)
            await store.close()
            raise
        return cls(store, lock, listing)

    def whole(self, index: int) -> tuple[bytes, tuple[int, ...]] | None:
        """Message ``index`` (0-based) whole and where its "." lines start, when it is
        in wire form (``Facts.dots``), small, and where the index said at login;
        else None: ``chunks`` reads it."""
        uid = self.uids[index]
        file = self._files.get(uid)
        dots = self._facts[index].dots
        if file is None or dots is None or file.size > WHOLE_READ_LIMIT or uid in self._moved:
            return None
        data = self._store.read_file(file)
        if data is None:  # renamed by a flag change or expunged since: ask the index
            self._moved.add(uid)
            return None
        return data, dots

    def chunks(self, index: int) -> AsyncIterator[bytes]:
        """The octets of message ``index`` (0-based) as stored, in chunks."""
        return self._store.iter_bytes(INBOX, self.uids[index])

    async def update(self, deleted: Sequence[int], retrieved: Sequence[int]) -> None:
        """RFC 1939 §6: mark the retrieved messages seen, remove the deleted ones."""
        gone = set(deleted)
        seen = [uid for i in retrieved if i not in gone and (uid := self.uids[i]) not in self._seen]
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


async def _list(
    store: FileMailStore, mail_dir: str, uidvalidity: int, known: MessageFacts
) -> Listing:
    """The ``Listing`` of the INBOX as the store has it now, measuring (in one pass,
    off the loop) the messages whose ``Facts`` this process does not know yet."""
    infos = await store.messages(INBOX)
    keys = {info.uid: (mail_dir, uidvalidity, info.uid) for info in infos}
    facts = {uid: known.get(key) for uid, key in keys.items()}
    missing = [uid for uid, found in facts.items() if found is None]
    if missing:
        for uid, found in (await store.measure(INBOX, missing, message_facts)).items():
            known.put(keys[uid], found)
            facts[uid] = found
    # A message expunged between the listing and the measuring is not offered.
    present = [(info.uid, f) for info in infos if (f := facts[info.uid]) is not None]
    uids = tuple(uid for uid, _ in present)
    seen = frozenset(info.uid for info in infos if SEEN in info.flags)
    files = await store.message_files(INBOX, uids)
    facts_of = tuple(f for _, f in present)
    names = uidls([f.digest for f in facts_of])
    entries = tuple((name, f.size) for name, f in zip(names, facts_of, strict=True))
    return Listing(uids, facts_of, entries, seen, files)
