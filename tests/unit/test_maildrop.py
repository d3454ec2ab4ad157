"""The maildrop file format (``queue.maildrop``): whole or absent, read back exactly."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from postoffice.queue.maildrop import (
    DIRECTORY_MODE,
    MAGIC,
    TMP_PREFIX,
    Drop,
    DropError,
    ensure_maildrop,
    pending_drops,
    read_drop,
    request_flush,
    take_flush_request,
    write_drop,
)


def test_a_drop_reads_back_as_written(tmp_path: Path) -> None:
    ensure_maildrop(tmp_path / "maildrop")
    mode = stat.S_IMODE(os.stat(tmp_path / "maildrop").st_mode)
    assert mode == DIRECTORY_MODE  # sticky, writable by all, listable by none
    drop = Drop(
        1000, "alice@example.test", ("bob@example.test", "root"), b"Subject: x\r\n\r\nhi\r\n"
    )
    path = write_drop(tmp_path / "maildrop", drop)
    assert read_drop(path) == drop
    assert pending_drops(tmp_path / "maildrop") == [path]
    assert not any(p.name.startswith(TMP_PREFIX) for p in (tmp_path / "maildrop").iterdir())
    null_sender = write_drop(tmp_path / "maildrop", Drop(0, "", ("x@y.test",), b""))
    assert read_drop(null_sender).sender == ""
    assert pending_drops(tmp_path / "maildrop") == sorted([path, null_sender])


def test_unfinished_and_foreign_files_are_not_drops(tmp_path: Path) -> None:
    (tmp_path / (TMP_PREFIX + "half")).write_bytes(MAGIC)  # a writer still at work
    (tmp_path / ".bad-old").write_bytes(b"x")  # set aside earlier
    assert pending_drops(tmp_path) == []
    cases = {
        "foreign": b"From someone\n\nbody",
        "no-end": MAGIC + b"uid 1\nsender a@b\nrecipient c@d\n",
        "no-recipient": MAGIC + b"uid 1\nsender a@b\n\nbody",
        "no-uid": MAGIC + b"sender a@b\nrecipient c@d\n\nbody",
        "twice": MAGIC + b"uid 1\nuid 2\nsender a@b\nrecipient c@d\n\nbody",
        "unknown": MAGIC + b"uid 1\nsender a@b\nrecipient c@d\nhost x\n\nbody",
        "latin1": MAGIC + b"uid 1\nsender \xe9@b\nrecipient c@d\n\nbody",
    }
    for name, octets in cases.items():
        (tmp_path / name).write_bytes(octets)
        with pytest.raises(DropError):
            read_drop(tmp_path / name)


def test_an_address_with_a_line_break_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DropError):
        write_drop(tmp_path, Drop(0, "a@b\nrecipient evil@x", ("c@d",), b""))
    assert list(tmp_path.iterdir()) == []


def test_a_flush_request_is_taken_once_and_is_not_a_drop(tmp_path: Path) -> None:
    ensure_maildrop(tmp_path)
    assert not take_flush_request(tmp_path)
    request_flush(tmp_path)
    request_flush(tmp_path)  # asked twice before the server looked: one scan
    assert pending_drops(tmp_path) == []
    assert take_flush_request(tmp_path)
    assert not take_flush_request(tmp_path)
