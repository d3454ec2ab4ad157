"""The virtusertable: keys, targets, placeholders and sendmail's +detail lookup order."""

from __future__ import annotations

import pytest

from postoffice.core.address import parse_address
from postoffice.core.errors import TableError
from postoffice.core.reply import Reply
from postoffice.directory.tables.virtusertable import (
    VirtualTargetKind,
    VirtualUserTable,
    parse_virtusertable,
)

SOURCE = "/etc/mail/virtusertable"


def table(text: str) -> VirtualUserTable:
    return parse_virtusertable(text, source=SOURCE)


def test_parse_targets_and_kinds() -> None:
    vut = table(
        "info@Example.COM   foo-info\n"
        "sales@example.com  bob@other.test\n"
        "joe@example.com    error:nouser 550 No such user here\n"
        "jax@example.com    error:5.7.0:550 Address invalid\n"
        "@example.net       %1@example.org\n"
    )
    kinds = {key: entry.kind for key, entry in vut.entries.items()}
    assert kinds == {
        "info@example.com": VirtualTargetKind.LOCAL,
        "sales@example.com": VirtualTargetKind.ADDRESS,
        "joe@example.com": VirtualTargetKind.ERROR,
        "jax@example.com": VirtualTargetKind.ERROR,
        "@example.net": VirtualTargetKind.ADDRESS,
    }
    assert vut.entries["joe@example.com"].reply == Reply(550, "5.1.1", "No such user here")
    assert vut.entries["jax@example.com"].reply == Reply(550, "5.7.0", "Address invalid")
    assert vut.summary() == "5 entries (1 catch-all)"


def resolve(vut: VirtualUserTable, address: str) -> tuple[str | None, int | None, str | None]:
    match = vut.lookup(parse_address(address))
    if match is None:
        return None, None, None
    return match.target, match.entry.origin.line, match.stripped_detail


FULL_TABLE = (
    "user+exact@d.test    exact\n"  # 1
    "user++@d.test        plusplus-%2\n"  # 2
    "user+*@d.test        star-%2\n"  # 3
    "user@d.test          plain%3\n"  # 4
    "++@d.test            any-%1-%2\n"  # 5
    "+*@d.test            anystar-%1%3\n"  # 6
    "@d.test              catch-%1%3\n"  # 7
    "only@e.test          only\n"  # 8
    "@f.test              %1@g.test\n"  # 9
)


@pytest.mark.parametrize(
    ("address", "target", "line", "detail"),
    [
        ("user+exact@d.test", "exact", 1, None),
        ("User+Exact@D.TEST", "exact", 1, None),
        ("user+news@d.test", "plusplus-news", 2, "news"),
        ("user+@d.test", "star-", 3, ""),
        ("user@d.test", "plain", 4, None),
        ("other+news@d.test", "any-other-news", 5, "news"),
        ("other+@d.test", "anystar-other+", 6, ""),
        ("other@d.test", "catch-other", 7, None),
        ("only+x@e.test", "only", 8, "x"),
        ("Someone@f.test", "Someone@g.test", 9, None),
        ("nobody@e.test", None, None, None),
    ],
)
def test_detail_lookup_order(
    address: str, target: str | None, line: int | None, detail: str | None
) -> None:
    assert resolve(table(FULL_TABLE), address) == (target, line, detail)


def test_star_is_used_when_plusplus_is_absent() -> None:
    vut = table("user+*@d.test star-%2\nuser@d.test plain\n")
    assert resolve(vut, "user+x@d.test") == ("star-x", 1, "x")
    vut = table("user@d.test plain%3\n@d.test catch\n")
    assert resolve(vut, "user+x@d.test") == ("plain+x", 1, "x")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("nodomain target", "has no '@domain'"),
        ("a@bad..domain target", "invalid key"),
        ("a@d.test |/bin/sh", "programs, files and includes"),
        ("a@d.test /etc/passwd", "programs, files and includes"),
        ("a@d.test :include:/x", "programs, files and includes"),
        ("a@d.test %4@x.test", "unknown placeholder %4"),
        ("a@d.test bad target", "invalid target"),
        ("a@d.test error:250 fine", "not an error"),
        ("a@d.test error:bogus text", "unknown error name"),
        ("a@d.test", "has no value"),
    ],
)
def test_virtusertable_errors_name_file_and_line(line: str, message: str) -> None:
    with pytest.raises(TableError, match=message) as caught:
        table(f"ok@d.test fine\n{line}\n")
    assert f"{SOURCE}:2:" in str(caught.value)


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(TableError, match=rf"{SOURCE}:2: duplicate key"):
        table("a@d.test x\nA@D.test y\n")


def test_placeholders_fill_the_local_part_only() -> None:
    vut = table("@f.test  %1@g.test\n@h.test  %1\nu+*@f.test  %2\n")
    match = vut.lookup(parse_address('"bob@evil.test"@f.test'))
    assert match is not None
    address = match.address(default_domain="primary.test")
    assert (address.local, address.domain) == ("bob@evil.test", "g.test")
    match = vut.lookup(parse_address('"bob@evil.test"@h.test'))
    assert match is not None
    address = match.address(default_domain="primary.test")
    assert (address.local, address.domain) == ("bob@evil.test", "primary.test")
    match = vut.lookup(parse_address('"u+x@evil.test"@f.test'))
    assert match is not None
    address = match.address(default_domain="primary.test")
    assert (address.local, address.domain) == ("x@evil.test", "primary.test")
