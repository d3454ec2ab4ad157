"""Generated mail for the benchmarks: realistic headers and text, an exact size, CRLF.

The same seed gives the same messages, so that every server of a run, and
every run, gets the same mail. Not a test; CI does not run it.
"""

from __future__ import annotations

import base64
import random
import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

DOMAIN = "example.test"

TEXT = (
    "the a of to and in for on with as at by from about after before over under report "
    "meeting budget schedule review project deadline update notes agenda minutes release "
    "build deploy customer invoice order shipment account backup restore server mailbox "
    "folder message quarter week month today tomorrow please thanks regards question answer "
    "draft final version change request ticket issue plan team office travel lunch call "
    "figures numbers chart table summary attached below above soon later again still"
)
WORDS = TEXT.split()
PEOPLE = (
    "Alice Martin", "Bruno Keller", "Chiara Rossi", "Dmitri Volkov", "Emma Lindqvist",
    "Farid Haddad", "Grace Okafor", "Hiroshi Tanaka", "Ines Moreau", "Jonas Becker",
    "Karin Svensson", "Luis Ortega", "Mei Chen", "Nora Fischer", "Omar Aziz", "Priya Nair",
)  # fmt: skip
MAILERS = ("Thunderbird 115.9.0", "Mutt/2.2.12", "Apple Mail (2.3774)", "Roundcube 1.6.6")


def address_of(name: str) -> str:
    first, last = name.lower().split()
    return f"{first}.{last}@partner.test"


def text_line(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(6, 12))]
    return " ".join(words).capitalize() + rng.choice((".", ".", ",", "?", ":"))


def make_message(rng: random.Random, number: int, size: int) -> bytes:
    """One message of exactly SIZE octets: a sender's header, a text body, CRLF."""
    author = rng.choice(PEOPLE)
    sender = address_of(author)
    date = datetime(2024, 3, 4, 8, 0, tzinfo=UTC) + timedelta(minutes=37 * number)
    subject = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 7))).capitalize()
    reply = number > 1 and rng.random() < 0.3
    header = [
        f"Return-Path: <{sender}>",
        f"Delivered-To: team@{DOMAIN}",
        f"Received: from mx{rng.randint(1, 4)}.partner.test"
        f" (mx.partner.test [192.0.2.{number % 250 + 1}])",
        f"\tby mail.{DOMAIN} (postoffice) with ESMTPS id {rng.getrandbits(48):012X}",
        f"\tfor <team@{DOMAIN}>; {format_datetime(date + timedelta(seconds=3))}",
        f"Received: from [198.51.100.{rng.randint(2, 254)}] (laptop.partner.test)",
        f"\tby mx.partner.test with ESMTPSA id {rng.getrandbits(40):010x};",
        f"\t{format_datetime(date + timedelta(seconds=1))}",
        f"Date: {format_datetime(date)}",
        f'From: "{author}" <{sender}>',
        f"To: Team <team@{DOMAIN}>",
    ]
    if rng.random() < 0.3:
        other = rng.choice(PEOPLE)
        header.append(f"Cc: {other} <{address_of(other)}>")
    header.append(f"Subject: {'Re: ' if reply else ''}{subject} #{number}")
    header.append(f"Message-ID: <{number}.{rng.getrandbits(32):08x}@partner.test>")
    if reply:
        earlier = f"<{rng.randrange(1, number)}.0@partner.test>"
        header += [f"In-Reply-To: {earlier}", f"References: {earlier}"]
    header += [
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8; format=flowed",
        "Content-Transfer-Encoding: 8bit",
    ]
    if rng.random() < 0.5:
        header.append(f"X-Mailer: {rng.choice(MAILERS)}")
    head = "\r\n".join(header) + "\r\n\r\n"
    signature = f"\r\n-- \r\n{author}\r\nPartner Ltd.\r\n"
    budget = size - len(head) - len(signature)
    if budget < 2:
        raise SystemExit(f"--size {size} is too small for the header of message {number}")
    lines = ["Hello team,", ""]
    body: list[str] = []
    left = budget
    while left >= 2:
        line = lines.pop(0) if lines else text_line(rng)
        if not lines and rng.random() < 0.12:
            lines.append("")  # a paragraph break
        if rng.random() < 0.02:
            line = ". " + line  # a leading dot now and then: dot-stuffing on the wire
        rest = left - len(line) - 2
        if rest >= 0 and rest != 1:
            body.append(line)
            left = rest
        else:  # the last line, cut to fill the size exactly
            body.append((line + " " + "x" * left)[: left - 2])
            left = 0
    data = (head + "\r\n".join(body) + "\r\n" + signature).encode("ascii")
    assert len(data) == size, (len(data), size)
    return data


def make_messages(count: int, size: int) -> list[bytes]:
    rng = random.Random(20240304)
    return [make_message(rng, number, size) for number in range(1, count + 1)]


def make_varied_message(rng: random.Random, number: int, size: int) -> tuple[bytes, float]:
    """A message of about SIZE octets for a big mailbox, and its Date as a POSIX time.

    ``make_message``'s text mail, with Message-IDs that replies really refer to
    (``<N.0@partner.test>``, so that threads form), and every 7th message a
    multipart/mixed: the text, then a base64 attachment making up the size.
    """
    date = datetime(2024, 3, 4, 8, 0, tzinfo=UTC) + timedelta(minutes=37 * number)
    multipart = number % 7 == 0
    text_size = max(1500, size // 3) if multipart else size
    data = make_message(rng, number, text_size)
    data = re.sub(rb"(Message-ID: <\d+\.)[0-9a-f]+@", rb"\g<1>0@", data, count=1)
    if not multipart:
        return data, date.timestamp()
    head, _, body = data.partition(b"\r\n\r\n")
    head, _, text_type = head.partition(b"\r\nContent-Type: ")
    boundary = b"=-part-%d" % number
    attachment = base64.encodebytes(rng.randbytes(max(0, (size - text_size) * 3 // 4)))
    parts = [
        head + b'\r\nContent-Type: multipart/mixed; boundary="' + boundary + b'"\r\n',
        b"This is a multi-part message in MIME format.\r\n",
        b"--" + boundary + b"\r\nContent-Type: " + text_type + b"\r\n\r\n" + body,
        b"--" + boundary + b'\r\nContent-Type: application/pdf; name="report-%d.pdf"\r\n'
        b'Content-Disposition: attachment; filename="report-%d.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        % (number, number)
        + attachment.replace(b"\n", b"\r\n"),
        b"--" + boundary + b"--\r\n",
    ]
    return b"\r\n".join(parts[:2]) + b"\r\n".join(parts[2:]), date.timestamp()
