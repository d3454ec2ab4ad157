"""TLS for every listener: one server context built from the configured certificate.

Owns the TLS policy of the server side: TLS 1.2 or newer (RFC 8996 retires
1.0 and 1.1; RFC 9325 §3.1.1), no TLS compression (RFC 9325 §3.3), the
certificate chain and key from ``[tls]``. Failures are ``ConfigError``s that
name the file, so ``serve`` and ``check`` say what is wrong.
"""

from __future__ import annotations

import ssl

from postoffice.config.model import Paths
from postoffice.core.errors import ConfigError


def server_tls_context(paths: Paths) -> ssl.SSLContext:
    """A server-side context with the configured certificate chain and key."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION
    for path in (paths.tls_cert, paths.tls_key):
        if not path.is_file():
            raise ConfigError(f"file not found: {path}", key="tls")
    try:
        context.load_cert_chain(paths.tls_cert, paths.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load certificate {paths.tls_cert} with key {paths.tls_key}: {exc}",
            key="tls",
        ) from exc
    return context
