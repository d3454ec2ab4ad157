"""The genericstable: outgoing address rewriting."""

from __future__ import annotations

import pytest

from postoffice.core.address import parse_address
from postoffice.core.errors import TableError
from postoffice.directory.tables.genericstable import GenericsTable, parse_genericstable

SOURCE = "/etc/mail/genericstable"


def table(text: str) -> GenericsTable:
    return parse_genericstable(text, source=SOURCE)


GENERICS = (
    "alice                 alice.smith@example.com\n"  # 1
    "bob@host.example.com  bob@example.com\n"  # 2
    "@old.example.com      %1@example.com\n"  # 3
    "list+*@example.com    list-%1@example.com\n"  # 4
    "carol                 caroline\n"  # 5
)


@pytest.mark.parametrize(
    ("address", "rewritten", "line"),
    [
        ("alice@anything.test", "alice.smith@example.com", 1),
        ("Bob@Host.Example.com", "bob@example.com", 2),
        ("dave@old.example.com", "dave@example.com", 3),
        ("alice@old.example.com", "alice@example.com", 3),
        ("list+news@example.com", "list-news@example.com", 4),
        ("carol@x.test", "caroline@primary.test", 5),
        ("zed@x.test", None, None),
    ],
)
def test_lookup_order(address: str, rewritten: str | None, line: int | None) -> None:
    match = table(GENERICS).lookup(parse_address(address), default_domain="primary.test")
    if rewritten is None:
        assert match is None
    else:
        assert match is not None
        assert (str(match.address), match.entry.origin.line) == (rewritten, line)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("a@bad..domain x@y.test", "invalid key"),
        ("a x@@y", "invalid target"),
        ("a %2@y.test", "unknown placeholder %2"),
        ("a", "has no value"),
    ],
)
def test_genericstable_errors_name_file_and_line(line: str, message: str) -> None:
    with pytest.raises(TableError, match=message) as caught:
        table(f"ok ok@x.test\n{line}\n")
    assert f"{SOURCE}:2:" in str(caught.value)


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(TableError, match=rf"{SOURCE}:2: duplicate key"):
        table("a x@y.test\nA z@y.test\n")


def test_placeholders_fill_the_local_part_only() -> None:
    generics = table("@old.example.com  %1\n@old2.example.com  %1@example.com\n")
    match = generics.lookup(parse_address('"x@evil.test"@old.example.com'), default_domain="p.test")
    assert match is not None
    assert (match.address.local, match.address.domain) == ("x@evil.test", "p.test")
    match = generics.lookup(
        parse_address('"x@evil.test"@old2.example.com'), default_domain="p.test"
    )
    assert match is not None
    assert (match.address.local, match.address.domain) == ("x@evil.test", "example.com")
