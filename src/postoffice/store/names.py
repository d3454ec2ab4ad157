"""Mailbox names and user path components: validation and reversible disk encoding.

This module owns the rule that no name reaches the file system unchecked
(DESIGN.md §5). Every name-taking store operation calls ``mailbox_name()``
first; every user directory is built from ``safe_local_part()`` and
``safe_domain()``.

Mailbox names (IMAP view, RFC 3501 §5.1 / RFC 9051 §5.1):
- ``/`` is the hierarchy separator; components are non-empty, are never ``.``
  or ``..``, and carry no control characters (C0, DEL, C1) and no NUL.
- ``*`` and ``%`` are refused: they are the LIST wildcards (RFC 3501 §6.3.8).
- The first component ``INBOX`` is case-insensitive and canonicalised to
  upper case (RFC 3501 §5.1); other components keep their case.
- A name is at most ``MAX_NAME_OCTETS`` UTF-8 octets and ``MAX_DEPTH`` deep.

Disk encoding of one component (``encode_component``), reversible by
``decode_component``: ``%`` becomes ``%25`` and every other character that
would be unsafe in the target becomes ``%XX`` per UTF-8 octet: every ``.``
for Maildir++ (where ``.`` is the hierarchy separator of folder directory
names, Maildir++ conventions), only a leading ``.`` for mbox (a dot file would
be hidden and could look like our own files), and for mbox the ``.`` of a
final ``.lock`` (so that no mailbox file is ever another one's dotlock) and
the ``p`` of a top-level component that starts with ``postoffice-`` (so that
no mailbox collides with the index files kept in the same directory). ``/``
never survives into a disk name: it only separates components.
"""

from __future__ import annotations

import re

from postoffice.core.errors import MailboxNameError

INBOX = "INBOX"
SEPARATOR = "/"
MAX_NAME_OCTETS = 200
MAX_DEPTH = 16
# Our own files in a user's mail directory all start with this prefix.
RESERVED_PREFIX = "postoffice-"
# mbox dotlocks are FILE.lock: no mailbox file may end so.
DOTLOCK_SUFFIX = ".lock"

_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f*%]")
# A local part as a directory name: RFC 5322 atext without "/" plus "." and
# any printable non-ASCII character (RFC 6531 §3.3).
_LOCAL_SAFE = re.compile(r"[A-Za-z0-9!#$%&'*+\-=?^_`{|}~.\u00a0-\U0010ffff]+")
_DOMAIN_SAFE = re.compile(r"[A-Za-z0-9.\-\[\]:]+")
_ESCAPE = re.compile(r"%([0-9A-F]{2})")


def mailbox_name(name: object) -> str:
    """Validate a mailbox name and return its canonical form (INBOX upper-cased).

    Raises ``MailboxNameError`` naming the fault; nothing else is ever raised.
    """
    if not isinstance(name, str):
        raise MailboxNameError(f"mailbox name must be text, not {type(name).__name__}")
    if not name:
        raise MailboxNameError("empty mailbox name")
    try:
        octets = len(name.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise MailboxNameError(f"mailbox name {name!r} is not valid Unicode") from exc
    if octets > MAX_NAME_OCTETS:
        raise MailboxNameError(f"mailbox name is longer than {MAX_NAME_OCTETS} octets")
    bad = _FORBIDDEN.search(name)
    if bad:
        raise MailboxNameError(
            f"mailbox name {name!r} contains a forbidden character {bad.group()!r}"
        )
    if name.startswith(SEPARATOR):
        raise MailboxNameError(f"mailbox name {name!r} is absolute (starts with '/')")
    parts = name.split(SEPARATOR)
    if len(parts) > MAX_DEPTH:
        raise MailboxNameError(f"mailbox name {name!r} is deeper than {MAX_DEPTH} levels")
    for part in parts:
        if not part:
            raise MailboxNameError(f"mailbox name {name!r} has an empty component")
        if part in (".", ".."):
            raise MailboxNameError(f"mailbox name {name!r} has a {part!r} component")
        if part != part.strip():
            raise MailboxNameError(
                f"mailbox name {name!r} has a component with leading or trailing space"
            )
    if parts[0].upper() == INBOX:
        parts[0] = INBOX
    return SEPARATOR.join(parts)


def is_inbox(name: str) -> bool:
    """True for the canonical name ``INBOX`` (not its children)."""
    return name == INBOX


def parent_names(name: str) -> list[str]:
    """``a/b/c`` -> [``a``, ``a/b``]: the superior names, outermost first."""
    parts = name.split(SEPARATOR)
    return [SEPARATOR.join(parts[:i]) for i in range(1, len(parts))]


def is_inferior(name: str, ancestor: str) -> bool:
    """True when ``name`` lies strictly below ``ancestor`` in the hierarchy."""
    return name.startswith(ancestor + SEPARATOR)


def encode_component(component: str, *, maildir: bool, top_level: bool = False) -> str:
    """Encode one validated component as a safe, reversible file name part."""
    out: list[str] = []
    lock_dot = len(component) - len(DOTLOCK_SUFFIX)
    for index, char in enumerate(component):
        unsafe = (
            char in "%/"
            or (char == "." and (maildir or index == 0))
            or (not maildir and index == lock_dot and component.endswith(DOTLOCK_SUFFIX))
            or (not maildir and top_level and index == 0 and component.startswith(RESERVED_PREFIX))
        )
        if unsafe:
            out.append("".join(f"%{octet:02X}" for octet in char.encode("utf-8")))
        else:
            out.append(char)
    return "".join(out)


def decode_component(encoded: str) -> str:
    """Reverse ``encode_component``; raises ``MailboxNameError`` on a stray ``%``."""
    if "%" not in encoded:
        return encoded
    if _ESCAPE.sub("", encoded).count("%"):
        raise MailboxNameError(f"file name {encoded!r} is not an encoded mailbox name")
    raw = _ESCAPE.sub(lambda m: f"\x00{m.group(1)}", encoded)
    data = bytearray()
    pieces = raw.split("\x00")
    data += pieces[0].encode("utf-8")
    for piece in pieces[1:]:
        data.append(int(piece[:2], 16))
        data += piece[2:].encode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MailboxNameError(f"file name {encoded!r} decodes to invalid UTF-8") from exc


def safe_local_part(local: str) -> str:
    """The directory name for a local part: lower-cased and checked, or ``MailboxNameError``.

    The local part is folded to lower case as ``Address.key`` does, so that
    ``Alice`` and ``alice`` share one mailbox (sendmail and Postfix look up
    local users case-insensitively).
    """
    folded = local.lower()
    if not folded or len(folded.encode("utf-8", "surrogatepass")) > 255:
        raise MailboxNameError(f"local part {local!r} cannot name a mail directory")
    if not _LOCAL_SAFE.fullmatch(folded) or folded.startswith(".") or ".." in folded:
        raise MailboxNameError(f"local part {local!r} is not safe as a directory name")
    if not folded.isprintable():
        raise MailboxNameError(f"local part {local!r} has unprintable characters")
    return folded


def safe_domain(domain: str) -> str:
    """The directory name for a (canonical) domain, or ``MailboxNameError``."""
    folded = domain.lower()
    if not folded or len(folded) > 255:
        raise MailboxNameError(f"domain {domain!r} cannot name a mail directory")
    if not _DOMAIN_SAFE.fullmatch(folded) or folded.startswith(".") or ".." in folded:
        raise MailboxNameError(f"domain {domain!r} is not safe as a directory name")
    return folded
