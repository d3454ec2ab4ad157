"""The aliases file: entries, targets, continuation lines and :include: files."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postoffice.core.errors import TableError
from postoffice.directory.tables.aliases import Aliases, AliasTargetKind, parse_aliases

SOURCE = "/etc/mail/aliases"


def aliases(text: str, includes: dict[str, str] | None = None) -> Aliases:
    files = includes or {}

    def read(path: Path) -> str:
        try:
            return files[str(path)]
        except KeyError:
            raise FileNotFoundError(2, "No such file or directory", str(path)) from None

    return parse_aliases(text, source=SOURCE, read_include=read)


def test_entries_with_continuation_lines_and_comments() -> None:
    table = aliases(
        "# system aliases\n"
        "postmaster: root\n"
        "Staff: alice, bob,\n"
        "   carol@Other.Test\n"
        "\n"
        "root: \\alice\n"
    )
    assert len(table) == 3
    staff = table.lookup("STAFF")
    assert staff is not None
    assert staff.origin.line == 3
    assert [str(t) for t in staff.targets] == ["alice", "bob", "carol@other.test"]
    assert [t.kind for t in staff.targets] == [
        AliasTargetKind.LOCAL,
        AliasTargetKind.LOCAL,
        AliasTargetKind.ADDRESS,
    ]
    assert [t.origin.line for t in staff.targets] == [3, 3, 3]
    root = table.lookup("root")
    assert root is not None and root.targets[0].no_alias
    assert table.summary() == "3 aliases, longest 3 targets"


def test_program_and_file_targets_quoted_and_unquoted() -> None:
    table = aliases(
        'vacation: "|/usr/bin/vacation alice, or not", |/bin/true,\n'
        '   /var/log/copy, "/var/spool/with space"\n'
    )
    entry = table.lookup("vacation")
    assert entry is not None
    assert [(t.kind, t.text) for t in entry.targets] == [
        (AliasTargetKind.PROGRAM, "/usr/bin/vacation alice, or not"),
        (AliasTargetKind.PROGRAM, "/bin/true"),
        (AliasTargetKind.FILE, "/var/log/copy"),
        (AliasTargetKind.FILE, "/var/spool/with space"),
    ]
    assert not any(t.from_include for t in entry.targets)


def test_includes_are_expanded_and_marked() -> None:
    table = aliases(
        "list: owner, :include:/etc/mail/list.txt\nrel: :include:members\n",
        {
            "/etc/mail/list.txt": "# members\nann, ben\ncid@remote.test\n|/bin/evil\n",
            "/etc/mail/members": "dan\n:include:/etc/mail/nested\n",
            "/etc/mail/nested": "eve\n",
        },
    )
    entry = table.lookup("list")
    assert entry is not None
    assert [str(t) for t in entry.targets] == [
        "owner",
        "ann",
        "ben",
        "cid@remote.test",
        "|/bin/evil",
    ]
    assert [t.from_include for t in entry.targets] == [False, True, True, True, True]
    assert str(entry.targets[4].origin) == "/etc/mail/list.txt:4"
    rel = table.lookup("rel")
    assert rel is not None
    assert [str(t) for t in rel.targets] == ["dan", "eve"]
    assert str(rel.targets[1].origin) == "/etc/mail/nested:1"
    assert [str(p) for p in table.include_files] == [
        "/etc/mail/list.txt",
        "/etc/mail/members",
        "/etc/mail/nested",
    ]


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("alice@example.test: bob\n", f"{SOURCE}:1", "contains '@'"),
        ("\nalice bob\n", f"{SOURCE}:2", "expected 'name: target"),
        ("alice:\n", f"{SOURCE}:1", "has no targets"),
        ("alice: ,\n", f"{SOURCE}:1", "has no targets"),
        (
            "alice: bob\nALICE: carol\n",
            f"{SOURCE}:2",
            "duplicate alias 'alice' .first at /etc/mail/aliases:1",
        ),
        ("a: b c\n", f"{SOURCE}:1", "invalid target"),
        ("a: bad@@x\n", f"{SOURCE}:1", "invalid target"),
        ('a: "|unterminated\n', f"{SOURCE}:1", "unterminated quote"),
        ("a: |\n", f"{SOURCE}:1", "empty program"),
        ("a: :include:\n", f"{SOURCE}:1", "without a file name"),
        ("a: :include:/missing\n", f"{SOURCE}:1", "cannot read :include: file /missing"),
        ("a: :include:/loop\n", "/loop:1", ":include: cycle"),
        ("a: :include:/bad\n", "/bad:2", "invalid target"),
        (": b\n", f"{SOURCE}:1", "expected 'name: target"),
    ],
)
def test_alias_errors_name_file_and_line(text: str, where: str, message: str) -> None:
    includes = {"/loop": ":include:/loop\n", "/bad": "ok\nnot valid\n"}
    with pytest.raises(TableError, match=message) as caught:
        aliases(text, includes)
    assert f"{where}:" in str(caught.value)


def test_include_depth_is_bounded() -> None:
    chain = {f"/inc{i}": f":include:/inc{i + 1}\n" for i in range(10)}
    with pytest.raises(TableError, match="nested deeper than"):
        aliases("a: :include:/inc0\n", chain)


def test_includes_refused_without_a_reader() -> None:
    with pytest.raises(TableError, match=rf"{SOURCE}:1: :include: is not allowed"):
        parse_aliases("a: :include:/x\n", source=SOURCE)


@given(st.text(alphabet=st.sampled_from('ab:,@|/" \t\n#\\:include:.'), max_size=120))
def test_aliases_garbage_only_raises_table_error(text: str) -> None:
    try:
        aliases(text, {"/x": "a, b\n"})
    except TableError as exc:
        assert ":" in str(exc)


def test_repeated_includes_are_read_once_and_their_expansion_is_bounded() -> None:
    # Five files, each naming the next twenty times: 20**4 * 20 targets if expanded
    # naively. Each file is read once and the total expansion has a limit.
    names = ["/b", "/c", "/d", "/e", "/f"]
    files = {name: f":include:{nxt}\n" * 20 for name, nxt in itertools.pairwise(names)}
    files["/f"] = "u@r.test\n" * 20
    reads: list[str] = []

    def read(path: Path) -> str:
        reads.append(str(path))
        return files[str(path)]

    with pytest.raises(TableError, match=r"more than \d+ targets"):
        parse_aliases("a: :include:/b\n", source=SOURCE, read_include=read)
    assert len(reads) == len(set(reads))


def test_an_include_named_twice_is_read_once() -> None:
    reads: list[str] = []

    def read(path: Path) -> str:
        reads.append(str(path))
        return "alice\nbob\n"

    table = parse_aliases(
        "a: :include:/l, :include:/l\nb: :include:/l\n", source=SOURCE, read_include=read
    )
    assert reads == ["/l"]
    entry = table.lookup("a")
    assert entry is not None and [str(t) for t in entry.targets] == ["alice", "bob"] * 2
    assert table.include_files == (Path("/l"),)
