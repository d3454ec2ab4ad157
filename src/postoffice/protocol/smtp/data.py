"""Message content readers: DATA (dot-unstuffing, end-of-data) and BDAT line ends.

What this module owns:

- ``DotDataReader``: RFC 5321 §4.1.1.4 and §4.5.2. Lines are ended by CRLF
  and only by CRLF (RFC 5321 §2.3.8). The data ends at the first line that is
  exactly ``.``, i.e. at the octets ``<CRLF>.<CRLF>`` (the CRLF before the
  dot being the end of the previous line, or the DATA command's own line end
  for an empty message). A line beginning with ``.`` loses that first dot.
  A bare LF or bare CR is never a line end: it neither ends the data nor
  starts a line whose dot would be removed. So each SMTP smuggling variant
  (``\\n.\\n``, ``\\r.\\r``, ``\\r.\\n``, ``\\n.\\r``, ``\\n.\\r\\n``,
  ``\\r\\n.\\n``, ``\\r.\\r\\n``, ``\\r\\n.\\r``) is message text.

- ``BareLineEndFilter``: what a bare LF/CR becomes (``BareNewlinePolicy``):
  CRLF under NORMALIZE (the stored message is then strictly CRLF-lined; a
  ``\\n.\\r\\n`` in the input is stored as a ``.`` line, which any SMTP
  client must dot-stuff when relaying, as it must any content), or a refusal
  under REJECT. BDAT content (RFC 3030: exact octet counts, no dot-stuffing)
  goes through the same filter, with a CR at a chunk's end held until the
  next chunk shows whether an LF follows.

Invariants: the reader holds no message octets between calls (at most two
octets stay unconsumed in the caller's buffer while they cannot be decided:
a ``.`` or ``.\\r`` at a line start, or a trailing CR), so memory is bounded
by what the driver feeds, whatever the client sends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from postoffice.core.errors import PostofficeError
from postoffice.protocol.smtp.settings import BareNewlinePolicy

_BARE_LINE_END: Final = re.compile(rb"\r(?!\n)|(?<!\r)\n")
_BARE_LF: Final = re.compile(rb"(?<!\r)\n")


class BareLineEnd(PostofficeError):
    """A bare LF or CR was found under ``BareNewlinePolicy.REJECT``."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"bare <{kind}> received")
        self.kind = kind  # "LF" or "CR"


def fix_bare_line_ends(segment: bytes, policy: BareNewlinePolicy) -> bytes:
    """Apply ``policy`` to a segment that cannot end with a CR awaiting its LF."""
    crlf = segment.count(b"\r\n")
    if segment.count(b"\r") == crlf and segment.count(b"\n") == crlf:
        return segment  # the common case: every CR and LF is part of a CRLF
    if policy is BareNewlinePolicy.REJECT:
        raise BareLineEnd("LF" if _BARE_LF.search(segment) else "CR")
    return _BARE_LINE_END.sub(b"\r\n", segment)


@dataclass(frozen=True, slots=True)
class DataStep:
    """One reading step: message octets out, input octets used, end reached or not."""

    content: bytes
    consumed: int
    finished: bool


class DotDataReader:
    """Reads DATA content from a buffer; see the module doc for the rules."""

    __slots__ = ("_at_line_start", "_policy")

    def __init__(self, policy: BareNewlinePolicy) -> None:
        self._policy = policy
        # The DATA command line ended with CRLF, so the content starts a line
        # and "." CRLF right away is an empty message.
        self._at_line_start = True

    def read(self, buffer: bytes | bytearray) -> DataStep:
        """Consume what can be decided from ``buffer``; raises ``BareLineEnd`` (REJECT)."""
        out: list[bytes] = []
        pos, size = 0, len(buffer)
        finished = False
        while pos < size:
            if self._at_line_start:
                if buffer[pos] == 0x2E:  # "." at the start of a line
                    head = bytes(buffer[pos : pos + 3])
                    if head == b".\r\n":
                        pos += 3
                        finished = True
                        break
                    if head in (b".", b".\r"):
                        break  # cannot tell yet: end marker or a stuffed line
                    pos += 1  # RFC 5321 §4.5.2: drop the stuffing dot
                self._at_line_start = False
            found = buffer.find(b"\r\n.", pos)
            if found >= 0:
                out.append(bytes(buffer[pos : found + 2]))
                pos = found + 2
                self._at_line_start = True
                continue
            end = size - 1 if buffer[size - 1] == 0x0D else size  # hold a trailing CR
            if end > pos:
                out.append(bytes(buffer[pos:end]))
                if buffer[end - 1] == 0x0A and end - pos >= 2 and buffer[end - 2] == 0x0D:
                    self._at_line_start = True
            pos = end
            break
        content = b"".join(fix_bare_line_ends(segment, self._policy) for segment in out)
        return DataStep(content, pos, finished)


class BareLineEndFilter:
    """Applies the bare LF/CR policy to BDAT chunks, across chunk boundaries."""

    __slots__ = ("_pending_cr", "_policy")

    def __init__(self, policy: BareNewlinePolicy) -> None:
        self._policy = policy
        self._pending_cr = False

    def feed(self, data: bytes) -> bytes:
        if self._pending_cr:
            data = b"\r" + data
            self._pending_cr = False
        if data.endswith(b"\r"):
            data = data[:-1]
            self._pending_cr = True
        return fix_bare_line_ends(data, self._policy)

    def finish(self) -> bytes:
        """End of the message: a CR still held is a bare CR."""
        if not self._pending_cr:
            return b""
        self._pending_cr = False
        return fix_bare_line_ends(b"\r", self._policy)
