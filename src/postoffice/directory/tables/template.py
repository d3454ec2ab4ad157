"""Address templates with ``%1``..``%3`` placeholders (virtusertable, genericstable).

Owns splitting a table's right-hand side into a local-part template and a
domain template when the table is read, and filling them in at lookup time.

Why: a placeholder value comes from the looked-up address, which may be
network text, and a quoted local part may hold anything printable
(``"bob@evil.test"@example.com``, ``"|cmd"@example.com``). If the filled-in
text were parsed again as an address, ``@`` inside a value would move the
domain, and ``@example.com  %1`` would relay to any domain a sender names.
sendmail keeps a quoted local part a single token through the map lookup;
here the template's own ``@`` (found when the table is read) is the only one
that counts, and a value is only ever inserted into the unquoted local part
(or into a domain template, which must then still be a valid domain).

Invariants: ``fill()`` returns an ``Address`` whose domain is canonical and
whose local part is non-empty and at most ``MAX_LOCAL_OCTETS`` long; every
failure is an ``AddressError``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from postoffice.core.address import MAX_LOCAL_OCTETS, Address, canonical_domain, parse_local
from postoffice.core.errors import AddressError

PLACEHOLDER = re.compile(r"%(.?)")


@dataclass(frozen=True, slots=True)
class AddressTemplate:
    """A parsed right-hand side: ``local`` is unquoted; ``domain`` None = qualify it."""

    written: str
    local: str
    domain: str | None

    @property
    def uses(self) -> frozenset[str]:
        """The placeholder digits the template uses (``{"1", "2"}``)."""
        found = PLACEHOLDER.findall(self.local)
        if self.domain is not None:
            found += PLACEHOLDER.findall(self.domain)
        return frozenset(found)

    def fill(self, values: Sequence[str], *, default_domain: str) -> Address:
        """The address for ``values`` (``values[0]`` is ``%1``); AddressError if invalid."""
        local = _substitute(self.local, values)
        if not local:
            raise AddressError(f"{self.written!r} gives an empty local part")
        if len(local.encode("utf-8")) > MAX_LOCAL_OCTETS:
            raise AddressError(f"{self.written!r} gives a local part that is too long")
        if self.domain is None:
            return Address(local, canonical_domain(default_domain))
        return Address(local, canonical_domain(_substitute(self.domain, values)))

    def render(self, values: Sequence[str]) -> str:
        """The filled-in text, for traces (not for parsing: see module doc)."""
        return _substitute(self.written, values)


def parse_template(written: str, *, allowed: str) -> AddressTemplate:
    """Parse ``local[@domain]`` with placeholders among ``allowed``; AddressError if bad."""
    for placeholder in PLACEHOLDER.finditer(written):
        if not placeholder.group(1) or placeholder.group(1) not in allowed:
            raise AddressError(f"unknown placeholder %{placeholder.group(1)}")
    at = _template_at(written)
    local_text = written if at < 0 else written[:at]
    # "%" and digits are atext (RFC 5322 §3.2.3): a template parses as a local part.
    local = parse_local(local_text)
    if at < 0:
        return AddressTemplate(written, local, None)
    domain_text = written[at + 1 :]
    if PLACEHOLDER.search(domain_text):
        canonical_domain(PLACEHOLDER.sub("x", domain_text))  # the shape must be a domain
        return AddressTemplate(written, local, domain_text)
    return AddressTemplate(written, local, canonical_domain(domain_text))


def _template_at(text: str) -> int:
    """Index of the template's ``@`` (outside a leading quoted string); -1 if none."""
    if text.startswith('"'):
        i = 1
        while i < len(text):
            if text[i] == "\\":
                i += 2
                continue
            if text[i] == '"':
                break
            i += 1
        return text.find("@", i)
    return text.rfind("@")


def _substitute(template: str, values: Sequence[str]) -> str:
    return PLACEHOLDER.sub(lambda m: values[int(m.group(1)) - 1], template)
