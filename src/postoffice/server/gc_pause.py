"""Pausing Python's cyclic garbage collector around one burst of allocations.

What this module owns: ``collection_paused``, for work that makes hundreds of
thousands of objects at once and frees them at its end (THREAD's containers
over a big mailbox). Each 700 new container objects start a collection, and
the ones that reach the oldest generation walk every object of the process,
the kept header values and keys of big mailboxes included: on 100,000
messages that walk took a third of THREAD's time.

Invariants: the collector is enabled again when the block ends, however it
ends, unless it was already off; nothing is freed later than it would be
anyway (the next collection finds any cycle the block left behind).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collection_paused() -> Iterator[None]:
    """No cyclic collection while the block runs (reference counting goes on)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
