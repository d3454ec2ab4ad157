"""Queue ids: unique (one process and two), sortable by arrival, short and file-name safe."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from postoffice.core.clock import FixedClock, SystemClock
from postoffice.queue import QueueIdGenerator, is_queue_id
from postoffice.queue.ids import ID_LENGTH, decode_base62, encode_base62, id_time

from .conftest import T0


def test_shape() -> None:
    queue_id = QueueIdGenerator(SystemClock()).next_id()
    assert len(queue_id) == ID_LENGTH == 14
    assert is_queue_id(queue_id)
    assert queue_id.isalnum() and queue_id.isascii()


def test_unique_and_sorted_over_10000_ids_from_a_stalled_clock() -> None:
    generator = QueueIdGenerator(FixedClock(T0))
    ids = [generator.next_id() for _ in range(10_000)]
    assert len(set(ids)) == 10_000
    assert ids == sorted(ids)


def test_sorted_by_arrival_even_when_the_clock_steps_back() -> None:
    clock = FixedClock(T0)
    generator = QueueIdGenerator(clock)
    first = generator.next_id()
    clock.advance(-3600)
    second = generator.next_id()
    clock.advance(7200)
    third = generator.next_id()
    assert first < second < third
    assert abs(id_time(first) - T0) < 1e-6
    assert abs(id_time(third) - (T0 + 3600)) < 1e-6


def test_base62_round_trip_and_order() -> None:
    values = [0, 1, 61, 62, 3843, 3844, 10**6, 62**6 - 1]
    texts = [encode_base62(v, 6) for v in values]
    assert [decode_base62(t) for t in texts] == values
    assert texts == sorted(texts)


def test_two_processes_never_collide() -> None:
    script = textwrap.dedent(
        """
        from postoffice.core.clock import SystemClock
        from postoffice.queue import QueueIdGenerator
        generator = QueueIdGenerator(SystemClock())
        print("\\n".join(generator.next_id() for _ in range(10_000)))
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=60)[0].split() for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    assert all(len(out) == 10_000 for out in outputs)
    assert len(set(outputs[0]) | set(outputs[1])) == 20_000


def test_rejects_unsafe_names() -> None:
    for text in [
        "",
        "../../etc/pass",
        "4ZrT0b3fKq9A1",
        "4ZrT0b3fKq9A1x/",
        "4ZrT0b3fKq9A1é",
        "a" * 15,
    ]:
        assert not is_queue_id(text)
