"""Expected ENVELOPE and BODYSTRUCTURE of every message in ``corpus/``.

Written by hand from the rules (RFC 3501 §7.4.2 and §9, RFC 2045/2046/2231,
RFC 5322 §3.4) and the decisions in the module docstrings of
``postoffice.mime``; sizes are the ``len`` of the body text as it stands in
the .eml file, lines the number of line ends in it. A multipart child's body
stops before the line break that precedes the next delimiter (RFC 2046
§5.1.1), so its last line has no line end and is not counted.

Where Dovecot 2.3 answers differently, a comment says so and why we differ.
"""

from __future__ import annotations

from typing import Any

from tests.mime.corpus_expected_more import EXPECTED_MORE
from tests.mime.corpus_helpers import (
    A_COM,
    A_ORG,
    EMPTY_PART,
    NIL,
    S_ORG,
    US_ASCII,
    addr,
    basic,
    env,
    message_ext,
    multi,
    plain,
    size,
    text,
)

EXPECTED: dict[str, tuple[list[Any], list[Any]]] = {
    "01_simple_text": (
        env(
            "Mon, 7 Feb 1994 21:52:25 -0800 (PST)",
            "afternoon meeting",
            [addr("Fred Foobar", "foobar", "Blurdybloop.example")],
            to=[addr(NIL, "mooch", "owatagu.example")],
            message_id="<B27397-0100000@Blurdybloop.example>",
        ),
        plain(
            size("Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n"),
            1,
            ["CHARSET", "US-ASCII"],
        ),
    ),
    "02_simple_lf": (
        env(
            "Tue, 1 Aug 2023 10:00:00 +0200",
            "bare LF line ends",
            [addr(NIL, "alice", "example.org")],
            to=[addr(NIL, "bob", "example.net")],
        ),
        plain(size("line one\nline two\n"), 2),
    ),
    "03_no_content_type": (
        env(NIL, "no MIME at all", A_ORG),
        plain(size("Just text.\r\nSecond line.\r\n"), 2),
    ),
    "04_multipart_mixed": (
        env(
            NIL,
            "attachment",
            [addr("Sender", "s", "example.org")],
            to=[addr(NIL, "r", "example.net")],
        ),
        multi(
            [
                plain(size("See attached."), 0, ["CHARSET", "utf-8"]),
                basic(
                    "APPLICATION",
                    "OCTET-STREAM",
                    ["NAME", "data.bin"],
                    size("AAECAwQF"),
                    enc="BASE64",
                    dsp=["ATTACHMENT", ["FILENAME", "data.bin"]],
                ),
            ],
            "MIXED",
            ["BOUNDARY", "XyZ"],
        ),
    ),
    "05_alternative_in_mixed": (
        env(NIL, "alt in mixed", S_ORG),
        multi(
            [
                multi(
                    [plain(size("plain"), 0), text("HTML", US_ASCII, size("<b>html</b>"), 0)],
                    "ALTERNATIVE",
                    ["BOUNDARY", "inner"],
                ),
                basic("APPLICATION", "PDF", NIL, size("JVBERi0="), enc="BASE64"),
            ],
            "MIXED",
            ["BOUNDARY", "outer"],
        ),
    ),
    "06_related": (
        env(NIL, "related", S_ORG),
        multi(
            [
                text("HTML", ["CHARSET", "utf-8"], size('<img src="cid:img1@example.org">'), 0),
                basic(
                    "IMAGE",
                    "PNG",
                    NIL,
                    size("iVBORw0KGgo="),
                    id="<img1@example.org>",
                    enc="BASE64",
                    loc="http://example.org/img.png",
                ),
            ],
            "RELATED",
            ["TYPE", "text/html", "BOUNDARY", "rel"],
        ),
    ),
    "07_nested_3_deep": (
        env(NIL, "nested"),
        multi(
            [
                multi(
                    [multi([plain(size("deep"), 0)], "MIXED", ["BOUNDARY", "L3"])],
                    "MIXED",
                    ["BOUNDARY", "L2"],
                ),
                plain(size("shallow"), 0),
            ],
            "MIXED",
            ["BOUNDARY", "L1"],
        ),
    ),
    "08_rfc822_with_multipart": (
        env(NIL, "Fwd: inner", [addr(NIL, "fwd", "example.org")]),
        multi(
            [
                plain(size("forwarded below"), 0),
                message_ext(
                    size(
                        "Date: Wed, 2 Aug 2023 08:00:00 +0000\r\n"
                        "From: Inner Author <inner@example.com>\r\n"
                        "To: someone@example.com\r\n"
                        "Subject: inner\r\n"
                        "Message-ID: <inner-1@example.com>\r\n"
                        "Content-Type: multipart/alternative; boundary=b2\r\n"
                        "\r\n"
                        "--b2\r\n\r\nplain\r\n"
                        "--b2\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n"
                        "--b2--\r\n"
                    ),
                    env(
                        "Wed, 2 Aug 2023 08:00:00 +0000",
                        "inner",
                        [addr("Inner Author", "inner", "example.com")],
                        to=[addr(NIL, "someone", "example.com")],
                        message_id="<inner-1@example.com>",
                    ),
                    multi(
                        [plain(size("plain"), 0), text("HTML", US_ASCII, size("<p>x</p>"), 0)],
                        "ALTERNATIVE",
                        ["BOUNDARY", "b2"],
                    ),
                    15,  # 6 header lines, the empty line, 8 body lines
                    desc="forwarded message",
                ),
            ],
            "MIXED",
            ["BOUNDARY", "b1"],
        ),
    ),
    "09_rfc822_simple": (
        env(NIL, "bounce"),
        multi(
            [
                plain(size("report"), 0),
                message_ext(
                    size("From: orig@example.org\r\nSubject: original\r\n\r\norig body"),
                    env(NIL, "original", [addr(NIL, "orig", "example.org")]),
                    plain(size("orig body"), 0),
                    3,
                ),
            ],
            "REPORT",
            ["REPORT-TYPE", "delivery-status", "BOUNDARY", "r"],
        ),
    ),
    "10_digest": (
        env(NIL, "digest"),
        multi(
            [
                # RFC 2046 §5.1.5: a digest part without Content-Type is message/rfc822
                message_ext(
                    size("From: one@example.org\r\nSubject: first\r\n\r\nbody one"),
                    env(NIL, "first", [addr(NIL, "one", "example.org")]),
                    plain(size("body one"), 0),
                    3,
                ),
                message_ext(
                    size("Subject: second\r\n\r\nbody two"),
                    env(NIL, "second"),
                    plain(size("body two"), 0),
                    2,
                ),
                plain(size("not a message"), 0),
            ],
            "DIGEST",
            ["BOUNDARY", "d"],
        ),
    ),
    "11_encoded_words": (
        # RFC 3501 §7.4.2: envelope strings are sent raw; the client decodes RFC 2047
        env(
            NIL,
            "=?utf-8?B?SGVsbG8gV8O2cmxk?= =?utf-8?q?_again?=",
            [addr("=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?=", "keld", "example.dk")],
            to=[addr("=?US-ASCII?Q?Keith_Moore?=", "moore", "example.edu")],
        ),
        plain(size("encoded words\r\n"), 1),
    ),
    "12_rfc2231": (
        env(NIL, "RFC 2231"),
        multi(
            [
                # RFC 2231 §4.1's own example: continuations with a charset
                basic(
                    "APPLICATION",
                    "X-STUFF",
                    ["TITLE", "This is even more ***fun*** isn't it!"],
                    size("x"),
                ),
                # not ASCII once decoded: sent again in RFC 2231 form, as UTF-8.
                # (Dovecot passes the RFC 2231 text through as it stands.)
                plain(
                    size("y"),
                    0,
                    ["CHARSET", "utf-8", "NAME*", "utf-8''%E2%82%AC%20rates.txt"],
                    dsp=["ATTACHMENT", ["FILENAME*", "utf-8''%C3%A9t%C3%A9.txt"]],
                ),
            ],
            "MIXED",
            ["BOUNDARY", "p"],
        ),
    ),
    "13_eightbit_headers": (
        env(
            NIL,
            "Grüße aus Köln".encode(),
            [addr("Jörg Müller".encode(), "joerg", "example.de")],
            to=[addr(NIL, "zoë".encode(), "example.fr")],
        ),
        plain(size("Grüße\r\n"), 1, ["CHARSET", "utf-8"], enc="8BIT"),
    ),
    "14_missing_close_boundary": (
        env(NIL, "truncated"),
        multi(
            [plain(size("first"), 0), plain(size("second and last, no close\r\n"), 1)],
            "MIXED",
            ["BOUNDARY", "m"],
        ),
    ),
    "15_wrong_boundary": (
        env(NIL, "boundary never used"),
        multi([EMPTY_PART], "MIXED", ["BOUNDARY", "expected"]),
    ),
    "16_preamble_epilogue": (
        env(NIL, "preamble"),
        multi([plain(size("only part"), 0)], "MIXED", ["BOUNDARY", "pe"]),
    ),
    "17_empty_body": (env(NIL, "empty body", A_ORG), plain(0, 0)),
    "18_header_no_blank_line": (env(NIL, "no blank line", A_ORG), plain(0, 0)),
    "19_bad_content_type": (
        # RFC 2045 §5.2: an invalid Content-Type is taken as text/plain; us-ascii
        env(NIL, "bad type"),
        plain(size("body\r\n"), 1, enc="8BIT"),
    ),
    "20_base64_body": (
        env(NIL, "base64"),
        plain(size("SGVsbG8gd8O2cmxkIQ==\r\n"), 1, ["CHARSET", "utf-8"], enc="BASE64"),
    ),
    "21_qp_body": (
        env(NIL, "qp"),
        plain(
            size("caf=E9 soft=\r\nbreak\r\n"),
            2,
            ["CHARSET", "iso-8859-1"],
            enc="QUOTED-PRINTABLE",
        ),
    ),
    "22_group_addresses": (
        env(
            NIL,
            "groups",
            [addr(NIL, "list", "example.org")],
            to=[
                addr(NIL, "A Group", NIL),
                addr(NIL, "ed", "example.com"),
                addr("Jane", "jane", "example.com"),
                addr(NIL, NIL, NIL),
            ],
            cc=[addr(NIL, "undisclosed-recipients", NIL), addr(NIL, NIL, NIL)],
        ),
        plain(size("g\r\n"), 1),
    ),
    "23_route_address": (
        env(
            NIL,
            "route",
            [addr("Route User", "user", "final.example", "@relay1.example,@relay2.example")],
        ),
        plain(size("r\r\n"), 1),
    ),
    "24_quoted_names": (
        env(
            NIL,
            "quoting",
            [addr('Doe, "JD" John', "john", "example.com")],
            to=[addr(NIL, "quoted local", "example.com"), addr(NIL, "empty", "example.com")],
        ),
        plain(size("q\r\n"), 1),
    ),
    "25_multiple_from": (
        # the first field wins (Dovecot would list both From addresses)
        env(NIL, "two from fields", [addr("First", "first", "example.com")]),
        plain(size("m\r\n"), 1),
    ),
    "26_no_date": (
        env(NIL, NIL, [addr(NIL, "nodate", "example.com")], to=[addr(NIL, "x", "example.com")]),
        plain(size("no date, no subject\r\n"), 1),
    ),
    "27_duplicate_headers": (
        # the first field wins (Dovecot takes the last Subject and lists both To)
        env(
            NIL,
            "first subject",
            to=[addr(NIL, "one", "example.com")],
            message_id="<first@example.com>",
        ),
        plain(size("d\r\n"), 1),
    ),
    "28_long_folded_header": (
        env(
            NIL,
            # RFC 5322 §2.2.3: unfolding removes each CRLF, keeps the white space
            "this subject is folded  over several\tlines of text",
            [addr(NIL, "folder", "example.com")],
            to=[
                addr(NIL, "a", "example.com"),
                addr(NIL, "b", "example.com"),
                addr(NIL, "c", "example.com"),
            ],
        ),
        plain(size("f\r\n"), 1),
    ),
    "29_boundary_odd_chars": (
        env(NIL, "odd boundary"),
        multi([plain(size("part"), 0)], "MIXED", ["BOUNDARY", "'()+_,-./:=? odd"]),
    ),
    "30_message_id_folded": (
        env(
            from_=A_COM,
            in_reply_to="<parent@example.com>",
            # leading white space of the unfolded value is dropped (Dovecot keeps "  <...")
            message_id="<folded-id@example.com>",
        ),
        plain(size("i\r\n"), 1),
    ),
}

EXPECTED.update(EXPECTED_MORE)
