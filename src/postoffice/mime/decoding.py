"""Low-level readers shared by the message index: header sections, MIME field
values, RFC 2047 encoded words, RFC 2231 parameters, transfer encodings, charsets.

Owns:
- ``scan_header``: the fields of one header section, as absolute offsets into
  the message bytes. A header section ends at the first empty line (RFC 5322
  §2.1); a line is ended by CRLF or, leniently, by a bare LF.
- the value readers for Content-Type / Content-Disposition / Content-Language
  (RFC 2045 §5.1, RFC 2183 §2, RFC 3282 §2) including RFC 2231 continuations
  and charsets;
- ``decode_words`` (RFC 2047), ``decode_transfer`` (RFC 2045 §6),
  ``decode_charset``;
- ``ImapValue`` and ``imap_string``: the Python shape of IMAP response data
  (None = NIL, str/bytes = string, int = number, list = parenthesised list).

Invariants: nothing here raises on malformed input (bad syntax degrades to a
best-effort value, never an exception); every loop advances, so all readers
run in time linear in their input; raw header text becomes ``str`` by UTF-8
with ``surrogateescape``, so ``s.encode("utf-8", "surrogateescape")`` gives the
original octets back exactly.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass
from typing import TypeAlias

ImapValue: TypeAlias = str | bytes | int | list["ImapValue"] | None

_LF = 0x0A
_CR = 0x0D
_SP = 0x20
_TAB = 0x09

# RFC 2045 §5.1: token := 1*<any (US-ASCII) CHAR except SPACE, CTLs, or tspecials>.
# Octets above 127 (surrogate-escaped when invalid UTF-8) are accepted leniently.
_TOKEN = re.compile(r'[^\x00-\x20()<>@,;:\\"/\[\]?=\x7f]+')
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"?', re.S)
_QUOTED_PAIR = re.compile(r"\\(.)", re.S)
_UNTIL_SEMICOLON = re.compile(r'(?:[^;"]|"(?:[^"\\]|\\.)*"?)*', re.S)
_WSP_RUN = re.compile(r"[ \t\r\n]+")
_COMMENT_SPECIAL = re.compile(r"[()\\]")
_LINE_BREAK = re.compile(rb"\r?\n")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_SECTION = re.compile(r"[0-9]{1,4}")


@dataclass(frozen=True, slots=True)
class HeaderField:
    """One header field: ``name`` lower-cased (b"" for a line that is no field)."""

    name: bytes
    start: int  # offset of the field's first octet
    value_start: int  # offset just past the colon
    end: int  # offset just past the last line ending of the field (folded lines included)


@dataclass(frozen=True, slots=True)
class HeaderBlock:
    fields: tuple[HeaderField, ...]
    end: int  # offset of the empty line (== body_start when there is none)
    body_start: int  # offset just past the empty line


def scan_header(data: bytes, start: int, limit: int) -> HeaderBlock:
    """Read the header section that starts at ``start`` and may run to ``limit``.

    RFC 5322 §2.1: the header is followed by an empty line and the body; a
    section with no empty line is all header (body_start == end == limit).
    RFC 5322 §2.2.3: a line starting with WSP continues the previous field.
    A line that has no colon is kept as a field with the empty name, so that
    every octet of the section belongs to exactly one entry.
    """
    fields: list[HeaderField] = []
    pos = start
    while pos < limit:
        newline = data.find(b"\n", pos, limit)
        line_end = limit if newline < 0 else newline + 1
        if newline >= 0 and (
            newline == pos or (newline == pos + 1 and data[pos] == _CR)
        ):  # the empty line
            return HeaderBlock(tuple(fields), pos, line_end)
        first = data[pos]
        if first in (_SP, _TAB) and fields:
            last = fields[-1]
            fields[-1] = HeaderField(last.name, last.start, last.value_start, line_end)
        else:
            content_end = line_end if newline < 0 else newline
            colon = data.find(b":", pos, content_end)
            if colon < 0:
                fields.append(HeaderField(b"", pos, pos, line_end))
            else:
                # RFC 5322 §4.5 (obs-optional): white space may precede the colon.
                name = data[pos:colon].rstrip(b" \t").lower()
                fields.append(HeaderField(name, pos, colon + 1, line_end))
        pos = line_end
    return HeaderBlock(tuple(fields), limit, limit)


def field_value(data: bytes, field: HeaderField) -> bytes:
    """The unfolded value (RFC 5322 §2.2.3: CRLF before WSP removed), stripped."""
    return _LINE_BREAK.sub(b"", data[field.value_start : field.end]).strip(b" \t\r\n")


def first_values(data: bytes, block: HeaderBlock, names: frozenset[bytes]) -> dict[bytes, bytes]:
    """The unfolded value of the first field of each of ``names`` present."""
    found: dict[bytes, bytes] = {}
    for field in block.fields:
        if field.name in names and field.name not in found:
            found[field.name] = field_value(data, field)
    return found


def raw_text(raw: bytes) -> str:
    """Header octets as ``str``; invalid UTF-8 kept as surrogate escapes (lossless)."""
    return raw.decode("utf-8", "surrogateescape")


def imap_string(text: str) -> str | bytes:
    """An IMAP string value: ``str`` when pure ASCII, else the original octets."""
    if text.isascii():
        return text
    return text.encode("utf-8", "surrogateescape")


def comment_end(text: str, pos: int) -> int:
    """The offset just past the RFC 5322 §3.2.2 comment that opens at ``pos``
    (nested comments and quoted-pairs allowed; unterminated runs to the end)."""
    depth = 0
    while True:
        match = _COMMENT_SPECIAL.search(text, pos)
        if match is None:
            return len(text)
        char = match.group()
        pos = match.end()
        if char == "\\":
            pos += 1
        elif char == "(":
            depth += 1
        else:
            depth -= 1
            if depth <= 0:
                return min(pos, len(text))


def skip_cfws(text: str, pos: int) -> int:
    """Skip white space and comments (RFC 5322 §3.2.2 CFWS)."""
    size = len(text)
    while pos < size:
        char = text[pos]
        if char in " \t\r\n":
            match = _WSP_RUN.match(text, pos)
            pos = match.end() if match else pos + 1
        elif char == "(":
            pos = comment_end(text, pos)
        else:
            break
    return pos


def unquote(content: str) -> str:
    """Remove RFC 5322 §3.2.1 quoted-pair backslashes."""
    return _QUOTED_PAIR.sub(r"\1", content) if "\\" in content else content


Params = tuple[tuple[str, str], ...]


def parse_content_type(value: str) -> tuple[str, str, Params] | None:
    """RFC 2045 §5.1 ``type "/" subtype *(";" parameter)``; None when malformed."""
    pos = skip_cfws(value, 0)
    match = _TOKEN.match(value, pos)
    if match is None:
        return None
    kind = match.group().lower()
    pos = skip_cfws(value, match.end())
    if pos >= len(value) or value[pos] != "/":
        return None
    match = _TOKEN.match(value, skip_cfws(value, pos + 1))
    if match is None:
        return None
    return kind, match.group().lower(), parse_params(value, match.end())


def parse_disposition(value: str) -> tuple[str, Params] | None:
    """RFC 2183 §2 ``disposition-type *(";" disposition-parm)``; None when malformed."""
    match = _TOKEN.match(value, skip_cfws(value, 0))
    if match is None:
        return None
    return match.group().lower(), parse_params(value, match.end())


def parse_language(value: str) -> tuple[str, ...] | None:
    """RFC 3282 §2 ``Language-List = Language-Tag [CFWS] *("," [CFWS] Language-Tag)``."""
    tags: list[str] = []
    for item in value.split(","):
        match = _TOKEN.match(item, skip_cfws(item, 0))
        if match is not None:
            tags.append(match.group())
    return tuple(tags) or None


def first_token(value: str) -> str | None:
    """The leading token of a field such as Content-Transfer-Encoding (RFC 2045 §6.1)."""
    match = _TOKEN.match(value, skip_cfws(value, 0))
    return match.group() if match else None


def parse_params(value: str, pos: int) -> Params:
    """The ``;``-separated parameters from ``pos`` on, RFC 2231 resolved.

    Leniency: a parameter without ``=`` is skipped; an unquoted value that
    contains spaces (``name=My File.pdf``) runs to the next ``;``; an
    unterminated quoted string runs to the end; comments are ignored
    (RFC 2045 §5.1 ``charset=us-ascii (Plain text)``).
    """
    size = len(value)
    raw: list[tuple[str, str]] = []
    while pos < size:
        pos = skip_cfws(value, pos)
        if pos >= size:
            break
        if value[pos] != ";":
            pos = _next_semicolon(value, pos)
            continue
        pos = skip_cfws(value, pos + 1)
        match = _TOKEN.match(value, pos)
        if match is None:
            pos = _next_semicolon(value, pos)
            continue
        name = match.group().lower()
        pos = skip_cfws(value, match.end())
        if pos >= size or value[pos] != "=":
            pos = _next_semicolon(value, pos)
            continue
        pos = skip_cfws(value, pos + 1)
        value_start = pos
        if pos < size and value[pos] == '"':
            quoted = _QUOTED.match(value, pos)
            assert quoted is not None  # the pattern matches any text starting with a quote
            text = unquote(quoted.group(1))
            pos = quoted.end()
        else:
            match = _TOKEN.match(value, pos)
            pos = skip_cfws(value, match.end()) if match else pos
            if match is None or (pos < size and value[pos] != ";"):
                pos = _next_semicolon(value, value_start)
                text = value[value_start:pos].strip(" \t\r\n")
            else:
                text = match.group()
        raw.append((name, text))
    return _resolve_rfc2231(raw)


def _next_semicolon(value: str, pos: int) -> int:
    match = _UNTIL_SEMICOLON.match(value, pos)
    return match.end() if match else len(value)


def _resolve_rfc2231(raw: list[tuple[str, str]]) -> Params:
    """Join RFC 2231 §3 continuations and decode §4 charsets; first name wins.

    ``name*=charset'lang'%XX``, ``name*0=...; name*1*=...``; when both a plain
    ``name`` and an RFC 2231 form are present, the RFC 2231 form is used.
    """
    order: list[str] = []
    plain: dict[str, str] = {}
    sections: dict[str, dict[int, tuple[str, bool]]] = {}
    for name, text in raw:
        base, star, rest = name.partition("*")
        index: int | None = None
        if star and base:
            extended = rest.endswith("*")
            digits = rest[:-1] if extended else rest
            if digits == "" and extended is False:
                index, extended = -1, True  # ``name*``: a single extended value
            elif _SECTION.fullmatch(digits):
                index = int(digits)
        if index is None:
            base = name
            if base not in plain and base not in sections:
                order.append(base)
            plain.setdefault(base, text)
            continue
        if base not in plain and base not in sections:
            order.append(base)
        sections.setdefault(base, {}).setdefault(index, (text, extended))
    result: list[tuple[str, str]] = []
    for base in order:
        parts = sections.get(base)
        if parts:
            result.append((base, _join_sections(parts)))
        else:
            result.append((base, plain[base]))
    return tuple(result)


def _join_sections(parts: dict[int, tuple[str, bool]]) -> str:
    numbered = sorted(i for i in parts if i >= 0)
    keys = numbered or [-1]
    octets = bytearray()
    charset: str | None = None
    for position, key in enumerate(keys):
        text, extended = parts[key]
        if not extended:
            octets += text.encode("utf-8", "surrogateescape")
            continue
        if position == 0:
            pieces = text.split("'", 2)
            if len(pieces) == 3:  # RFC 2231 §4: charset'language'value
                charset = pieces[0] or None
                text = pieces[2]
        octets += _percent_decode(text)
    if charset is None:
        return raw_text(bytes(octets))
    return decode_charset(bytes(octets), charset)


def _percent_decode(text: str) -> bytes:
    out = bytearray()
    pos = 0
    for match in _PERCENT.finditer(text):
        out += text[pos : match.start()].encode("utf-8", "surrogateescape")
        out.append(int(match.group(1), 16))
        pos = match.end()
    out += text[pos:].encode("utf-8", "surrogateescape")
    return bytes(out)


def decode_charset(octets: bytes, charset: str | None) -> str:
    """Decode text in ``charset``; an unknown or unusable charset falls back to UTF-8.

    Malformed sequences become U+FFFD. RFC 2231 §5 language suffixes
    (``utf-8*en``) are ignored.
    """
    name = (charset or "utf-8").partition("*")[0].strip().lower() or "utf-8"
    if name in ("us-ascii", "ascii", "unknown-8bit", "x-unknown"):
        name = "utf-8"  # RFC 2046 §4.1.2 default; 8-bit octets are most often UTF-8
    try:
        return octets.decode(name, "replace")
    except (LookupError, ValueError, TypeError):  # no such codec, or not a text codec
        return octets.decode("utf-8", "replace")


# RFC 2047 §2: encoded-word = "=?" charset "?" encoding "?" encoded-text "?="
_ENCODED_WORD = re.compile(rb"=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=")
_Q_HEX = re.compile(rb"=([0-9A-Fa-f]{2})")


def decode_words(raw: bytes) -> str:
    """Decode RFC 2047 encoded words in a header value; raw 8-bit text as UTF-8.

    White space between two encoded words is dropped (RFC 2047 §6.2), and
    adjacent words in one charset are joined before decoding, so a character
    split across words survives. Malformed words stay as they are.
    """
    out: list[str] = []
    pending = bytearray()
    pending_charset: str | None = None
    pos = 0
    for match in _ENCODED_WORD.finditer(raw):
        between = raw[pos : match.start()]
        charset = match.group(1).decode("ascii", "replace")
        decoded = _decode_word(match.group(2), match.group(3))
        if between.strip(b" \t\r\n") or pending_charset is None:
            if pending_charset is not None:
                out.append(decode_charset(bytes(pending), pending_charset))
                pending.clear()
            out.append(between.decode("utf-8", "replace"))
        elif charset.lower() != pending_charset.lower():
            out.append(decode_charset(bytes(pending), pending_charset))
            pending.clear()
        pending += decoded
        pending_charset = charset
        pos = match.end()
    if pending_charset is not None:
        out.append(decode_charset(bytes(pending), pending_charset))
    out.append(raw[pos:].decode("utf-8", "replace"))
    return "".join(out)


def _decode_word(encoding: bytes, text: bytes) -> bytes:
    if encoding in (b"B", b"b"):
        return _base64(text)
    # RFC 2047 §4.2: "_" is a space, "=XX" an octet
    return _Q_HEX.sub(lambda m: bytes.fromhex(m.group(1).decode("ascii")), text.replace(b"_", b" "))


_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]+")
_QP_SOFT_BREAK = re.compile(rb"=[ \t]*\r?\n")
_QP_TRAILING_SPACE = re.compile(rb"[ \t]+(?=\r?\n|$)")


def _base64(text: bytes) -> bytes:
    """RFC 2045 §6.8 decoding; characters outside the alphabet are ignored."""
    clean = _NOT_BASE64.sub(b"", text)
    extra = len(clean) % 4
    if extra == 1:
        clean = clean[:-1]
    elif extra:
        clean += b"=" * (4 - extra)
    try:
        return binascii.a2b_base64(clean)
    except (binascii.Error, ValueError):
        return b""


def _quoted_printable(body: bytes) -> bytes:
    """RFC 2045 §6.7: soft line breaks removed, trailing white space dropped
    (rule 3), ``=XX`` decoded; a malformed ``=`` stays as it is."""
    body = _QP_SOFT_BREAK.sub(b"", body)
    body = _QP_TRAILING_SPACE.sub(b"", body)
    return _Q_HEX.sub(lambda m: bytes.fromhex(m.group(1).decode("ascii")), body)


def decode_transfer(body: bytes, encoding: str) -> bytes | None:
    """Undo a Content-Transfer-Encoding (RFC 2045 §6); None for an unknown one.

    7bit, 8bit and binary are identities (RFC 2045 §6.2); None lets the
    IMAP BINARY fetch answer UNKNOWN-CTE (RFC 3516 §4.3).
    """
    name = encoding.strip().lower()
    if name in ("", "7bit", "8bit", "binary"):
        return body
    if name == "base64":
        return _base64(body)
    if name == "quoted-printable":
        return _quoted_printable(body)
    return None
