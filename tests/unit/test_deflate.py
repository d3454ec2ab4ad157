"""The DEFLATE layer of IMAP COMPRESS (RFC 4978): ``net.deflate`` and ``Pipe``'s use of it.

The codec alone (raw DEFLATE both ways, a sync flush after every piece
written, output bounded per call, corrupt input refused), then a ``Pipe``
over a socket pair: plain until ``start_compression``, the tagged OK written
plain, compressed after it both ways, plain input read before the switch
dropped, a compression bomb inflated no faster than the reader takes it,
and garbage ending the input with the reason kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import zlib
from collections.abc import AsyncIterator

import pytest

from postoffice.net.deflate import DeflateCodec, DeflateError
from postoffice.net.pipe import HIGH_WATER, Pipe


def client_pair() -> tuple[zlib._Compress, zlib._Decompress]:
    """What an RFC 4978 client uses: raw DEFLATE, no zlib header."""
    return zlib.compressobj(6, zlib.DEFLATED, -15), zlib.decompressobj(-15)


def client_compress(compressor: zlib._Compress, data: bytes) -> bytes:
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)


def bomb(size: int) -> bytes:
    """``size`` zero octets, compressed: about a thousandth of that on the wire."""
    compressor, _ = client_pair()
    return client_compress(compressor, bytes(size))


# -- the codec ----------------------------------------------------------------------------


def test_every_compressed_piece_decodes_at_once_and_in_order() -> None:
    codec = DeflateCodec()
    _, inflater = client_pair()
    responses = [b"* OK [CAPABILITY IMAP4rev2] ready\r\n", b"a1 OK done\r\n", b"x" * 100_000]
    responses += [f"* {n} EXISTS\r\n".encode() for n in range(50)]
    for response in responses:
        wire = codec.compress(response)
        # the sync flush: nothing of this response is left inside the compressor
        assert inflater.decompress(wire) == response
        assert wire.endswith(b"\x00\x00\xff\xff")  # the empty stored block of a sync flush


def test_raw_deflate_without_a_zlib_header() -> None:
    wire = DeflateCodec().compress(b"a1 NOOP\r\n")
    with pytest.raises(zlib.error):
        zlib.decompressobj().decompress(wire)  # a zlib-wrapped reader refuses it
    assert zlib.decompressobj(-15).decompress(wire) == b"a1 NOOP\r\n"


def test_round_trip_through_two_codecs_is_compressed() -> None:
    server, client = DeflateCodec(), DeflateCodec()
    text = b"* 1 FETCH (FLAGS (\\Seen) UID 7)\r\n" * 200
    wire = server.compress(text)
    assert len(wire) < len(text) // 10
    assert client.inflate(wire, len(text)) == text
    assert client.held == 0


def test_a_compression_bomb_comes_out_no_faster_than_the_limit() -> None:
    codec = DeflateCodec()
    size = 20 * 1024 * 1024
    wire = bomb(size)
    assert len(wire) < size // 500
    limit = 64 * 1024
    first = codec.inflate(wire, limit)
    assert len(first) == limit
    assert codec.held > 0  # the rest waits, still compressed
    assert codec.held <= len(wire)
    total = len(first)
    while codec.held:
        piece = codec.inflate(b"", limit)
        assert 0 < len(piece) <= limit
        total += len(piece)
    assert total == size


def test_input_arriving_while_held_is_kept_in_order() -> None:
    compressor, _ = client_pair()
    codec = DeflateCodec()
    first = client_compress(compressor, b"A" * 100_000)
    codec.inflate(first[: len(first) // 2], 10)
    codec.hold(first[len(first) // 2 :])
    codec.hold(client_compress(compressor, b"B" * 10))
    out = b""
    while True:
        piece = codec.inflate(b"", 4096)
        if not piece:
            break
        out += piece
    assert out == b"A" * (100_000 - 10) + b"B" * 10


def test_garbage_is_refused() -> None:
    with pytest.raises(DeflateError, match="invalid"):
        DeflateCodec().inflate(b"\xff\xfe\xfd garbage", 1024)


def test_input_after_the_end_of_the_stream_is_refused() -> None:
    compressor, _ = client_pair()
    ended = compressor.compress(b"a1 NOOP\r\n") + compressor.flush(zlib.Z_FINISH)
    with pytest.raises(DeflateError, match="after the end"):
        DeflateCodec().inflate(ended + b"a2 NOOP\r\n", 1024)


def test_a_zero_limit_is_refused_since_zlib_reads_it_as_none() -> None:
    with pytest.raises(ValueError, match="limit"):
        DeflateCodec().inflate(b"x", 0)


# -- the pipe -----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def pipe_pair() -> AsyncIterator[tuple[Pipe, socket.socket]]:
    """A server ``Pipe`` and the client's blocking socket (used from threads)."""
    loop = asyncio.get_running_loop()
    server_sock, client_sock = socket.socketpair()
    _, pipe = await loop.connect_accepted_socket(Pipe, server_sock)
    try:
        yield pipe, client_sock
    finally:
        pipe.close()
        client_sock.close()


