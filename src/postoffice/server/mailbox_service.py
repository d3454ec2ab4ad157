"""What the mailbox services (POP3, IMAP) do alike with an accepted connection
(and, for its implicit TLS, the ``submissions`` role).

Owns the two steps around every session of ``pop3``/``pop3s`` and
``imap``/``imaps``: admitting the connection under the per-client limit
(refused with the protocol's own words and a maillog line; a session that
fails never takes the server down, and its slot is always given back), and
the implicit TLS handshake of the ``s`` roles, which comes before the
greeting (RFC 8314 §3.3).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable

from postoffice.core.maillog import log_event
from postoffice.net.pipe import Pipe, TlsSessionInfo
from postoffice.server.limits import ConnectionLimiter, SharedConnectionLimiter


async def serve_admitted(
    pipe: Pipe,
    limiter: ConnectionLimiter | SharedConnectionLimiter,
    component: str,
    refusal: bytes,
    serve: Callable[[str], Awaitable[None]],
) -> None:
    """Run ``serve(client_ip)`` if the client is under its connection limit."""
    ip = pipe.peer[0]
    if not limiter.admit(ip):
        log_event(component, f"Disconnected: too many connections: rip={ip}")
        pipe.send(refusal)
        pipe.close()
        return
    try:
        await serve(ip)
    except Exception as exc:  # one broken session must never take the server down
        log_event(component, f"session error: {exc!r}: rip={ip}", level=logging.ERROR)
        pipe.close()
    finally:
        limiter.release(ip)


async def implicit_tls(
    pipe: Pipe, context: ssl.SSLContext, timeout: float, component: str, ip: str
) -> TlsSessionInfo | None:
    """The handshake of ``pop3s``/``imaps``/``submissions``; None (logged, closed)
    when it fails."""
    pipe.prepare_tls()
    try:
        return await asyncio.wait_for(pipe.start_tls(context), timeout=timeout)
    except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as exc:
        log_event(component, f"TLS handshake failed: {exc}: rip={ip}")
        pipe.close()
        return None
