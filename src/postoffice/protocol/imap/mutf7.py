"""IMAP mailbox names: modified UTF-7 on the wire and the server's name check.

Owns two things:

- the modified UTF-7 codec of RFC 3501 §5.1.3 (``encode_mutf7`` /
  ``decode_mutf7``), used when the client has not enabled UTF8=ACCEPT
  (RFC 6855 §3, RFC 9051 §5.1: with UTF-8 names the wire form is the name
  itself and this codec is not involved);
- ``validate_mailbox_name``, the check a decoded (Unicode) name passes before
  the store may turn it into anything on disk.

Invariants:

- ``decode_mutf7(encode_mutf7(s)) == s`` for every ``str`` without lone
  surrogates, and ``encode_mutf7`` produces the one canonical form: the decoder
  accepts nothing else (no encoded printable ASCII, no adjacent encoded runs,
  no padding or non-zero leftover bits), so a name has exactly one wire form.
- The decoder raises only ``ImapSyntaxError`` on bad input.
- ``validate_mailbox_name`` returns a name that is non-empty, at most
  ``MAX_NAME_OCTETS`` octets of UTF-8, free of control characters, of ``\\``,
  ``*`` and ``%``, and whose hierarchy components are neither empty nor ``.``
  nor ``..``; a first component spelled INBOX in any ASCII case is returned as
  ``INBOX``.
"""

from __future__ import annotations

from typing import Final

from postoffice.protocol.imap.errors import ImapSyntaxError

# RFC 3501 §5.1.3: modified BASE64 is RFC 2045 BASE64 with "," for "/".
_B64_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,"
_B64_VALUE: Final = {char: index for index, char in enumerate(_B64_ALPHABET)}

# Why 1000 octets: RFC 3501/9051 set no limit, so a server must pick one. A
# name must fit, with the store's own prefix and escaping, well inside Linux
# PATH_MAX (4096 octets); 1000 leaves that room and is far above any name a
# person types (Dovecot and Cyrus accept a few hundred characters per level).
MAX_NAME_OCTETS: Final = 1000

# Characters that never appear in a validated name besides control characters.
# RFC 3501 §6.3.8: "*" and "%" are LIST wildcards, so a mailbox named with them
# could never be listed unambiguously. "\" is refused because it is the quoted
# string escape and a path separator on some systems.
_FORBIDDEN: Final = frozenset("\\*%")


def _is_direct(char: str) -> bool:
    """Whether ``char`` represents itself in modified UTF-7 (not "&")."""
    # RFC 3501 §5.1.3: octets 0x20-0x25 and 0x27-0x7e represent themselves.
    code = ord(char)
    return 0x20 <= code <= 0x7E and code != 0x26


def _encode_run(run: str) -> str:
    """The modified BASE64 of ``run`` as UTF-16BE, without padding."""
    try:
        octets = run.encode("utf-16-be")
    except UnicodeEncodeError as exc:
        raise ValueError("mailbox name contains a lone surrogate") from exc
    out: list[str] = []
    bits = 0
    nbits = 0
    for octet in octets:
        bits = (bits << 8) | octet
        nbits += 8
        while nbits >= 6:
            nbits -= 6
            out.append(_B64_ALPHABET[(bits >> nbits) & 0x3F])
        bits &= (1 << nbits) - 1
    if nbits:
        # RFC 3501 §5.1.3 / RFC 2152: the last sextet is zero-padded, no "=".
        out.append(_B64_ALPHABET[(bits << (6 - nbits)) & 0x3F])
    return "".join(out)


def encode_mutf7(name: str) -> str:
    """Encode a Unicode mailbox name in modified UTF-7 (RFC 3501 §5.1.3).

    Printable ASCII stands for itself, "&" becomes "&-", and every maximal run
    of other characters becomes one "&" BASE64 "-" shift. Raises ``ValueError``
    when ``name`` holds a lone surrogate (not valid Unicode text).
    """
    out: list[str] = []
    run: list[str] = []
    for char in name:
        if _is_direct(char) or char == "&":
            if run:
                out.append("&" + _encode_run("".join(run)) + "-")
                run.clear()
            out.append("&-" if char == "&" else char)
        else:
            run.append(char)
    if run:
        # RFC 3501 §5.1.3: a name ending in a non-ASCII character ends in "-".
        out.append("&" + _encode_run("".join(run)) + "-")
    return "".join(out)


