"""SORT and UID SORT (RFC 5256 §3) with SORT=DISPLAY (RFC 5957), over a real
session on Maildir and mbox.

The SORT mailbox (message 0, UID 1, is expunged first, so UID = number + 1):

    n  From          To              Cc     Subject (base)   Date (UTC)        arrival     size
    1  "Zed" alice   "Émile" yves    -      banana           2025-02-03 10:00  2024-01-03  4th
    2  carl@c.test   "Adam" zoe      bob    Apple            2025-02-03 11:00  2024-01-01  1st
    3  "Bert" bert   -               Alice  cherry (Fwd:)    unreadable        2024-01-02  3rd
    4  "zed" dan     mike@b.test     -      banana           2020-01-01 00:00  2024-01-04  2nd
"""

from __future__ import annotations

from datetime import UTC, datetime

from postoffice.mime.collation import collation_key
from postoffice.server.imap_sort import display_value, mailbox_value

from .imap_harness import (
    ImapClient,
    ImapWorld,
    capabilities_around_login,
    select_behind_an_expunge,
)


def _message(headers: str, body_octets: int) -> bytes:
    head = headers.strip().replace("\n", "\r\n").encode()
    return head + b"\r\n\r\n" + b"x" * body_octets + b"\r\n"


MESSAGES = [
    (
        _message(
            """
From: Zed <alice@a.test>
To: =?UTF-8?Q?=C3=89mile?= <yves@b.test>
Subject: Re: [list] banana (fwd)
Date: Mon, 3 Feb 2025 10:00:00 +0000
""",
            4000,
        ),
        datetime(2024, 1, 3, 12, 0, tzinfo=UTC),
    ),
    (
        _message(
            """
From: carl@c.test
To: "Adam" <zoe@b.test>
Cc: bob@x.test
Subject: Apple
Date: Mon, 3 Feb 2025 06:00:00 -0500
""",
            100,
        ),
        datetime(2024, 1, 1, 12, 0, tzinfo=UTC),
    ),
    (
        _message(
            """
From: "Bert" <bert@d.test>
Cc: Alice <alice@x.test>, zed@x.test
Subject: =?UTF-8?Q?Fwd=3A_cherry?=
Date: not a date at all
""",
            2000,
        ),
        datetime(2024, 1, 2, 12, 0, tzinfo=UTC),
    ),
    (
        _message(
            """
From: "zed" <dan@e.test>
To: mike@b.test
Subject: banana
Date: Wed, 1 Jan 2020 00:00:00 +0000
""",
            1000,
        ),
        datetime(2024, 1, 4, 12, 0, tzinfo=UTC),
    ),
]


async def sorting(world: ImapWorld, client: ImapClient) -> None:
    await select_behind_an_expunge(world, client, MESSAGES)


async def test_sort_is_announced_after_login_only(world: ImapWorld) -> None:
    """RFC 5256 §3 and RFC 5957 §4: SORT and SORT=DISPLAY are capabilities."""
    before, words = await capabilities_around_login(world)
    assert "SORT" not in before
    assert "SORT" in words and "SORT=DISPLAY" in words
    assert "ESORT" in words  # RFC 5267 §3 (tests/imap/test_esort.py)


async def test_each_criterion(world: ImapWorld) -> None:
    """RFC 5256 §3 keys (base subject of §2.1, sent date of §2.2 falling back to the
    internal date, addr-mailbox of the first address) and RFC 5957's display
    values; a missing field sorts as the empty string, first. "Émile" sorts as
    "EMILE" (RFC 5051 i;unicode-casemap), before "mike@b.test"."""
    async with world.connect() as client:
        await sorting(world, client)
        await client.converse("""
            C: s1 SORT (ARRIVAL) UTF-8 ALL
            S: * SORT 2 3 1 4
            S: s1 OK SORT completed
            C: s2 SORT (DATE) UTF-8 ALL
            S: * SORT 4 3 1 2
            S: s2 OK SORT completed
            C: s3 SORT (SUBJECT) UTF-8 ALL
            S: * SORT 2 1 4 3
            S: s3 OK SORT completed
            C: s4 SORT (FROM) UTF-8 ALL
            S: * SORT 1 3 2 4
            S: s4 OK SORT completed
            C: s5 SORT (TO) UTF-8 ALL
            S: * SORT 3 4 1 2
            S: s5 OK SORT completed
            C: s6 SORT (CC) US-ASCII ALL
            S: * SORT 1 4 3 2
            S: s6 OK SORT completed
            C: s7 SORT (SIZE) US-ASCII ALL
            S: * SORT 2 4 3 1
            S: s7 OK SORT completed
            C: s8 SORT (DISPLAYFROM) UTF-8 ALL
            S: * SORT 3 2 1 4
            S: s8 OK SORT completed
            C: s9 SORT (DISPLAYTO) UTF-8 ALL
            S: * SORT 3 2 1 4
            S: s9 OK SORT completed
        """)


