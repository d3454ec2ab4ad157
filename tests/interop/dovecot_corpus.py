"""The mailbox that the Dovecot differential test loads into both servers.

Fifty-six hand-written messages, octet for octet the same on every run (no
randomness, no clock): ``CORPUS`` lists them in mailbox order, each with the
internal date (arrival) it is given on both servers. Every message carries
``X-Corpus: N`` (its 1-based place) so the test can check that both servers
numbered the mailbox alike before it compares anything else.

What it covers: multipart/mixed, /alternative, /related and nested
multiparts; message/rfc822 attachments (one holding a multipart); RFC 2047
encoded subjects and names; RFC 2231 parameters (charset, language,
continuations); a message without Date, one without Subject, one without
Message-ID; reply chains over References and In-Reply-To, with parents that
are missing, Message-IDs used twice and a References loop; Re:/Fwd:/[list]
subject prefixes and trailers; dates in many zones, obsolete zone names and
two-digit years; Cc, Bcc, Reply-To, Sender and address groups; 8-bit bodies
and one raw UTF-8 header (RFC 6532).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final, NamedTuple

from tests.interop import dovecot_corpus_bodies as bodies

__all__ = ["CORPUS", "CorpusMessage"]


class CorpusMessage(NamedTuple):
    data: bytes
    arrival: datetime  # the internal date on both servers


_ARRIVAL_START: Final = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)


def _message(index: int, head: str, body: str | bytes = "A short body.\n") -> bytes:
    """Header lines (``head``, LF-separated) plus ``X-Corpus``, a blank line and
    the body, all with CRLF line ends."""
    lines = head.strip("\n").split("\n")
    lines.append(f"X-Corpus: {index}")
    top = "\r\n".join(lines).encode("utf-8") + b"\r\n\r\n"
    raw = body.encode("utf-8") if isinstance(body, str) else body
    return top + raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


_MESSAGES: Final[list[tuple[str, str | bytes | None]]] = [
    (  # 1 the plain, complete one
        """From: Alice Example <alice@example.org>
To: Bob <bob@example.com>
Subject: Project kickoff
Date: Mon, 04 Mar 2024 09:00:00 +0000
Message-ID: <kickoff-1@example.org>""",
        "Welcome to the project. Kickoff is on Monday.\n",
    ),
    (  # 2 reply by In-Reply-To
        """From: Bob <bob@example.com>
To: Alice Example <alice@example.org>
Cc: Carol <carol@example.net>, dave@example.net
Subject: Re: Project kickoff
Date: Mon, 04 Mar 2024 11:30:00 +0100
Message-ID: <kickoff-2@example.com>
In-Reply-To: <kickoff-1@example.org>""",
        "Sounds good.\n\n> Welcome to the project.\n",
    ),
    (  # 3 reply by References, two levels
        """From: Carol <carol@example.net>
To: Bob <bob@example.com>, Alice Example <alice@example.org>
Subject: RE: Re: Project kickoff
Date: Mon, 4 Mar 2024 12:00:00 -0000
Message-ID: <kickoff-3@example.net>
References: <kickoff-1@example.org>
 <kickoff-2@example.com>
In-Reply-To: <kickoff-2@example.com>""",
        None,
    ),
    (  # 4 reply whose parent is not in the mailbox
        """From: Dave <dave@example.net>
To: alice@example.org
Subject: Re: Project kickoff
Date: Tue, 05 Mar 2024 08:15:00 -0500
Message-ID: <kickoff-4@example.net>
References: <kickoff-1@example.org> <kickoff-missing@example.org>""",
        None,
    ),
    (  # 5 RFC 2047 subject and names
        """From: =?ISO-8859-1?Q?Andr=E9_Pirard?= <andre@example.be>
To: =?UTF-8?B?5bGx55Sw5aSq6YOO?= <yamada@example.jp>
Subject: =?UTF-8?B?8J+OiSBQYXJ0eSBpbnZpdGF0aW9u?=
Date: Wed, 06 Mar 2024 18:00:00 +0900
Message-ID: <party@example.be>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit""",
        "Party on Friday! Bring snacks — und Grüße.\n",
    ),
    (  # 6 encoded words split across two, Q with underscores
        """From: "Keith Moore" <moore@cs.utk.example>
To: =?US-ASCII?Q?Keith_Moore?= <moore@cs.utk.example>
Cc: =?ISO-8859-1?Q?Olle_J=E4rnefors?= <ojarnef@admin.kth.example>
Subject: =?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=
 =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=
