"""Header field values of many messages for one SORT, THREAD or SEARCH command.

What this module owns: ``FieldBatch`` and ``fields_for``, which give the
values of some top-level header fields (``mime.headers.header_values``: every
field of the name, unfolded, RFC 2047 words decoded) of many messages of the
selected mailbox, read from the index's ``header_fields`` table in one query
per command; only the pairs the index lacks are computed from the messages
(their header only, through ``ContentLoader.load``), and those are written
back to the index in one transaction when the command ends. A second SORT,
THREAD or SEARCH by header of the same mailbox reads no message file.
``keys_for`` gives what SORT and THREAD compare of each message (a
``KeyKind``), kept in ``imap_keys.MessageKeys`` and in the index beside the
header values, from the fields of only the messages lacking it in both.

Invariants:

- the values are exactly those ``ContentLoader.header_values`` gives, so
  every answer is the same with or without the index's rows;
- a message is read at most once per batch, however many fields it lacks
  (all the batch's missing fields are computed from that one read, and, for a
  batch of a field of ``READ_TOGETHER``, every field of it is written to the
  index from that read too);
- the values live in the batch, for this command only: they do not go
  through ``ContentLoader``'s bounded per-process caches, which a mailbox of
  100,000 messages would flush;
- rows are keyed by the UIDVALIDITY the session saw (messages never change
  under one UID and UIDVALIDITY, RFC 9051 §2.3.1.1), so they are never stale.
"""

from __future__ import annotations

import contextlib
import json
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar, cast

from postoffice.core.errors import StoreError
from postoffice.mime.decoding import HeaderBlock, scan_header
from postoffice.mime.headers import block_values
from postoffice.mime.sections import is_crlf_clean, to_crlf
from postoffice.server.gc_pause import collection_paused
from postoffice.server.imap_context import SessionState
from postoffice.server.imap_fetch import ContentLoader
from postoffice.server.imap_view import MailboxView
from postoffice.store.api import MailStore
from postoffice.store.field_cache import KEY_SET

# The values of the last few mailboxes' batches, kept in this process while they
# are small: a mailbox of a few thousand messages sorted again and again is
# answered from memory; a big one (over ``KEPT_VALUES`` pairs) from the index,
# one query a command, instead of flushing everything else out.
KEPT_VALUES = 100_000
Kept = OrderedDict[tuple[str, str, int], dict[tuple[int, str], list[str]]]
Key = TypeVar("Key")
# In the names of the keys' rows in the index: a change to how a key is made
# (collation, base subject, msg-id parsing) or written takes a new number, so
# that rows made the old way are not read. 2: key sets hold columns.
KEYS_VERSION = 2
# A key set's keys as JSON gives them back: a list per column, an item per key.
Columns = list[list[Any]]
# More keys than this read one row each or made, and the next command reads them
# from one row (``field_cache.KEY_SET``): on 100,000 messages a row each took half
# a second to read and decode, one row a fifth of that.
KEY_SET_ABOVE: Final = 1000
# Octets read of a message whose header is wanted and whose part tree is not known:
# the header of most mail, without its body.
HEAD_OCTETS: Final = 16 * 1024
# The fields SORT and THREAD read (and SEARCH's usual header keys): a message read
# for one of them has all of them written to the index (as Dovecot's cache takes
# the fields clients ask for), so that after a first SEARCH SUBJECT of a big
# mailbox the first SORT or THREAD reads the index, not 100,000 message files.
READ_TOGETHER: Final = frozenset(
    ("date", "subject", "from", "to", "cc", "message-id", "references", "in-reply-to")
)


def _pairs(uids: Iterable[int], fields: Iterable[str]) -> Iterator[tuple[int, str]]:
    names = tuple(fields)
    return ((uid, name) for uid in uids for name in names)


def _missing(
    values: Mapping[tuple[int, str], list[str]], uids: Iterable[int], names: Sequence[str]
) -> list[int]:
    """The UIDs of ``uids`` for which some field of ``names`` has no values yet."""
    missing = []
    for uid in uids:
        for name in names:
            if (uid, name) not in values:
                missing.append(uid)
                break
    return missing


def _keep(kept: Kept, key: tuple[str, str, int], values: dict[tuple[int, str], list[str]]) -> None:
    """Remember a batch's values for the mailbox ``key`` (bounded, see ``KEPT_VALUES``)."""
    merged = {**kept.pop(key, {}), **values}
    if len(merged) > KEPT_VALUES:
        return
    kept[key] = merged
    while sum(len(each) for each in kept.values()) > KEPT_VALUES:
        kept.popitem(last=False)


