"""The octets that leave this host: sender rewriting and the DKIM signature.

Owns ``OutgoingPreparer``, which the remote agent asks once per message and
destination for:
- ``envelope_sender``: the MAIL FROM address, rewritten by the
  ``genericstable`` when the sender is one of this host's (sendmail's
  ``FEATURE(genericstable)`` with the local domains as class {G});
- ``prepare``: the message as it is sent: the ``From:``, ``Sender:`` and
  ``Reply-To:`` addresses rewritten the same way, then a ``DKIM-Signature:``
  field in front when the signing domain (the envelope sender's, after
  rewriting) has a key (RFC 6376 §5). Signing comes last, so the signature
  covers exactly what is sent.

Rules: the stored message is never changed; a message with no rewrite and
no key is sent as stored. A signing error is logged and the message goes
unsigned (a missing signature is a weaker claim, never a lost message).
The whole message is held in memory while it is sent (bounded by the
accepted message size).
"""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import logging
import re

from postoffice.core.address import Address, parse_address
from postoffice.core.errors import AddressError, PostofficeError
from postoffice.core.maillog import log_event
from postoffice.directory.directory import Directory
from postoffice.mailauth.dkim_sign import DkimSigner
from postoffice.queue import Queue, QueueEntry

COMPONENT = "smtp"
READ_ON_LOOP = 256 * 1024  # larger messages are read in a worker thread
_REWRITTEN_FIELDS = (b"from", b"sender", b"reply-to")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FIELD_START = re.compile(rb"^([!-9;-~]+):", re.MULTILINE)


class OutgoingPreparer:
    """See the module docstring."""

    def __init__(self, *, queue: Queue, directory: Directory, signer: DkimSigner | None):
        self.queue = queue
        self.directory = directory
        self.signer = signer

    def _generic(self, address: Address) -> Address | None:
        """The genericstable's public form of one of this host's addresses, or None."""
        table = self.directory.tables.snapshot().genericstable
        if not len(table) or not self.directory.is_local_domain(address.domain):
            return None
        match = table.lookup(
            address,
            default_domain=self.directory.config.primary_domain,
            detail_separator=self.directory.config.directory.detail_separator,
        )
        return None if match is None else match.address

    def envelope_sender(self, entry: QueueEntry) -> Address | None:
        sender = entry.envelope.sender
        if sender is None:
            return None
        return self._generic(sender) or sender

    async def prepare(self, entry: QueueEntry) -> bytes:
        reader = self.queue.open_entry_data(entry)
        try:
            if entry.size <= READ_ON_LOOP:
                data = reader.read(-1)  # one read(2) of a small file: no thread handoff
            else:
                data = await asyncio.to_thread(reader.read, -1)
        finally:
            reader.close()
        data = self._rewrite_header(data)
        sender = self.envelope_sender(entry)
        if self.signer is None or sender is None or not self.signer.can_sign(sender.domain):
            return data
        try:
            signature = await asyncio.to_thread(self.signer.sign, data, sender.domain)
        except PostofficeError as exc:
            log_event(COMPONENT, f"{entry.id}: not DKIM-signed: {exc}", level=logging.WARNING)
            return data
        return data if signature is None else signature + data

    def _rewrite_header(self, data: bytes) -> bytes:
        """``data`` with the sender fields' addresses rewritten by the genericstable."""
        if not len(self.directory.tables.snapshot().genericstable):
            return data
        end = _HEADER_END.search(data)
        # The header section ends after its last field's own line end.
        head_end = len(data) if end is None else end.start() + (2 if data[end.start()] == 13 else 1)
        head = data[:head_end]
        starts = [m.start() for m in _FIELD_START.finditer(head)] + [len(head)]
        out: list[bytes] = []
        changed = False
        position = 0
        for start, stop in itertools.pairwise(starts):
            field = head[start:stop]
            name = field.split(b":", 1)[0].strip().lower()
            if name in _REWRITTEN_FIELDS:
                new = self._rewrite_field(field)
                if new is not None:
                    out.append(head[position:start] + new)
                    position = stop
                    changed = True
        if not changed:
            return data
        out.append(head[position:])
        return b"".join(out) + data[head_end:]

    def _rewrite_field(self, field: bytes) -> bytes | None:
        name, _, value = field.partition(b":")
        text = value.decode("utf-8", "surrogateescape")
        if ";" in text or "=?" in text:
            return None  # a group (RFC 5322 §3.4) or encoded words: left as written
        line_end = "\r\n" if text.endswith("\r\n") else "\n"
        pairs = email.utils.getaddresses([text])
        rewritten = []
        changed = False
        for display, written in pairs:
            new = None
            try:
                new = self._generic(parse_address(written)) if written else None
            except AddressError:
                new = None
            address = written if new is None else str(new)
            changed = changed or new is not None
            rewritten.append(email.utils.formataddr((display, address)) if display else address)
        if not changed:
            return None
        value_text = " " + ", ".join(rewritten) + line_end
        return name + b":" + value_text.encode("utf-8", "surrogateescape")