Date: Thu, 07 Mar 2024 10:00:00 +0200
Message-ID: <rfc2047-example@cs.utk.example>""",
        None,
    ),
    (  # 7 multipart/alternative
        """From: Newsletter <news@lists.example.com>
To: alice@example.org
Subject: [news] March newsletter
Date: Fri, 08 Mar 2024 07:00:00 +0000
Message-ID: <news-march@lists.example.com>
List-Id: News <news.lists.example.com>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="alt-1\"""",
        bodies.ALTERNATIVE,
    ),
    (  # 8 multipart/mixed with a base64 attachment
        """From: Carol <carol@example.net>
To: Alice Example <alice@example.org>
Bcc: archive@example.net
Subject: Fwd: quarterly report
Date: Sat, 09 Mar 2024 14:45:10 +0530
Message-ID: <report-8@example.net>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=mix-2""",
        bodies.MIXED,
    ),
    (  # 9 nested multiparts, RFC 2231 continuation, 8-bit text
        """From: =?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <joerg@example.de>
To: Alice Example <alice@example.org>
Subject: Bilder und Bericht
Date: Sun, 10 Mar 2024 20:00:00 +0100
Message-ID: <nested-9@example.de>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer-3\"""",
        bodies.NESTED,
    ),
    (  # 10 a forwarded message/rfc822 holding a multipart
        """From: Bob <bob@example.com>
To: Alice Example <alice@example.org>
Subject: Fwd: Café menu
Date: Mon, 11 Mar 2024 09:09:09 +0000
Message-ID: <forward-10@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="fwd-4\"""",
        bodies.RFC822,
    ),
    (  # 11 no Date
        """From: Nodate <nodate@example.com>
To: alice@example.org
Subject: No date here
Message-ID: <nodate-11@example.com>""",
        "This message has no Date field.\n",
    ),
    (  # 12 no Subject
        """From: Nosubject <nosubject@example.com>
To: alice@example.org
Date: Tue, 12 Mar 2024 10:00:00 +0000
Message-ID: <nosubject-12@example.com>""",
        "This message has no Subject field.\n",
    ),
    (  # 13 no Message-ID, replying to 1
        """From: Erin <erin@example.org>
To: alice@example.org
Subject: Re: Project kickoff
Date: Tue, 12 Mar 2024 11:00:00 +0000
In-Reply-To: <kickoff-1@example.org>""",
        None,
    ),
    (  # 14 duplicate Message-ID (of 1), different subject
        """From: Mallory <mallory@example.com>
To: alice@example.org
Subject: Completely different topic
Date: Wed, 13 Mar 2024 10:00:00 +0000
Message-ID: <kickoff-1@example.org>""",
        None,
    ),
    (  # 15 and 16: a References loop
        """From: Loop One <loop1@example.com>
To: alice@example.org
Subject: Loop topic
Date: Wed, 13 Mar 2024 11:00:00 +0000
Message-ID: <loop-a@example.com>
References: <loop-b@example.com>""",
        None,
    ),
    (
        """From: Loop Two <loop2@example.com>
To: alice@example.org
Subject: Re: Loop topic
Date: Wed, 13 Mar 2024 12:00:00 +0000
Message-ID: <loop-b@example.com>
References: <loop-a@example.com>""",
        None,
    ),
    (  # 17 a group in To, an empty group in Cc
        """From: Secretary <sec@example.org>
To: Board: ann@example.org, "Ben B." <ben@example.org>;
Cc: undisclosed-recipients:;
Subject: [board] Minutes
Date: Thu, 14 Mar 2024 16:00:00 -0700
Message-ID: <minutes-17@example.org>""",
        "Minutes attached inline: nothing decided.\n",
    ),
    (  # 18 Sender, Reply-To, several From
        """From: Ann <ann@example.org>, Ben <ben@example.org>
Sender: Secretary <sec@example.org>
Reply-To: Board List <board@example.org>
To: Members <members@example.org>
Subject: [board] Re: Minutes
Date: Fri, 15 Mar 2024 09:00:00 +1000
Message-ID: <minutes-18@example.org>
In-Reply-To: <minutes-17@example.org>""",
        None,
    ),
    (  # 19 obsolete zone name and no day-of-week
        """From: Old Timer <old@example.edu>
To: alice@example.org
Subject: Obsolete date
Date: 16 Mar 2024 13:00:00 EST
Message-ID: <obs-19@example.edu>""",
        None,
    ),
    (  # 20 two-digit year, GMT
        """From: Older Timer <older@example.edu>
To: alice@example.org
Subject: Two digit year
Date: Sat, 16 Mar 99 13:00:00 GMT
Message-ID: <obs-20@example.edu>""",
        None,
    ),
    (  # 21 unreadable Date
        """From: Broken <broken@example.com>
To: alice@example.org
Subject: Broken date
Date: sometime last week
Message-ID: <broken-21@example.com>""",
        None,
    ),
    (  # 22 Fwd: Re: [list] prefixes
        """From: Frank <frank@example.com>
To: Bob <bob@example.com>
Subject: Fwd: Re: [dev] Build broken
Date: Sun, 17 Mar 2024 10:00:00 +0000
Message-ID: <build-22@example.com>""",
        None,
    ),
    (  # 23 the original
        """From: Grace <grace@example.com>
To: dev@lists.example.com
Subject: [dev] Build broken
Date: Sat, 16 Mar 2024 22:00:00 +0000
Message-ID: <build-23@example.com>""",
        "The build is broken on main.\n",
    ),
    (  # 24 trailer and a bracketed forward
        """From: Heidi <heidi@example.com>
To: alice@example.org
Subject: [Fwd: Build broken]
Date: Mon, 18 Mar 2024 10:00:00 +0000
Message-ID: <build-24@example.com>""",
        None,
    ),
    (  # 25 (fwd) trailer, odd spacing
        """From: Ivan <ivan@example.com>
To: alice@example.org
Subject:   re :  Build broken (fwd)
Date: Mon, 18 Mar 2024 11:00:00 +0000
Message-ID: <build-25@example.com>""",
        None,
    ),
    (  # 26 Re[2]: and a tab
        """From: Judy <judy@example.com>
To: alice@example.org
Subject: Re[2]:\tBuild  broken
Date: Mon, 18 Mar 2024 12:00:00 +0000
Message-ID: <build-26@example.com>
References: <build-23@example.com>""",
        None,
    ),
    (  # 27 FW: and lowercase
        """From: Karl <karl@example.com>
To: alice@example.org
Subject: fw: project KICKOFF
Date: Tue, 19 Mar 2024 08:00:00 +0000
Message-ID: <kickoff-27@example.com>""",
        None,
    ),
    (  # 28 a simple message/rfc822 body part
        """From: Liam <liam@example.com>
To: alice@example.org
Subject: A note inside
Date: Tue, 19 Mar 2024 09:00:00 +0000
Message-ID: <note-28@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="fwd-5\"""",
        bodies.SIMPLE_RFC822,
    ),
    (  # 29 multipart/digest: default type message/rfc822
        """From: Digest <digest@lists.example.com>
To: alice@example.org
Subject: [digest] Vol 1, Issue 1
Date: Tue, 19 Mar 2024 10:00:00 +0000
Message-ID: <digest-29@lists.example.com>
MIME-Version: 1.0
Content-Type: multipart/digest; boundary="dig-6\"""",
        bodies.DIGEST,
    ),
    (  # 30 top-level message/rfc822
        """From: Mia <mia@example.com>
To: alice@example.org
Subject: Bounce-like
Date: Tue, 19 Mar 2024 11:00:00 +0000
Message-ID: <rfc822-30@example.com>
MIME-Version: 1.0
Content-Type: message/rfc822""",
        """From: Original <orig@example.com>
To: nobody@example.com
Subject: The original
Message-ID: <orig-30@example.com>

Original body.
""",
    ),
    (  # 31 quoted-printable, 8-bit charset parameters in odd case
        """From: Nina <nina@example.com>
To: alice@example.org
Subject: =?utf-8?q?Umlaute_=C3=A4=C3=B6=C3=BC?=
Date: Wed, 20 Mar 2024 10:00:00 +0100
Message-ID: <qp-31@example.com>
MIME-Version: 1.0
Content-Type: Text/Plain; CharSet="ISO-8859-1"; Format=Flowed; DelSp=Yes
Content-Transfer-Encoding: Quoted-Printable""",
        "Sch=F6ne Gr=FC=DFe aus M=FCnchen.\n",
    ),
    (  # 32 8-bit body, latin-1
        """From: Oscar <oscar@example.com>
To: alice@example.org
Subject: Latin-1 body
Date: Wed, 20 Mar 2024 11:00:00 +0000
Message-ID: <latin1-32@example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: 8bit""",
        "Caf\xe9 cr\xe8me br\xfbl\xe9e.\n".encode("latin-1"),
    ),
    (  # 33 raw UTF-8 in header fields (RFC 6532)
        """From: Zoë <zoe@example.com>
To: alice@example.org
Subject: Grüße aus Zürich
Date: Wed, 20 Mar 2024 12:00:00 +0100
Message-ID: <utf8-33@example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit""",
        "Grüße.\n",
    ),
    (  # 34 comments and quoted strings in addresses
        """From: "Smith, John (Sales)" <john.smith@example.com> (work)
To: "Quoted \\"Name\\"" <quoted@example.com>, plain@example.com (Plain Person)
Cc: <angle-only@example.com>
Subject: Address forms
Date: Thu, 21 Mar 2024 10:00:00 +0000
Message-ID: <addr-34@example.com>""",
        None,
    ),
    (  # 35 route and bare local part
        """From: Route <@relay.example.com:route@example.com>
To: localonly
Subject: Route address
Date: Thu, 21 Mar 2024 11:00:00 +0000
Message-ID: <addr-35@example.com>""",
        None,
    ),
    (  # 36 reply to the duplicate Message-ID
        """From: Bob <bob@example.com>
To: Mallory <mallory@example.com>
Subject: Re: Completely different topic
Date: Thu, 21 Mar 2024 12:00:00 +0000
Message-ID: <dup-reply-36@example.com>
In-Reply-To: <kickoff-1@example.org>""",
        None,
    ),
    (  # 37 References with garbage and a self reference
        """From: Peggy <peggy@example.com>
To: alice@example.org
Subject: Re: Self reference
Date: Fri, 22 Mar 2024 10:00:00 +0000
Message-ID: <self-37@example.com>
References: not-an-id <self-37@example.com>""",
        None,
    ),
    (  # 38 In-Reply-To with text around the id, no References
        """From: Quinn <quinn@example.com>
To: Grace <grace@example.com>
Subject: Re: [dev] Build broken
Date: Fri, 22 Mar 2024 11:00:00 +0000
Message-ID: <build-38@example.com>
In-Reply-To: Your message of Sat, 16 Mar 2024 <build-23@example.com>""",
        None,
    ),
    (  # 39 a long body for LARGER/SIZE
        """From: Rita <rita@example.com>
To: alice@example.org
Subject: Long report
Date: Fri, 22 Mar 2024 12:00:00 -1100
Message-ID: <long-39@example.com>""",
        "".join(f"Line {n:04d} of the long report, padded to length.\n" for n in range(200)),
    ),
    (  # 40 same Date as 41 (ties go by number), sorting by CC
        """From: Steve <steve@example.com>
To: Zed <zed@example.com>
Cc: Amy <amy@example.com>
Subject: Same time A
Date: Sat, 23 Mar 2024 10:00:00 +0000
Message-ID: <tie-40@example.com>""",
        None,
    ),
    (
        """From: Steve <steve@example.com>
To: Yann <yann@example.com>
Cc: =?UTF-8?Q?=C3=84rger?= <aerger@example.com>
Subject: Same time B
Date: Sat, 23 Mar 2024 11:00:00 +0100
Message-ID: <tie-41@example.com>""",
        None,
    ),
    (  # 42 empty Subject field and a folded From
        """From: Tina
 Turner <tina@example.com>
To: alice@example.org
Subject:
Date: Sun, 24 Mar 2024 10:00:00 +0000
Message-ID: <empty-42@example.com>""",
        None,
    ),
    (  # 43 uppercase field names, no space after colons
        """FROM:Uma <uma@example.com>
TO:alice@example.org
SUBJECT:Re:Loop topic
DATE:Sun, 24 Mar 2024 11:00:00 +0000
MESSAGE-ID:<upper-43@example.com>
IN-REPLY-TO:<loop-a@example.com>""",
        None,
    ),
    (  # 44 Content-Disposition with RFC 2231 value on a single part
        """From: Victor <victor@example.com>
To: alice@example.org
Subject: Single attachment
Date: Sun, 24 Mar 2024 12:00:00 +0000
Message-ID: <single-44@example.com>
MIME-Version: 1.0
Content-Type: application/zip; name="archive.zip"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename*=UTF-8''%C3%A0rchive.zip""",
        bodies.b64(b"PK\x03\x04" + bytes(60)),
    ),
    (  # 45 no MIME-Version, no Content-Type: text/plain us-ascii defaults
        """From: Wendy <wendy@example.com>
To: alice@example.org
Subject: Defaults
Date: Mon, 25 Mar 2024 10:00:00 +0000
Message-ID: <defaults-45@example.com>""",
        "Default content type.\n",
    ),
    (  # 46 multiple From-like fields, and a second Subject
        """From: Xavier <xavier@example.com>
To: alice@example.org
Subject: First subject
Subject: Second subject
Date: Mon, 25 Mar 2024 11:00:00 +0000
Message-ID: <two-subjects-46@example.com>""",
        None,
    ),
    (  # 47 reply to a message later in the mailbox
        """From: Yvonne <yvonne@example.com>
To: alice@example.org
Subject: Re: Later topic
Date: Mon, 25 Mar 2024 12:00:00 +0000
Message-ID: <early-47@example.com>
References: <later-48@example.com>""",
        None,
    ),
    (
        """From: Zach <zach@example.com>
To: alice@example.org
Subject: Later topic
Date: Mon, 25 Mar 2024 09:00:00 +0000
Message-ID: <later-48@example.com>""",
        None,
    ),
    (  # 49 two replies sharing a missing parent (a dummy with two children)
        """From: Ann <ann@example.org>
To: alice@example.org
Subject: Re: Lost parent
Date: Tue, 26 Mar 2024 10:00:00 +0000
Message-ID: <lost-49@example.org>
References: <lost-parent@example.org>""",
        None,
    ),
    (
        """From: Ben <ben@example.org>
To: alice@example.org
Subject: Re: Lost parent
Date: Tue, 26 Mar 2024 09:00:00 +0000
Message-ID: <lost-50@example.org>
References: <lost-parent@example.org>""",
        None,
    ),
    (  # 51 same base subject as 49/50 but no references
        """From: Carl <carl@example.org>
To: alice@example.org
Subject: Lost parent
Date: Tue, 26 Mar 2024 11:00:00 +0000
Message-ID: <lost-51@example.org>""",
        None,
    ),
    (  # 52 a far-future and far-past pair; Bcc only
        """From: Time Traveller <tt@example.com>
Bcc: Hidden <hidden@example.com>
Subject: From the future
Date: Fri, 31 Dec 2038 23:59:59 -1200
Message-ID: <future-52@example.com>""",
        None,
    ),
    (
        """From: Time Traveller <tt@example.com>
To: Past <past@example.com>
Subject: From the past
Date: Thu, 01 Jan 1970 00:00:00 +1400
Message-ID: <past-53@example.com>""",
        None,
    ),
    (  # 54 multipart with a missing close delimiter and an empty part
        """From: Sloppy <sloppy@example.com>
To: alice@example.org
Subject: Unterminated multipart
Date: Wed, 27 Mar 2024 10:00:00 +0000
Message-ID: <sloppy-54@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=sl-7""",
        """--sl-7
Content-Type: text/plain

first part
--sl-7

--sl-7
Content-Type: text/plain; charset=utf-8

last part, never closed
""",
    ),
    (  # 55 and 56: sharp s against "SS" in subjects; groups in From and Cc
        """From: Team: ;
To: alice@example.org
Subject: Straße
Date: Thu, 28 Mar 2024 10:00:00 +0000
Message-ID: <strasse-55@example.de>""",
        None,
    ),
    (
        """From: =?UTF-8?Q?=C3=89mile?= <emile@example.fr>
To: alice@example.org
Cc: Friends: zoe@example.com, amy@example.com;, bob@example.com
Subject: Re: STRASSE
Date: Thu, 28 Mar 2024 11:00:00 +0000
Message-ID: <strasse-56@example.de>""",
        None,
    ),
]


def _corpus() -> list[CorpusMessage]:
    corpus = []
    for index, (head, body) in enumerate(_MESSAGES, start=1):
        data = _message(index, head, body if body is not None else "A short body.\n")
        # arrivals two hours apart, a few out of order, all at midday or so in UTC
        hours = (index * 7) % 23 - 11 if index % 9 == 0 else 0
        arrival = _ARRIVAL_START + timedelta(days=index // 2, hours=hours, minutes=index)
        corpus.append(CorpusMessage(data, arrival))
    return corpus


CORPUS: Final = _corpus()