class FieldBatch:
    """The values of ``fields`` (lower-case) of the messages of one mailbox, for
    one command (module docstring). Open with ``FieldBatch.open``, end with
    ``save``."""

    def __init__(
        self,
        contents: ContentLoader,
        store: MailStore,
        mailbox: str,
        uidvalidity: int,
        owner: str,
        fields: Iterable[str],
        sizes: Mapping[int, int],
    ):
        self._contents = contents
        self._store = store
        self._mailbox = mailbox
        self._uidvalidity = uidvalidity
        self._owner = owner
        self.fields = frozenset(name.lower() for name in fields)
        self._sizes = sizes  # stored sizes by UID (``MessageInfo.size``)
        self.values: dict[tuple[int, str], list[str]] = {}
        self.lacking: list[int] = []  # UIDs that lacked some field after ``open``
        self._changed = False  # values came from elsewhere than the kept batch
        self._fresh: list[tuple[int, str, list[str]]] = []
        self._key = (owner, mailbox, uidvalidity)

    @classmethod
    async def open(
        cls,
        contents: ContentLoader,
        store: MailStore,
        mailbox: str,
        uidvalidity: int,
        owner: str,
        uids: Collection[int],
        fields: Iterable[str],
        sizes: Mapping[int, int],
    ) -> FieldBatch:
        """A batch holding what the index keeps of ``fields`` of ``uids`` (one
        query); the part trees of the messages that lack some are brought in too,
        so that computing them reads only their header."""
        batch = cls(contents, store, mailbox, uidvalidity, owner, fields, sizes)
        if not uids or not batch.fields:
            return batch
        names = tuple(batch.fields)
        kept = contents.batches.get(batch._key)
        if kept is not None:
            contents.batches.move_to_end(batch._key)
            if not _missing(kept, uids, names):  # all there: read it where it is kept
                batch.values = kept  # (nothing is added to it: no message lacks a value)
                return batch
            batch.values = {pair: kept[pair] for pair in _pairs(uids, batch.fields) if pair in kept}
        asked = _missing(batch.values, uids, names)
        if asked:
            batch._changed = True
            with contextlib.suppress(StoreError):  # a cache: else computed from the messages
                found = await store.header_fields(mailbox, uidvalidity, asked, batch.fields)
                batch.values.update(found)
        batch.lacking = _missing(batch.values, asked, names)
        if batch.lacking:
            await contents.prepare(store, mailbox, uidvalidity, batch.lacking, owner)
        return batch

    async def get(self, uid: int, field: str) -> list[str]:
        """The values of one field of one message; computed from the message (and
        with it every other field of the batch it lacks) when not kept. Raises
        ``StoreError``/``OSError`` for a message gone meanwhile."""
        name = field.lower()
        found = self.values.get((uid, name))
        if found is not None:
            return found
        if name not in self.fields:  # not one of the batch's: the session's cache
            return await self._contents.header_values(
                self._store,
                self._mailbox,
                self._uidvalidity,
                uid,
                self._owner,
                name,
                stored_size=self._sizes.get(uid),
            )
        await self.fill(uid)
        return self.values[(uid, name)]

    def lacks(self, uid: int) -> bool:
        """True when some field of the batch is not known yet for ``uid``."""
        return any((uid, name) not in self.values for name in self.fields)

    async def fill(self, uid: int) -> None:
        """Compute every field of the batch that ``uid`` lacks, from one read of its
        header. Raises ``StoreError``/``OSError`` for a message gone meanwhile."""
        data, block = await self._head(uid)
        lacking = [name for name in sorted(self.fields) if (uid, name) not in self.values]
        # With one of the fields SORT and THREAD read, all of them: written to the
        # index, not kept in the batch (they would push it over ``KEPT_VALUES``).
        besides = READ_TOGETHER - self.fields if READ_TOGETHER & self.fields else frozenset()
        found = block_values(data, block, [*lacking, *besides])
        for name in lacking:
            self.values[(uid, name)] = found[name]
        self._fresh += [(uid, name, values) for name, values in found.items()]

    async def _head(self, uid: int) -> tuple[bytes, HeaderBlock]:
        """Octets holding the message's top-level header, and that header scanned.
        With no part tree known (the first SEARCH, SORT or THREAD of a mailbox),
        its first ``HEAD_OCTETS`` alone when the header ends inside them: the body
        is neither read nor parsed. Else what ``ContentLoader.load`` gives (the
        header only, when the tree is known)."""
        size = self._sizes.get(uid)
        if not self._contents.has_tree(self._owner, self._mailbox, self._uidvalidity, uid, size):
            first = await self._store.read(self._mailbox, uid, 0, HEAD_OCTETS)
            whole = len(first) < HEAD_OCTETS
            block = scan_header(first, 0, len(first))
            # A header with CRLF line ends only is the header ``load`` gives (which
            # makes every bare CR or LF of a message a CRLF), if it ends before the
            # end of the octets read or they are all of the message.
            if (whole or block.end < block.body_start < len(first)) and is_crlf_clean(
                first[: block.body_start]
            ):
                return first, block
            data = to_crlf(first)  # the same change, which only ever acts on one line end
            block = scan_header(data, 0, len(data))
            # All of the message, or its empty line ending before the last two
            # octets (a bare CR read last may have become a CRLF).
            if whole or block.end < block.body_start <= len(data) - 2:
                return data, block
        content = await self._contents.load(
            self._store,
            self._mailbox,
            self._uidvalidity,
            uid,
            self._owner,
            stored_size=size,
            header_only=True,
        )
        root = content.root
        return content.data, scan_header(content.data, root.start, root.body_start)

    async def save(self, *, remember: bool = True) -> None:
        """Write the values and part trees computed since ``open`` to the index, in
        one transaction each, and (``remember``) keep the values in the process.
        They are caches: a failure to write them costs a later command time, not
        this one its answer."""
        fresh, self._fresh = self._fresh, []
        if remember and (self._changed or fresh):
            _keep(self._contents.batches, self._key, self.values)
        with contextlib.suppress(StoreError):
            if fresh:
                await self._store.save_header_fields(self._mailbox, self._uidvalidity, fresh)
            await self._contents.keep(self._store, self._mailbox, self._uidvalidity, self._owner)


