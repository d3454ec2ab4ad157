"""TableSet: loading the six files, reloading on change, keeping the last good table."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from postoffice.core.address import parse_address
from postoffice.core.errors import TableError
from postoffice.directory.tables.tableset import TABLE_FILE_NAMES, TableSet


def write(path: Path, text: str, *, bump: int = 0) -> None:
    """Write ``text`` and move the mtime forward so that a change is always visible."""
    path.write_text(text, encoding="utf-8")
    stat = path.stat()
    later = stat.st_mtime_ns + bump * 1_000_000_000
    os.utime(path, ns=(later, later))


def test_missing_files_are_empty_tables(tmp_path: Path) -> None:
    tables = TableSet(tmp_path).snapshot()
    assert len(tables.aliases) == 0
    assert len(tables.access) == 0
    assert tables.local_host_names.domains == frozenset()


def test_all_six_files_are_loaded(tmp_path: Path) -> None:
    write(tmp_path / "local-host-names", "example.test\n")
    write(tmp_path / "access", "Connect:127.0.0.1 RELAY\n")
    write(tmp_path / "aliases", "postmaster: root\n")
    write(tmp_path / "virtusertable", "@example.test alice\n")
    write(tmp_path / "mailertable", "other.test smtp:[10.0.0.1]\n")
    write(tmp_path / "genericstable", "alice alice@example.test\n")
    tables = TableSet(tmp_path).snapshot()
    assert "example.test" in tables.local_host_names
    assert len(tables.access) == 1
    assert tables.aliases.lookup("postmaster") is not None
    assert len(tables.virtusertable) == 1
    assert tables.mailertable.lookup("other.test") is not None
    assert len(tables.genericstable) == 1


def test_first_load_with_an_error_raises_naming_file_and_line(tmp_path: Path) -> None:
    write(tmp_path / "aliases", "ok: alice\nbad@name: bob\n")
    with pytest.raises(TableError, match=rf"{tmp_path / 'aliases'}:2:"):
        TableSet(tmp_path)


def test_a_changed_file_is_reloaded_on_access(tmp_path: Path) -> None:
    aliases = tmp_path / "aliases"
    write(aliases, "staff: alice\n")
    table_set = TableSet(tmp_path)
    first = table_set.snapshot()
    assert table_set.snapshot() is first  # nothing changed: the same snapshot
    write(aliases, "staff: alice, bob\n", bump=1)
    second = table_set.snapshot()
    entry = second.aliases.lookup("staff")
    assert entry is not None and len(entry.targets) == 2
    assert second.access is first.access  # untouched tables are not re-parsed


def test_a_created_and_a_deleted_file_are_noticed(tmp_path: Path) -> None:
    table_set = TableSet(tmp_path)
    write(tmp_path / "access", "From:spam.test REJECT\n")
    assert len(table_set.snapshot().access) == 1
    (tmp_path / "access").unlink()
    assert len(table_set.snapshot().access) == 0


def test_a_broken_edit_keeps_the_old_table_and_records_the_error(tmp_path: Path) -> None:
    access = tmp_path / "access"
    write(access, "From:spam.test REJECT\n")
    table_set = TableSet(tmp_path)
    write(access, "From:spam.test REJECT\nFrom:other.test PERMIT\n", bump=1)
    tables = table_set.snapshot()
    rule = tables.access.check_from(parse_address("x@spam.test"))
    assert rule is not None  # still the previous good table
    assert len(tables.access) == 1
    (error,) = table_set.errors
    assert f"{access}:2:" in str(error)
    # the bad file is not parsed again until it changes; fixing it clears the error
    write(access, "From:other.test REJECT\n", bump=2)
    tables = table_set.snapshot()
    assert table_set.errors == ()
    assert tables.access.check_from(parse_address("x@spam.test")) is None


def test_include_files_are_watched(tmp_path: Path) -> None:
    write(tmp_path / "aliases", "list: :include:members\n")
    members = tmp_path / "members"
    write(members, "alice\n")
    table_set = TableSet(tmp_path)
    write(members, "alice\nbob\n", bump=1)
    entry = table_set.snapshot().aliases.lookup("list")
    assert entry is not None and [str(t) for t in entry.targets] == ["alice", "bob"]
    members.unlink()
    table_set.snapshot()
    (error,) = table_set.errors
    assert "cannot read :include: file" in str(error)
    write(members, "carol\n", bump=2)
    entry = table_set.snapshot().aliases.lookup("list")
    assert entry is not None and [str(t) for t in entry.targets] == ["carol"]
    assert table_set.errors == ()


def test_check_reports_every_error_and_counts(tmp_path: Path) -> None:
    write(tmp_path / "aliases", "a: b\nc: d, e, f\n")
    write(tmp_path / "access", "x.test OK\n")
    table_set = TableSet(tmp_path)
    report = table_set.check()
    assert report.ok
    shown = {count.name: str(count) for count in report.counts}
    assert shown["aliases"] == "aliases: 2 aliases, longest 3 targets"
    assert shown["mailertable"] == "mailertable: no file (empty)"
    assert [count.name for count in report.counts] == list(TABLE_FILE_NAMES)
    write(tmp_path / "aliases", "a: b\nbad@x: y\nc: d\nd: e f\n", bump=1)
    write(tmp_path / "mailertable", "x.test nomailer:y\n", bump=1)
    report = table_set.check()
    assert not report.ok
    where = sorted(f"{error.file.name}:{error.line}" for error in report.errors if error.file)
    assert where == ["aliases:2", "aliases:4", "mailertable:1"]
    # the server keeps serving the last good aliases while the file is broken
    served = table_set.snapshot().aliases.lookup("c")
    assert served is not None and len(served.targets) == 3


def test_a_same_size_rewrite_within_the_clock_tick_is_noticed(tmp_path: Path) -> None:
    # Coarse file-system timestamps: a rewrite of the same size with the same
    # mtime (and inode) must still be seen while the file is "racily" new.
    names = tmp_path / "local-host-names"
    names.write_text("aaaa.test\n", encoding="utf-8")
    table_set = TableSet(tmp_path)
    assert list(table_set.snapshot().local_host_names) == ["aaaa.test"]
    stat = names.stat()
    with open(names, "r+", encoding="utf-8") as handle:
        handle.write("bbbb.test\n")
    os.utime(names, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert list(table_set.snapshot().local_host_names) == ["bbbb.test"]


def test_an_unstattable_include_keeps_serving_and_recovers(tmp_path: Path) -> None:
    write(tmp_path / "aliases", "list: :include:sub/members\n")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "members", "alice\n")
    table_set = TableSet(tmp_path)
    (tmp_path / "sub" / "members").unlink()
    (tmp_path / "sub").rmdir()
    (tmp_path / "sub").write_text("not a directory\n", encoding="utf-8")
    entry = table_set.snapshot().aliases.lookup("list")  # must not raise
    assert entry is not None and [str(t) for t in entry.targets] == ["alice"]
    (error,) = table_set.errors
    assert "members" in str(error)
    (tmp_path / "sub").unlink()
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "members", "bob\n", bump=1)
    entry = table_set.snapshot().aliases.lookup("list")
    assert entry is not None and [str(t) for t in entry.targets] == ["bob"]
    assert table_set.errors == ()


def test_a_racily_clean_file_is_compared_by_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file system whose timestamps did not move at all (one coarse tick, same
    # size, same inode): every stat field is equal, only the content differs.
    from postoffice.directory.tables import tableset

    frozen = (time.time_ns(), time.time_ns(), 10, 1)
    monkeypatch.setattr(
        tableset, "fingerprint", lambda path: frozen if Path(path).exists() else None
    )
    names = tmp_path / "local-host-names"
    names.write_text("aaaa.test\n", encoding="utf-8")
    table_set = TableSet(tmp_path)
    names.write_text("bbbb.test\n", encoding="utf-8")
    assert list(table_set.snapshot().local_host_names) == ["bbbb.test"]
    first = table_set.snapshot()
    assert table_set.snapshot() is first  # unchanged content: no reload


def test_a_check_interval_throttles_the_file_checks(tmp_path: Path) -> None:
    # The server's contract: an edit is seen at most ``check_interval`` late,
    # and the files are not stat'ed at every snapshot in between.
    aliases = tmp_path / "aliases"
    write(aliases, "staff: alice\n")
    now = [100.0]
    table_set = TableSet(tmp_path, check_interval=1.0, monotonic=lambda: now[0])
    first = table_set.snapshot()
    write(aliases, "staff: alice, bob\n", bump=1)
    now[0] += 0.5
    assert table_set.snapshot() is first  # within the interval: not looked at
    now[0] += 0.6
    entry = table_set.snapshot().aliases.lookup("staff")
    assert entry is not None and len(entry.targets) == 2  # seen once the interval passed
    write(aliases, "staff: carol\n", bump=2)
    assert table_set.refresh()  # an explicit refresh always checks


def test_a_check_interval_makes_no_stat_calls_in_between(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from postoffice.directory.tables import tableset

    now = [0.0]
    table_set = TableSet(tmp_path, check_interval=1.0, monotonic=lambda: now[0])
    table_set.snapshot()
    calls: list[Path] = []
    real = tableset.fingerprint
    monkeypatch.setattr(tableset, "fingerprint", lambda path: calls.append(path) or real(path))
    for _ in range(100):
        table_set.snapshot()
    assert calls == []
    now[0] = 1.0
    table_set.snapshot()
    assert len(calls) == len(TABLE_FILE_NAMES)
