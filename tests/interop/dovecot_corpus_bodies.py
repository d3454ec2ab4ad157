"""The MIME bodies of the multipart messages of ``dovecot_corpus`` (the
Dovecot differential test), written out: multipart/alternative, /mixed with a
base64 attachment, nested /mixed, /alternative and /related with RFC 2231
continuations, forwarded message/rfc822 parts and a multipart/digest.

LF line ends here; ``dovecot_corpus`` makes them CRLF.
"""

from __future__ import annotations

import base64
from typing import Final


def b64(data: bytes) -> str:
    text = base64.b64encode(data).decode("ascii")
    return "\n".join(text[i : i + 76] for i in range(0, len(text), 76)) + "\n"


PNG: Final = b64(b"\x89PNG\r\n\x1a\n" + bytes(40))
BINARY: Final = b64(b"binary\x00data\xff" * 5)
PDF: Final = b64(bytes(range(256)) + b"%PDF-1.4 end")

ALTERNATIVE = """\
This is a multi-part message in MIME format.
--alt-1
Content-Type: text/plain; charset="utf-8"; format=flowed
Content-Transfer-Encoding: 7bit

Plain text version.
--alt-1
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: quoted-printable

<html><body><p>HTML version =E2=80=94 with a dash.</p></body></html>
--alt-1--
"""

MIXED = f"""\
--mix-2
Content-Type: text/plain; charset=us-ascii

See the attachment.
--mix-2
Content-Type: application/pdf; name="report.pdf"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="report.pdf"; size=300
Content-Description: The quarterly report
Content-ID: <part2.report@example.org>

{PDF}--mix-2--
"""

NESTED = f"""\
--outer-3
Content-Type: multipart/alternative; boundary="inner-3"

--inner-3
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Grüße, café, naïve — eight-bit text.
--inner-3
Content-Type: multipart/related; boundary="rel-3"; type="text/html"

--rel-3
Content-Type: text/html; charset=utf-8
Content-Language: de, en
Content-Location: http://example.org/page.html

<p>Bild: <img src="cid:img3@example.org"></p>
--rel-3
Content-Type: image/png
Content-Transfer-Encoding: base64
Content-ID: <img3@example.org>
Content-Disposition: inline

{PNG}--rel-3--

--inner-3--
--outer-3
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64
Content-Disposition: attachment;
 filename*0*=UTF-8''%E6%97%A5%E6%9C%AC;
 filename*1="-report.bin"
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==

{BINARY}--outer-3--
epilogue text
"""

FORWARDED_INNER = """\
Date: Sun, 11 Feb 2024 08:00:00 +0100
From: "Inner, Sender" <inner@example.net>
To: =?UTF-8?Q?Z=C3=BCrich_Team?= <team@example.ch>
Subject: =?ISO-8859-1?Q?Caf=E9_menu?=
Message-ID: <inner-1@example.net>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="in-4"

--in-4
Content-Type: text/plain

Inner text.
--in-4
Content-Type: text/csv; charset=utf-8; name*=iso-8859-1'fr'caf%E9.csv
Content-Disposition: attachment; filename*=iso-8859-1'fr'caf%E9.csv

a,b,c
1,2,3
--in-4--
"""

RFC822 = f"""\
--fwd-4
Content-Type: text/plain; charset=us-ascii

Forwarding the message below.
--fwd-4
Content-Type: message/rfc822
Content-Disposition: inline

{FORWARDED_INNER}
--fwd-4--
"""

SIMPLE_RFC822 = """\
--fwd-5
Content-Type: message/rfc822; name="note.eml"

From: someone@example.com
Subject: Inner note
Date: 1 Jan 2024 00:00:00 -0000

Inner body line.
--fwd-5--
"""

DIGEST = """\
--dig-6

From: first@example.com
Subject: Digest item one

One.
--dig-6
Content-Type: message/rfc822

From: second@example.com
Subject: Digest item two

Two.
--dig-6--
"""

# (header lines, body or None for the default body); dates and addresses vary on purpose
