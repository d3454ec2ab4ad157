"""Protocol replies with their enhanced status codes, and the exception that carries one.

A ``Reply`` is what a server says on the wire: the basic code (RFC 5321 §4.2),
the enhanced status code (RFC 3463, advertised per RFC 2034) and the text.
Tables (access ``ERROR:``, virtusertable ``error:``) and the routing decision
produce replies; the protocol layers render them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Reply:
    """One SMTP-style reply: ``550 5.1.1 No such user here``."""

    code: int
    enhanced: str | None
    text: str

    @property
    def is_permanent(self) -> bool:
        return 500 <= self.code <= 599

    @property
    def is_temporary(self) -> bool:
        return 400 <= self.code <= 499

    def __str__(self) -> str:
        if self.enhanced:
            return f"{self.code} {self.enhanced} {self.text}"
        return f"{self.code} {self.text}"


class Replies:
    """Named replies used across layers (the protocol layers add their own)."""

    NO_SUCH_USER: Final = Reply(550, "5.1.1", "No such user here")
    ACCESS_DENIED: Final = Reply(550, "5.7.1", "Access denied")
    RELAY_DENIED: Final = Reply(554, "5.7.1", "Relay access denied")
    ALIAS_LOOP: Final = Reply(554, "5.4.6", "Alias loop detected")
    TOO_MANY_RECIPIENTS: Final = Reply(552, "5.5.3", "Too many recipients after alias expansion")
    LOCAL_CONFIG_ERROR: Final = Reply(451, "4.3.0", "Local configuration error, try again later")


class Rejected(Exception):
    """Raised to answer with ``reply``; the protocol layer renders it."""

    def __init__(self, reply: Reply):
        super().__init__(str(reply))
        self.reply = reply
