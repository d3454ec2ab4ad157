"""An AUTH SCRAM-SHA-256 dialogue through a sans-IO harness, with scramp as the
client: the same for SMTP (``334`` challenges) and POP3 (``+`` challenges)."""

from __future__ import annotations

import base64
from collections.abc import Callable

from scramp import ScramClient


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def challenge_text(out: bytes, prefix: bytes) -> str:
    """The decoded text of one challenge line that starts with ``prefix``."""
    assert out.startswith(prefix) and out.endswith(b"\r\n"), out
    return base64.b64decode(out[len(prefix) : -2]).decode()


def scram_dialogue(
    feed: Callable[[bytes], bytes],
    prefix: bytes,
    user: str,
    password: str,
    *,
    initial: bool = True,
) -> bytes:
    """``AUTH SCRAM-SHA-256`` fed line by line to the end: the server's last answer.
    A server-final challenge is checked by the client (scramp raises when the
    server did not know the keys) and answered with an empty line."""
    client = ScramClient(["SCRAM-SHA-256"], user, password)
    first = b64(client.get_client_first())
    if initial:
        out = feed(f"AUTH SCRAM-SHA-256 {first}\r\n".encode())
    else:
        assert feed(b"AUTH SCRAM-SHA-256\r\n") == prefix + b"\r\n"  # RFC 4954 §4, RFC 5034 §4
        out = feed(first.encode() + b"\r\n")
    client.set_server_first(challenge_text(out, prefix))
    out = feed(b64(client.get_client_final()).encode() + b"\r\n")
    if out.startswith(prefix):
        client.set_server_final(challenge_text(out, prefix))
        out = feed(b"\r\n")
    return out
