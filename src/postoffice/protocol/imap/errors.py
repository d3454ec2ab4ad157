"""Errors of the IMAP grammar layer.

A peer's malformed command never escapes the protocol layer as an exception:
the connection turns ``ImapSyntaxError`` into a tagged BAD (RFC 9051 §7.1.5).
"""

from __future__ import annotations


class ImapSyntaxError(ValueError):
    """A command that does not parse; the message becomes the text of a tagged BAD."""


class UnsupportedCharset(ImapSyntaxError):
    """SEARCH with a CHARSET we cannot decode: ``NO [BADCHARSET (...)]`` (RFC 9051 §6.4.4)."""
