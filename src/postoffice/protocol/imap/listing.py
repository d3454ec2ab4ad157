"""LIST and LSUB patterns: which mailbox names a reference and a pattern select (RFC 9051 §6.3.9).

What this module owns: the meaning of the two wildcards (``*`` matches any
characters, the hierarchy delimiter included; ``%`` matches any characters
but the delimiter), the joining of reference and pattern (RFC 9051 §6.3.9:
the reference is prefixed to the pattern), and the case-insensitivity of
``INBOX`` (RFC 9051 §5.1: only that name, only at the top).

Invariants: a pattern is compiled to a regular expression in which every
character but the two wildcards stands for itself; matching costs time
linear in the name (no nested quantifiers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

DELIMITER: Final = "/"
MAX_PATTERN: Final = 1024


@dataclass(frozen=True, slots=True)
class MailboxPattern:
    """One compiled ``reference + pattern``."""

    text: str
    regex: re.Pattern[str]

    def matches(self, name: str) -> bool:
        return self.regex.fullmatch(_fold_inbox(name)) is not None

    def matches_parent_of(self, name: str) -> bool:
        """True when some ancestor of ``name`` matches (for ``\\Noselect`` parents in LSUB
        and CHILDINFO in LIST-EXTENDED, RFC 5258 §3.5)."""
        parts = name.split(DELIMITER)
        return any(self.matches(DELIMITER.join(parts[:n])) for n in range(1, len(parts)))


def _fold_inbox(name: str) -> str:
    head, sep, rest = name.partition(DELIMITER)
    if head.upper() == "INBOX":
        return "INBOX" + sep + rest
    return name


def compile_pattern(reference: str, pattern: str) -> MailboxPattern:
    """RFC 9051 §6.3.9: the canonical form is the reference followed by the pattern,
    unless the pattern starts with the delimiter (then it is taken as is, as
    Dovecot and Cyrus do, rather than producing a doubled delimiter)."""
    if pattern.startswith(DELIMITER) and reference.endswith(DELIMITER):
        text = reference + pattern[1:]
    else:
        text = reference + pattern
    text = text[:MAX_PATTERN]
    pieces: list[str] = []
    for char in _fold_inbox(text):
        if char == "*":
            pieces.append(".*")
        elif char == "%":
            pieces.append("[^" + re.escape(DELIMITER) + "]*")
        else:
            pieces.append(re.escape(char))
    # Collapse runs of wildcards so that matching stays linear.
    regex = re.sub(r"(?:\.\*){2,}", ".*", "".join(pieces))
    return MailboxPattern(text, re.compile(regex, re.DOTALL))
