"""FETCH of many messages without their octets: ``metadata_renderer`` (index-only
items) and ``ContentLoader.line_renderer`` (index items and kept structure answers)
answer exactly as ``fetch_items`` and ``fetch_response`` do, one message at a time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from postoffice.protocol.imap.fetch_items import FetchItem, Section
from postoffice.protocol.imap.responses import fetch_response
from postoffice.server.imap_fetch import (
    NO_TREE,
    ContentLoader,
    MessageContent,
    fetch_items,
)
from postoffice.server.imap_fetch_index import metadata_renderer
from postoffice.store.api import MessageInfo

FLAG_SETS = [
    (frozenset(), frozenset()),
    (frozenset({"\\Seen"}), frozenset()),
    (frozenset({"\\Seen", "\\Answered", "\\Flagged"}), frozenset({"$Forwarded"})),
    (frozenset({"\\Deleted"}), frozenset({"work", "$Junk"})),
]
INFOS = [
    MessageInfo(
        uid=uid,
        flags=FLAG_SETS[uid % len(FLAG_SETS)][0],
        keywords=FLAG_SETS[uid % len(FLAG_SETS)][1],
        internal_date=datetime(2026, 11, 27, 8, uid % 60, tzinfo=UTC),
        size=1000 + uid,
        modseq=7 * uid,
    )
    for uid in range(1, 41)
]


@pytest.mark.parametrize(
    "names",
    [
        ["UID", "FLAGS"],
        ["FLAGS", "UID"],  # the order asked is the order answered
        ["UID", "MODSEQ", "FLAGS"],
        ["INTERNALDATE", "RFC822.SIZE", "UID"],
        ["FLAGS"],
        ["MODSEQ"],
        ["RFC822.SIZE", "INTERNALDATE"],
    ],
)
def test_the_renderer_gives_what_fetch_items_gives(names: list[str]) -> None:
    items = [FetchItem(name) for name in names]
    render = metadata_renderer(items)
    for number, info in enumerate(INFOS, start=1):
        expected = fetch_response(number, fetch_items(items, info, None))
        assert render(number, info) == expected


def test_a_flag_set_rendered_once_is_not_shared_by_another() -> None:
    render = metadata_renderer([FetchItem("FLAGS")])
    seen = render(1, INFOS[0])
    other = render(2, INFOS[1])
    again = render(5, INFOS[4])  # the same flag set as INFOS[0]
    assert seen != other.replace(b"* 2", b"* 1")
    assert again == seen.replace(b"* 1 ", b"* 5 ")


def test_the_renderer_refuses_items_that_need_the_message() -> None:
    with pytest.raises(ValueError):
        metadata_renderer([FetchItem("UID"), FetchItem("ENVELOPE")])


OWNER, BOX, VALIDITY = "alice@example.test", "INBOX", 1_700_000_000
RENDERED = {
    "ENVELOPE": b'("Thu, 26 Nov 2026 09:00:00 +0000" "%d" NIL NIL NIL NIL NIL NIL NIL NIL)',
    "BODYSTRUCTURE": b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" %d 1 NIL NIL NIL)',
    "BODY": b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" %d 1)',
}


def loader_with_rendered(uids: range, utf8: bool) -> ContentLoader:
    """A loader holding the structure answers of ``uids`` (each its own, by uid)."""
    loader = ContentLoader()
    for uid in uids:
        memo = loader.memo(OWNER, BOX, VALIDITY, uid, utf8)
        for name, value in RENDERED.items():
            memo(name, lambda value=value, uid=uid: value % uid)
    return loader


@pytest.mark.parametrize(
    "names",
    [
        ["ENVELOPE", "BODYSTRUCTURE"],
        ["UID", "FLAGS", "ENVELOPE"],
        ["BODY", "MODSEQ", "INTERNALDATE", "BODYSTRUCTURE", "UID"],
    ],
)
def test_a_line_from_kept_answers_is_what_fetch_items_gives(names: list[str]) -> None:
    items = [FetchItem(name) for name in names]
    loader = loader_with_rendered(range(1, 31), utf8=False)
    render = loader.line_renderer(items, OWNER, BOX, VALIDITY, utf8=False)
    assert render is not None
    content = MessageContent(b"", NO_TREE, complete=False, rendered_only=True)
    for number, info in enumerate(INFOS, start=1):
        line = render(number, info)
        if info.uid > 30:  # nothing kept: the message goes the long way
            assert line is None
            continue
        memo = loader.memo(OWNER, BOX, VALIDITY, info.uid, False)
        assert line == fetch_response(number, fetch_items(items, info, content, memo=memo))
        assert b'"%d"' % info.uid in line or "ENVELOPE" not in names
    # Answers kept for the other mode (UTF8=ACCEPT) are not this mode's.
    other = loader.line_renderer(items, OWNER, BOX, VALIDITY, utf8=True)
    assert other is not None and other(1, INFOS[0]) is None


@pytest.mark.parametrize(
    "names", [["ENVELOPE", "RFC822.SIZE"], ["BODYSTRUCTURE", "BODY[TEXT]"], ["RFC822.HEADER"]]
)
def test_no_line_from_kept_answers_for_items_that_need_more(names: list[str]) -> None:
    items = [
        FetchItem("BODY", section=Section((), "TEXT")) if name == "BODY[TEXT]" else FetchItem(name)
        for name in names
    ]
    loader = loader_with_rendered(range(1, 3), utf8=False)
    assert loader.line_renderer(items, OWNER, BOX, VALIDITY, utf8=False) is None