async def recv_some(sock: socket.socket, size: int = 65536) -> bytes:
    return await asyncio.to_thread(sock.recv, size)


async def test_uncompressed_pipe_passes_octets_as_they_are() -> None:
    async with pipe_pair() as (pipe, client):
        assert not pipe.compressed
        client.sendall(b"a1 NOOP\r\n")
        assert await pipe.read(timeout=5) == b"a1 NOOP\r\n"
        pipe.send(b"a1 OK\r\n")
        assert await recv_some(client) == b"a1 OK\r\n"


async def test_switch_writes_the_ok_plain_drops_plain_input_then_compresses_both_ways() -> None:
    async with pipe_pair() as (pipe, client):
        client.sendall(b"a2 NOOP\r\n")  # pipelined behind COMPRESS, against RFC 4978 §3
        await asyncio.sleep(0.05)
        dropped = pipe.start_compression(b"a1 OK DEFLATE active\r\n")
        assert dropped == len(b"a2 NOOP\r\n")
        assert pipe.compressed
        assert await recv_some(client) == b"a1 OK DEFLATE active\r\n"
        compressor, inflater = client_pair()
        client.sendall(client_compress(compressor, b"a3 NOOP\r\n"))
        assert await pipe.read(timeout=5) == b"a3 NOOP\r\n"
        pipe.send(b"a3 OK NOOP completed\r\n")
        assert inflater.decompress(await recv_some(client)) == b"a3 OK NOOP completed\r\n"
        with pytest.raises(RuntimeError):
            pipe.start_compression()


async def test_a_bomb_never_fills_the_pipe_past_its_bound() -> None:
    size = 32 * 1024 * 1024
    async with pipe_pair() as (pipe, client):
        pipe.start_compression()
        await asyncio.to_thread(client.sendall, bomb(size))
        total = 0
        while total < size:
            chunk = await pipe.read(timeout=5)
            assert chunk, "the input ended early"
            assert len(chunk) <= HIGH_WATER  # never more than the plain input bound
            assert chunk == bytes(len(chunk))
            total += len(chunk)
        assert total == size
        assert pipe.failure is None


async def test_garbage_ends_the_input_and_says_why() -> None:
    async with pipe_pair() as (pipe, client):
        pipe.start_compression()
        compressor, _ = client_pair()
        client.sendall(client_compress(compressor, b"a1 NOOP\r\n"))
        assert await pipe.read(timeout=5) == b"a1 NOOP\r\n"
        client.sendall(b"\xff\xff\xff\xff")
        assert await pipe.read(timeout=5) == b""  # the end of the input
        assert pipe.at_eof
        assert pipe.failure is not None and "corrupt compressed input" in pipe.failure
        # nothing more is taken in after the failure
        client.sendall(client_compress(compressor, b"a2 NOOP\r\n"))
        await asyncio.sleep(0.05)
        assert pipe.take() == b""


async def test_a_switch_while_reading_is_paused_reads_the_compressed_input() -> None:
    """Plain input past ``HIGH_WATER`` pipelined behind COMPRESS (against RFC 4978 §3)
    paused reading; the switch drops it and must read again, or the next command
    waits in the kernel until the session times out."""
    async with pipe_pair() as (pipe, client):
        plain = b"x" * (HIGH_WATER + 1)
        await asyncio.to_thread(client.sendall, plain)
        for _ in range(500):
            if len(pipe._buffer) == len(plain):
                break
            await asyncio.sleep(0.01)
        assert len(pipe._buffer) == len(plain) and pipe._paused  # all read, then paused
        assert pipe.start_compression(b"a1 OK DEFLATE active\r\n") == len(plain)
        compressor, _ = client_pair()
        client.sendall(client_compress(compressor, b"a2 NOOP\r\n"))
        assert await pipe.read(timeout=2) == b"a2 NOOP\r\n"


async def test_input_that_inflates_to_nothing_is_not_the_end_of_input() -> None:
    """A piece of compressed input can inflate to no octets (here the empty stored
    block that ends a sync flush, sent on its own; a client's separate write of
    it, or a TLS record of it, does that): the reader must go on waiting, not see
    ``b""``, which means end of input and ends the session."""
    async with pipe_pair() as (pipe, client):
        pipe.start_compression()
        compressor, _ = client_pair()
        wire = client_compress(compressor, b"a1 NOOP\r\n")
        client.sendall(wire[:-4])
        assert await pipe.read(timeout=5) == b"a1 NOOP\r\n"
        reading = asyncio.ensure_future(pipe.read(timeout=5))
        await asyncio.sleep(0.05)
        client.sendall(wire[-4:])  # 00 00 FF FF: no octets come of it
        await asyncio.sleep(0.1)
        client.sendall(client_compress(compressor, b"a2 NOOP\r\n"))
        assert await reading == b"a2 NOOP\r\n"
        assert not pipe.at_eof
