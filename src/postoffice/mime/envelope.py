"""The IMAP ENVELOPE of a message (RFC 3501 §7.4.2, RFC 9051 §7.5.2), read from
its header section, with a lenient RFC 5322 §3.4 address-list reader.

Owns ``envelope`` and ``parse_addresses``. Values use the ``ImapValue``
shape: None is NIL, str/bytes a string (bytes when the text is not pure
ASCII: the original octets, never transcoded), list a parenthesised list.

Rules and decisions:
- Strings are the raw field values, unfolded (RFC 5322 §2.2.3) and stripped
  of the white space around them; RFC 2047 words are not decoded (the client
  does that). Absent Date/Subject/In-Reply-To/Message-ID is NIL, present but
  empty is "" (RFC 3501 §7.4.2).
- When a field occurs more than once (RFC 5322 §3.6 allows one), the first
  occurrence is used, for every field.
- An address list that is absent or holds no address is NIL; Sender and
  Reply-To then take the From value (RFC 3501 §7.4.2).
- An address is [name, adl, mailbox, host]: quoting removed from name and
  mailbox (RFC 3501 §9 addr-name, addr-mailbox); a comment stands in for a
  missing display name (``user@host (Real Name)``); adl is the obsolete
  source route ("@a,@b", RFC 5322 §4.4). A group is [NIL, NIL, name, NIL],
  its members, then [NIL, NIL, NIL, NIL].
- Malformed addresses never raise. A missing local part or domain is filled
  with the placeholders "MISSING_MAILBOX" / "MISSING_DOMAIN", as Dovecot does,
  because a NIL host would mean "start of group" (RFC 3501 §7.4.2) and NIL
  mailbox "end of group". A single word without "@" is taken as a mailbox
  (``To: root``); several words without an address are a name
  (``To: undisclosed recipients``).
"""

from __future__ import annotations

import re
from bisect import bisect_left

from postoffice.mime.decoding import (
    ImapValue,
    comment_end,
    first_values,
    imap_string,
    raw_text,
    scan_header,
    unquote,
)
from postoffice.mime.structure import Part

MISSING_MAILBOX = "MISSING_MAILBOX"
MISSING_DOMAIN = "MISSING_DOMAIN"

_FIELDS = frozenset(
    {
        b"date",
        b"subject",
        b"from",
        b"sender",
        b"reply-to",
        b"to",
        b"cc",
        b"bcc",
        b"in-reply-to",
        b"message-id",
    }
)
# RFC 5322 §3.2.3 atext, leniently with any non-ASCII character
_ATOM = re.compile(r'[^\s()<>\[\]:;@\\,."]+')
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"?', re.S)
_LITERAL = re.compile(r"\[(?:[^\]\\]|\\.)*\]?", re.S)
_STOPS_ADDRESS = frozenset("<:@,;>")
_WHITE = re.compile(r"[ \t\r\n]+")

# A token: (kind, text, preceded by white space or a comment). kind is
# "atom", "quoted" (text unquoted), "literal" (brackets kept) or "special".
_Token = tuple[str, str, bool]


def envelope(data: bytes, part: Part) -> list[ImapValue]:
    """The ENVELOPE of the message whose header ``part`` starts (the root, or
    the ``message`` of a message/rfc822 part): [date, subject, from, sender,
    reply-to, to, cc, bcc, in-reply-to, message-id]."""
    block = scan_header(data, part.start, part.body_start)
    values = {name: raw_text(value) for name, value in first_values(data, block, _FIELDS).items()}

    def text(name: bytes) -> ImapValue:
        value = values.get(name)
        return None if value is None else imap_string(value)

    def addresses(name: bytes) -> list[ImapValue] | None:
        value = values.get(name)
        return None if value is None else (parse_addresses(value) or None)

    sender_from = addresses(b"from")
    return [
        text(b"date"),
        text(b"subject"),
        sender_from,
        addresses(b"sender") or sender_from,
        addresses(b"reply-to") or sender_from,
        addresses(b"to"),
        addresses(b"cc"),
        addresses(b"bcc"),
        text(b"in-reply-to"),
        text(b"message-id"),
    ]


def _tokenize(text: str) -> tuple[list[_Token], list[tuple[int, str]]]:
    """Split an address list into tokens, and comments with the index of the
    token that follows them."""
    tokens: list[_Token] = []
    comments: list[tuple[int, str]] = []
    pos, size, spaced = 0, len(text), False
    while pos < size:
        char = text[pos]
        if char == "(":
            after = comment_end(text, pos)
            inner = text[pos + 1 : after - 1 if text[after - 1] == ")" else after]
            comment = " ".join(unquote(inner).split())
            if comment:
                comments.append((len(tokens), comment))
            pos, spaced = after, True
            continue
        if char in " \t\r\n":
            white = _WHITE.match(text, pos)
            pos, spaced = (white.end() if white else pos + 1), True
            continue
        if char == '"':
            match = _QUOTED.match(text, pos)
            assert match is not None  # matches any text that starts with a quote
            tokens.append(("quoted", unquote(match.group(1)), spaced))
        elif char == "[":
            match = _LITERAL.match(text, pos)
            assert match is not None
            tokens.append(("literal", match.group(), spaced))
        elif char in "<>@,:;.":
            match = None
            tokens.append(("special", char, spaced))
            pos += 1
        else:
            match = _ATOM.match(text, pos)
            if match is None:  # a stray "\" or "]": keep it as a one-character word
                tokens.append(("atom", text[pos + 1 : pos + 2] if char == "\\" else char, spaced))
                pos += 2 if char == "\\" else 1
            else:
                tokens.append(("atom", match.group(), spaced))
        if match is not None:
            pos = match.end()
        spaced = False
    return tokens, comments