async def fields_for(
    contents: ContentLoader,
    store: MailStore,
    mailbox: str,
    uidvalidity: int,
    uids: Collection[int],
    owner: str,
    fields: Iterable[str],
    sizes: Mapping[int, int],
    *,
    remember: bool = True,
) -> dict[tuple[int, str], list[str]]:
    """The values of ``fields`` of every message of ``uids``, by (uid, lower-case
    field), kept in the index from now on, and in the process (``remember``) for
    the next command. A message gone meanwhile has no entries (SORT and THREAD
    then use empty values)."""
    batch = await FieldBatch.open(contents, store, mailbox, uidvalidity, owner, uids, fields, sizes)
    for uid in batch.lacking:
        if batch.lacks(uid):
            try:
                await batch.fill(uid)
            except (StoreError, OSError):
                continue  # gone meanwhile
    await batch.save(remember=remember)
    return batch.values


async def view_fields(
    state: SessionState,
    view: MailboxView,
    uids: list[int],
    fields: Iterable[str],
    *,
    remember: bool = True,
) -> dict[tuple[int, str], list[str]]:
    """``fields_for`` the selected mailbox of a session: the values of ``fields`` of
    the messages ``uids``, by (uid, field), in one batch."""
    assert state.store is not None and state.user is not None
    sizes = {uid: view.infos[uid].size for uid in uids}
    contents, store = state.ctx.contents, state.store
    return await fields_for(
        contents,
        store,
        view.name,
        view.uidvalidity,
        uids,
        state.user,
        fields,
        sizes,
        remember=remember,
    )


@dataclass(frozen=True, slots=True)
class KeyKind(Generic[Key]):
    """One kind of key ``keys_for`` gives: its name (in ``MessageKeys``; its rows
    in the index's header values are named ``stored_name``, ``":name/version"``,
    which no header field can be: RFC 5322 §3.6.8 leaves ":" out of names), the
    header fields it is made of, how it is made and written as strings (a row),
    and how a key set writes many of them as columns and reads them back."""

    name: str
    fields: tuple[str, ...]
    derive: Callable[[int, dict[str, list[str]]], Key]  # (UID, values by field) -> key
    encode: Callable[[Key], list[str]]
    decode: Callable[[list[str]], Key]  # ValueError or IndexError: a damaged row
    # A key set's keys as JSON columns, and back (TypeError or ValueError: damaged),
    # each in a few C-level passes: 100,000 keys decoded one by one took 170 ms.
    to_columns: Callable[[list[Key]], Columns]
    from_columns: Callable[[Columns], list[Key]]

    @property
    def stored_name(self) -> str:
        return f":{self.name.lower()}/{KEYS_VERSION}"


