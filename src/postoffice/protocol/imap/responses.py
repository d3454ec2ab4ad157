"""Every octet the IMAP server sends is rendered here (RFC 9051 §7, RFC 3501 §7).

What this module owns: the encoding of response data (NIL, numbers,
strings as quoted or literal, atoms, parenthesised lists, ``literal8``) and
of whole responses: tagged status responses with their response codes,
untagged data and status, and continuation requests.

Data values are plain Python values so that layers above (``mime`` building
ENVELOPE and BODYSTRUCTURE, the server building FETCH) need nothing but this
convention:

    None            NIL
    int             number
    str / bytes     string: quoted when it can be (short, no CR/LF/NUL, no
                    8-bit octet unless UTF-8 is enabled), a literal otherwise
    Atom(text)      the text as is (flags, keywords, fixed words)
    Literal(octets) always a literal (message bodies, RFC 9051 §4.3)
    Literal8(..)    ``~{n}`` (BINARY, RFC 3516 §4.2)
    list / tuple    a parenthesised list of values

Invariants: a response is one line ended by CRLF except where a literal
carries its own octets; text given for a status response is reduced to
printable characters so a client cannot be fed a second line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Union

CRLF: Final = b"\r\n"
QUOTED_MAX: Final = 1024  # longer strings go out as literals
_NEEDS_LITERAL: Final = re.compile(rb"[\x00\r\n]")
_EIGHT_BIT: Final = re.compile(rb"[\x80-\xff]")
_ESCAPE: Final = re.compile(rb'(["\\])')
_UNPRINTABLE: Final = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Atom:
    """Sent as is: a flag, keyword or fixed word (never user-controlled text)."""

    text: str


@dataclass(frozen=True, slots=True)
class Literal:
    octets: bytes


@dataclass(frozen=True, slots=True)
class Literal8:
    octets: bytes


Value = Union[None, int, str, bytes, Atom, Literal, Literal8, "Sequence[Value]"]
NIL: Final = None


def encode_string(value: str | bytes, *, utf8: bool = False) -> bytes:
    """A string as quoted when possible, else as a literal (RFC 9051 §4.3)."""
    octets = value.encode("utf-8") if isinstance(value, str) else value
    if (
        len(octets) > QUOTED_MAX
        or _NEEDS_LITERAL.search(octets)
        or (not utf8 and _EIGHT_BIT.search(octets))
    ):
        return b"{%d}\r\n%b" % (len(octets), octets)
    return b'"' + _ESCAPE.sub(rb"\\\1", octets) + b'"'


def encode_astring(value: str | bytes, *, utf8: bool = False) -> bytes:
    """An astring: an atom when it is one, else a string (for mailbox names in LIST)."""
    octets = value.encode("utf-8") if isinstance(value, str) else value
    if octets and re.fullmatch(rb"[^(){ \x00-\x1f\x7f%*\"\\\x80-\xff]+", octets):
        return octets
    return encode_string(octets, utf8=utf8)


def encode(value: Value, *, utf8: bool = False) -> bytes:
    """One data value in the wire form (see the module docstring)."""
    if value is None:
        return b"NIL"
    if isinstance(value, bool):
        raise TypeError("a boolean is not an IMAP value")
    if isinstance(value, int):
        return b"%d" % value
    if isinstance(value, str | bytes):
        return encode_string(value, utf8=utf8)
    if isinstance(value, Atom):
        return value.text.encode("utf-8")
    if isinstance(value, Literal):
        return b"{%d}\r\n%b" % (len(value.octets), value.octets)
    if isinstance(value, Literal8):
        return b"~{%d}\r\n%b" % (len(value.octets), value.octets)
    return b"(" + b" ".join(encode(item, utf8=utf8) for item in value) + b")"


def clean_text(text: str) -> bytes:
    """Human-readable text of a response: one line, printable (RFC 9051 §9 ``text``)."""
    return _UNPRINTABLE.sub(" ", text).encode("utf-8") or b"."


def code_text(code: str | None, text: str) -> bytes:
    """``[CODE] text`` or ``text`` (RFC 9051 §7.1 resp-text)."""
    body = clean_text(text)
    if code is None:
        return body
    return b"[" + code.encode("utf-8") + b"] " + body


def tagged(tag: str, status: str, text: str, code: str | None = None) -> bytes:
    """``tag OK|NO|BAD [code] text`` (RFC 9051 §7.1)."""
    return tag.encode("ascii") + b" " + status.encode("ascii") + b" " + code_text(code, text) + CRLF


def untagged_status(status: str, text: str, code: str | None = None) -> bytes:
    """``* OK|NO|BAD|BYE|PREAUTH [code] text`` (RFC 9051 §7.1)."""
    return b"* " + status.encode("ascii") + b" " + code_text(code, text) + CRLF


def untagged(*parts: bytes) -> bytes:
    """``* part part ...``: parts already encoded."""
    return b"* " + b" ".join(parts) + CRLF


def continuation(text: str = "Ready") -> bytes:
    """``+ text`` (RFC 9051 §7.6)."""
    return b"+ " + clean_text(text) + CRLF


def continuation_data(data: bytes) -> bytes:
    """``+ base64`` for an AUTHENTICATE challenge (RFC 9051 §6.2.2)."""
    return b"+ " + data + CRLF


def atoms(names: Iterable[str]) -> bytes:
    """A parenthesised list of atoms, e.g. flags ``(\\Seen \\Answered)``."""
    return b"(" + b" ".join(name.encode("utf-8") for name in names) + b")"


def fetch_response(number: int, items: Sequence[tuple[bytes, bytes]]) -> bytes:
    """``* n FETCH (NAME value NAME value ...)``: names and values already encoded."""
    inner = b" ".join(name + b" " + value for name, value in items)
    return b"* %d FETCH (%b)\r\n" % (number, inner)


# -- the untagged responses, by name (RFC 9051 §7) ----------------------------------------


def exists(count: int) -> bytes:
    """``* n EXISTS`` (RFC 9051 §7.4.1)."""
    return b"* %d EXISTS\r\n" % count


def recent(count: int) -> bytes:
    """``* n RECENT`` (RFC 3501 §7.3.2; IMAP4rev1 only)."""
    return b"* %d RECENT\r\n" % count


def vanished(uids: str, *, earlier: bool = False) -> bytes:
    """``* VANISHED [(EARLIER)] uid-set`` (RFC 7162 §3.2.10), ``uids`` in wire form."""
    return b"* VANISHED %s%s\r\n" % (b"(EARLIER) " if earlier else b"", uids.encode("ascii"))


def expunge(number: int) -> bytes:
    """``* n EXPUNGE`` (RFC 9051 §7.5.1)."""
    return b"* %d EXPUNGE\r\n" % number


def flags_list(flags: Iterable[str]) -> bytes:
    """``* FLAGS (...)`` (RFC 9051 §7.3.5)."""
    return untagged(b"FLAGS", atoms(flags))


def modseq_value(modseq: int) -> bytes:
    """The value of the MODSEQ fetch item, ``(n)`` (RFC 7162 §7 fetch-mod-resp)."""
    return b"(%d)" % modseq


def fetch_flags(
    number: int, flags: Iterable[str], uid: int | None = None, modseq: int | None = None
) -> bytes:
    """``* n FETCH ([UID u] [MODSEQ (m)] FLAGS (...))``: a flag change told unasked
    (RFC 9051 §7.5.2; with its MODSEQ once CONDSTORE is on, RFC 7162 §3.1)."""
    items = [(b"UID", b"%d" % uid)] if uid is not None else []
    if modseq is not None:
        items.append((b"MODSEQ", modseq_value(modseq)))
    return fetch_response(number, [*items, (b"FLAGS", atoms(flags))])


def search(values: Iterable[int], modseq: int | None = None) -> bytes:
    """``* SEARCH n n ... [(MODSEQ m)]`` (RFC 3501 §7.2.5; RFC 7162 §3.1.6)."""
    tail = b" (MODSEQ %d)" % modseq if modseq is not None else b""
    return b"* SEARCH" + b"".join(b" %d" % value for value in values) + tail + CRLF


def sort(values: Iterable[int], modseq: int | None = None) -> bytes:
    """``* SORT n n ... [(MODSEQ m)]`` (RFC 5256 §4 sort-data; RFC 7162 §7 adds the
    MODSEQ, as for SEARCH)."""
    tail = b" (MODSEQ %d)" % modseq if modseq is not None else b""
    return b"* SORT" + b"".join(b" %d" % value for value in values) + tail + CRLF


# One thread: a message's number (None: a dummy, not shown) and its replies
ThreadTree = tuple[int | None, Sequence["ThreadTree"]]


def thread(threads: Iterable[ThreadTree]) -> bytes:
    """``* THREAD (2)(3 6 (4 23)(44 7 96))`` (RFC 5256 §4 thread-data): a message
    with one reply is followed by it; with several, each is a parenthesised
    thread-list; a dummy shows only its replies. Written without recursion: a
    thread may be as deep as the mailbox is long."""
    out: list[bytes] = []
    for tree in threads:
        if not tree[1]:  # a message no other answers (most of a mailbox), or nothing
            if tree[0] is not None:  # an empty dummy stands for nothing
                out.append(b"(%d)" % tree[0])
            continue
        out.append(b"(")
        stack: list[bytes | ThreadTree] = [b")", tree]
        while stack:
            item = stack.pop()
            if isinstance(item, bytes):
                out.append(item)
                continue
            number, children = item
            if number is not None:
                out.append(b"%d" % number)
            if len(children) == 1:
                stack.append(children[0])
                if number is not None:
                    stack.append(b" ")
                continue
            for child in reversed(children):  # thread-nested = 2*thread-list
                stack += [b")", child, b"("]
            if children and number is not None:
                stack.append(b" ")
    return b"* THREAD" + (b" " if out else b"") + b"".join(out) + CRLF


def esearch(tag: str, *, uid: bool, data: Sequence[tuple[str, bytes]]) -> bytes:
    """``* ESEARCH (TAG "t") [UID] NAME value ...`` (RFC 4731 §3.1, RFC 9051 §7.3.4)."""
    parts = [b"(TAG " + encode_string(tag) + b")"]
    if uid:
        parts.append(b"UID")
    parts += [name.encode("ascii") + b" " + value for name, value in data]
    return untagged(b"ESEARCH", *parts)


def mailbox_list(
    word: bytes, attributes: Iterable[str], delimiter: str, name: bytes, extra: bytes = b""
) -> bytes:
    """``* LIST (attrs) "/" name [extended data]`` (RFC 9051 §7.3.1; LSUB alike)."""
    parts = [atoms(attributes), encode_string(delimiter), name]
    if extra:
        parts.append(extra)
    return untagged(word, *parts)


def mailbox_status(name: bytes, items: Sequence[tuple[str, int]]) -> bytes:
    """``* STATUS name (ITEM n ...)`` (RFC 9051 §7.3.2)."""
    inner = b" ".join(item.encode("ascii") + b" %d" % value for item, value in items)
    return untagged(b"STATUS", name, b"(" + inner + b")")


def namespace_personal(prefix: str, delimiter: str) -> bytes:
    """``* NAMESPACE (("prefix" "/")) NIL NIL``: one personal namespace (RFC 2342 §5)."""
    personal = b"((" + encode_string(prefix) + b" " + encode_string(delimiter) + b"))"
    return untagged(b"NAMESPACE", personal, b"NIL", b"NIL")


def capability(names: Iterable[str]) -> bytes:
    """``* CAPABILITY ...`` (RFC 9051 §7.2.2)."""
    return untagged(b"CAPABILITY", " ".join(names).encode("ascii"))


def enabled(names: Iterable[str]) -> bytes:
    """``* ENABLED ...`` (RFC 5161 §3.2)."""
    return b"* ENABLED" + b"".join(b" " + name.encode("ascii") for name in names) + CRLF


def server_id(fields: Sequence[tuple[str, str]]) -> bytes:
    """``* ID ("name" "value" ...)`` (RFC 2971 §3.2)."""
    return untagged(b"ID", encode([item for pair in fields for item in pair]))
