"""Queue ids: unique, sortable by arrival, short, safe as file names.

A queue id names a message in the ``250`` reply, in every maillog line and in
the spool's file names (``dfID``/``qfID``, sendmail's naming). The shape
follows Postfix's "long queue id" idea (postconf(5), ``enable_long_queue_ids``):
the arrival time encoded in a large alphabet, then something that makes ids
from the same instant distinct.

Layout, 14 characters of ``[0-9A-Za-z]`` (base 62, digits < upper < lower,
which is also ASCII order, so string order is numeric order):

    SSSSSS  seconds since the epoch, 6 digits (good until the year 3769)
    UUUU    microseconds, 4 digits
    NNNN    a random node number chosen once per generator (62**4 ≈ 14.8 million)

Invariants:
- One generator never repeats an id: it issues strictly increasing
  (second, microsecond) pairs, borrowing the next microsecond when the clock
  stalls or steps back, so it can issue a million ids a second before it
  drifts ahead of the clock.
- Two generators (two processes, two containers whose pids are both 1)
  differ in their node number unless a 1-in-14.8-million draw coincides, and
  then they also have to hit the same microsecond. The spool refuses to
  overwrite an existing file as a last guard (``O_EXCL`` in ``tmp/``).
- Sorting ids sorts by arrival (to the microsecond, within one generator).
"""

from __future__ import annotations

import re
import secrets
import threading
from typing import NewType

from postoffice.core.clock import Clock

QueueId = NewType("QueueId", str)

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
SECONDS_DIGITS = 6
MICROS_DIGITS = 4
NODE_DIGITS = 4
ID_LENGTH = SECONDS_DIGITS + MICROS_DIGITS + NODE_DIGITS
_ID_RE = re.compile(rf"[0-9A-Za-z]{{{ID_LENGTH}}}")


def encode_base62(value: int, width: int) -> str:
    """``value`` in base 62, left-padded with ``0`` to exactly ``width`` digits."""
    if value < 0 or value >= 62**width:
        raise ValueError(f"{value} does not fit in {width} base-62 digits")
    digits = []
    for _ in range(width):
        value, rest = divmod(value, 62)
        digits.append(ALPHABET[rest])
    return "".join(reversed(digits))


def decode_base62(text: str) -> int:
    value = 0
    for char in text:
        value = value * 62 + ALPHABET.index(char)
    return value


def is_queue_id(text: str) -> bool:
    """True when ``text`` has the shape of a queue id (and so is safe in a file name)."""
    return _ID_RE.fullmatch(text) is not None


def id_time(queue_id: str) -> float:
    """The arrival instant an id encodes (seconds since the epoch)."""
    seconds = decode_base62(queue_id[:SECONDS_DIGITS])
    micros = decode_base62(queue_id[SECONDS_DIGITS : SECONDS_DIGITS + MICROS_DIGITS])
    return seconds + micros / 1_000_000


class QueueIdGenerator:
    """Issues queue ids for one process (thread-safe)."""

    def __init__(self, clock: Clock, node: int | None = None):
        self._clock = clock
        self._node = encode_base62(
            secrets.randbelow(62**NODE_DIGITS) if node is None else node, NODE_DIGITS
        )
        self._last = -1  # microseconds since the epoch of the last id issued
        self._lock = threading.Lock()

    def next_id(self) -> QueueId:
        with self._lock:
            now = int(self._clock.now() * 1_000_000)
            self._last = max(now, self._last + 1)
            seconds, micros = divmod(self._last, 1_000_000)
        return QueueId(
            encode_base62(seconds, SECONDS_DIGITS)
            + encode_base62(micros, MICROS_DIGITS)
            + self._node
        )
