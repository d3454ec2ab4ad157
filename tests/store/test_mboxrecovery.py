"""Which octets a crashed mbox append left (``mboxrecovery.find_torn``), case by case."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from postoffice.store.fileio import CHUNK
from postoffice.store.index import AppendIntent
from postoffice.store.mboxrecovery import TornRange, find_torn, intent_for

PREVIOUS = b"From a@example.net Sat Jan  6 10:00:00 2024\nSubject: old\n\nbody\n\n"
OURS = b"From MAILER-DAEMON Sun Jan  7 11:00:00 2024\n"
THEIRS = b"From b@example.net Mon Jan  8 12:00:00 2024\nSubject: theirs\n\nhi\n\n"


def nothing() -> None:
    return None


@pytest.fixture
def mbox(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    path = tmp_path / "mbox"
    path.write_bytes(PREVIOUS)
    fd = os.open(path, os.O_RDWR)
    yield path, fd
    os.close(fd)


def torn_after(
    path: Path, fd: int, appended: bytes, prefix: bytes = PREVIOUS
) -> TornRange | str | None:
    path.write_bytes(prefix)
    intent = intent_for(fd, [OURS])
    with open(path, "ab") as stream:
        stream.write(appended)
    return find_torn(fd, intent, nothing)


def test_the_intent_names_the_file_size_and_first_octets(mbox: tuple[Path, int]) -> None:
    path, fd = mbox
    assert intent_for(fd, [OURS]) == AppendIntent(os.fstat(fd).st_ino, len(PREVIOUS), OURS)
    path.write_bytes(b"From x Sat Jan  6 10:00:00 2024\n\nno final newline")
    # The append starts by ending that line.
    assert intent_for(fd, [OURS]).head == b"\n" + OURS


@pytest.mark.parametrize(
    "appended",
    [
        b"",  # the crash came before the first octet
        THEIRS,  # another program appended; we wrote nothing
        b"\n" + THEIRS,
        OURS[:10] + THEIRS,  # glued onto our torn From line: left as it is
    ],
)
def test_nothing_of_ours(mbox: tuple[Path, int], appended: bytes) -> None:
    path, fd = mbox
    outcome = torn_after(path, fd, appended)
    if appended.startswith(OURS[:10] + b"From"):
        assert isinstance(outcome, str) and "left as they are" in outcome
    else:
        assert outcome is None


@pytest.mark.parametrize(
    ("appended", "quarantine"),
    [
        (OURS[:7], False),  # torn inside our From line
        (OURS, False),
        (OURS + b"Subject: x\n\nhalf a li", False),
        (OURS + b"Subject: x\n\n>From quoted\n>>From twice\n", False),
        (OURS + b"Subject: x\n\nsent From my phone\n", True),  # not something we write
        (OURS + b"Subject: x\n\ntorn" + THEIRS, True),  # a message glued on ours
    ],
)
def test_a_torn_append_at_the_end(
    mbox: tuple[Path, int], appended: bytes, quarantine: bool
) -> None:
    path, fd = mbox
    torn = torn_after(path, fd, appended)
    size = len(PREVIOUS) + len(appended)
    assert isinstance(torn, TornRange)
    assert (torn.start, torn.keep_to, torn.end, torn.size) == (len(PREVIOUS),) * 2 + (size,) * 2
    assert torn.quarantine is quarantine


@pytest.mark.parametrize(
    "ours", [OURS + b"Subject: x\n\ntorn mid-line\n", OURS + b"Subject: x\n\ntorn", OURS[:12]]
)
def test_another_programs_message_after_ours_is_not_ours(
    mbox: tuple[Path, int], ours: bytes
) -> None:
    path, fd = mbox
    line_end = b"" if ours.endswith(b"\n") else b"\n"  # what a careful appender adds
    torn = torn_after(path, fd, ours + line_end + THEIRS)
    assert isinstance(torn, TornRange)
    assert torn.end == len(PREVIOUS) + len(ours) + len(line_end)  # their From line
    assert torn.quarantine
    assert torn.keep_to == len(PREVIOUS)


def test_our_line_break_is_kept_when_cutting(mbox: tuple[Path, int]) -> None:
    path, fd = mbox
    previous = PREVIOUS.rstrip(b"\n")
    torn = torn_after(path, fd, b"\n" + OURS + b"torn\n" + THEIRS, prefix=previous)
    assert isinstance(torn, TornRange)
    assert (torn.start, torn.keep_to) == (len(previous), len(previous) + 1)
    assert torn.end == len(previous) + 1 + len(OURS) + len(b"torn\n")


def test_a_from_line_across_a_chunk_boundary_is_found(mbox: tuple[Path, int]) -> None:
    path, fd = mbox
    for cut in range(1, 6):
        # The "\nFrom " of their message straddles the first chunk boundary.
        filler = b"x" * (CHUNK - len(OURS) - cut) + b"\n"
        torn = torn_after(path, fd, OURS + filler + THEIRS)
        assert isinstance(torn, TornRange)
        assert torn.end == len(PREVIOUS) + len(OURS) + len(filler), cut


def test_another_file_or_a_shorter_one_is_left_alone(mbox: tuple[Path, int]) -> None:
    _path, fd = mbox
    intent = intent_for(fd, [OURS])
    os.ftruncate(fd, len(PREVIOUS) - 1)
    assert find_torn(fd, intent, nothing) is None
    other = AppendIntent(intent.inode + 1, intent.start, intent.head)
    os.pwrite(fd, b"\n" + OURS + b"torn", len(PREVIOUS) - 1)
    assert find_torn(fd, other, nothing) == (
        "the file was replaced since: its octets are left as they are"
    )
    assert isinstance(find_torn(fd, intent, nothing), TornRange)


def test_a_batch_is_ours_up_to_its_last_from_line(mbox: tuple[Path, int]) -> None:
    path, fd = mbox
    second = OURS.replace(b"11:00", b"11:01")
    path.write_bytes(PREVIOUS)
    intent = intent_for(fd, [OURS, second, OURS])
    assert intent.later == second + OURS
    copies = OURS + b"one\n\n" + second + b"two\n\n" + OURS + b"thr"
    for appended, end in [
        (copies, len(copies)),
        (copies[:-3] + b"\n", len(copies) - 2),  # our three, the third torn
        (copies + b"\n" + THEIRS, len(copies) + 1),  # theirs after our third
        (OURS + b"one\n\n" + THEIRS, len(OURS) + 5),  # not our second From line
    ]:
        path.write_bytes(PREVIOUS + appended)
        torn = find_torn(fd, intent, nothing)
        assert isinstance(torn, TornRange)
        assert torn.end == len(PREVIOUS) + min(end, len(appended)), appended
