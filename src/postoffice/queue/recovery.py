"""Recovery at open: make the spool hold only whole messages again.

Owns what ``Queue.open()`` does to the files a crash (or a disk) may have
left, sendmail-style (sendmail renames an unreadable qf to ``Qf``, "lost";
postoffice moves both files into ``quarantine/``):

- anything in ``tmp/`` is an unacknowledged leftover of a commit or rewrite
  that never finished: removed (logged); spare files (``spares``) are
  removed without a word;
- a ``dfID`` without its ``qfID`` is an unacknowledged commit that crashed
  between the two renames: removed (logged);
- a ``qfID`` that does not parse (truncated, bit-flipped, too large, wrong
  id), whose ``dfID`` is missing, or whose ``dfID`` has the wrong size or
  (with ``verify_data``) the wrong SHA-256: quarantined (moved with its df to
  ``quarantine/``, the reason in the maillog and in ``quarantine/ID.reason``).
  It is never half-delivered; an administrator decides.

Invariants:
- A file a live process holds (its ``flock`` is taken: a commit in flight in
  the server while ``postoffice queue`` runs) is never removed.
- Cost: reading every qf (small) and stat'ing every df at each open; with
  ``verify_data`` also one sequential read of every df to hash it, i.e. the
  whole queue's size in octets (about a second per GiB on an SSD). Without
  it, ``DataReader`` still checks each df as it is delivered.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from postoffice.core.maillog import log_event
from postoffice.queue.durable import (
    FsHooks,
    close_quietly,
    lock_file,
    sync_directory_path,
    unlink_quietly,
)
from postoffice.queue.errors import CorruptQueueFile
from postoffice.queue.ids import QueueId
from postoffice.queue.layout import CONTROL_PREFIX, DATA_PREFIX, SpoolLayout, split_name
from postoffice.queue.model import QueueEntry
from postoffice.queue.qffile import MAX_QF_OCTETS, parse_qf
from postoffice.queue.spares import is_spare

COMPONENT = "queue"
HASH_CHUNK = 1 << 20


@dataclass
class RecoveryReport:
    """What ``recover`` found: whole messages, and what it moved or removed."""

    messages: int = 0
    quarantined: list[tuple[QueueId, str]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    in_use: list[str] = field(default_factory=list)


def read_control(path: Path, queue_id: QueueId) -> QueueEntry:
    """Read and parse one qf; ``FileNotFoundError`` if it is gone, else ``CorruptQueueFile``."""
    with path.open("rb") as stream:
        data = stream.read(MAX_QF_OCTETS + 1)
    return parse_qf(data, expected_id=queue_id)


def hash_file(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def check_message(layout: SpoolLayout, queue_id: QueueId, *, verify_data: bool) -> str | None:
    """Why the message is broken, or None if whole. Raises ``FileNotFoundError`` if removed."""
    try:
        entry = read_control(layout.control(queue_id), queue_id)
    except CorruptQueueFile as error:
        return f"control file: {error}"
    data_path = layout.data(queue_id)
    try:
        size = data_path.stat().st_size
    except FileNotFoundError:
        if not layout.control(queue_id).exists():
            raise  # removed while we looked (remove() unlinks qf, then df)
        return "data file missing"
    if size != entry.size:
        return f"data file has {size} octets, control file says {entry.size}"
    if verify_data:
        _, digest = hash_file(data_path)
        if not hmac.compare_digest(digest, entry.sha256):
            return "data file SHA-256 mismatch"
    return None


def quarantine(layout: SpoolLayout, queue_id: QueueId, reason: str) -> None:
    """Move qf (the message stops existing) then df into quarantine/, and log why."""
    for prefix in (CONTROL_PREFIX, DATA_PREFIX):
        source = layout.root / f"{prefix}{queue_id}"
        target = layout.quarantine / source.name
        counter = 0
        while target.exists():
            counter += 1
            target = layout.quarantine / f"{source.name}.{counter}"
        with contextlib.suppress(FileNotFoundError):
            os.rename(source, target)
    # Best effort: the maillog line below is the record that matters.
    with contextlib.suppress(OSError):
        (layout.quarantine / f"{queue_id}.reason").write_text(reason + "\n", encoding="utf-8")
    log_event(COMPONENT, f"{queue_id}: quarantined: {reason}", level=logging.WARNING)


def _remove_unlocked(path: Path, report: RecoveryReport, what: str) -> bool:
    """Remove ``path`` if no live process holds its lock; True if removed."""
    try:
        fd = lock_file(path, wait=False)
    except FileNotFoundError:
        return False
    except IsADirectoryError:
        report.in_use.append(path.name)
        return False
    if fd is None:
        report.in_use.append(path.name)
        return False
    try:
        unlink_quietly(path)
    finally:
        close_quietly(fd)
    report.removed.append(path.name)
    log_event(COMPONENT, f"removed {what} {path.name}", level=logging.WARNING)
    return True


def recover(layout: SpoolLayout, hooks: FsHooks, *, verify_data: bool) -> RecoveryReport:
    """Bring the spool back to whole messages only (see the module docstring)."""
    report = RecoveryReport()
    for name in sorted(os.listdir(layout.tmp)):
        if is_spare(name):  # an empty-to-be file kept for reuse, never a message
            unlink_quietly(layout.tmp / name)
            continue
        _remove_unlocked(layout.tmp / name, report, "unfinished file tmp/")
    controls: set[QueueId] = set()
    datas: set[QueueId] = set()
    for name in os.listdir(layout.root):
        parsed = split_name(name)
        if parsed is None:
            if name not in (layout.tmp.name, layout.quarantine.name):
                log_event(COMPONENT, f"unknown file {name} left alone", level=logging.WARNING)
            continue
        (controls if parsed[0] == CONTROL_PREFIX else datas).add(parsed[1])
    moved = False
    for queue_id in sorted(controls):
        try:
            reason = check_message(layout, queue_id, verify_data=verify_data)
        except FileNotFoundError:
            continue
        if reason is None:
            report.messages += 1
        else:
            quarantine(layout, queue_id, reason)
            report.quarantined.append((queue_id, reason))
            moved = True
    for queue_id in sorted(datas - controls):
        data_path = layout.data(queue_id)
        try:
            fd = lock_file(data_path, wait=False)
        except FileNotFoundError:
            continue
        if fd is None:  # a commit in flight elsewhere
            report.in_use.append(data_path.name)
            continue
        try:
            if not layout.control(queue_id).exists():
                unlink_quietly(data_path)
                report.removed.append(data_path.name)
                log_event(
                    COMPONENT,
                    f"{queue_id}: removed data file without control file (unfinished commit)",
                    level=logging.WARNING,
                )
                moved = True
        finally:
            close_quietly(fd)
    if moved:
        sync_directory_path(layout.root, hooks)
        sync_directory_path(layout.quarantine, hooks)
    return report
