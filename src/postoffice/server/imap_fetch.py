"""FETCH: the data items of one message, rendered (RFC 9051 §6.4.5, §7.5.2; RFC 3516 BINARY).

What this module owns: ``MessageContent`` (a message's octets in the wire
form, CRLF line ends, with its part tree), ``ContentLoader`` (reads a
message from the store; its part tree is computed once and kept in the
store's index, so ENVELOPE, BODYSTRUCTURE and sections are served from
offsets without parsing the message again; their rendered ENVELOPE,
BODYSTRUCTURE and BODY are kept in the index too, so a process that has
not seen a message yet answers them without reading its file),
``fetch_items``, which
renders the requested items of one message in the order they were asked
(the items the index answers alone, and whole lines of them, are
``imap_fetch_index``'s), and ``ContentLoader.line_renderer``, whole lines
of index items and kept structure answers.

Invariants:
- every octet of a section comes from the stored message (a slice, never a
  re-serialisation); a message stored with bare LF line ends is served
  with CRLF ones, and its RFC822.SIZE counts those (RFC 9051 §2.3.4);
- RFC822.SIZE, BODY[] and the sizes in BODYSTRUCTURE agree with each other;
- a partial fetch ``<origin.count>`` is a slice of the section; an origin
  past its end gives an empty string (RFC 9051 §6.4.5).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Final

from postoffice.mime.bodystructure import body_structure
from postoffice.mime.envelope import envelope
from postoffice.mime.headers import decode_transfer, header_values
from postoffice.mime.sections import is_crlf_clean, section_bytes, to_crlf
from postoffice.mime.structure import (
    Part,
    decode_structure,
    encode_structure,
    find_part,
    parse_structure,
)
from postoffice.protocol.imap.fetch_items import FetchItem, Section
from postoffice.protocol.imap.responses import (
    Literal,
    Literal8,
    encode,
)
from postoffice.server.imap_fetch_index import INDEX_ITEMS, index_getter, index_value, line_template
from postoffice.server.imap_keys import KeptAnswers, MessageKeys
from postoffice.store.api import MailStore, MessageInfo

STRUCTURE_CACHE_SIZE = 20_000  # part trees kept per process
HEADER_CACHE_OCTETS = 64 * 1024 * 1024  # top-level headers kept per process
FIELD_CACHE_SIZE = 200_000  # (message, field) values kept for SEARCH
RENDERED_CACHE_OCTETS = 32 * 1024 * 1024  # ENVELOPE/BODYSTRUCTURE answers kept per process
# What one kept answer takes besides its octets (its key, UID, bytes header and the
# ordered dict's entry), counted against the bound: a BODY is often ~60 octets.
RENDERED_ENTRY_COST = 300
# ``memo(item name, compute)``: an item's rendered value, kept (``ContentLoader.memo``)
Memo = Callable[[str, Callable[[], bytes]], bytes]
# Items made from the header and the part tree alone (BODY only without a section).
STRUCTURE_ITEMS = frozenset({"ENVELOPE", "BODYSTRUCTURE", "BODY"})


# The root of a content that has no tree (``ContentLoader.rendered_content``
# without RFC822.SIZE): nothing may be read from it.
NO_TREE: Final = Part(0, 0, 0, "application", "x-unknown")


class UnknownTransferEncoding(Exception):
    """BINARY of a part whose Content-Transfer-Encoding we cannot decode (RFC 3516 §4.3)."""


@dataclass(frozen=True, slots=True)
class MessageContent:
    data: bytes  # CRLF line ends; only the top-level header when not ``complete``
    root: Part
    complete: bool = True
    # No octets at all: every structure item asked is rendered already
    # (``ContentLoader.rendered_content``); only the tree's sizes may be used.
    rendered_only: bool = False

    @property
    def size(self) -> int:
        return len(self.data)


def _rendered_field(name: str, utf8: bool) -> str:
    """The index row (a ``header_fields`` name, ``store.field_cache``) keeping a
    rendered structure item: ``:fetch/envelope/0``; 1 when rendered for UTF8=ACCEPT."""
    return f":fetch/{name.lower()}/{int(utf8)}"


def _box(owner: str, mailbox: str) -> str:
    """One user's mailbox, as the caches' keys name it (with UIDVALIDITY and UID)."""
    return owner + "\x00" + mailbox


class ContentLoader:
    """Reads messages for FETCH and SEARCH; their part trees are computed once.

    A tree is looked for in memory (bounded, least recently used out), then
    in the store's index (``prepare``, one query for a whole FETCH), and only
    then computed from the octets; trees computed by a command are written
    to the index together at its end (``keep``), so a message is parsed once
    in its life, not once per process or per command.
    """

    def __init__(
        self, capacity: int = STRUCTURE_CACHE_SIZE, header_octets: int = HEADER_CACHE_OCTETS
    ):
        self.capacity = capacity
        self._trees: OrderedDict[tuple[str, int, int], Part] = OrderedDict()
        self._fresh: dict[tuple[str, int], list[tuple[int, Part]]] = {}
        # Top-level headers of messages read lately (SEARCH by header, ENVELOPE),
        # bounded by their total size: what a client asks about again and again.
        self._headers: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()
        self._header_octets = 0
        self.header_capacity = header_octets
        self._fields: OrderedDict[tuple[str, int, int, str], list[str]] = OrderedDict()
        # Rendered ENVELOPE, BODYSTRUCTURE and BODY values: a mail client asks for
        # the same ones each time it opens the mailbox (messages never change).
        self._rendered: OrderedDict[tuple[str, int, int, str, bool], bytes] = OrderedDict()
        self._rendered_octets = 0
        self.rendered_capacity = RENDERED_CACHE_OCTETS
        # Values rendered since the last ``keep``, to be written to the index then:
        # (uid, row name, [value as Latin-1 text]) by (mailbox, UIDVALIDITY).
        self._fresh_rendered: dict[tuple[str, int], list[tuple[int, str, list[str]]]] = {}
        self._fresh_rendered_octets = 0  # bounded by an eighth of ``rendered_capacity``
        # Header field values of whole mailboxes, by (owner, mailbox, UIDVALIDITY):
        # ``imap_fields`` keeps and bounds them (SORT, THREAD, SEARCH batches).
        self.batches: OrderedDict[tuple[str, str, int], dict[tuple[int, str], list[str]]] = (
            OrderedDict()
        )
        self._memo_box = ""  # the last key's mailbox, shared by the keys that follow
        # What SORT and THREAD compare of each message (``imap_keys``).
        self.keys = MessageKeys()
        # THREAD's last answers, by what they were computed from (``imap_keys``).
        self.answers = KeptAnswers()

    def memo(self, owner: str, mailbox: str, uidvalidity: int, uid: int, utf8: bool) -> Memo:
        """The ``Memo`` of one message's rendered values (per ``utf8``, which changes
        how 8-bit strings are sent), bounded by their total size."""
        box = _box(owner, mailbox)
        if box == self._memo_box:
            box = self._memo_box  # one string for the many keys of a FETCH
        self._memo_box = box

        def memo(name: str, compute: Callable[[], bytes]) -> bytes:
            key = (box, uidvalidity, uid, name, utf8)
            value = self._rendered.get(key)
            if value is not None:
                self._rendered.move_to_end(key)
                return value
            value = compute()
            self._put_rendered(key, value)
            cost = len(value) + RENDERED_ENTRY_COST
            if self._fresh_rendered_octets + cost <= self.rendered_capacity // 8:
                # Bounded even if no ``keep`` ever comes (what does not fit is not
                # kept in the index). Latin-1: one character an octet, so the
                # row gives the octets back.
                fresh = self._fresh_rendered.setdefault((box, uidvalidity), [])
                fresh.append((uid, _rendered_field(name, utf8), [value.decode("latin-1")]))
                self._fresh_rendered_octets += cost
            return value

        return memo

    def _put_rendered(self, key: tuple[str, int, int, str, bool], value: bytes) -> None:
        self._rendered[key] = value
        self._rendered_octets += len(value) + RENDERED_ENTRY_COST
        while self._rendered_octets > self.rendered_capacity:
            _, dropped = self._rendered.popitem(last=False)
            self._rendered_octets -= len(dropped) + RENDERED_ENTRY_COST

    async def prepare_rendered(
        self,
        store: MailStore,
        mailbox: str,
        uidvalidity: int,
        uids: Sequence[int],
        owner: str,
        names: Sequence[str],
        utf8: bool,
    ) -> list[int]:
        """Bring the index's rendered ``names`` (structure items) of ``uids`` into
        memory, for the messages that lack one there: one query for a FETCH. The
        uids of ``uids`` that still lack one (they must be rendered), in order."""
        box = _box(owner, mailbox)
        rendered = self._rendered
        missing = [
            uid
            for uid in uids
            if any((box, uidvalidity, uid, name, utf8) not in rendered for name in names)
        ]
        if not missing:
            return []
        fields = {_rendered_field(name, utf8): name for name in names}
        found = await store.header_fields(mailbox, uidvalidity, missing, list(fields))
        for (uid, field), values in found.items():
            name = fields.get(field)
            if name is None or len(values) != 1:
                continue
            try:
                value = values[0].encode("latin-1")
            except UnicodeEncodeError:
                continue  # not a row this module wrote (damaged): rendered again
            self._put_rendered((box, uidvalidity, uid, name, utf8), value)
        return [
            uid
            for uid in missing
            if not self.all_rendered(owner, mailbox, uidvalidity, uid, names, utf8)
        ]

    def all_rendered(
        self, owner: str, mailbox: str, uidvalidity: int, uid: int, names: Sequence[str], utf8: bool
    ) -> bool:
        """True when every one of ``names`` of the message is rendered in memory."""
        box, rendered = _box(owner, mailbox), self._rendered
        return all((box, uidvalidity, uid, name, utf8) in rendered for name in names)

    def line_renderer(
        self,
        items: Sequence[FetchItem],
        owner: str,
        mailbox: str,
        uidvalidity: int,
        utf8: bool,
    ) -> Callable[[int, MessageInfo], bytes | None] | None:
        """``render(number, info)``: the whole ``* n FETCH (...)`` line, as
        ``fetch_items`` and ``fetch_response`` would give it, when every item is
        either answered by the index or a structure item (ENVELOPE, BODYSTRUCTURE,
        BODY) kept rendered in memory; it gives None for a message that lacks one
        (that one goes the long way). None when some item needs more than that
        (RFC822.SIZE: the size sent is the tree's end)."""
        if not all(
            (item.name in STRUCTURE_ITEMS and item.section is None)
            or (item.name in INDEX_ITEMS and item.name != "RFC822.SIZE")
            for item in items
        ):
            return None
        box, rendered = _box(owner, mailbox), self._rendered
        flags: dict[object, bytes] = {}
        # Per item: the structure item's name, or the index value's getter.
        parts = [
            item.name if item.name in STRUCTURE_ITEMS else index_getter(item.name, flags)
            for item in items
        ]
        template = line_template(items)

        def render(number: int, info: MessageInfo) -> bytes | None:
            values: list[bytes] = []
            for part in parts:
                if isinstance(part, str):
                    key = (box, uidvalidity, info.uid, part, utf8)
                    value = rendered.get(key)
                    if value is None:
                        return None
                    rendered.move_to_end(key)  # recently used, as ``memo`` counts it
                    values.append(value)
                else:
                    values.append(part(info))
            return template % (number, *values)

        return render

    def rendered_content(
        self,
        owner: str,
        mailbox: str,
        uidvalidity: int,
        uid: int,
        names: Sequence[str],
        utf8: bool,
        stored_size: int | None,
        *,
        sized: bool,
    ) -> MessageContent | None:
        """A content without octets, when every one of ``names`` is rendered in
        memory and, if RFC822.SIZE is asked too (``sized``), the tree is known for
        the stored octets (the size is its end); None when the message must be
        loaded. Without ``sized`` no tree is needed: its root is ``NO_TREE``."""
        if not self.all_rendered(owner, mailbox, uidvalidity, uid, names, utf8):
            return None
        if not sized:
            return MessageContent(b"", NO_TREE, complete=False, rendered_only=True)
        root = self._trees.get(self._key(owner, mailbox, uidvalidity, uid))
        if root is None or root.end != stored_size:
            return None
        return MessageContent(b"", root, complete=False, rendered_only=True)

    def has_tree(
        self, owner: str, mailbox: str, uidvalidity: int, uid: int, stored_size: int | None
    ) -> bool:
        """True when the message's tree is in memory (made from its stored octets)."""
        root = self._trees.get(self._key(owner, mailbox, uidvalidity, uid))
        return root is not None and root.end == stored_size

    def _remember_header(self, key: tuple[str, int, int], head: bytes) -> None:
        old = self._headers.pop(key, None)
        if old is not None:
            self._header_octets -= len(old)
        self._headers[key] = head
        self._header_octets += len(head)
        while self._header_octets > self.header_capacity and self._headers:
            _, dropped = self._headers.popitem(last=False)
            self._header_octets -= len(dropped)

    @staticmethod
    def _key(owner: str, mailbox: str, uidvalidity: int, uid: int) -> tuple[str, int, int]:
        return (_box(owner, mailbox), uidvalidity, uid)

    def _remember(self, key: tuple[str, int, int], root: Part) -> None:
        self._trees[key] = root
        self._trees.move_to_end(key)
        while len(self._trees) > self.capacity:
            self._trees.popitem(last=False)

    async def prepare(
        self, store: MailStore, mailbox: str, uidvalidity: int, uids: Sequence[int], owner: str
    ) -> None:
        """Bring the index's trees of ``uids`` into memory (those not there yet)."""
        missing = [u for u in uids if self._key(owner, mailbox, uidvalidity, u) not in self._trees]
        if not missing:
            return
        for uid, blob in (await store.structures(mailbox, missing)).items():
            try:
                root = decode_structure(blob)
            except ValueError:
                continue  # a tree from another version, or damaged: computed again
            self._remember(self._key(owner, mailbox, uidvalidity, uid), root)

    async def load(
        self,
        store: MailStore,
        mailbox: str,
        uidvalidity: int,
        uid: int,
        owner: str,
        *,
        stored_size: int | None = None,
        header_only: bool = False,
    ) -> MessageContent:
        """The message (or with ``header_only`` its top-level header only, when its
        tree is known and holds no encapsulated message, whose ENVELOPE is in the
        body). ``stored_size`` is the index's size of the stored octets: a
        known tree of the same length was made from the octets as stored (a
        converted message grows), so they need neither a check nor a conversion."""
        key = self._key(owner, mailbox, uidvalidity, uid)
        known = self._trees.get(key)
        if known is not None and stored_size == known.end:
            self._trees.move_to_end(key)
            if header_only and not _encapsulates(known):
                head = self._headers.get(key)
                if head is None:
                    head = await store.read(mailbox, uid, 0, known.body_start)
                    self._remember_header(key, head)
                else:
                    self._headers.move_to_end(key)
                return MessageContent(head, known, complete=False)
            whole = await store.read(mailbox, uid)
            if len(whole) == known.end:
                self._remember_header(key, whole[: known.body_start])
                return MessageContent(whole, known)
        raw = await store.read(mailbox, uid)
        data = raw if is_crlf_clean(raw) else to_crlf(raw)
        root = self._trees.get(key)
        if root is not None and root.end == len(data):
            self._trees.move_to_end(key)
            return MessageContent(data, root)
        root = parse_structure(data)
        self._remember(key, root)
        if data is raw:
            self._remember_header(key, data[: root.body_start])
        fresh = self._fresh.setdefault((_box(owner, mailbox), uidvalidity), [])
        if len(fresh) < self.capacity:  # bounded even if no ``keep`` ever comes
            fresh.append((uid, root))
        return MessageContent(data, root)

    async def header_values(
        self,
        store: MailStore,
        mailbox: str,
        uidvalidity: int,
        uid: int,
        owner: str,
        field: str,
        *,
        stored_size: int | None = None,
    ) -> list[str]:
        """``mime.headers.header_values`` of one top-level field, kept: a client that
        searches by a header once tends to do it again."""
        key = (_box(owner, mailbox), uidvalidity, uid, field.lower())
        found = self._fields.get(key)
        if found is not None:
            self._fields.move_to_end(key)
            return found
        content = await self.load(
            store, mailbox, uidvalidity, uid, owner, stored_size=stored_size, header_only=True
        )
        values = header_values(content.data, content.root, field)
        self._fields[key] = values
        if len(self._fields) > FIELD_CACHE_SIZE:
            self._fields.popitem(last=False)
        return values

    async def keep(self, store: MailStore, mailbox: str, uidvalidity: int, owner: str) -> None:
        """Write the trees and rendered items computed since the last ``keep`` to
        the index."""
        fresh = self._fresh.pop((_box(owner, mailbox), uidvalidity), None)
        if fresh:
            await store.save_structures(
                mailbox, [(uid, encode_structure(root)) for uid, root in fresh]
            )
        rendered = self._fresh_rendered.pop((_box(owner, mailbox), uidvalidity), None)
        if rendered:
            self._fresh_rendered_octets -= sum(
                len(values[0]) + RENDERED_ENTRY_COST for _, _, values in rendered
            )
            await store.save_header_fields(mailbox, uidvalidity, rendered)


def _encapsulates(part: Part) -> bool:
    """True when a message/rfc822 (or /global) part is somewhere in the tree."""
    return part.message is not None or any(_encapsulates(child) for child in part.children)


def header_is_enough(items: Sequence[FetchItem]) -> bool:
    """True when the items need of the message only its top-level header and part
    tree (ENVELOPE, BODYSTRUCTURE, BODY without a section: RFC 9051 §7.5.2), so
    that ``ContentLoader.load`` need not read the body."""
    return all(
        item.name in INDEX_ITEMS or (item.name in STRUCTURE_ITEMS and item.section is None)
        for item in items
    )


def needs_content(items: Sequence[FetchItem]) -> bool:
    """True when some item needs the message's octets (not only the index)."""
    return any(item.name not in INDEX_ITEMS for item in items)


def _partial(data: bytes, partial: tuple[int, int] | None) -> bytes:
    if partial is None:
        return data
    origin, count = partial
    return data[origin : origin + count]


def section_data(content: MessageContent, section: Section) -> bytes:
    """The octets of BODY[section] (empty for a part the message does not have)."""
    found = section_bytes(content.data, content.root, section.part, section.text, section.fields)
    return b"" if found is None else found


def binary_data(content: MessageContent, section: Section) -> bytes:
    """BINARY[part]: the part's body with its transfer encoding undone (RFC 3516 §4.2)."""
    if not section.part:
        return content.data  # BINARY[] is the whole message, as is
    part = find_part(content.root, section.part)
    if part is None:
        return b""
    if part.children or part.message is not None:
        # RFC 3516 §4.2: a multipart or message part has no encoding of its own to undo
        return content.data[part.body_start : part.end]
    decoded = decode_transfer(content.data[part.body_start : part.end], part.encoding)
    if decoded is None:
        raise UnknownTransferEncoding(part.encoding)
    return decoded


def fetch_items(
    items: Sequence[FetchItem],
    info: MessageInfo,
    content: MessageContent | None,
    *,
    utf8: bool = False,
    memo: Memo | None = None,
) -> list[tuple[bytes, bytes]]:
    """(name, value) pairs of one FETCH response, in the order asked; ``memo`` keeps
    the structure items (ENVELOPE, BODYSTRUCTURE, BODY) rendered once."""
    out: list[tuple[bytes, bytes]] = []
    for item in items:
        name = item.name
        if name == "RFC822.SIZE" and content is not None:
            assert content.root is not NO_TREE, "RFC822.SIZE of a content without its tree"
            # The tree's end: the whole message's size, also when only its header was read.
            value = b"%d" % content.root.end
        elif name in INDEX_ITEMS:
            value = index_value(name, info)
        else:
            assert content is not None, f"{name} needs the message content"
            if memo is not None and name in STRUCTURE_ITEMS and item.section is None:
                value = memo(name, partial(_content_item, item, content, utf8=utf8))
            else:
                value = _content_item(item, content, utf8=utf8)
        out.append((item.response_name(), value))
    return out


def _content_item(item: FetchItem, content: MessageContent, *, utf8: bool) -> bytes:
    name = item.name
    assert not content.rendered_only, f"{name} needs the message's octets"
    if name == "ENVELOPE":
        return encode(envelope(content.data, content.root), utf8=utf8)
    # message/global parts are described as messages only to IMAP4rev2 clients
    # (RFC 9051 §7.5.2); the rev1 grammar has them as basic parts.
    if name == "BODYSTRUCTURE":
        return encode(body_structure(content.data, content.root, True, utf8), utf8=utf8)
    if name == "BODY" and item.section is None:
        return encode(body_structure(content.data, content.root, False, utf8), utf8=utf8)
    if name == "RFC822":
        return encode(Literal(content.data))
    if name == "RFC822.HEADER":
        return encode(Literal(section_data(content, Section((), "HEADER"))))
    if name == "RFC822.TEXT":
        return encode(Literal(section_data(content, Section((), "TEXT"))))
    assert item.section is not None
    if name == "BODY":
        return encode(Literal(_partial(section_data(content, item.section), item.partial)))
    data = binary_data(content, item.section)
    if name == "BINARY.SIZE":
        return b"%d" % len(data)
    data = _partial(data, item.partial)
    # RFC 3516 §4.2: literal8 only when the data holds a NUL
    return encode(Literal8(data) if b"\x00" in data else Literal(data))
