"""Carrying out IMAP COMPRESS (RFC 4978) for ``ImapSession``.

What this module owns: the answer to COMPRESS (OK and the switch, NO
[COMPRESSIONACTIVE], or BAD for a mechanism not offered), the moment of the
switch (the tagged OK written uncompressed, everything after it compressed,
RFC 4978 §3), and the maillog lines: plain input the client pipelined
behind COMPRESS (dropped, as behind STARTTLS) and compressed input that
cannot be inflated (the session ends). The compression itself is the
pipe's (``net.pipe.Pipe.start_compression``, ``net.deflate``); being above
TLS comes from the pipe's place over the transport (RFC 4978 §3: compress,
then encrypt).
"""

from __future__ import annotations

import logging

from postoffice.core.maillog import log_event
from postoffice.net.pipe import Pipe
from postoffice.protocol.imap.compress import MECHANISMS, Compress
from postoffice.protocol.imap.connection import ImapServerConnection
from postoffice.server.imap_context import Reply

CAPABILITIES = tuple(f"COMPRESS={name}" for name in MECHANISMS)  # RFC 4978 §1
CORRUPT_INPUT = "Corrupt compressed input"


def do_compress(
    pipe: Pipe, conn: ImapServerConnection, command: Compress, component: str, who: str
) -> Reply | None:
    """Answer COMPRESS; None when the OK went out and the connection compresses now."""
    if command.mechanism not in MECHANISMS:
        # RFC 4978 §3: BAD for an argument that is not valid
        return Reply("BAD", f"Unknown compression mechanism {command.mechanism}")
    if pipe.compressed:
        # RFC 4978 §3: NO [COMPRESSIONACTIVE], saying which layer compresses
        return Reply("NO", "DEFLATE is active already (COMPRESS)", "COMPRESSIONACTIVE")
    pipelined = conn.buffered_octets  # read behind COMPRESS, not yet parsed
    conn.finish(command, "OK", "DEFLATE active")
    dropped = pipelined + pipe.start_compression(conn.data_to_send())
    if dropped:
        log_event(component, f"{dropped} octets after COMPRESS dropped: {who}")
    return None


def log_failure(pipe: Pipe, component: str, who: str) -> str | None:
    """When the input ended on corrupt compressed data: log it; the session's reason."""
    if pipe.failure is None:
        return None
    log_event(component, f"{pipe.failure}: {who}", level=logging.WARNING)
    return CORRUPT_INPUT
