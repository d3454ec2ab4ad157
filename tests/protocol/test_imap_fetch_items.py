"""FETCH data items (RFC 9051 §6.4.5, RFC 3516 BINARY): parse, response names, macros, \\Seen."""

from __future__ import annotations

import pytest

from postoffice.protocol.imap.commands import (
    Fetch,
)
from postoffice.protocol.imap.fetch_items import MAX_PART_DEPTH, FetchItem, Section
from tests.protocol.imap_parsing import parse, refused

# --- FETCH items ---------------------------------------------------------------------


def fetch_items(text: str) -> tuple[FetchItem, ...]:
    command = parse(f"A FETCH 1 {text}\r\n")
    assert isinstance(command, Fetch)
    return command.items


FETCH_ITEMS: list[tuple[str, FetchItem, bytes]] = [
    ("FLAGS", FetchItem("FLAGS"), b"FLAGS"),
    ("INTERNALDATE", FetchItem("INTERNALDATE"), b"INTERNALDATE"),
    ("RFC822", FetchItem("RFC822"), b"RFC822"),
    ("RFC822.HEADER", FetchItem("RFC822.HEADER"), b"RFC822.HEADER"),
    ("RFC822.SIZE", FetchItem("RFC822.SIZE"), b"RFC822.SIZE"),
    ("RFC822.TEXT", FetchItem("RFC822.TEXT"), b"RFC822.TEXT"),
    ("ENVELOPE", FetchItem("ENVELOPE"), b"ENVELOPE"),
    ("BODY", FetchItem("BODY"), b"BODY"),
    ("BODYSTRUCTURE", FetchItem("BODYSTRUCTURE"), b"BODYSTRUCTURE"),
    ("UID", FetchItem("UID"), b"UID"),
    ("BODY[]", FetchItem("BODY", Section()), b"BODY[]"),
    ("BODY[HEADER]", FetchItem("BODY", Section((), "HEADER")), b"BODY[HEADER]"),
    ("BODY[TEXT]", FetchItem("BODY", Section((), "TEXT")), b"BODY[TEXT]"),
    ("BODY[1]", FetchItem("BODY", Section((1,))), b"BODY[1]"),
    ("BODY[1.2.3]", FetchItem("BODY", Section((1, 2, 3))), b"BODY[1.2.3]"),
    ("BODY[1.2.MIME]", FetchItem("BODY", Section((1, 2), "MIME")), b"BODY[1.2.MIME]"),
    ("BODY[4.2.2.1.TEXT]", FetchItem("BODY", Section((4, 2, 2, 1), "TEXT")), b"BODY[4.2.2.1.TEXT]"),
    (
        "BODY[3.HEADER.FIELDS (A B)]",
        FetchItem("BODY", Section((3,), "HEADER.FIELDS", ("A", "B"))),
        b"BODY[3.HEADER.FIELDS (A B)]",
    ),
    (
        "BODY[HEADER.FIELDS.NOT (x)]",
        FetchItem("BODY", Section((), "HEADER.FIELDS.NOT", ("X",))),
        b"BODY[HEADER.FIELDS.NOT (X)]",
    ),
    (
        'BODY[HEADER.FIELDS ("Subject" {4}\r\nDate)]',
        FetchItem("BODY", Section((), "HEADER.FIELDS", ("SUBJECT", "DATE"))),
        b"BODY[HEADER.FIELDS (SUBJECT DATE)]",
    ),
    (
        "BODY.PEEK[]<0.100>",
        FetchItem("BODY", Section(), peek=True, partial=(0, 100)),
        b"BODY[]<0>",  # RFC 9051 §7.5.2: the origin only, no .PEEK
    ),
    (
        "BODY.PEEK[1.2.TEXT]<10.20>",
        FetchItem("BODY", Section((1, 2), "TEXT"), peek=True, partial=(10, 20)),
        b"BODY[1.2.TEXT]<10>",
    ),
    (
        "BODY[HEADER]<5.1>",
        FetchItem("BODY", Section((), "HEADER"), partial=(5, 1)),
        b"BODY[HEADER]<5>",
    ),
    ("body.peek[header]", FetchItem("BODY", Section((), "HEADER"), peek=True), b"BODY[HEADER]"),
    ("BINARY[1]<5.10>", FetchItem("BINARY", Section((1,)), partial=(5, 10)), b"BINARY[1]<5>"),
    ("BINARY.PEEK[]", FetchItem("BINARY", Section(), peek=True), b"BINARY[]"),
    ("BINARY[1.2]", FetchItem("BINARY", Section((1, 2))), b"BINARY[1.2]"),
    ("BINARY.SIZE[2]", FetchItem("BINARY.SIZE", Section((2,))), b"BINARY.SIZE[2]"),
    ("BINARY.SIZE[]", FetchItem("BINARY.SIZE", Section()), b"BINARY.SIZE[]"),
]


