"""``sendmail -bs``: an SMTP session on standard input and output.

What this module owns: driving the sans-IO SMTP server
(``protocol.smtp.SmtpServerConnection``) over stdin/stdout for a local
program (sendmail(8) ``-bs``, used by MUAs such as mutt and by some MTAs'
test scripts), and leaving each accepted message in the maildrop exactly as
``sendmail`` without ``-bs`` does, with the same header completion. No
server needs to run and no privilege is needed beyond writing to the
maildrop.

Rules: the client is the local user (as the pickup records: no TLS, no AUTH,
no relay check here; routing happens when the server queues the drop);
addresses without a domain are qualified with the primary domain; the
message size is bounded as for the command (``MAX_MESSAGE_OCTETS``). The
``250`` after the data is sent only once the drop file is durably written.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from postoffice.core.reply import Reply
from postoffice.mime.submission import complete_header
from postoffice.protocol.smtp import (
    AuthCredentials,
    Closed,
    Expand,
    Hello,
    MailFrom,
    MessageAborted,
    MessageChunk,
    MessageComplete,
    NeedData,
    RcptTo,
    SmtpReplies,
    SmtpServerConnection,
    SmtpServerSettings,
    StartTls,
    Verify,
)
from postoffice.queue.maildrop import Drop, DropError, ensure_maildrop, write_drop

NOT_LEFT = Reply(451, "4.3.0", "Cannot leave the message in the maildrop")
NOT_HERE = Reply(502, "5.5.1", "Not available in sendmail -bs")


def speak_smtp(
    stdin: BinaryIO,
    stdout: BinaryIO,
    *,
    hostname: str,
    full_name: str | None,
    maildrop: Path,
    max_size: int,
) -> int:
    """Serve one SMTP session on ``stdin``/``stdout``; the number of messages left."""
    conn = SmtpServerConnection(
        SmtpServerSettings(
            hostname=hostname,
            greeting_text="ESMTP postoffice (sendmail -bs)",
            max_message_size=max_size,
            forbid_unauth_pipelining=False,  # a program on the host, not a spammer
            chunking=False,
            dsn=False,  # a drop keeps no NOTIFY, RET or ENVID: not offered
        )
    )
    out = bytearray(conn.start())
    data = bytearray()
    left = 0
    fd = stdin.fileno()
    while True:
        event = conn.next_event()
        if isinstance(event, NeedData):
            _write(stdout, out)
            conn.receive_data(os.read(fd, 65536))
        elif isinstance(event, Closed):
            out += conn.data_to_send()
            _write(stdout, out)
            return left
        elif isinstance(event, MessageChunk):
            data += event.data
        elif isinstance(event, MessageAborted):
            data.clear()
        elif isinstance(event, Hello):
            out += conn.send(SmtpReplies.HELLO_OK)
        elif isinstance(event, MailFrom):
            data.clear()
            out += conn.send(SmtpReplies.SENDER_OK)
        elif isinstance(event, RcptTo):
            out += conn.send(SmtpReplies.RECIPIENT_OK)
        elif isinstance(event, Verify):
            out += conn.send(SmtpReplies.CANNOT_VRFY)
        elif isinstance(event, Expand | StartTls | AuthCredentials):
            out += conn.send(NOT_HERE)
        elif isinstance(event, MessageComplete):
            envelope = event.envelope
            message = complete_header(
                bytes(data),
                sender=envelope.sender_text,
                full_name=full_name,
                hostname=hostname,
                now=datetime.now(UTC),
            )
            recipients = tuple(str(r.address) for r in envelope.recipients)
            data.clear()
            try:
                ensure_maildrop(maildrop)
                path = write_drop(
                    maildrop, Drop(os.getuid(), envelope.sender_text, recipients, message)
                )
            except (OSError, DropError):
                out += conn.send(NOT_LEFT)
                continue
            left += 1
            out += conn.send(SmtpReplies.queued(path.name))


def _write(stdout: BinaryIO, out: bytearray) -> None:
    if out:
        stdout.write(bytes(out))
        stdout.flush()
        out.clear()
