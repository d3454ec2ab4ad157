"""FETCH items the index answers alone: FLAGS, UID, INTERNALDATE, RFC822.SIZE, MODSEQ.

What this module owns: ``INDEX_ITEMS``, ``index_value`` (one item of one
message, as ``imap_fetch.fetch_items`` sends it), and ``metadata_renderer``,
whole ``* n FETCH (...)`` lines of such items for whole mailboxes
(``UID FETCH 1:* (UID FLAGS)``, a client's resync): item names encoded once
a command, each distinct flag set rendered once, one format a line.
``line_template`` and ``index_getter`` serve ``imap_fetch`` too, for lines
that mix index items with kept structure answers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from postoffice.protocol.imap.dates import format_date_time
from postoffice.protocol.imap.fetch_items import FetchItem
from postoffice.protocol.imap.responses import atoms, encode_string, modseq_value
from postoffice.server.imap_view import flag_names
from postoffice.store.api import MessageInfo

# Items answered from the index alone, without the message.
INDEX_ITEMS = frozenset({"FLAGS", "UID", "INTERNALDATE", "RFC822.SIZE", "MODSEQ"})


def index_value(name: str, info: MessageInfo, flags: dict[object, bytes] | None = None) -> bytes:
    """The value of an item in ``INDEX_ITEMS``; ``flags`` keeps rendered flag sets."""
    if name == "UID":
        return b"%d" % info.uid
    if name == "FLAGS":
        if flags is None:
            return atoms(flag_names(info))
        key = (info.flags, info.keywords)
        rendered = flags.get(key)
        if rendered is None:
            rendered = flags[key] = atoms(flag_names(info))
        return rendered
    if name == "MODSEQ":
        return modseq_value(info.modseq)  # RFC 7162 §3.1.4.2
    if name == "INTERNALDATE":
        return encode_string(format_date_time(info.internal_date))
    assert name == "RFC822.SIZE", name
    return b"%d" % info.size


def metadata_renderer(items: Sequence[FetchItem]) -> Callable[[int, MessageInfo], bytes]:
    """``render(number, info)``: the whole ``* n FETCH (...)`` line of items that need
    no message content (all in ``INDEX_ITEMS``), as ``fetch_items`` and
    ``fetch_response`` would give it. Meant for one command: it keeps each flag set
    it rendered (a mailbox has few distinct ones)."""
    if any(item.name not in INDEX_ITEMS for item in items):
        raise ValueError("metadata_renderer: an item needs the message's content")
    flags: dict[object, bytes] = {}
    getters = [index_getter(item.name, flags) for item in items]
    template = line_template(items)
    if len(getters) == 1:
        (only,) = getters

        def render_one(number: int, info: MessageInfo) -> bytes:
            return template % (number, only(info))

        return render_one
    if [item.name for item in items] == ["UID", "FLAGS"]:  # a resync's, 100,000 of them

        def render_uid_flags(number: int, info: MessageInfo) -> bytes:
            key = (info.flags, info.keywords)
            shown = flags.get(key)
            if shown is None:
                shown = flags[key] = atoms(flag_names(info))
            return b"* %d FETCH (UID %d FLAGS %b)\r\n" % (number, info.uid, shown)

        return render_uid_flags
    if len(getters) == 2:  # UID and MODSEQ, FLAGS and MODSEQ, ...
        first, second = getters

        def render_two(number: int, info: MessageInfo) -> bytes:
            return template % (number, first(info), second(info))

        return render_two

    def render(number: int, info: MessageInfo) -> bytes:
        return template % (number, *[get(info) for get in getters])

    return render


def line_template(items: Sequence[FetchItem]) -> bytes:
    """One template for a command's lines: ``* %d FETCH (UID %b FLAGS %b)\\r\\n``."""
    return (
        b"* %d FETCH ("
        + b" ".join(item.response_name().replace(b"%", b"%%") + b" %b" for item in items)
        + b")\r\n"
    )


def index_getter(name: str, flags: dict[object, bytes]) -> Callable[[MessageInfo], bytes]:
    """``index_value`` of one item as a function of the message alone."""
    if name == "UID":
        return lambda info: b"%d" % info.uid
    if name == "FLAGS":
        return partial(index_value, "FLAGS", flags=flags)
    if name == "RFC822.SIZE":
        return lambda info: b"%d" % info.size
    return partial(index_value, name)
