"""Mail addresses: parsing, canonical form and rendering.

Grammar: RFC 5321 §4.1.2 (``Mailbox = Local-part "@" ( Domain / address-literal )``)
with the RFC 6531 §3.3 extension that lets atoms carry UTF-8.

Invariants of ``Address``:
- ``local`` is the local part with quoting removed (``"john doe"`` -> ``john doe``);
  its case is kept, because RFC 5321 §2.4 says only the receiving host may
  interpret it.
- ``domain`` is canonical: lower case, and an internationalised domain is held
  in its ASCII (A-label) form so that two spellings of one name compare equal.
  An address literal (``[192.0.2.1]``) is kept as written, lowered.
- ``key`` is the form every table and account lookup uses: local part folded
  (``fold_local``: NFC, ASCII lower case), as sendmail and Postfix look up users.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass

from postoffice.core.errors import AddressError

# Bounds (DESIGN.md §5): generous, per RFC 5321 §4.5.3.1's advice not to limit.
MAX_LOCAL_OCTETS = 255
MAX_DOMAIN_OCTETS = 255

# RFC 5322 §3.2.3 atext, plus any non-ASCII character (RFC 6531 §3.3).
_ATEXT = r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\U0010ffff]"
_DOT_STRING = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*")
# RFC 5321 §4.1.2 qtextSMTP / quoted-pairSMTP
_QUOTED_STRING = re.compile(r'"((?:[\x20\x21\x23-\x5b\x5d-\x7e\u0080-\U0010ffff]|\\[\x20-\x7e])*)"')
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_NEEDS_QUOTING = re.compile(rf"^(?!{_DOT_STRING.pattern}$)")


@dataclass(frozen=True, slots=True)
class Address:
    """A mailbox address ``local@domain`` in canonical form (see module doc)."""

    local: str
    domain: str

    @property
    def key(self) -> str:
        """The lookup key: ``local`` folded to lower case, ``@``, the domain."""
        return f"{fold_local(self.local)}@{self.domain}"

    @property
    def local_key(self) -> str:
        return fold_local(self.local)

    def split_detail(self, separator: str = "+") -> tuple[str, str | None]:
        """``alice+lists`` -> (``alice``, ``lists``); no separator -> (local, None)."""
        user, sep, detail = self.local.partition(separator)
        if not sep or not user:
            return self.local, None
        return user, detail

    def with_local(self, local: str) -> Address:
        return Address(local, self.domain)

    def __str__(self) -> str:
        return f"{quote_local(self.local)}@{self.domain}"


_ASCII_UPPER_TO_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold_local(local: str) -> str:
    """The lookup form of a local part: Unicode NFC, ASCII letters in lower case.

    Only ASCII is case-folded: RFC 6531 defines no case rule for UTF-8 local
    parts, and Unicode lower-casing merges distinct characters (the Kelvin
    sign U+212A lowers to ``k``), which would let one address reach another's
    mailbox or dodge an access rule. NFC makes composed and decomposed
    spellings of one name the same key (RFC 6530 §10.1 recommends NFC).
    """
    return unicodedata.normalize("NFC", local).translate(_ASCII_UPPER_TO_LOWER)


def quote_local(local: str) -> str:
    """Render a local part, quoting it when it is not a dot-string (RFC 5321 §4.1.2)."""
    if _DOT_STRING.fullmatch(local):
        return local
    escaped = local.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def canonical_domain(text: str) -> str:
    """Lower-case a domain and convert non-ASCII labels to A-labels (RFC 5890).

    Raises ``AddressError`` for anything that is not a syntactically valid
    domain or address literal.
    """
    if not text:
        raise AddressError("empty domain")
    if len(text.encode("utf-8")) > MAX_DOMAIN_OCTETS:
        raise AddressError("domain is too long")
    if text.startswith("["):
        return _canonical_literal(text)
    name = text.rstrip(".") if text.endswith(".") and not text.endswith("..") else text
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise AddressError(f"invalid internationalised domain {text!r}") from exc
    labels = name.split(".")
    for label in labels:
        if not _LABEL.fullmatch(label):
            raise AddressError(f"invalid domain {text!r}")
    return name.lower()


def _canonical_literal(text: str) -> str:
    # RFC 5321 §4.1.3 address literals
    if not text.endswith("]"):
        raise AddressError(f"unterminated address literal {text!r}")
    inner = text[1:-1]
    try:
        if inner[:5].lower() == "ipv6:":
            return f"[IPv6:{ipaddress.IPv6Address(inner[5:]).compressed}]"
        return f"[{ipaddress.IPv4Address(inner)}]"
    except ValueError as exc:
        raise AddressError(f"invalid address literal {text!r}") from exc


def parse_local(text: str) -> str:
    """Parse a local part (dot-string or quoted string); return it unquoted."""
    if not text:
        raise AddressError("empty local part")
    if len(text.encode("utf-8")) > MAX_LOCAL_OCTETS:
        raise AddressError("local part is too long")
    if _DOT_STRING.fullmatch(text):
        return text
    quoted = _QUOTED_STRING.fullmatch(text)
    if quoted:
        return re.sub(r"\\(.)", r"\1", quoted.group(1))
    raise AddressError(f"invalid local part {text!r}")


def parse_address(text: str, *, default_domain: str | None = None) -> Address:
    """Parse ``local@domain`` (no angle brackets) into a canonical ``Address``.

    With ``default_domain``, a bare local part (``postmaster``) is accepted and
    completed with it, as sendmail does for local names.
    """
    if not text or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise AddressError(f"invalid address {text!r}")
    at = _split_at(text)
    if at < 0:
        if default_domain is None:
            raise AddressError(f"address {text!r} has no domain")
        return Address(parse_local(text), canonical_domain(default_domain))
    return Address(parse_local(text[:at]), canonical_domain(text[at + 1 :]))


def _split_at(text: str) -> int:
    """Index of the ``@`` that separates local part and domain (quotes respected)."""
    if text.startswith('"'):
        end = closing_quote(text)
        return text.find("@", end if end > 0 else len(text))
    return text.rfind("@")


def closing_quote(text: str) -> int:
    """Index of the quote closing the one at ``text[0]`` (``\\`` escapes); -1 if unterminated."""
    i = 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return i
        i += 1
    return -1


def domain_matches(domain: str, pattern: str) -> bool:
    """True when ``domain`` is ``pattern`` or a subdomain of it (both canonical)."""
    return domain == pattern or domain.endswith("." + pattern)


def parent_domains(domain: str) -> list[str]:
    """``a.b.test`` -> [``a.b.test``, ``b.test``, ``test``]: the name and its parents."""
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]
