"""The part tree of a message: every entity's header and body as absolute byte
offsets into the message exactly as stored, never a re-serialisation.

Owns ``Part``, ``parse_structure`` (the byte-offset scanner), ``find_part``
(IMAP part numbering, RFC 3501 §6.4.5 / RFC 9051 §6.4.5) and the compact
``encode_structure``/``decode_structure`` form the store caches.

Invariants of every tree returned (also of every decoded one):
- ``start <= body_start <= end``; a child lies inside its parent's body
  (``parent.body_start <= child.start`` and ``child.end <= parent.end``) and
  siblings are in order without overlap; all offsets are within the data.
- a multipart part has at least one child: one that has none in the data
  (no boundary, or no delimiter found) gets one empty text/plain child at
  its end, as the BODYSTRUCTURE grammar needs one (RFC 3501 §9 body-type-mpart).
- ``message`` is set exactly for message/rfc822 and message/global parts,
  always parsed from the raw body (as Dovecot does, even when the transfer
  encoding is not an identity one, which RFC 2046 §5.2.1 forbids).
- nesting stops at ``MAX_DEPTH``: a multipart or message part that deep is a
  text/plain leaf; at most ``MAX_PARTS`` parts are split out of one message
  (past that, a part's remaining text stays in its last part). The scan is
  linear per nesting level, so at most ``MAX_DEPTH`` passes over the data.

Lines end with CRLF or, leniently, a bare LF; offsets stay exact either way.
String fields hold header text decoded as UTF-8 with ``surrogateescape``.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass

from postoffice.mime.decoding import (
    Params,
    first_token,
    first_values,
    parse_content_type,
    parse_disposition,
    parse_language,
    raw_text,
    scan_header,
)

MAX_DEPTH = 100
MAX_PARTS = 100_000
MAX_FIELD_OCTETS = 64 * 1024
FORMAT_VERSION = 1
MAX_ENCODED_SIZE = 256 * 1024 * 1024  # decompressed size accepted by decode_structure

_LF = 0x0A
_CR = 0x0D
_US_ASCII: Params = (("charset", "us-ascii"),)
_MESSAGE_SUBTYPES = ("rfc822", "global")  # RFC 9051 §6.4.5 nests both
_MIME_FIELDS = frozenset(
    {
        b"content-type",
        b"content-transfer-encoding",
        b"content-id",
        b"content-description",
        b"content-disposition",
        b"content-language",
        b"content-location",
        b"content-md5",
    }
)


@dataclass(frozen=True, slots=True)
class Part:
    """One MIME entity (RFC 2045 §2.4): the whole message, a body part, or an
    encapsulated message. Offsets are absolute into the message bytes."""

    start: int  # first header octet (0 for the whole message)
    body_start: int  # first body octet, just past the empty line ending the header
    end: int  # just past the body; for a multipart child, before the line break
    #           that precedes the next delimiter line (RFC 2046 §5.1.1)
    type: str  # lower-case media type, e.g. "text"
    subtype: str  # lower-case subtype, e.g. "plain"
    params: Params = ()  # names lower-case, values unquoted, RFC 2231 decoded
    id: str | None = None  # Content-ID, raw
    description: str | None = None  # Content-Description, raw (not RFC 2047 decoded)
    encoding: str = "7BIT"  # Content-Transfer-Encoding token as written (RFC 2045 §6.1 default)
    disposition: tuple[str, Params] | None = None  # RFC 2183, type lower-case
    language: tuple[str, ...] | None = None  # RFC 3282
    location: str | None = None  # RFC 2557, folding white space removed
    md5: str | None = None  # RFC 1864
    lines: int = 0  # line ends (LF) in the body; 0 for multipart
    children: tuple[Part, ...] = ()  # multipart children
    message: Part | None = None  # the encapsulated message of message/rfc822 or /global

    @property
    def size(self) -> int:
        """Body octets, as BODYSTRUCTURE counts them (RFC 3501 §7.4.2 body size)."""
        return self.end - self.body_start

    @property
    def is_multipart(self) -> bool:
        return self.type == "multipart"

    def param(self, name: str) -> str | None:
        """The value of Content-Type parameter ``name`` (case-insensitive)."""
        wanted = name.lower()
        for key, value in self.params:
            if key == wanted:
                return value
        return None


def parse_structure(data: bytes) -> Part:
    """The part tree of ``data``, a whole message. Never raises on malformed mail."""
    return _Parser(data).entity(0, len(data), 0, False)


class _Parser:
    __slots__ = ("data", "parts")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.parts = 0

    def entity(self, start: int, end: int, depth: int, in_digest: bool) -> Part:
        data = self.data
        self.parts += 1
        block = scan_header(data, start, end)
        body_start = block.body_start
        # A MIME field longer than MAX_FIELD_OCTETS is read only that far: no
        # real one comes near it, and it bounds the work per part.
        values = {
            name: value[:MAX_FIELD_OCTETS]
            for name, value in first_values(data, block, _MIME_FIELDS).items()
        }
        content_type = values.get(b"content-type")
        parsed = None if content_type is None else parse_content_type(raw_text(content_type))
        if parsed is None:
            # RFC 2045 §5.2: no (or a syntactically invalid) Content-Type means
            # text/plain; charset=us-ascii; RFC 2046 §5.1.5: message/rfc822 in a digest.
            parsed = ("message", "rfc822", ()) if in_digest else ("text", "plain", _US_ASCII)
        kind, subtype, params = parsed
        descends = kind == "multipart" or (kind == "message" and subtype in _MESSAGE_SUBTYPES)
        if descends and depth >= MAX_DEPTH:
            kind, subtype, params, descends = "text", "plain", _US_ASCII, False
        if kind == "text" and not any(name == "charset" for name, _ in params):
            params = (*params, *_US_ASCII)  # RFC 2046 §4.1.2: the default charset
        children: tuple[Part, ...] = ()
        message: Part | None = None
        lines = 0
        if kind == "multipart":
            boundary = dict(params).get("boundary", "")
            children = self.multipart(body_start, end, boundary, depth, subtype == "digest")
        else:
            lines = data.count(b"\n", body_start, end)
            if descends:
                message = self.entity(body_start, end, depth + 1, False)
        encoding = values.get(b"content-transfer-encoding")
        disposition = values.get(b"content-disposition")
        language = values.get(b"content-language")
        location = values.get(b"content-location")
        return Part(
            start=start,
            body_start=body_start,
            end=end,
            type=kind,
            subtype=subtype,
            params=params,
            id=_text_or_none(values.get(b"content-id")),
            description=_text_or_none(values.get(b"content-description")),
            encoding=(first_token(raw_text(encoding)) if encoding else None) or "7BIT",
            disposition=parse_disposition(raw_text(disposition)) if disposition else None,
            language=parse_language(raw_text(language)) if language else None,
            # a URI holds no white space (RFC 3986 §2): what folding put in is dropped
            location=_text_or_none(b"".join(location.split())) if location else None,
            md5=_text_or_none(values.get(b"content-md5")),
            lines=lines,
            children=children,
            message=message,
        )

    def multipart(
        self, body_start: int, end: int, boundary: str, depth: int, digest: bool
    ) -> tuple[Part, ...]:
        """Split a multipart body at its delimiter lines (RFC 2046 §5.1.1).

        A delimiter line is one that begins with "--" boundary: RFC 2046 §5.1.1
        forbids the delimiter as the prefix of any line inside the parts, so
        what follows it on the line (transport padding or junk) is ignored,
        as Dovecot does. "--" boundary "--" is the close delimiter. A missing
        close delimiter lets the last part run to the end of the body.
        The line break after an inner close delimiter that is followed by an
        outer delimiter belongs to the outer delimiter (RFC 2046 §5.1.1
        ``delimiter := CRLF dash-boundary``); Dovecot 2.3 counts it in the part.
        """
        data = self.data
        cuts: list[tuple[int, int]] = []  # (delimiter line start, next part start)
        closed = False
        # RFC 2046 §5.1.1: a boundary does not end in white space; be lenient about it.
        marker = boundary.encode("utf-8", "surrogateescape").rstrip(b" \t")
        if marker:
            delimiter = b"--" + marker
            after_newline = b"\n" + delimiter
            if data.startswith(delimiter, body_start, end):
                hit = body_start
            else:
                hit = data.find(after_newline, body_start, end)
                hit = hit + 1 if hit >= 0 else -1
            while hit >= 0:
                after = hit + len(delimiter)
                newline = data.find(b"\n", after, end)
                line_end = end if newline < 0 else newline + 1
                cuts.append((hit, line_end))
                if data.startswith(b"--", after, end):
                    closed = True
                    break
                if newline < 0 or self.parts + len(cuts) >= MAX_PARTS:
                    break
                hit = data.find(after_newline, newline, end)
                hit = hit + 1 if hit >= 0 else -1
        children: list[Part] = []
        opened = len(cuts) - 1 if closed else len(cuts)
        for index in range(opened):
            part_start = cuts[index][1]
            if index + 1 < len(cuts):
                next_line = cuts[index + 1][0]
                part_end = max(part_start, next_line - _line_break_before(data, next_line))
            else:
                part_end = end
            children.append(self.entity(part_start, part_end, depth + 1, digest))
        if not children:
            self.parts += 1
            children.append(Part(end, end, end, "text", "plain", _US_ASCII))
        return tuple(children)


def _line_break_before(data: bytes, pos: int) -> int:
    """Length of the CRLF (or bare LF) that ends just before ``pos``; 0 if none."""
    if pos > 0 and data[pos - 1] == _LF:
        return 2 if pos > 1 and data[pos - 2] == _CR else 1
    return 0


def _text_or_none(raw: bytes | None) -> str | None:
    return raw_text(raw) if raw else None


def find_part(root: Part, path: tuple[int, ...]) -> Part | None:
    """The part that IMAP section number ``path`` names, or None (RFC 3501 §6.4.5).

    ``()`` is the whole message. The parts of a multipart are numbered 1..n;
    a message that is not multipart has only part 1, its body, for which the
    message's own Part is returned (its body is [body_start, end), its MIME
    header [start, body_start)). The numbers after a message/rfc822 (or
    message/global, RFC 9051) part continue inside the encapsulated message:
    ``p + (1,)`` is that message's first child when it is multipart, else
    the encapsulated message itself as its part 1.
    """
    found = root
    context: Part | None = root  # the entity whose parts the next number selects
    for number in path:
        if context is None or number < 1:
            return None
        if context.children:
            if number > len(context.children):
                return None
            found = context.children[number - 1]
        elif number == 1 and not context.is_multipart:
            found = context
        else:
            return None
        if found.children:
            context = found
        else:
            context = found.message
    return found


def iter_parts(root: Part) -> list[Part]:
    """Every Part of the tree in document order (pre-order), iteratively."""
    out: list[Part] = []
    stack = [root]
    while stack:
        part = stack.pop()
        out.append(part)
        if part.message is not None:
            stack.append(part.message)
        stack.extend(reversed(part.children))
    return out


def encode_structure(root: Part) -> bytes:
    """A compact blob of the tree for the store's index: a version octet, then
    zlib-compressed JSON of one array per Part."""
    text = json.dumps(_to_json(root), separators=(",", ":"), ensure_ascii=True)
    return bytes([FORMAT_VERSION]) + zlib.compress(text.encode("ascii"), 6)


def decode_structure(blob: bytes) -> Part:
    """The tree ``encode_structure`` made; ValueError for any blob it did not make."""
    if not blob or blob[0] != FORMAT_VERSION:
        raise ValueError("unknown structure format version")
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(blob[1:], MAX_ENCODED_SIZE)
        if inflater.unconsumed_tail or not inflater.eof or inflater.unused_data:
            raise ValueError("structure blob is truncated, oversized or has trailing data")
        tree = json.loads(raw.decode("ascii"))
    except (zlib.error, RecursionError, ValueError) as error:
        raise ValueError(f"corrupt structure blob: {error}") from None
    return _from_json(tree, 0, 0, None)


def _params_json(params: Params) -> list[list[str]]:
    return [[name, value] for name, value in params]


def _to_json(part: Part) -> list[object]:
    disposition = part.disposition
    return [
        part.start,
        part.body_start,
        part.end,
        part.type,
        part.subtype,
        _params_json(part.params),
        part.id,
        part.description,
        part.encoding,
        None if disposition is None else [disposition[0], _params_json(disposition[1])],
        None if part.language is None else list(part.language),
        part.location,
        part.md5,
        part.lines,
        [_to_json(child) for child in part.children],
        None if part.message is None else _to_json(part.message),
    ]


def _int(value: object) -> int:
    if type(value) is not int or value < 0:
        raise ValueError("corrupt structure blob: bad number")
    return value


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("corrupt structure blob: bad string")
    return value


def _opt_str(value: object) -> str | None:
    return None if value is None else _str(value)


def _params(value: object) -> Params:
    if not isinstance(value, list):
        raise ValueError("corrupt structure blob: bad parameters")
    pairs: list[tuple[str, str]] = []
    for pair in value:
        if not isinstance(pair, list) or len(pair) != 2:
            raise ValueError("corrupt structure blob: bad parameter")
        pairs.append((_str(pair[0]), _str(pair[1])))
    return tuple(pairs)


def _from_json(node: object, depth: int, low: int, high: int | None) -> Part:
    if depth > MAX_DEPTH + 1:
        raise ValueError("corrupt structure blob: nested too deep")
    if not isinstance(node, list) or len(node) != 16:
        raise ValueError("corrupt structure blob: bad part")
    start, body_start, end = _int(node[0]), _int(node[1]), _int(node[2])
    if not low <= start <= body_start <= end or (high is not None and end > high):
        raise ValueError("corrupt structure blob: offsets out of order")
    disposition = node[9]
    if disposition is not None:
        if not isinstance(disposition, list) or len(disposition) != 2:
            raise ValueError("corrupt structure blob: bad disposition")
        disposition = (_str(disposition[0]), _params(disposition[1]))
    language = node[10]
    if language is not None:
        if not isinstance(language, list):
            raise ValueError("corrupt structure blob: bad language")
        language = tuple(_str(tag) for tag in language)
    raw_children = node[14]
    if not isinstance(raw_children, list):
        raise ValueError("corrupt structure blob: bad children")
    children: list[Part] = []
    floor = body_start
    for raw_child in raw_children:
        child = _from_json(raw_child, depth + 1, floor, end)
        children.append(child)
        floor = child.end
    message = None if node[15] is None else _from_json(node[15], depth + 1, body_start, end)
    return Part(
        start=start,
        body_start=body_start,
        end=end,
        type=_str(node[3]),
        subtype=_str(node[4]),
        params=_params(node[5]),
        id=_opt_str(node[6]),
        description=_opt_str(node[7]),
        encoding=_str(node[8]),
        disposition=disposition,
        language=language,
        location=_opt_str(node[11]),
        md5=_opt_str(node[12]),
        lines=_int(node[13]),
        children=tuple(children),
        message=message,
    )
