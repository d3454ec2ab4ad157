"""Where the spool's files live: the sendmail queue directory layout.

Owns the names under the queue directory (``DATA/spool/mqueue`` by default,
sendmail's ``QueueDirectory``)::

    mqueue/dfID          the message octets, immutable once written
    mqueue/qfID          the control file: envelope and recipient states
    mqueue/tmp/          files being written (dfID, qfID.RANDOM); never trusted
    mqueue/quarantine/   broken messages moved aside, for the administrator

The ``df``/``qf`` prefixes are sendmail's (its "Queue file formats": d = data,
q = control); a message exists exactly when its ``qf`` is in ``mqueue/``.
Invariant: every path built here comes from a validated queue id, so no
input reaches the file system as a name.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

from postoffice.queue.errors import QueueError
from postoffice.queue.ids import QueueId, is_queue_id

DATA_PREFIX = "df"
CONTROL_PREFIX = "qf"
MAX_REMEMBERED_IDS = 4096


@dataclass(frozen=True)
class SpoolLayout:
    root: Path
    # Made once: every message asks for them several times.
    tmp: Path = field(init=False, repr=False, compare=False)
    quarantine: Path = field(init=False, repr=False, compare=False)
    _known: dict[str, tuple[Path, Path, Path]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "tmp", self.root / "tmp")
        object.__setattr__(self, "quarantine", self.root / "quarantine")

    def data(self, queue_id: QueueId) -> Path:
        return self._paths(queue_id)[0]

    def control(self, queue_id: QueueId) -> Path:
        return self._paths(queue_id)[1]

    def tmp_data(self, queue_id: QueueId) -> Path:
        return self._paths(queue_id)[2]

    def _paths(self, queue_id: QueueId) -> tuple[Path, Path, Path]:
        """df, qf and tmp/df of a message, made once (a message needs them many times)."""
        known = self._known.get(queue_id)
        if known is None:
            name = _checked(queue_id)
            known = (
                self.root / (DATA_PREFIX + name),
                self.root / (CONTROL_PREFIX + name),
                self.tmp / (DATA_PREFIX + name),
            )
            if len(self._known) >= MAX_REMEMBERED_IDS:
                self._known.clear()
            self._known[queue_id] = known
        return known

    def tmp_control(self, queue_id: QueueId) -> Path:
        # A control file is rewritten many times: a random suffix keeps two
        # rewrites (two processes) from colliding in tmp/.
        return self.tmp / f"{CONTROL_PREFIX}{_checked(queue_id)}.{secrets.token_hex(4)}"


def _checked(queue_id: str) -> str:
    if not is_queue_id(queue_id):
        raise QueueError(f"malformed queue id {queue_id[:40]!r}")
    return queue_id


def split_name(name: str) -> tuple[str, QueueId] | None:
    """``("qf", id)`` or ``("df", id)`` for a spool file name, None for anything else."""
    prefix, rest = name[:2], name[2:]
    if prefix in (DATA_PREFIX, CONTROL_PREFIX) and is_queue_id(rest):
        return prefix, QueueId(rest)
    return None
