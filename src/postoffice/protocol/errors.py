"""Errors of the protocol layer.

A peer's mistakes never raise: they are answered on the wire. What raises is
the *driver* using a connection object out of order (answering an event that
was never asked, feeding data after close): that is a programming error in the
layer above, reported as ``ProtocolUsageError``.
"""

from __future__ import annotations

from postoffice.core.errors import PostofficeError


class ProtocolUsageError(PostofficeError, RuntimeError):
    """The driver called a sans-IO connection in a way its contract forbids."""
