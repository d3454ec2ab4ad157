"""The messages the IMAP transcripts read, written out octet for octet.

``MEETING`` is the message of RFC 9051 §6.3.12's APPEND example (326
octets). ``MIXED`` is a multipart/mixed with a base64 text part and a base64
binary attachment holding NUL octets (BINARY, RFC 3516). ``UTF8`` has an
RFC 2047 encoded subject and an 8-bit UTF-8 body (SEARCH CHARSET UTF-8).
``SMALL`` is a short note from another sender for SEARCH keys; ``UNKNOWN_CTE`` has a
transfer encoding BINARY cannot undo (RFC 3516 §4.3).
"""

from __future__ import annotations

from .imap_harness import crlf

MEETING = crlf("""
    Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)
    From: Fred Foobar <foobar@Blurdybloop.example>
    Subject: afternoon meeting
    To: mooch@owatagu.siam.edu.example
    Message-Id: <B27397-0100000@Blurdybloop.example>
    MIME-Version: 1.0
    Content-Type: TEXT/PLAIN; CHARSET=US-ASCII

    Hello Joe, do you think we can meet at 3:30 tomorrow?
""")
MEETING_HEADER_SIZE = 271  # up to and including the blank line
MEETING_BODY = b"Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n"

MIXED = crlf("""
    Date: Tue, 3 Feb 2026 10:00:00 +0000
    From: Carol <carol@remote.test>
    To: alice@example.test
    Cc: Dave <dave@remote.test>
    Subject: the report
    Message-ID: <report@remote.test>
    MIME-Version: 1.0
    Content-Type: multipart/mixed; boundary="XX"

    preamble
    --XX
    Content-Type: text/plain; charset=us-ascii
    Content-Transfer-Encoding: base64

    SGVsbG8gd29ybGQhDQo=
    --XX
    Content-Type: application/octet-stream; name="data.bin"
    Content-Transfer-Encoding: base64
    Content-Disposition: attachment; filename="data.bin"

    AAECAwQ=
    --XX--
""")
MIXED_PART1_DECODED = b"Hello world!\r\n"
MIXED_PART2_DECODED = b"\x00\x01\x02\x03\x04"

UTF8 = crlf("""
    Date: Wed, 4 Feb 2026 12:00:00 +0100
    From: =?UTF-8?Q?J=C3=B6rg?= <joerg@remote.test>
    To: alice@example.test
    Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=
    Message-ID: <utf8@remote.test>
    MIME-Version: 1.0
    Content-Type: text/plain; charset=utf-8
    Content-Transfer-Encoding: 8bit

    Viele Grüße, bis später im Café.
""")

SMALL = crlf("""
    Date: Thu, 5 Feb 2026 08:30:00 +0000
    From: Bob <bob@example.test>
    To: alice@example.test
    Subject: lunch?
    Message-ID: <lunch@example.test>
    X-Priority: 1

    Noodles at noon.
""")


def note(n: int) -> bytes:
    """A small distinct message (for counts, numbering and expunges)."""
    return crlf(f"""
        From: sender{n}@remote.test
        To: alice@example.test
        Subject: note {n}
        Message-ID: <note{n}@remote.test>

        This is note {n}.
    """)


UNKNOWN_CTE = crlf("""
    From: sender@remote.test
    To: alice@example.test
    Subject: old encoding
    MIME-Version: 1.0
    Content-Type: application/octet-stream
    Content-Transfer-Encoding: x-uuencode

    begin 644 data.bin
    end
""")


def header_of(message: bytes) -> bytes:
    """The header of a message, with the blank line that ends it."""
    return message[: message.index(b"\r\n\r\n") + 4]


def text_of(message: bytes) -> bytes:
    """The body of a message (RFC 9051 §6.4.5 TEXT)."""
    return message[message.index(b"\r\n\r\n") + 4 :]
