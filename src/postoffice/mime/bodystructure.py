"""BODY and BODYSTRUCTURE (RFC 3501 §7.4.2 and §9, RFC 9051 §7.5.2) from the
part tree, in the ``ImapValue`` shape (None = NIL, str/bytes = string,
int = number, list = parenthesised list).

Owns ``body_structure``. Decisions where the RFCs leave room:
- body type, subtype, encoding, parameter names and the disposition type are
  sent in upper case, as in the RFC 3501 §7.4.2 examples (``"TEXT" "PLAIN"
  ("CHARSET" "US-ASCII")``); parameter values as written. Clients compare
  these case-insensitively (RFC 2045 §5.1, §6.1).
- a text part without a charset parameter shows the RFC 2046 §4.1.2 default
  ("CHARSET" "us-ascii"), as Dovecot does.
- parameter values are the RFC 2231-decoded values; one that is not ASCII is
  sent in RFC 2231 §4 form, ``"NAME*" "utf-8''%E2%82%AC.txt"``, so it stays
  7-bit and loses nothing (raw octets that are not UTF-8 are sent as they
  are).
- an empty parameter list is NIL; Content-Language is always a list.
- body size is the octet count of the body slice as stored; lines is the
  number of line ends in it (a last line without one is not counted, as
  Dovecot counts), for TEXT and MESSAGE/RFC822 (and MESSAGE/GLOBAL, RFC 9051).
"""

from __future__ import annotations

from postoffice.mime.decoding import ImapValue, Params, imap_string
from postoffice.mime.envelope import envelope
from postoffice.mime.structure import Part

_ATTR_SAFE = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$&+-.^_`|~"
)


def body_structure(
    data: bytes, root: Part, extensible: bool, message_global: bool = True
) -> list[ImapValue]:
    """BODYSTRUCTURE of ``root`` (``extensible`` True) or BODY (False, no
    extension data). ``root`` may be any Part of the tree, e.g. the
    ``message`` of a message/rfc822 part.

    ``message_global`` False describes message/global parts as basic bodies
    (no envelope): the IMAP4rev1 grammar (RFC 3501 §9 body-type-msg) knows
    only MESSAGE/RFC822, while IMAP4rev2 (RFC 9051 §9 media-message) gives
    MESSAGE/GLOBAL the envelope form too.
    """
    return _body(data, root, extensible, message_global)


def _body(data: bytes, part: Part, extensible: bool, message_global: bool) -> list[ImapValue]:
    if part.is_multipart:
        # RFC 3501 §9 body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]
        out: list[ImapValue] = [
            _body(data, child, extensible, message_global) for child in part.children
        ]
        out.append(part.subtype.upper())
        if extensible:
            out += [_params(part.params), *_extension(part)]
        return out
    # RFC 3501 §9 body-fields = param id desc enc octets
    out = [
        part.type.upper(),
        part.subtype.upper(),
        _params(part.params),
        _nstring(part.id),
        _nstring(part.description),
        part.encoding.upper(),
        part.size,
    ]
    inner = part.message
    if inner is not None and (message_global or part.subtype != "global"):
        # RFC 3501 §9 body-type-msg: ... envelope SP body SP body-fld-lines
        out += [
            envelope(data, inner),
            _body(data, inner, extensible, message_global),
            part.lines,
        ]
    elif part.type == "text":
        out.append(part.lines)  # RFC 3501 §9 body-type-text
    if extensible:
        out += [_nstring(part.md5), *_extension(part)]  # body-ext-1part
    return out


def _extension(part: Part) -> list[ImapValue]:
    """body-fld-dsp, body-fld-lang, body-fld-loc (RFC 3501 §9)."""
    disposition: ImapValue = None
    if part.disposition is not None:
        kind, params = part.disposition
        disposition = [kind.upper(), _params(params)]
    language: ImapValue = None
    if part.language:
        language = [imap_string(tag) for tag in part.language]
    return [disposition, language, _nstring(part.location)]


def _nstring(value: str | None) -> ImapValue:
    return None if value is None else imap_string(value)


def _params(params: Params) -> ImapValue:
    """body-fld-param: name/value strings in one flat list, NIL when empty."""
    if not params:
        return None
    out: list[ImapValue] = []
    for name, value in params:
        if value.isascii():
            out += [name.upper(), value]
            continue
        try:
            octets = value.encode("utf-8")
        except UnicodeEncodeError:  # raw octets that were not UTF-8: send them as they are
            out += [name.upper(), value.encode("utf-8", "surrogateescape")]
            continue
        # RFC 2231 §4: extended-value = charset "'" [language] "'" extended-other-values
        encoded = "".join(chr(byte) if byte in _ATTR_SAFE else f"%{byte:02X}" for byte in octets)
        out += [name.upper() + "*", "utf-8''" + encoded]
    return out
