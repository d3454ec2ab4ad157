"""The error replies written in tables: access ``ERROR:``, virtusertable and mailertable ``error:``.

Owns the one grammar all three share, so that ``ERROR:5.7.1:550 go away`` means
the same wherever an administrator writes it. Accepted forms (sendmail
cf/README "ANTI-SPAM CONFIGURATION CONTROL" and the virtusertable and
mailertable sections):

    D.S.N:NNN text        enhanced code (RFC 3463 §2), reply code, text
    NNN text              enhanced code derived from the reply: N.0.0
    "NNN text"            quoted, optionally after D.S.N: (sendmail's quoted form)
    name [NNN] text       a sysexits name (virtusertable ``error:nouser``)

Invariants of the result: the reply code is 4xx or 5xx (RFC 5321 §4.2.1:
only these refuse), and the enhanced code's class equals the reply's first
digit (RFC 3463 §2: class 4 = persistent transient, 5 = permanent).
"""

from __future__ import annotations

import re
from typing import Final

from postoffice.core.reply import Reply

_ENHANCED_PREFIX = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3}):")
_CODE_AND_TEXT = re.compile(r"(\d{3})(?:[ \t]+(.*))?")
_NAME_AND_TEXT = re.compile(r"([A-Za-z]+)(?:[ \t]+(.*))?")

# sendmail's sysexits names as used after ``error:`` (sendmail op guide, the
# error mailer; codes as sendmail reports them for each exit status).
SYSEXITS_REPLIES: Final[dict[str, Reply]] = {
    "nouser": Reply(550, "5.1.1", "User unknown"),
    "nohost": Reply(550, "5.1.2", "Host unknown"),
    "unavailable": Reply(550, "5.0.0", "Service unavailable"),
    "noperm": Reply(550, "5.7.1", "Permission denied"),
    "dataerr": Reply(550, "5.6.0", "Data format error"),
    "config": Reply(554, "5.3.5", "Local configuration error"),
    "software": Reply(554, "5.3.0", "Internal software error"),
    "protocol": Reply(554, "5.5.0", "Remote protocol error"),
    "tempfail": Reply(451, "4.0.0", "Deferred"),
}


class ErrorReplySyntaxError(ValueError):
    """The error specification is malformed; the table parser adds file:line."""


def parse_error_reply(spec: str, *, default_text: str) -> Reply:
    """Parse the part after ``ERROR:``/``error:`` into a ``Reply`` (see module doc)."""
    enhanced: str | None = None
    rest = spec.strip()
    prefix = _ENHANCED_PREFIX.match(rest)
    if prefix:
        enhanced = ".".join(prefix.groups())
        rest = rest[prefix.end() :].strip()
    code_text = _split_code(_unquote(rest))
    if code_text is not None:
        code, text = code_text
        return _build(code, enhanced, text or default_text)
    named = _NAME_AND_TEXT.fullmatch(rest)
    if named is None:
        raise ErrorReplySyntaxError(
            f"expected [D.S.N:]NNN text or a sysexits name, got {spec.strip()!r}"
        )
    name = named.group(1).lower()
    base = SYSEXITS_REPLIES.get(name)
    if base is None:
        known = ", ".join(sorted(SYSEXITS_REPLIES))
        raise ErrorReplySyntaxError(f"unknown error name {name!r} (known: {known})")
    tail = _unquote((named.group(2) or "").strip())
    code_text = _split_code(tail)
    if code_text is not None:
        code, text = code_text
        keep_base = code // 100 == base.code // 100
        return _build(code, enhanced or (base.enhanced if keep_base else None), text or base.text)
    return _build(base.code, enhanced or base.enhanced, tail or base.text)


def _unquote(text: str) -> str:
    if text.startswith('"'):
        if len(text) < 2 or not text.endswith('"'):
            raise ErrorReplySyntaxError(f"unterminated quoted reply {text!r}")
        return text[1:-1].strip()
    return text


def _split_code(text: str) -> tuple[int, str] | None:
    match = _CODE_AND_TEXT.fullmatch(text)
    if match is None:
        return None
    return int(match.group(1)), (match.group(2) or "").strip()


def _build(code: int, enhanced: str | None, text: str) -> Reply:
    # RFC 5321 §4.2.1: 4yz transient, 5yz permanent; nothing else refuses.
    if not 400 <= code <= 599:
        raise ErrorReplySyntaxError(f"reply code {code} is not an error (use 4xx or 5xx)")
    if enhanced is None:
        enhanced = f"{code // 100}.0.0"
    elif enhanced[0] != str(code // 100):
        raise ErrorReplySyntaxError(
            f"enhanced code {enhanced} does not match reply code {code} (class must be "
            f"{code // 100}, RFC 3463 §2)"
        )
    return Reply(code, enhanced, text)
