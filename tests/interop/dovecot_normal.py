"""The named normalisations of the Dovecot differential test: each one a
difference between two answers that the RFCs both allow, or a place where
Dovecot 2.3 departs from the RFC and postoffice is kept as it is.

Applied to both servers' answers alike, after ``dovecot_peer.parse`` (which
already applies STRING_FORM and ITEM_ORDER). Nothing else is forgiven: any
other difference fails the test.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import unquote_to_bytes

from tests.interop.dovecot_peer import Atom, Value

# -- FETCH ----------------------------------------------------------------------------------


def media_case(value: Value) -> Value:
    """MEDIA_CASE: body type, subtype, encoding, parameter names and the
    disposition type compare in lower case. RFC 2045 §5.1: "The type, subtype,
    and parameter names are not case sensitive"; RFC 2045 §6.1: the transfer
    encoding is not either; RFC 2183 §2: nor are the disposition type and its
    parameter names. postoffice sends them in upper case, as the RFC 3501
    §7.4.2 examples do; Dovecot in lower case (or as written, "Text/Plain").

    PARAM_2231, in the same walk: a parameter is compared by its RFC 2231
    value, continuations joined and %-escapes decoded into text of the named
    charset, without the language tag. RFC 3501 §7.4.2 defines
    body-fld-param only as "attribute/value pairs ... as defined in
    [MIME-IMB]"; it says nothing of RFC 2231, and RFC 2231 §3-§4 give one
    value many spellings. Dovecot passes the spelling through (joining
    ``name*0*``/``name*1``); postoffice re-encodes the value as UTF-8
    (``bodystructure.py``: "NAME*" "utf-8''...").
    """
    if not isinstance(value, list) or not value:
        return value
    if isinstance(value[0], list):  # multipart: parts, subtype, [params, disposition, ...]
        count = next(i for i, item in enumerate(value) if not isinstance(item, list))
        parts, rest = value[:count], value[count:]
        out: list[Value] = [media_case(part) for part in parts]
        out.append(_lower(rest[0]))
        if len(rest) > 1:
            out.append(_params(rest[1]))
        if len(rest) > 2:
            out.append(_disposition(rest[2]))
        out.extend(rest[3:])
        return out
    out = [_lower(value[0]), _lower(value[1]), _params(value[2]), value[3], value[4]]
    out.append(_lower(value[5]))
    out.append(value[6])
    rest = value[7:]
    kind = (_lower(value[0]), _lower(value[1]))
    if kind in ((b"message", b"rfc822"), (b"message", b"global")) and len(rest) >= 3:
        out += [envelope(rest[0]), media_case(rest[1]), rest[2]]
        rest = rest[3:]
    elif kind[0] == b"text" and rest:
        out.append(rest[0])
        rest = rest[1:]
    if rest:  # md5, disposition, language, location
        out.append(rest[0])
        if len(rest) > 1:
            out.append(_disposition(rest[1]))
        out.extend(rest[2:])
    return out


def _lower(value: Value) -> Value:
    return value.lower() if isinstance(value, bytes) else value


def _disposition(value: Value) -> Value:
    if not isinstance(value, list) or len(value) != 2:
        return value
    return [_lower(value[0]), _params(value[1])]


_CONTINUATION: Final = re.compile(rb"^(.*?)\*(\d+)(\*?)$")


def _params(value: Value) -> Value:
    if not isinstance(value, list):
        return value
    joined: dict[bytes, list[tuple[int, bytes, bool]]] = {}
    for name, text in zip(value[::2], value[1::2], strict=True):
        assert isinstance(name, bytes) and isinstance(text, bytes), value
        lowered = name.lower()
        found = _CONTINUATION.match(lowered)
        if found:
            base, index, star = found.group(1), int(found.group(2)), bool(found.group(3))
        else:
            base, index, star = lowered.rstrip(b"*"), 0, lowered.endswith(b"*")
        joined.setdefault(base, []).append((index, text, star))
    out: list[Value] = []
    for base, pieces in joined.items():
        pieces.sort()
        charset = "us-ascii"
        text = b""
        for position, (_, written, star) in enumerate(pieces):
            piece = written
            if star and position == 0 and written.count(b"'") >= 2:
                declared, _language, piece = written.split(b"'", 2)
                charset = declared.decode("ascii") or "us-ascii"
            text += unquote_to_bytes(piece) if star else piece
        out += [base, text.decode(charset, "replace").encode("utf-8")]
    return out


_WSP_RUN: Final = re.compile(rb"[ \t]+")


def envelope(value: Value) -> Value:
    """SUBJECT_WHITESPACE: the ENVELOPE subject compares with runs of spaces
    and tabs made one space. RFC 5322 §2.2.3: unfolding removes the CRLF of a
    fold and nothing else, and RFC 3501 §7.4.2 sends the field value as it
    is; Dovecot also collapses white space inside the value ("Re[2]:<TAB>Build
    <SP><SP>broken" becomes "Re[2]: Build broken"), postoffice does not.
    """
    if not isinstance(value, list) or len(value) != 10:
        return value
    subject = value[1]
    if isinstance(subject, bytes):
        subject = _WSP_RUN.sub(b" ", subject)
    return [value[0], subject, *value[2:]]


# DUPLICATE_SUBJECT: message 46 has two Subject fields. RFC 5322 §3.6 allows at
# most one, and no RFC says which of two the ENVELOPE shows: postoffice shows
# the first (as it reads every single-instance field), Dovecot the last.
DUPLICATE_SUBJECT: Final = frozenset({46})


def internal_date(value: Value) -> Value:
    """DATE_DAY_FIXED: " 1-Mar-2024" and "01-Mar-2024" are the same date.
    RFC 3501 §9: date-day-fixed = (SP DIGIT) / 2DIGIT."""
    if isinstance(value, bytes) and value[:1] == b" ":
        return b"0" + value[1:]
    return value


def normal_fetch(number: int, items: dict[bytes, Value]) -> dict[bytes, Value]:
    """One message's FETCH items, normalised as the docstrings above say."""
    out = dict(items)
    for name in (b"BODYSTRUCTURE", b"BODY"):
        if name in out:
            out[name] = media_case(out[name])
    if b"ENVELOPE" in out:
        env = envelope(out[b"ENVELOPE"])
        if number in DUPLICATE_SUBJECT and isinstance(env, list):
            env = [env[0], None, *env[2:]]
        out[b"ENVELOPE"] = env
    if b"INTERNALDATE" in out:
        out[b"INTERNALDATE"] = internal_date(out[b"INTERNALDATE"])
    return out


# -- SEARCH, SORT, THREAD --------------------------------------------------------------------

# PRE_EPOCH: message 53 is dated "Thu, 01 Jan 1970 00:00:00 +1400", an instant
# before 1970 in UTC. RFC 5322 §3.3 allows any zone of four digits and any year
# from 1900 on, and RFC 5256 §2.2 sorts by that sent date: postoffice puts 53
# first by DATE, and SENTBEFORE 5-Mar-2024 finds it. Dovecot takes the negative
# time as no date at all and sorts 53 last, as if its date were the largest.
PRE_EPOCH: Final = frozenset({53})

# NO_SENT_DATE: message 11 has no Date field and 21 an unreadable one. RFC 3501
# §6.4.4: SENTBEFORE/SENTON/SENTSINCE match on "the [RFC-2822] Date: header";
# without one there is nothing to match, so postoffice matches neither
# SENTBEFORE nor SENTSINCE. Dovecot takes the missing date as the epoch (11 and
# 21 are "SENTBEFORE 5-Mar-2024").
NO_SENT_DATE: Final = frozenset({11, 21})

# WHITESPACE_RUNS: message 26's subject is "Re[2]:<TAB>Build<SP><SP>broken".
# RFC 3501 §6.4.4: "a message matches the key if the string is a substring of
# the field"; "build broken" is not a substring of it, and postoffice does not
# find it. Dovecot collapses white space before matching (see SUBJECT_WHITESPACE).
WHITESPACE_RUNS: Final = frozenset({26})

# NO_SUCH_PART: BODY[1.1] of messages 7, 8, 10 and 54, whose part 1 is a
# text/plain leaf. RFC 3501 §6.4.5 numbers the parts of a multipart and the
# message inside a message/rfc822, and gives a non-multipart message only a
# part 1; a leaf has no part 1.1. postoffice answers the empty string, as both
# servers do for BODY[1.1] of a one-part message; Dovecot hands out the leaf
# itself (but only when the leaf is inside a multipart).
NO_SUCH_PART: Final = frozenset({7, 8, 10, 54})

# DECODED_MULTIPART: BINARY[1] of message 9, a multipart. RFC 3516 §4.2 (RFC 9051
# §6.4.5 BINARY): the section is sent with its own Content-Transfer-Encoding
# undone; a multipart's can only be an identity (RFC 2045 §6.4), so postoffice
# sends the part as it is. Dovecot also decodes the parts inside and rewrites
# their Content-Transfer-Encoding fields, which no RFC asks for.
DECODED_MULTIPART: Final = frozenset({9})

# ENCLOSED_HEADER: message 10 holds a message/rfc822 whose Subject is the RFC
# 2047 word "=?ISO-8859-1?Q?Caf=E9_menu?=". postoffice decodes the header of an
# enclosed message before BODY matches it, Dovecot does not; RFC 9051 §6.4.4
# allows either: BODY "servers are allowed to implement flexible matching".
ENCLOSED_HEADER: Final = frozenset({10})

EXCUSED: Final[dict[bytes, frozenset[int]]] = {
    b'SEARCH SUBJECT "build broken"': WHITESPACE_RUNS,
    b"SEARCH SENTSINCE 20-Mar-2024": PRE_EPOCH,
    b"SEARCH SENTBEFORE 5-Mar-2024": PRE_EPOCH | NO_SENT_DATE,
    b"SEARCH OR SUBJECT loop NOT SENTSINCE 1-Mar-2024": PRE_EPOCH | NO_SENT_DATE,
    b"SORT (DATE) UTF-8 ALL": PRE_EPOCH,
    b"SORT (REVERSE DATE) UTF-8 ALL": PRE_EPOCH,
    b"SORT (REVERSE FROM DATE) UTF-8 ALL": PRE_EPOCH,
    b"THREAD ORDEREDSUBJECT UTF-8 ALL": PRE_EPOCH,
    b"THREAD REFERENCES UTF-8 ALL": PRE_EPOCH,
    b"UID THREAD ORDEREDSUBJECT UTF-8 UID 10:*": PRE_EPOCH,
    b"UID THREAD REFERENCES UTF-8 UID 10:*": PRE_EPOCH,
    b"FETCH 1:* (BODY.PEEK[1.1])": NO_SUCH_PART,
    b"FETCH 1:* (BINARY.PEEK[1])": DECODED_MULTIPART,
    b"SEARCH CHARSET UTF-8 BODY {5+}\r\ncaf\xc3\xa9": ENCLOSED_HEADER,
}

# TRAILING_CRLF: the commands whose answer for these messages compares without
# one final CRLF. Message 9's part 1 is a multipart/alternative ending in
# "--inner-3--" CRLF "--outer-3". RFC 2046 §5.1.1: "the CRLF preceding the
# boundary delimiter line is conceptually attached to the boundary", so the part
# ends at "--inner-3--", as postoffice sends it; Dovecot adds the CRLF.
TRAILING_CRLF: Final[dict[bytes, frozenset[int]]] = {b"FETCH 1:* (BODY.PEEK[1])": frozenset({9})}


def trailing_crlf(value: Value) -> Value:
    if isinstance(value, bytes) and value.endswith(b"\r\n"):
        return value[:-2]
    return value


def without(numbers: frozenset[int], value: Value) -> Value:
    """``value`` (a parsed response) without the numbers in ``numbers``, as
    atoms anywhere in it; lists left empty by that go too (a THREAD node)."""
    if isinstance(value, list):
        kept = [without(numbers, item) for item in value]
        return [item for item in kept if item != [] and item is not _GONE]
    if isinstance(value, Atom) and value.isdigit() and int(value) in numbers:
        return _GONE
    return value


_GONE: Final = Atom(b"")
