"""FETCH of index-only items for many messages: ``metadata_renderer`` answers exactly
as ``fetch_items`` and ``fetch_response`` do, one message at a time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from postoffice.protocol.imap.fetch_items import FetchItem
from postoffice.protocol.imap.responses import fetch_response
from postoffice.server.imap_fetch import fetch_items, metadata_renderer
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