@pytest.mark.parametrize(
    ("text", "item", "name"), [pytest.param(*case, id=case[0]) for case in FETCH_ITEMS]
)
def test_fetch_item_and_its_response_name(text: str, item: FetchItem, name: bytes) -> None:
    assert fetch_items(text) == (item,)
    assert fetch_items(f"({text})") == (item,)
    assert item.response_name() == name


def test_all_fetch_items_in_one_list() -> None:
    text = " ".join(case[0] for case in FETCH_ITEMS)
    assert fetch_items(f"({text})") == tuple(case[1] for case in FETCH_ITEMS)


@pytest.mark.parametrize(
    ("macro", "names"),
    [
        ("ALL", ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE")),
        ("FAST", ("FLAGS", "INTERNALDATE", "RFC822.SIZE")),
        ("FULL", ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY")),
        ("fast", ("FLAGS", "INTERNALDATE", "RFC822.SIZE")),
    ],
)
def test_fetch_macros(macro: str, names: tuple[str, ...]) -> None:
    # RFC 9051 §6.4.5
    assert fetch_items(macro) == tuple(FetchItem(name) for name in names)


@pytest.mark.parametrize(
    ("text", "sets_seen"),
    [
        ("BODY[]", True),
        ("BODY.PEEK[]", False),
        ("BODY[1.MIME]", True),
        ("BINARY[1]", True),
        ("BINARY.PEEK[1]", False),
        ("BINARY.SIZE[1]", False),
        ("RFC822", True),
        ("RFC822.TEXT", True),
        ("RFC822.HEADER", False),
        ("BODY", False),
        ("BODYSTRUCTURE", False),
        ("FLAGS", False),
    ],
)
def test_which_items_set_seen(text: str, sets_seen: bool) -> None:
    # RFC 9051 §6.4.5 (and RFC 3501 for RFC822, RFC822.TEXT)
    (item,) = fetch_items(text)
    assert item.sets_seen is sets_seen


@pytest.mark.parametrize(
    "text",
    [
        "BODY[MIME]",  # MIME needs a part
        "BODY[0]",
        "BODY[1.0]",
        "BODY[01]",
        "BODY[1.]",
        "BODY[.TEXT]",
        "BODY[ TEXT]",
        "BODY[TEXT",
        "BODY[HEADERS]",
        "BODY[HEADER.FIELDS]",
        "BODY[HEADER.FIELDS ()]",
        "BODY[HEADER.FIELDS (A]",
        "BODY[HEADER.FIELDS.NOT]",
        "BODY[]<0.0>",  # the count is nz-number
        "BODY[]<5>",
        "BODY[]<1.2",
        "BODY[]<a.2>",
        "BINARY[1.TEXT]",  # BINARY takes part numbers only
        "BINARY[HEADER]",
        "BINARY.SIZE[1]<0.1>",
        "BODY.PEEK",
        "BINARY",
        "BINARY.PEEK",
        "BINARY.SIZE",
        "(FLAGS",
        "(FLAGS  UID)",
        "FASTER",
        "FLAGS UID",
    ],
)
def test_fetch_item_errors(text: str) -> None:
    error = refused(f"A FETCH 1 {text}\r\n")
    assert (error.tag, error.status) == ("A", "BAD")


def test_section_part_depth_is_bounded() -> None:
    deep = ".".join(["1"] * (MAX_PART_DEPTH + 1))
    assert "deep" in str(refused(f"A FETCH 1 BODY[{deep}]\r\n"))
    (item,) = fetch_items("BODY[" + ".".join(["1"] * MAX_PART_DEPTH) + "]")
    assert item.section == Section((1,) * MAX_PART_DEPTH)
