"""LIST and LSUB patterns: which mailbox names a reference and a pattern select (RFC 9051 §6.3.9).

What this module owns: the meaning of the two wildcards (``*`` matches any
characters, the hierarchy delimiter included; ``%`` matches any characters
but the delimiter), the joining of reference and pattern (RFC 9051 §6.3.9:
the reference is prefixed to the pattern), and the case-insensitivity of
``INBOX`` (RFC 9051 §5.1: only that name, only at the top).

Invariants: every character of a pattern but the two wildcards stands for
itself; matching runs the pattern as a set of positions advanced together
over the name (no backtracking), so it costs time linear in the name
whatever the wildcards (a regular expression would backtrack
polynomially on ``%%%%x`` or ``a*a*a*x``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

DELIMITER: Final = "/"
MAX_PATTERN: Final = 1024


@dataclass(frozen=True, slots=True)
class MailboxPattern:
    """One compiled ``reference + pattern``: bit i of a mask stands for the i-th
    token (a character, ``*`` or ``%``; runs of wildcards are one token)."""

    text: str
    length: int  # tokens
    stars: int  # mask of "*" tokens
    wildcards: int  # mask of "*" and "%" tokens
    characters: dict[str, int] = field(compare=False, hash=False, repr=False)

    def _close(self, states: int) -> int:
        # A wildcard may match nothing; no two wildcard tokens are adjacent.
        return states | ((states & self.wildcards) << 1)

    def matches(self, name: str) -> bool:
        states = self._close(1)
        for char in _fold_inbox(name):
            stay = states & (self.stars if char == DELIMITER else self.wildcards)
            advance = (states & self.characters.get(char, 0)) << 1
            states = self._close(stay | advance)
            if not states:
                return False
        return bool(states >> self.length & 1)

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
    tokens: list[str] = []
    for char in _fold_inbox(text):
        if char in "*%" and tokens and tokens[-1] in "*%":
            # A run of wildcards is one: "*" if any of them is, else "%".
            tokens[-1] = "*" if "*" in (char, tokens[-1]) else "%"
        else:
            tokens.append(char)
    stars = wildcards = 0
    characters: dict[str, int] = {}
    for position, token in enumerate(tokens):
        bit = 1 << position
        if token == "*":
            stars |= bit
            wildcards |= bit
        elif token == "%":
            wildcards |= bit
        else:
            characters[token] = characters.get(token, 0) | bit
    return MailboxPattern(text, len(tokens), stars, wildcards, characters)