async def keys_for(
    state: SessionState, view: MailboxView, uids: Sequence[int], kind: KeyKind[Key]
) -> dict[int, Key]:
    """The ``kind`` key of each message of ``uids``: those the process keeps as
    they are; the others from the index, where a key made once is written (so
    that another worker, or this one after a restart, does not make it again):
    first from the mailbox's key set (one row holding many keys), then from one
    row per message; the rest made (``kind.derive``) from the header fields of
    those messages only, in one batch. A message gone meanwhile is made from no
    values (SORT and THREAD give it empty ones), and its key is not kept. When
    more than ``KEY_SET_ABOVE`` keys came from single rows or were made, the
    key set is written again with every key known for ``uids``, and the keys
    made get no row of their own (else they do)."""
    assert state.user is not None and state.store is not None
    memo = state.ctx.contents.keys
    box = (state.user, view.name, view.uidvalidity)
    kept = memo.kept(box, kind.name)
    missing = [uid for uid in uids if uid not in kept]
    if not missing:
        return cast(dict[int, Key], kept)  # every key of one kind is a ``Key``
    store, name = state.store, kind.stored_name
    found = cast(dict[int, Key], dict(kept))
    fresh: dict[int, Key] = {}
    if len(missing) > KEY_SET_ABOVE:
        with contextlib.suppress(StoreError):  # a cache: else read row by row
            blob = await store.answer(view.name, view.uidvalidity, KEY_SET + name, b"")
            if blob is not None:
                fresh = _key_set_keys(blob, set(missing), kind)
                found.update(fresh)
    unset = [uid for uid in missing if uid not in fresh] if fresh else missing
    if unset:
        with contextlib.suppress(StoreError):  # a cache: else made again
            stored = await store.header_fields(view.name, view.uidvalidity, unset, (name,))
            with collection_paused():  # a key or more per message, kept
                for (uid, _), strings in stored.items():
                    with contextlib.suppress(ValueError, IndexError):
                        found[uid] = fresh[uid] = kind.decode(strings)
        made = await _derive_keys(
            state, view, [uid for uid in unset if uid not in fresh], kind, found, fresh
        )
        if made and len(unset) <= KEY_SET_ABOVE:  # (else the key set below holds them)
            rows = [(uid, name, kind.encode(found[uid])) for uid in made]
            with contextlib.suppress(StoreError):
                await store.save_header_fields(view.name, view.uidvalidity, rows)
    if len(unset) > KEY_SET_ABOVE:
        known = [uid for uid in uids if uid in fresh or uid in kept]
        with collection_paused():
            blob = _key_set_blob(known, [found[uid] for uid in known], kind)
        # The keys kept are those read back from the key set: made in one go, they
        # lie together in memory, and THREAD of 100,000 messages walks them a fifth
        # faster than keys made one by one during a long read of the messages.
        compact = _key_set_keys(blob, set(fresh), kind)
        if len(compact) == len(fresh):
            fresh = compact
            found.update(compact)
        with contextlib.suppress(StoreError):
            await store.save_answer(view.name, view.uidvalidity, KEY_SET + name, b"", blob)
    memo.keep(box, kind.name, fresh)
    return found


async def _derive_keys(
    state: SessionState,
    view: MailboxView,
    lacking: list[int],
    kind: KeyKind[Key],
    found: dict[int, Key],
    fresh: dict[int, Key],
) -> list[int]:
    """Make the keys of ``lacking`` from their header fields into ``found`` (and
    ``fresh``, for the messages that exist); the UIDs of the latter."""
    if not lacking:
        return []
    # The values are not kept beside the keys made of them: room for SEARCH's.
    known = await view_fields(state, view, lacking, kind.fields, remember=False)
    made: list[int] = []
    derive, fields = kind.derive, kind.fields
    with collection_paused():  # a key or more per message, kept
        for uid in lacking:
            values = {f: known[(uid, f)] for f in fields if (uid, f) in known}
            key = found[uid] = derive(uid, values)
            if len(values) == len(fields):  # not a message gone meanwhile
                fresh[uid] = key
                made.append(uid)
    return made


def checked(column: object, *types: type) -> list[Any]:
    """``column`` when it is a list whose items are all of ``types`` (exactly: a
    bool is no int here); else TypeError (a damaged key set)."""
    if type(column) is not list or not set(map(type, column)) <= set(types):
        raise TypeError("not a column of the key set")
    return column


def one_column(keys: list[Key]) -> Columns:
    """``KeyKind.to_columns`` of keys that are JSON values themselves."""
    return [keys]


def column_of(kind: type) -> Callable[[Columns], list[Any]]:
    """``KeyKind.from_columns`` of ``one_column`` keys of type ``kind``."""

    def read(columns: Columns) -> list[Any]:
        [column] = columns  # ValueError unless one
        return checked(column, kind)

    return read


def _key_set_blob(uids: list[int], keys: list[Key], kind: KeyKind[Key]) -> bytes:
    """A key set: ``{"uids": [...], "columns": [...]}`` (``KeyKind.to_columns``)."""
    columns = kind.to_columns(keys)
    return json.dumps({"uids": uids, "columns": columns}, separators=(",", ":")).encode()


def _key_set_keys(blob: bytes, wanted: set[int], kind: KeyKind[Key]) -> dict[int, Key]:
    """The keys of ``wanted`` a key set holds; none from a damaged one."""
    with collection_paused():  # a key or more per message, kept
        try:
            found = json.loads(blob)
            uids = checked(found["uids"], int)
            keys = kind.from_columns(found["columns"])
            return {uid: key for uid, key in zip(uids, keys, strict=True) if uid in wanted}
        except (ValueError, KeyError, IndexError, TypeError):
            return {}
