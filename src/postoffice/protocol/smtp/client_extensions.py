"""What a server offers, as the client learns it from the reply to EHLO.

What this module owns: ``ServerExtensions``, parsed from a 2xx EHLO reply
(RFC 5321 §4.1.1.1: the first line names the server, every further line is
``ehlo-keyword *( SP ehlo-param )``), and the questions the driver asks of it
before deciding what it may send (8-bit or binary content, UTF-8 addresses,
the size limit). The connection asks it which parameters MAIL and RCPT may
carry; it never decides whether a message may be sent.

Invariants: keywords are upper-cased; a line whose keyword is not an
ehlo-keyword is ignored, as are repeated lines after the first; ``size`` is
None when SIZE was not offered, 0 when it was offered without a (valid)
limit (RFC 1870 §4: "SIZE 0" means no fixed maximum); ``auth`` holds the
upper-cased SASL mechanisms of the ``AUTH`` line (and of the pre-standard
``AUTH=`` line some servers still send).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from postoffice.core.reply import Reply

_KEYWORD: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")  # RFC 5321 §4.1.1.1 ehlo-keyword


@dataclass(frozen=True, slots=True)
class ServerExtensions:
    """The extensions of one EHLO reply; ``none()`` after HELO."""

    keywords: frozenset[str] = frozenset()
    size: int | None = None
    auth: frozenset[str] = frozenset()

    @classmethod
    def none(cls) -> ServerExtensions:
        """A server greeted with HELO: no extension at all (RFC 5321 §3.2)."""
        return cls()

    @classmethod
    def from_ehlo(cls, reply: Reply) -> ServerExtensions:
        """Parse a positive EHLO reply (its first line, the server's name, is skipped)."""
        return cls.from_lines(reply.text.split("\n")[1:])

    @classmethod
    def from_lines(cls, lines: list[str] | tuple[str, ...]) -> ServerExtensions:
        """Parse extension lines as they follow the first line of an EHLO reply."""
        keywords: set[str] = set()
        size: int | None = None
        auth: set[str] = set()
        for line in lines:
            words = line.split()
            if not words:
                continue
            keyword, params = words[0].upper(), words[1:]
            if keyword.startswith("AUTH="):  # pre-RFC 2554 servers: AUTH=LOGIN PLAIN
                keyword, params = "AUTH", [keyword[5:], *params]
            if not _KEYWORD.fullmatch(keyword):
                continue
            if keyword == "SIZE" and "SIZE" not in keywords:
                # RFC 1870 §4: SIZE [number]; no (valid) number: no limit declared.
                size = int(params[0]) if params and params[0].isdigit() else 0
            if keyword == "AUTH":
                auth.update(p.upper() for p in params if p)
            keywords.add(keyword)
        return cls(frozenset(keywords), size, frozenset(auth))

    # ---------------------------------------------------------- keywords

    def offers(self, keyword: str) -> bool:
        return keyword.upper() in self.keywords

    @property
    def pipelining(self) -> bool:
        return "PIPELINING" in self.keywords  # RFC 2920

    @property
    def eight_bit_mime(self) -> bool:
        return "8BITMIME" in self.keywords  # RFC 6152

    @property
    def smtputf8(self) -> bool:
        return "SMTPUTF8" in self.keywords  # RFC 6531

    @property
    def chunking(self) -> bool:
        return "CHUNKING" in self.keywords  # RFC 3030

    @property
    def binarymime(self) -> bool:
        return "BINARYMIME" in self.keywords  # RFC 3030

    @property
    def dsn(self) -> bool:
        return "DSN" in self.keywords  # RFC 3461

    @property
    def starttls(self) -> bool:
        return "STARTTLS" in self.keywords  # RFC 3207

    @property
    def enhanced_status_codes(self) -> bool:
        return "ENHANCEDSTATUSCODES" in self.keywords  # RFC 2034

    # ------------------------------------------------ the driver's questions

    @property
    def size_limit(self) -> int | None:
        """The fixed maximum message size, or None when none was declared."""
        return self.size or None

    def accepts_size(self, size: int | None) -> bool:
        """RFC 1870 §6: a message larger than the declared maximum will be refused."""
        limit = self.size_limit
        return size is None or limit is None or size <= limit

    def accepts_8bit(self) -> bool:
        """8-bit content may go as BODY=8BITMIME (RFC 6152 §3)."""
        return self.eight_bit_mime

    def accepts_binary(self) -> bool:
        """Binary content may go as BODY=BINARYMIME; it needs BDAT (RFC 3030 §3).
        The connection streams BDAT only when PIPELINING is offered too (see client)."""
        return self.binarymime and self.chunking and self.pipelining

    def accepts_utf8_addresses(self) -> bool:
        """Non-ASCII addresses need the SMTPUTF8 extension (RFC 6531 §3.4)."""
        return self.smtputf8

    def accepts_body(self, body: str | None) -> bool:
        """Whether content declared as ``body`` (BODY= value, None for plain
        7-bit) can be sent to this server as it is."""
        if body is None or body.upper() == "7BIT":
            return True
        if body.upper() == "8BITMIME":
            return self.accepts_8bit()
        if body.upper() == "BINARYMIME":
            return self.accepts_binary()
        return False