async def test_reverse_ties_and_several_criteria(world: ImapWorld) -> None:
    """RFC 5256 §3: REVERSE turns one criterion around; a tie goes to the next
    criterion and at last to the sequence number, ascending even under REVERSE."""
    async with world.connect() as client:
        await sorting(world, client)
        await client.converse("""
            C: r1 SORT (REVERSE SUBJECT) UTF-8 ALL
            S: * SORT 3 1 4 2
            S: r1 OK SORT completed
            C: r2 SORT (SUBJECT REVERSE ARRIVAL) UTF-8 ALL
            S: * SORT 2 4 1 3
            S: r2 OK SORT completed
            C: r3 SORT (REVERSE SIZE) UTF-8 ALL
            S: * SORT 1 3 4 2
            S: r3 OK SORT completed
            C: r4 SORT (DISPLAYFROM SIZE) UTF-8 ALL
            S: * SORT 3 2 4 1
            S: r4 OK SORT completed
            C: r5 sort (reverse displayfrom) utf-8 all
            S: * SORT 1 4 2 3
            S: r5 OK SORT completed
        """)


async def test_search_criteria_uid_sort_and_saved_result(world: ImapWorld) -> None:
    """The search criteria choose the messages as SEARCH does, ``$`` too (RFC 5182);
    UID SORT answers UIDs (RFC 5256 §3); nothing found is a bare ``* SORT``."""
    async with world.connect() as client:
        await sorting(world, client)
        await client.converse("""
            C: u1 SORT (ARRIVAL) UTF-8 SUBJECT banana
            S: * SORT 1 4
            S: u1 OK SORT completed
            C: u2 UID SORT (SIZE) UTF-8 ALL
            S: * SORT 3 5 4 2
            S: u2 OK UID SORT completed
            C: u3 UID SORT (REVERSE DATE) UTF-8 2:3
            S: * SORT 3 4
            S: u3 OK UID SORT completed
            C: u4 SEARCH RETURN (SAVE) FROM bert
            S: u4 OK SEARCH completed, result saved
            C: u5 SORT (DATE) UTF-8 OR $ SUBJECT apple
            S: * SORT 3 2
            S: u5 OK SORT completed
            C: u6 SORT (DATE) UTF-8 SUBJECT nothing-like-this
            S: * SORT
            S: u6 OK SORT completed
        """)


async def test_refusals(world: ImapWorld) -> None:
    """RFC 5256 §3: an unknown charset is a tagged NO with BADCHARSET; malformed
    criteria are BAD; SORT needs a selected mailbox."""
    async with world.logged_in() as client:
        await client.converse("""
            C: e0 SORT (DATE) UTF-8 ALL
            S: e0 BAD *
        """)
        await client.select()
        await client.converse("""
            C: e1 SORT (DATE) KOI8-R ALL
            S: e1 NO [BADCHARSET (US-ASCII UTF-8)] *
            C: e2 SORT UTF-8 ALL
            S: e2 BAD *
            C: e3 SORT (COLOR) UTF-8 ALL
            S: e3 BAD *
            C: e4 SORT () UTF-8 ALL
            S: e4 BAD *
            C: e5 SORT (DATE) UTF-8
            S: e5 BAD *
            C: e6 UID SORT (REVERSE) UTF-8 ALL
            S: e6 BAD *
        """)


def test_strings_compare_by_unicode_casemap() -> None:
    """RFC 5051 §2 (found against Dovecot, tests/interop/test_dovecot_diff.py):
    titlecase then decomposition, so a letter with a diacritic sorts with its
    base letter and letters sort before "_" (0x5F), as the titlecase forms do."""
    names = ["Judy", "_x", "Jörg", "alpha", "jorg"]
    assert sorted(names, key=collation_key) == ["alpha", "jorg", "Jörg", "Judy", "_x"]
    assert collation_key("Jörg") == "JO\u0308RG"
    assert display_value(["=?UTF-8?Q?J=C3=B6rg?= <j@x.test>"]) < display_value(["Judy <j@x.test>"])


def test_mailbox_of_a_group_is_its_name() -> None:
    """RFC 5256 §3: the addr-mailbox of the first address structure; for a group
    that is the start marker, whose mailbox field is the group name (RFC 3501
    §7.4.2). Dovecot sorts an empty group "undisclosed-recipients:;" so."""
    assert mailbox_value(["undisclosed-recipients:;"]) == "UNDISCLOSED-RECIPIENTS"
    assert mailbox_value(["Board: ann@example.org, ben@example.org;"]) == "BOARD"
    assert mailbox_value(["Bob <bob@example.com>, ann@example.org"]) == "BOB"
    assert mailbox_value([]) == ""
    assert display_value(["Team: ;"]) == "TEAM"  # RFC 5957 §3: no name, the "addr-spec"
    assert display_value(["Team: a@b.test;"]) == "TEAM"