def _decode_run(b64: str) -> str:
    """Decode the modified BASE64 between "&" and "-", strictly."""
    units: list[int] = []
    bits = 0
    nbits = 0
    for char in b64:
        value = _B64_VALUE.get(char)
        if value is None:
            raise ImapSyntaxError("invalid modified UTF-7: bad character in a base64 run")
        bits = (bits << 6) | value
        nbits += 6
        if nbits >= 16:
            nbits -= 16
            units.append((bits >> nbits) & 0xFFFF)
            bits &= (1 << nbits) - 1
    # RFC 3501 §5.1.3 via RFC 2152: only the zero padding of the last sextet
    # may be left over, never a partial UTF-16 unit.
    if nbits >= 6 or bits != 0:
        raise ImapSyntaxError("invalid modified UTF-7: base64 run does not end cleanly")
    chars: list[str] = []
    index = 0
    while index < len(units):
        unit = units[index]
        if 0xD800 <= unit <= 0xDBFF:
            low = units[index + 1] if index + 1 < len(units) else 0
            if not 0xDC00 <= low <= 0xDFFF:
                raise ImapSyntaxError("invalid modified UTF-7: unpaired surrogate")
            chars.append(chr(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)))
            index += 2
            continue
        if 0xDC00 <= unit <= 0xDFFF:
            raise ImapSyntaxError("invalid modified UTF-7: unpaired surrogate")
        if 0x20 <= unit <= 0x7E:
            # RFC 3501 §5.1.3: BASE64 MUST NOT represent printable US-ASCII.
            raise ImapSyntaxError("invalid modified UTF-7: printable ASCII encoded in base64")
        chars.append(chr(unit))
        index += 1
    return "".join(chars)


def decode_mutf7(wire: str) -> str:
    """Decode a modified UTF-7 mailbox name (RFC 3501 §5.1.3), strictly.

    Raises ``ImapSyntaxError`` for anything but the canonical encoding: a
    character outside printable ASCII, an "&" shift without its "-", bad
    BASE64 or leftover bits, an encoded printable ASCII character, two encoded
    runs side by side, or an unpaired UTF-16 surrogate.
    """
    out: list[str] = []
    index = 0
    length = len(wire)
    previous_was_run = False
    while index < length:
        char = wire[index]
        if char != "&":
            if not _is_direct(char):
                raise ImapSyntaxError("invalid modified UTF-7: character outside printable ASCII")
            out.append(char)
            previous_was_run = False
            index += 1
            continue
        end = wire.find("-", index + 1)
        if end < 0:
            raise ImapSyntaxError('invalid modified UTF-7: "&" shift is not closed by "-"')
        if end == index + 1:
            out.append("&")  # RFC 3501 §5.1.3: "&-" is "&" itself
            previous_was_run = False
        else:
            if previous_was_run:
                # RFC 3501 §5.1.3: "&...-&...-" is not permitted; one run.
                raise ImapSyntaxError("invalid modified UTF-7: adjacent encoded runs")
            out.append(_decode_run(wire[index + 1 : end]))
            previous_was_run = True
        index = end + 1
    return "".join(out)


def _is_control(char: str) -> bool:
    """C0 controls (including NUL), DEL and the C1 controls."""
    code = ord(char)
    return code < 0x20 or 0x7F <= code <= 0x9F


def validate_mailbox_name(name: str, delimiter: str = "/") -> str:
    """Check a decoded mailbox name before it reaches the store; return it normalised.

    ``name`` is Unicode (after ``decode_mutf7`` or, with UTF8=ACCEPT, after
    UTF-8 decoding); ``delimiter`` is the hierarchy delimiter the server
    announces in LIST (one character). The only change made is that a first
    component equal to INBOX in any ASCII case is spelled ``INBOX`` (RFC 3501
    §5.1, RFC 9051 §5.1: INBOX is case-insensitive). Raises ``ImapSyntaxError``
    naming the rule that failed.
    """
    if len(delimiter) != 1:
        raise ValueError("the hierarchy delimiter is one character")
    if not name:
        raise ImapSyntaxError("mailbox name is empty")
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise ImapSyntaxError("mailbox name is not valid Unicode") from None
    if size > MAX_NAME_OCTETS:
        raise ImapSyntaxError(f"mailbox name is longer than {MAX_NAME_OCTETS} octets")
    for char in name:
        if _is_control(char):
            raise ImapSyntaxError("mailbox name contains a control character")
        if char in _FORBIDDEN:
            raise ImapSyntaxError(f'mailbox name contains "{char}"')
    components = name.split(delimiter)
    if components[0] == "":
        raise ImapSyntaxError(f'mailbox name starts with the delimiter "{delimiter}"')
    if components[-1] == "":
        raise ImapSyntaxError(f'mailbox name ends with the delimiter "{delimiter}"')
    for component in components:
        if component == "":
            raise ImapSyntaxError(f'mailbox name has a doubled delimiter "{delimiter}"')
        if component in {".", ".."}:
            raise ImapSyntaxError(f'mailbox name has a "{component}" component')
    # RFC 3501 §5.1: "INBOX" is case-insensitive; compare ASCII only, so that
    # e.g. a dotless i, U+0131 (which upper-cases to "I"), is not taken for INBOX.
    first = components[0]
    if first != "INBOX" and first.isascii() and first.upper() == "INBOX":
        components[0] = "INBOX"
        return delimiter.join(components)
    return name
