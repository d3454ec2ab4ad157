"""COMPRESS=DEFLATE (RFC 4978) in a real ``ImapSession``: transcripts, then compressed.

After the tagged OK the harness client's reader and writer are swapped for
ones that inflate and deflate (raw DEFLATE, a sync flush after each write,
as RFC 4978 clients do), so the rest of each transcript runs compressed:
LOGIN state first (COMPRESS is for the authenticated and selected states,
RFC 4978 §3), then SELECT, FETCH, a second COMPRESS (NO
[COMPRESSIONACTIVE]) and IDLE with a delivery arriving meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import zlib

import pytest

from postoffice.core.maillog import LOGGER_NAME

from .imap_harness import ImapClient, ImapWorld
from .messages import MEETING


class DeflatingWriter:
    """Stands in for the client's ``StreamWriter``: compresses every write (RFC 4978 §3)."""

    def __init__(self, raw: asyncio.StreamWriter) -> None:
        self.raw = raw
        self.compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.octets = 0  # compressed octets written

    def write(self, data: bytes) -> None:
        wire = self.compressor.compress(data) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
        self.octets += len(wire)
        self.raw.write(wire)

    async def drain(self) -> None:
        await self.raw.drain()


async def compress(client: ImapClient, tag: str = "z1") -> asyncio.Task[None]:
    """COMPRESS DEFLATE, the plain OK, then the client speaks DEFLATE; the inflating task."""
    await client.converse(f"""
        C: {tag} COMPRESS DEFLATE
        S: {tag} OK DEFLATE active
    """)
    raw_reader = client.reader
    inflated = asyncio.StreamReader()
    inflater = zlib.decompressobj(-15)

    async def pump() -> None:
        while data := await raw_reader.read(65536):
            inflated.feed_data(inflater.decompress(data))
        inflated.feed_eof()

    task = asyncio.create_task(pump())
    client.reader = inflated
    client.writer = DeflatingWriter(client.writer)  # type: ignore[assignment]
    return task


async def test_compress_is_offered_after_login_only(world: ImapWorld) -> None:
    async with world.connect() as client:
        assert "COMPRESS" not in client.greeting
        await client.converse("""
            C: a1 COMPRESS DEFLATE
            S: a1 BAD command not valid before login
        """)
        lines = await client.command("a2 LOGIN alice@example.test secret")
        assert "COMPRESS=DEFLATE" in lines[-1].split()
        lines = await client.command("a3 CAPABILITY")
        assert "COMPRESS=DEFLATE" in lines[0].split()


async def test_compressed_select_fetch_and_a_second_compress(world: ImapWorld) -> None:
    await world.deliver(MEETING)
    async with world.logged_in() as client:
        pump = await compress(client)
        await client.converse(r"""
            C: a1 SELECT INBOX
            S: * 1 EXISTS
            S: * 0 RECENT
            S: * FLAGS (\Answered \Deleted \Draft \Flagged \Seen)
            S: * OK [PERMANENTFLAGS (\Answered \Deleted \Draft \Flagged \Seen \*)] *
            S: * OK [UNSEEN 1] *
            S: * OK [UIDVALIDITY *] *
            S: * OK [UIDNEXT 2] *
            S: a1 OK [READ-WRITE] SELECT completed
            C: a2 COMPRESS DEFLATE
            S: a2 NO [COMPRESSIONACTIVE] DEFLATE is active already (COMPRESS)
        """)
        response = await client.command("a3 FETCH 1 BODY.PEEK[]")
        text = "\r\n".join(response)
        assert MEETING.decode() in text + "\r\n"
        assert response[-1] == "a3 OK FETCH completed"
        await client.converse("""
            C: a4 LOGOUT
            S: * BYE Logging out
            S: a4 OK LOGOUT completed
        """)
        assert isinstance(client.writer, DeflatingWriter)
        assert client.writer.octets > 0
        await asyncio.wait_for(pump, 5)


async def test_an_unknown_mechanism_is_bad_and_nothing_compresses(world: ImapWorld) -> None:
    async with world.logged_in() as client:
        await client.converse("""
            C: a1 COMPRESS LZW
            S: a1 BAD Unknown compression mechanism LZW
            C: a2 NOOP
            S: a2 OK NOOP completed
        """)


async def test_idle_under_compression_sees_a_delivery_at_once(world: ImapWorld) -> None:
    async with world.logged_in() as client:
        await compress(client)
        await client.select()
        await client.converse("""
            C: a1 IDLE
            S: + idling
        """)
        started = asyncio.get_running_loop().time()
        await world.deliver(MEETING)
        await client.converse("""
            S: * 1 EXISTS
        """)
        assert asyncio.get_running_loop().time() - started < 3.0
        await client.converse("""
            C: DONE
            S: a1 OK IDLE terminated
        """)


async def test_plain_input_pipelined_behind_compress_is_dropped_and_logged(
    world: ImapWorld, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    async with world.logged_in() as client:
        # RFC 4978 §3: the client waits for the result; this one did not
        await client.send_raw(b"z1 COMPRESS DEFLATE\r\nz2 LOGOUT\r\n")
        assert (await client.read_response()) == b"z1 OK DEFLATE active\r\n"
        client.open_tags.clear()
        raw = client.reader
        inflater = zlib.decompressobj(-15)
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        client.writer.write(compressor.compress(b"z3 NOOP\r\n") + compressor.flush(2))
        answer = inflater.decompress(await asyncio.wait_for(raw.read(65536), 5))
        assert answer == b"z3 OK NOOP completed\r\n"  # z2 LOGOUT was never carried out
    assert "octets after COMPRESS dropped" in caplog.text
    assert str(len(b"z2 LOGOUT\r\n")) in caplog.text


async def test_corrupt_compressed_input_ends_the_session_with_a_log_line(
    world: ImapWorld, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    async with world.logged_in() as client:
        await compress(client)
        client.writer.raw.write(b"\xff\xfe garbage, not DEFLATE\r\n")  # type: ignore[attr-defined]
        assert await client.at_eof()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("corrupt compressed input" in r.getMessage() for r in warnings), caplog.text
