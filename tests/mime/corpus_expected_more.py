"""Expected values for corpus messages 31 to 60 (see ``corpus_expected``)."""

from __future__ import annotations

from typing import Any

from tests.mime.corpus_helpers import (
    A_COM,
    EMPTY_PART,
    NIL,
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

EXPECTED_MORE: dict[str, tuple[list[Any], list[Any]]] = {
    "31_comment_names": (
        env(
            from_=[addr("Comment Name", "user", "example.com")],
            to=[
                addr("Other (nested) Name", "other", "example.com"),
                addr("Phrase Wins", "p", "example.com"),
            ],
        ),
        plain(size("c\r\n"), 1),
    ),
    "32_sender_reply_to": (
        env(
            from_=[addr("Author", "author", "example.com")],
            sender=[addr("Secretary", "sec", "example.com")],
            reply_to=[addr(NIL, "list", "example.com")],
            to=[addr(NIL, "x", "example.com")],
            cc=[addr(NIL, "c1", "example.com"), addr(NIL, "c2", "example.com")],
            bcc=[addr(NIL, "hidden", "example.com")],
        ),
        plain(size("s\r\n"), 1),
    ),
    "33_empty_fields": (
        # present but empty: "" for Date/Subject, NIL for To, From for Sender and
        # Reply-To (", " holds no address; Dovecot gives a MISSING_MAILBOX entry)
        env("", "", [addr(NIL, "f", "example.com")]),
        plain(size("e\r\n"), 1),
    ),
    "34_missing_domain": (
        env(
            from_=[addr(NIL, "root", "MISSING_DOMAIN")],
            to=[addr(NIL, "MISSING_MAILBOX", "MISSING_DOMAIN")],
            cc=[addr(NIL, "local-only", "MISSING_DOMAIN")],
        ),
        plain(size("m\r\n"), 1),
    ),
    "35_garbage_address": (
        env(
            from_=[addr(NIL, "sender", "example.com")],
            to=[addr("undisclosed recipients", "MISSING_MAILBOX", "MISSING_DOMAIN")],
            # "@@@" holds no address: one placeholder entry; "<<a@b>>" is read as <a@b>
            cc=[addr(NIL, "MISSING_MAILBOX", "MISSING_DOMAIN"), addr(NIL, "a", "b")],
        ),
        plain(size("g\r\n"), 1),
    ),
    "36_disposition_params": (
        env(NIL, "disposition"),
        plain(
            size("hello world!"),
            0,
            dsp=["INLINE", ["FILENAME", "a.txt", "SIZE", "12"]],
        ),
    ),
    "37_content_fields": (
        env(NIL, "fields"),
        plain(
            size("x\r\n"),
            1,
            id="<part@example.com>",
            desc="A description",
            md5="Q2hlY2sgSW50ZWdyaXR5IQ==",
            lang=["en", "de"],
            loc="http://example.com/long/path.txt",
        ),
    ),
    "38_multipart_extension": (
        env(NIL, "multipart extension"),
        multi(
            [plain(size("a"), 0)],
            "MIXED",
            ["BOUNDARY", "me"],
            dsp=["INLINE", NIL],
            lang=["fr"],
            loc="http://example.com/m",
        ),
    ),
    "39_message_global": (
        env(NIL, "global"),
        multi(
            [
                message_ext(
                    size("From: Zoë <zoë@example.fr>\r\nSubject: Grüße\r\n\r\nHallo"),
                    env(
                        NIL,
                        "Grüße".encode(),
                        [addr("Zoë".encode(), "zoë".encode(), "example.fr")],
                    ),
                    plain(size("Hallo"), 0),
                    3,
                    subtype="GLOBAL",
                ),
            ],
            "MIXED",
            ["BOUNDARY", "g"],
        ),
    ),
    "40_rfc822_toplevel": (
        env(NIL, "outer", [addr(NIL, "outer", "example.com")]),
        message_ext(
            size("From: inner@example.com\r\nSubject: inner\r\n\r\ninner body\r\n"),
            env(NIL, "inner", [addr(NIL, "inner", "example.com")]),
            plain(size("inner body\r\n"), 1),
            4,
        ),
    ),
    "41_nested_rfc822": (
        env(NIL, "level 0"),
        multi(
            [
                message_ext(
                    size(
                        "Subject: level 1\r\n"
                        "Content-Type: multipart/mixed; boundary=n1\r\n"
                        "\r\n"
                        "--n1\r\n\r\nlevel 1 text\r\n"
                        "--n1\r\nContent-Type: message/rfc822\r\n\r\n"
                        "Subject: level 2\r\n\r\nlevel 2 text\r\n"
                        "--n1--"
                    ),
                    env(NIL, "level 1"),
                    multi(
                        [
                            plain(size("level 1 text"), 0),
                            message_ext(
                                size("Subject: level 2\r\n\r\nlevel 2 text"),
                                env(NIL, "level 2"),
                                plain(size("level 2 text"), 0),
                                2,
                            ),
                        ],
                        "MIXED",
                        ["BOUNDARY", "n1"],
                    ),
                    # RFC 2046 §5.1.1: the CRLF after "--n1--" precedes "--n0--" and so
                    # belongs to that delimiter (Dovecot counts it: 2 octets, 1 line more)
                    12,
                ),
            ],
            "MIXED",
            ["BOUNDARY", "n0"],
        ),
    ),
    "42_empty_part": (
        env(NIL, "empty part"),
        multi([plain(0, 0), plain(size("after empty"), 0)], "MIXED", ["BOUNDARY", "e"]),
    ),
    "43_part_without_headers": (
        env(NIL, "headerless part"),
        multi([plain(size("no headers here"), 0)], "ALTERNATIVE", ["BOUNDARY", "h"]),
    ),
    "44_part_header_no_blank": (
        env(NIL, "part without blank line"),
        multi(
            [text("HTML", US_ASCII, 0, 0), plain(size("ok"), 0)],
            "MIXED",
            ["BOUNDARY", "nb"],
        ),
    ),
    "45_lf_multipart": (
        env(NIL, "LF multipart"),
        multi([plain(size("one"), 0), plain(size("two"), 0)], "MIXED", ["BOUNDARY", "lf"]),
    ),
    "46_transport_padding": (
        env(NIL, "padding"),
        multi(
            [plain(size("padded"), 0), plain(size("tabbed"), 0)],
            "MIXED",
            ["BOUNDARY", "tp"],
        ),
    ),
    "47_boundary_inside_text": (
        env(NIL, "boundary text not at line start"),
        multi(
            [plain(size("this line mentions --bt in the middle"), 0)],
            "MIXED",
            ["BOUNDARY", "bt"],
        ),
    ),
    "48_uppercase_type": (
        env(NIL, "upper"),
        text(
            "HTML",
            ["CHARSET", "UTF-8", "FORMAT", "Flowed"],
            size("<p>hi</p>\r\n"),
            1,
            enc="QUOTED-PRINTABLE",
        ),
    ),
    "49_param_comments": (
        # RFC 2045 §5.1: the comment is not part of the value; an unquoted
        # value with a space is kept whole (Dovecot cuts it at "My")
        env(NIL, "comments in params"),
        plain(size("c\r\n"), 1, ["CHARSET", "us-ascii", "NAME", "My File.txt"]),
    ),
    "50_cte_comment": (
        env(NIL, "cte comment"),
        basic("APPLICATION", "OCTET-STREAM", NIL, size("AAAA\r\n"), enc="BASE64"),
    ),
    "51_unknown_cte": (
        env(NIL, "uuencode"),
        basic(
            "APPLICATION",
            "OCTET-STREAM",
            NIL,
            size("begin 644 x\r\nend\r\n"),
            enc="X-UUENCODE",
        ),
    ),
    "52_multipart_no_boundary": (
        env(NIL, "no boundary parameter"),
        multi([EMPTY_PART], "MIXED", NIL),
    ),
    "53_digest_nested_multipart": (
        env(NIL, "digest with multipart"),
        multi(
            [multi([plain(size("plain default again"), 0)], "MIXED", ["BOUNDARY", "in"])],
            "DIGEST",
            ["BOUNDARY", "dg"],
        ),
    ),
    "54_references": (
        env(
            NIL,
            "Re: thread",
            A_COM,
            in_reply_to="<p1@example.com> <p2@example.com>",
        ),
        plain(size("t\r\n"), 1),
    ),
    "55_latin1_body": (
        env(NIL, "latin-1"),
        plain(size(b"caf\xe9\r\n"), 1, ["CHARSET", "iso-8859-1"], enc="8BIT"),
    ),
    "56_signed": (
        env(NIL, "signed"),
        multi(
            [
                plain(size("signed text"), 0),
                basic(
                    "APPLICATION",
                    "PGP-SIGNATURE",
                    ["NAME", "signature.asc"],
                    size("-----BEGIN PGP SIGNATURE-----\r\n-----END PGP SIGNATURE-----"),
                ),
            ],
            "SIGNED",
            ["MICALG", "pgp-sha256", "PROTOCOL", "application/pgp-signature", "BOUNDARY", "sig"],
        ),
    ),
    "57_long_header_line": (
        env(NIL, "s" * 1200, [addr(NIL, "long", "example.com")]),
        plain(size("l\r\n"), 1),
    ),
    "58_header_garbage_lines": (
        env(NIL, "after garbage", A_COM),
        plain(size("b\r\n"), 1),
    ),
    "59_no_trailing_newline": (
        env(NIL, "unterminated body", A_COM),
        plain(size("last line without CRLF"), 0),
    ),
    "60_html_only": (
        env(NIL, "html", [addr(NIL, "h", "example.com")]),
        text("HTML", US_ASCII, size("<html>\r\n<body>hi</body>\r\n</html>\r\n"), 3),
    ),
}