def parse_addresses(text: str) -> list[ImapValue]:
    """RFC 5322 §3.4 address-list as IMAP address structures (leniently)."""
    tokens, comments = _tokenize(text)
    reader = _AddressReader(tokens, comments)
    out: list[ImapValue] = []
    pos = 0
    while pos < len(tokens):
        kind, value, _ = tokens[pos]
        if kind == "special" and value in ",;>":
            pos += 1  # RFC 5322 §4.4 obs-addr-list: empty list elements
            continue
        pos = reader.address(pos, out, in_group=False)
    return out


class _AddressReader:
    __slots__ = ("comments", "tokens")

    def __init__(self, tokens: list[_Token], comments: list[tuple[int, str]]) -> None:
        self.tokens = tokens
        self.comments = comments

    def _stop(self, pos: int, stops: frozenset[str] | str) -> int:
        tokens = self.tokens
        while pos < len(tokens) and not (tokens[pos][0] == "special" and tokens[pos][1] in stops):
            pos += 1
        return pos

    def _comment(self, first: int, last: int) -> str | None:
        """The first comment that stands between tokens ``first`` and ``last``."""
        index = bisect_left(self.comments, (first, ""))
        if index < len(self.comments) and self.comments[index][0] <= last:
            return self.comments[index][1]
        return None

    def address(self, pos: int, out: list[ImapValue], in_group: bool) -> int:
        """Read one mailbox or group starting at ``pos``; return the next position."""
        tokens = self.tokens
        stop = self._stop(pos, _STOPS_ADDRESS)
        marker = tokens[stop][1] if stop < len(tokens) else ""
        words = tokens[pos:stop]
        if marker == "<":  # RFC 5322 §3.4 name-addr = [display-name] angle-addr
            adl, mailbox, host, after = self._angle(stop + 1)
            name = _phrase(words) or self._comment(pos, after)
            out.append(_address(name, adl, mailbox, host))
            return after
        if marker == ":" and words and not in_group:  # RFC 5322 §3.4 group
            out.append([None, None, imap_string(_phrase(words)), None])
            pos = stop + 1
            while pos < len(tokens) and tokens[pos] != ("special", ";", tokens[pos][2]):
                if tokens[pos][0] == "special" and tokens[pos][1] in ",>:":
                    pos += 1
                    continue
                pos = self.address(pos, out, in_group=True)
            out.append([None, None, None, None])
            return pos + 1
        if marker == "@":  # RFC 5322 §3.4.1 addr-spec
            after = self._stop(stop + 1, ",;<>")
            name = self._comment(pos, after)
            out.append(_address(name, None, _joined(words), _domain(tokens[stop + 1 : after])))
            return after
        if not words:
            return stop + 1  # a stray ":" or ">" (or "<" at the end): skip it
        if not any(spaced for _, _, spaced in words[1:]):  # one word: a local part
            out.append(_address(self._comment(pos, stop), None, _joined(words), ""))
        else:
            out.append(_address(_phrase(words), None, "", ""))
        return stop

    def _angle(self, pos: int) -> tuple[str | None, str, str, int]:
        """angle-addr after "<": (adl, local part, domain, position after ">")."""
        tokens = self.tokens
        while pos < len(tokens) and tokens[pos] == ("special", "<", tokens[pos][2]):
            pos += 1  # "<<a@b>>": read the innermost angle-addr
        adl = None
        if pos < len(tokens) and tokens[pos][1] == "@":  # RFC 5322 §4.4 obs-route
            colon = self._stop(pos, ":>")
            if colon < len(tokens) and tokens[colon][1] == ":":
                adl = "".join(text for _, text, _ in tokens[pos:colon]) or None
                pos = colon + 1
        end = self._stop(pos, ",;<>")
        at = self._stop(pos, "@,;<>")
        local = _joined(tokens[pos:at])
        domain = _domain(tokens[at + 1 : end]) if at < end else ""
        if end < len(tokens) and tokens[end][1] == ">":
            end += 1
        return adl, local, domain, end


def _phrase(words: list[_Token]) -> str:
    """RFC 5322 §3.2.5 phrase (and obs-phrase) as text: quoting removed, words
    separated by one space where the original had white space or a comment."""
    out: list[str] = []
    for index, (_, text, spaced) in enumerate(words):
        if index and spaced:
            out.append(" ")
        out.append(text)
    return "".join(out)


def _joined(words: list[_Token]) -> str:
    """A local part or domain: the words concatenated (CFWS between them dropped)."""
    return "".join(text for _, text, _ in words)


def _domain(words: list[_Token]) -> str:
    """RFC 5322 §3.4.1 domain: atoms, dots and domain literals; stray specials
    (a second "@") are dropped."""
    return "".join(text for kind, text, _ in words if kind != "special" or text == ".")


def _address(name: str | None, adl: str | None, mailbox: str, host: str) -> list[ImapValue]:
    return [
        None if not name else imap_string(name),
        None if adl is None else imap_string(adl),
        imap_string(mailbox or MISSING_MAILBOX),
        imap_string(host or MISSING_DOMAIN),
    ]
