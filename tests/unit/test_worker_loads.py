"""Spreading connections over workers: the shared counts, and listeners that step aside."""

from __future__ import annotations

import asyncio
import os
import socket
import time

import pytest

from postoffice.net.pipe import Pipe
from postoffice.server import listener as listener_module
from postoffice.server.listener import ACCEPT_DEFER, Listener, listening_socket
from postoffice.server.worker_loads import ABSENT, WorkerLoads


def test_a_worker_steps_aside_only_while_a_sibling_serves_fewer() -> None:
    loads = WorkerLoads(3)
    try:
        first, second, third = loads.seat(0), loads.seat(1), loads.seat(2)
        assert loads.counts() == [0, 0, 0]
        assert not first.sibling_less_busy()
        first.opened()
        assert first.sibling_less_busy()  # 1 against 0 and 0
        assert not second.sibling_less_busy()
        second.opened()
        third.opened()
        assert loads.counts() == [1, 1, 1]
        assert not any(seat.sibling_less_busy() for seat in (first, second, third))
        third.closed()
        assert first.sibling_less_busy() and second.sibling_less_busy()
        assert not third.sibling_less_busy()
    finally:
        loads.close()


def test_a_worker_not_running_is_left_out() -> None:
    loads = WorkerLoads(2)
    try:
        assert loads.counts() == [ABSENT, ABSENT]
        first = loads.seat(0)
        first.opened()
        assert not first.sibling_less_busy()  # worker 1 has not started
        loads.seat(1)
        assert first.sibling_less_busy()
        loads.forget_worker(1)  # it died
        assert not first.sibling_less_busy()
        with pytest.raises(ValueError):
            loads.seat(2)
    finally:
        loads.close()


def test_counts_are_shared_with_a_forked_worker() -> None:
    loads = WorkerLoads(2)
    try:
        mine = loads.seat(0)
        pid = os.fork()
        if pid == 0:  # the worker: three connections open
            child = loads.seat(1)
            for _ in range(3):
                child.opened()
            os._exit(0)
        os.waitpid(pid, 0)
        assert loads.counts() == [0, 3]
        assert not mine.sibling_less_busy()
    finally:
        loads.close()


class Served:
    """Which of two listeners served each connection; each holds it open until EOF."""

    def __init__(self) -> None:
        self.by: list[str] = []
        self.arrived = asyncio.Event()

    def handler(self, name: str):  # type: ignore[no-untyped-def]
        async def serve(pipe: Pipe) -> None:
            self.by.append(name)
            self.arrived.set()
            await pipe.write(b"hello\r\n")
            while await pipe.read():
                pass
            pipe.close()

        return serve


async def connect(port: int, served: Served) -> socket.socket:
    """A client connection, returned once a listener has started serving it."""
    served.arrived.clear()
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    await asyncio.wait_for(served.arrived.wait(), 5)
    return client


async def test_new_connections_go_to_the_worker_serving_fewer() -> None:
    """Two listeners on one socket, as two workers are: each connection goes to
    the one with fewer open, not to whichever looks first."""
    sock = listening_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    loads = WorkerLoads(2)
    served = Served()
    one = Listener("pop3", served.handler("one"), loads.seat(0))
    two = Listener("pop3", served.handler("two"), loads.seat(1))
    clients: list[socket.socket] = []
    try:
        await one.adopt(sock)
        await two.adopt(sock.dup())
        for _ in range(6):
            clients.append(await connect(port, served))
        assert sorted(served.by) == ["one"] * 3 + ["two"] * 3
        assert loads.counts() == [3, 3]
        # Two of "one"'s connections end: it serves fewer, and takes the next two.
        for client in [c for c, name in zip(clients, served.by, strict=True) if name == "one"][:2]:
            client.close()
        while loads.counts() != [1, 3]:
            await asyncio.sleep(0.01)
        served.by.clear()
        for _ in range(2):
            clients.append(await connect(port, served))
        assert served.by == ["one", "one"]
        assert loads.counts() == [3, 3]
    finally:
        for client in clients:
            client.close()
        await one.close(grace=1)
        await two.close(grace=1)
        loads.close()


async def test_a_busier_worker_takes_what_no_sibling_took() -> None:
    """A sibling that serves fewer but does not accept (stuck) delays a new
    connection by ACCEPT_DEFER, and no more: the busier worker takes it."""
    loads = WorkerLoads(2)
    served = Served()
    mine, stuck = loads.seat(0), loads.seat(1)
    mine.opened()  # one connection elsewhere; the sibling has none and never accepts
    listener = Listener("smtp", served.handler("mine"), mine)
    await listener.listen("127.0.0.1", 0)
    ((_, port),) = listener.addresses
    try:
        started = time.monotonic()
        client = await connect(port, served)
        # ACCEPT_DEFER is a timer: it may fire up to the loop's clock resolution early.
        assert time.monotonic() - started >= ACCEPT_DEFER - 0.001
        assert served.by == ["mine"]
        assert client.recv(100) == b"hello\r\n"
        assert loads.counts() == [2, 0] and stuck.open == 0
        client.close()
    finally:
        await listener.close(grace=1)
        loads.close()


async def test_a_closed_listener_accepts_nothing_more() -> None:
    served = Served()
    listener = Listener("imap", served.handler("lone"))  # a lone process: no loads
    await listener.listen("127.0.0.1", 0)
    ((_, port),) = listener.addresses
    client = await connect(port, served)
    assert client.recv(100) == b"hello\r\n"
    client.close()
    await listener.close(grace=1)
    assert not listener.sessions
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


async def test_connections_no_sibling_took_are_taken_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three connections waiting while the less busy sibling is stuck: one pause,
    then all three, not one pause for each."""
    monkeypatch.setattr(listener_module, "ACCEPT_DEFER", 0.5)
    loads = WorkerLoads(2)
    served = Served()
    mine = loads.seat(0)
    loads.seat(1)  # running, serving nothing, never accepting
    mine.opened()
    listener = Listener("smtp", served.handler("mine"), mine)
    await listener.listen("127.0.0.1", 0)
    ((_, port),) = listener.addresses
    clients: list[socket.socket] = []
    try:
        started = time.monotonic()
        clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
        while len(served.by) < 3:
            await asyncio.sleep(0.01)
        elapsed = time.monotonic() - started
        # One pause of 0.5 s; a pause per connection would be 1.5 s.
        assert 0.5 - 0.001 <= elapsed < 1.0, elapsed
        assert loads.counts() == [4, 0]
    finally:
        for client in clients:
            client.close()
        await listener.close(grace=1)
        loads.close()
