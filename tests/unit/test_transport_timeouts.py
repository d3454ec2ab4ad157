"""``Pipe.read(timeout=...)``: one lazily moved timer per connection, deadlines kept."""

from __future__ import annotations

import asyncio

import pytest

from postoffice.net.pipe import Pipe


async def test_a_read_times_out_and_data_in_time_is_read() -> None:
    loop = asyncio.get_running_loop()
    pipe = Pipe()
    started = loop.time()
    with pytest.raises(TimeoutError):
        await pipe.read(timeout=0.05)
    assert 0.04 <= loop.time() - started < 1.0
    loop.call_later(0.02, pipe.data_received, b"EHLO x\r\n")
    assert await pipe.read(timeout=5.0) == b"EHLO x\r\n"


async def test_a_later_deadline_moves_the_timer_and_an_earlier_one_still_fires() -> None:
    loop = asyncio.get_running_loop()
    pipe = Pipe()
    # A long deadline first: the timer is set for it ...
    loop.call_later(0.01, pipe.data_received, b"a")
    assert await pipe.read(timeout=10.0) == b"a"
    # ... and a shorter one after it must not wait for that timer.
    started = loop.time()
    with pytest.raises(TimeoutError):
        await pipe.read(timeout=0.05)
    assert loop.time() - started < 1.0
    # Reads that keep getting data in time never time out, though the first
    # deadline passes while they run (the timer follows the latest deadline).
    for _ in range(4):
        loop.call_later(0.03, pipe.data_received, b"b")
        assert await pipe.read(timeout=0.06) == b"b"


async def test_end_of_input_ends_a_waiting_read_and_stops_the_timer() -> None:
    loop = asyncio.get_running_loop()
    pipe = Pipe()
    loop.call_later(0.01, pipe.connection_lost, None)
    assert await pipe.read(timeout=10.0) == b""
    assert pipe.at_eof
    assert pipe._timer is None  # nothing keeps the connection alive for 10 s
