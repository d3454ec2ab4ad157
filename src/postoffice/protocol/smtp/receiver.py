"""The message being received: DATA or BDAT content, its size and its fate.

What this module owns (for ``SmtpServerConnection``, which owns the session):
reading content octets out of the input buffer, streaming them as
``MessageChunk`` events, counting the size against the limit, remembering a
failure (size exceeded, driver's ``fail_message``) so the rest is read and
dropped, and swallowing the octets of a refused BDAT (RFC 3030 §2: a BDAT
that is answered with an error still owns its ``n`` octets).

Invariants:
- content octets are never accumulated here: each read hands them out at once;
- ``size`` counts octets as delivered (after dot-unstuffing and line-end
  normalisation), which is the size RFC 1870 §6.3 speaks of;
- after a failure no further ``MessageChunk`` is emitted for that message,
  and exactly one ``MessageAborted`` was emitted for it when it was the
  connection's own decision (size limit).
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from postoffice.core.reply import Reply
from postoffice.protocol.smtp.data import BareLineEndFilter, DotDataReader
from postoffice.protocol.smtp.events import Event, MessageAborted, MessageChunk
from postoffice.protocol.smtp.replies import SmtpReplies
from postoffice.protocol.smtp.settings import SmtpServerSettings


class ContentResult(enum.Enum):
    NEED_DATA = "need-data"  # nothing more can be decided from the buffer
    PROGRESS = "progress"  # octets were used; call again
    MESSAGE_END = "message-end"  # <CRLF>.<CRLF>, or the end of BDAT ... LAST
    CHUNK_END = "chunk-end"  # the end of a BDAT chunk that is not the last
    SKIPPED = "skipped"  # a refused BDAT's octets are swallowed; answer it now


class MessageReceiver:
    """Content state of the current transaction (see the module doc)."""

    def __init__(self, settings: SmtpServerSettings) -> None:
        self._settings = settings
        self.open = False  # a message is being received and may still complete
        self.size = 0
        self.failure: Reply | None = None
        self.chunked = False
        self._data: DotDataReader | None = None
        self._filter: BareLineEndFilter | None = None
        self._chunk_remaining: int | None = None
        self.chunk_size = 0
        self._chunk_last = False
        self._skip_remaining: int | None = None
        self._skip_reply: Reply | None = None

    @property
    def reading(self) -> bool:
        """True while input octets are content rather than command lines."""
        return (
            self._data is not None
            or self._chunk_remaining is not None
            or self._skip_remaining is not None
        )

    def reset(self) -> None:
        """Forget the message (end of transaction); a pending skip survives."""
        self.open, self.size, self.failure, self.chunked = False, 0, None, False
        self._data = self._filter = None
        self._chunk_remaining, self.chunk_size, self._chunk_last = None, 0, False

    def begin_data(self) -> None:
        self.reset()
        self.open = True
        self._data = DotDataReader(self._settings.bare_newline)

    def begin_chunk(self, size: int, last: bool) -> None:
        if not self.chunked:
            self.reset()
            self.open, self.chunked = True, True
            self._filter = BareLineEndFilter(self._settings.bare_newline)
        self._chunk_remaining, self.chunk_size, self._chunk_last = size, size, last

    def begin_skip(self, size: int, reply: Reply) -> None:
        self._skip_remaining, self._skip_reply = size, reply

    def take_skip_reply(self) -> Reply:
        reply, self._skip_reply = self._skip_reply, None
        assert reply is not None
        return reply

    def fail(self, reply: Reply) -> None:
        """Drop the rest of this message and answer ``reply`` when its content ends."""
        if self.failure is None:
            self.failure = reply
        self.open = False

    def abandon(self) -> bool:
        """The connection is closing: True when the driver must be told to discard."""
        was_open, self.open = self.open, False
        return was_open

    def read(self, buffer: bytearray, emit: Callable[[Event], None]) -> ContentResult:
        """Use content octets from the front of ``buffer``; raises ``BareLineEnd``."""
        if self._skip_remaining is not None:
            return self._skip(buffer)
        if self._data is not None:
            step = self._data.read(buffer)
            del buffer[: step.consumed]
            self._deliver(step.content, emit)
            if step.finished:
                self._data = None
                return ContentResult.MESSAGE_END
            return ContentResult.PROGRESS if step.consumed else ContentResult.NEED_DATA
        assert self._chunk_remaining is not None and self._filter is not None
        take = min(self._chunk_remaining, len(buffer))
        if take == 0 and self._chunk_remaining:
            return ContentResult.NEED_DATA
        data = bytes(buffer[:take])
        del buffer[:take]
        self._chunk_remaining -= take
        self._deliver(self._filter.feed(data), emit)
        if self._chunk_remaining:
            return ContentResult.PROGRESS
        self._chunk_remaining = None
        if not self._chunk_last:
            return ContentResult.CHUNK_END
        self._deliver(self._filter.finish(), emit)
        return ContentResult.MESSAGE_END

    def _skip(self, buffer: bytearray) -> ContentResult:
        assert self._skip_remaining is not None
        take = min(self._skip_remaining, len(buffer))
        del buffer[:take]
        self._skip_remaining -= take
        if self._skip_remaining:
            return ContentResult.PROGRESS if take else ContentResult.NEED_DATA
        self._skip_remaining = None
        return ContentResult.SKIPPED

    def _deliver(self, content: bytes, emit: Callable[[Event], None]) -> None:
        if self.failure is not None or not content:
            return
        size = self.size + len(content)
        limit = self._settings.max_message_size
        if limit and size > limit:
            # RFC 1870 §6.3: keep reading to the end of the data, then answer 552.
            self.fail(SmtpReplies.MESSAGE_TOO_BIG)
            emit(MessageAborted("message size limit exceeded", SmtpReplies.MESSAGE_TOO_BIG))
            return
        self.size = size
        emit(MessageChunk(content))
