"""The i;unicode-casemap collation (RFC 5051) that SORT and THREAD compare strings by.

Owns ``collation_key``: the key whose code-point order (the same as the
UTF-8 octet order RFC 5051 compares) is the collation's order, and whose
equality is its equality. Dovecot (I18NLEVEL=1, RFC 5255 §4) sorts and
threads by the same collation; tests/interop/test_dovecot_diff.py compares.
"""

from __future__ import annotations

import unicodedata

__all__ = ["collation_key"]


def collation_key(text: str) -> str:
    """RFC 5051 §2: each character to its titlecase (when that is one character,
    standing in for the simple titlecase mapping of UnicodeData.txt), then the
    full decomposition (NFKD). "Jörg" is "JO" U+0308 "RG", so it sorts before
    "Judy"; "ß" has no one-character titlecase and stays, unlike "SS"."""
    if text.isascii():  # the same result: ASCII titlecases to upper case, NFKD keeps it
        return text.upper()
    titled = "".join(t if len(t := char.title()) == 1 else char for char in text)
    return unicodedata.normalize("NFKD", titled)
