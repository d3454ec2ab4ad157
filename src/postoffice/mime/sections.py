"""What FETCH BODY[section] sends (RFC 3501 §6.4.5, RFC 9051 §6.4.5), computed
from the part tree as exact slices of the stored message.

Owns ``section_range`` (one slice, so a large body can be streamed from
disk), ``section_bytes`` (the octets, including the HEADER.FIELDS subsets),
and the line-ending helpers ``to_crlf`` and ``is_crlf_clean``.

Section semantics:
- ``()`` with no text: the whole message. ``HEADER`` is the header including
  the empty line that ends it; ``TEXT`` the body after it.
- a part number with no text: that part's body (for part 1 of a message that
  is not multipart, the message body); with ``MIME``: that part's MIME
  header including its empty line. ``MIME`` needs a part number.
- ``HEADER``, ``HEADER.FIELDS``, ``HEADER.FIELDS.NOT`` and ``TEXT`` after a
  part number apply only to a message/rfc822 (or, RFC 9051, message/global)
  part and mean the encapsulated message's header or body.
- HEADER.FIELDS(.NOT) returns whole field lines (folded lines included) in
  their original order, then the empty line; RFC 3501 §6.4.5: "the blank line
  is included in all header fetches, except in the case of a message which
  has no body and no blank line". Field names match case-insensitively.

A section that does not exist (no such part, or HEADER/TEXT of a part that is
no message) is ``None``: neither RFC says what to send for it, and the
grammar's ``nstring`` (RFC 3501 §9 msg-att-static) allows NIL, which tells
the client the section is absent rather than empty. (Dovecot sends "",
Cyrus NIL.) ``None`` never stands for an empty section, which is ``b""``.

Input with bare LF is indexed as it is, consistently; callers that serve
IMAP convert the message with ``to_crlf`` before indexing it.
"""

from __future__ import annotations

from postoffice.mime.decoding import scan_header
from postoffice.mime.structure import Part, find_part

SECTION_TEXTS = frozenset({"HEADER", "TEXT", "MIME", "HEADER.FIELDS", "HEADER.FIELDS.NOT"})


def _normalise(text: str | None) -> str | None:
    if text is None:
        return None
    upper = text.upper()
    if upper not in SECTION_TEXTS:
        raise ValueError(f"unknown section text {text!r}")
    return upper


def _entity(root: Part, path: tuple[int, ...], text: str | None) -> Part | None:
    """The Part a section refers to: the part itself (no text, MIME) or the
    message whose header/body HEADER*/TEXT select."""
    if not path:
        return None if text == "MIME" else root  # RFC 3501 §6.4.5: MIME needs a part number
    part = find_part(root, path)
    if part is None or text is None or text == "MIME":
        return part
    return part.message  # None unless message/rfc822 or message/global


def section_range(
    root: Part, path: tuple[int, ...], text: str | None = None
) -> tuple[int, int] | None:
    """The (start, end) slice of BODY[section], or None when it does not exist.

    ``text`` is None, "HEADER", "TEXT" or "MIME"; HEADER.FIELDS(.NOT) is not
    one slice and raises ValueError (use ``section_bytes``).
    """
    kind = _normalise(text)
    if kind in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        raise ValueError("HEADER.FIELDS is no single slice; use section_bytes")
    entity = _entity(root, path, kind)
    if entity is None:
        return None
    if kind is None:
        if not path:
            return (entity.start, entity.end)
        return (entity.body_start, entity.end)
    if kind == "TEXT":
        return (entity.body_start, entity.end)
    return (entity.start, entity.body_start)  # HEADER or MIME


def section_bytes(
    data: bytes,
    root: Part,
    path: tuple[int, ...],
    text: str | None = None,
    fields: tuple[str, ...] = (),
) -> bytes | None:
    """The octets of BODY[section], or None when the section does not exist.

    ``fields`` are the field names of HEADER.FIELDS / HEADER.FIELDS.NOT.
    """
    kind = _normalise(text)
    if kind in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        entity = _entity(root, path, kind)
        if entity is None:
            return None
        return header_subset(data, entity, fields, exclude=kind == "HEADER.FIELDS.NOT")
    span = section_range(root, path, kind)
    if span is None:
        return None
    return data[span[0] : span[1]]


def header_subset(data: bytes, entity: Part, fields: tuple[str, ...], exclude: bool) -> bytes:
    """HEADER.FIELDS (``exclude`` False) or HEADER.FIELDS.NOT of one header.

    RFC 3501 §6.4.5: "The field-matching is case-insensitive but otherwise
    exact." Lines that are no field (no colon) belong to neither subset.
    A last selected line that lacks its line end gets CRLF, so the result
    is always whole lines.
    """
    wanted = {name.lower().encode("utf-8", "surrogateescape") for name in fields}
    block = scan_header(data, entity.start, entity.body_start)
    out = bytearray()
    for field in block.fields:
        if field.name and (field.name in wanted) != exclude:
            out += data[field.start : field.end]
            if not out.endswith(b"\n"):
                out += b"\r\n"
    out += data[block.end : block.body_start]  # the empty line, if the header has one
    return bytes(out)


def to_crlf(data: bytes) -> bytes:
    """Every bare LF and every bare CR becomes CRLF; CRLF stays (RFC 5322 §2.3)."""
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")


def is_crlf_clean(data: bytes) -> bool:
    """True when every CR and every LF in ``data`` is part of a CRLF pair."""
    pairs = data.count(b"\r\n")
    return data.count(b"\r") == pairs and data.count(b"\n") == pairs
