"""The base subject of a message (RFC 5256 §2.1), what SORT SUBJECT compares.

Owns ``base_subject`` and ``subject_of_thread`` (the base subject, and whether
a reply or forward marker came off: THREAD=REFERENCES step 5 needs it). Both
are pure functions of one Subject value that has already had its RFC 2047
encoded words decoded (step 1's first half; ``headers`` does that). The
rest of §2.1 is done here, on text:

1. white space (tabs, folding) becomes single spaces;
2. trailers matching ``subj-trailer`` ("(fwd)" or white space) come off the
   end, repeatedly;
3. leaders matching ``subj-leader`` (``*subj-blob subj-refwd`` or white space:
   "Re:", "Fw:", "Fwd:", "[blob] Re:", "Re[2]:") come off the start;
4. a leading ``subj-blob`` ("[list] ") comes off too, unless nothing of
   the subject would be left;
5. steps 3 and 4 repeat while they remove anything;
6. a subject wrapped as "[fwd: ...]" is unwrapped and the work starts again
   at step 2.

Keywords match case-insensitively (ABNF strings are, RFC 5234 §2.3). A
``BLOBCHAR`` is any character but "[" and "]" and NUL: RFC 5256 §5 spells it
in US-ASCII octets; other characters are let in so a list tag written in
another script is a blob too (an RFC 5256 §2.1 decision left to us, noted
here). Comparing base subjects is the caller's concern (casefold).

Invariants: never raises; the result has no leading or trailing white space;
the work is bounded by the length of the input (each step shortens it).
"""

from __future__ import annotations

import functools
import re
from typing import Final

_WHITE: Final = re.compile(r"[ \t\r\n]+")
# RFC 5256 §5: subj-blob = "[" *BLOBCHAR "]" *WSP
_BLOB: Final = r"\[[^\[\]\x00]*\] *"
# subj-trailer = "(fwd)" / WSP
_TRAILER: Final = re.compile(r"(?:\(fwd\)| )$", re.IGNORECASE)
# subj-leader = (*subj-blob subj-refwd) / WSP
# subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
_LEADER: Final = re.compile(rf"(?:(?:{_BLOB})*(?:re|fwd?) *(?:{_BLOB})?:| )", re.IGNORECASE)
_LEADING_BLOB: Final = re.compile(_BLOB)
# subj-fwd = subj-fwd-hdr subj-base subj-fwd-trl; "[fwd:" ... "]"
_FWD_HEADER: Final = "[fwd:"
# Subjects whose extraction is kept: THREAD and SORT SUBJECT extract every
# message's each time, and most subjects of a big mailbox repeat ("Re: ...").
SUBJECT_CACHE_SIZE: Final = 65_536


def base_subject(subject: str) -> str:
    """RFC 5256 §2.1 base subject of a decoded Subject value."""
    return subject_of_thread(subject)[0]


@functools.lru_cache(maxsize=SUBJECT_CACHE_SIZE)
def subject_of_thread(subject: str) -> tuple[str, bool]:
    """The base subject of a decoded Subject value, and whether its extraction removed
    a ``subj-refwd`` ("Re:", "Fwd:"), a "(fwd)" trailer or a "[fwd: ...]" wrapper:
    what RFC 5256 §3 (REFERENCES step 5.C) calls a reply or forward."""
    text = _WHITE.sub(" ", subject)  # step 1
    reply = False
    while True:
        while True:  # step 2
            trailer = _TRAILER.search(text)
            if trailer is None:
                break
            reply = reply or trailer.group() != " "
            text = text[: trailer.start()]
        while True:  # steps 3 to 5
            before = text
            leader = _LEADER.match(text)
            while leader is not None and leader.end() > 0:  # step 3
                reply = reply or leader.group() != " "
                text = text[leader.end() :]
                leader = _LEADER.match(text)
            blob = _LEADING_BLOB.match(text)
            if blob is not None and text[blob.end() :].strip(" "):  # step 4
                text = text[blob.end() :]
            if text == before:
                break
        # step 6: subj-fwd-hdr subj-base subj-fwd-trl
        if text[: len(_FWD_HEADER)].lower() == _FWD_HEADER and text.endswith("]"):
            text = text[len(_FWD_HEADER) : -1]
            reply = True
            continue
        return text.strip(" "), reply
