"""STORE and SEARCH (RFC 9051 §6.4.4, §6.4.6, §6.4.9; ESEARCH RFC 4731).

The SEARCH mailbox, by number and UID:

    1 MEETING  internal 10-Jan-2024  \\Answered \\Seen        sent 7-Feb-1994     326 octets
    2 MIXED    internal 01-Feb-2024  \\Flagged $Work          sent 3-Feb-2026     537
    3 UTF8     internal 15-Feb-2024  \\Draft                  sent 4-Feb-2026     328
    4 SMALL    internal 01-Mar-2024  \\Deleted \\Seen          sent 5-Feb-2026     178
"""

from __future__ import annotations

from datetime import UTC, datetime

from .imap_harness import ImapClient, ImapWorld
from .messages import MEETING, MIXED, SMALL, UTF8


async def search_mailbox(world: ImapWorld) -> None:
    for message, day, flags, keywords in (
        (MEETING, datetime(2024, 1, 10, 23, 30, tzinfo=UTC), ["\\Answered", "\\Seen"], []),
        (MIXED, datetime(2024, 2, 1, 0, 30, tzinfo=UTC), ["\\Flagged"], ["$Work"]),
        (UTF8, datetime(2024, 2, 15, 12, 0, tzinfo=UTC), ["\\Draft"], []),
        (SMALL, datetime(2024, 3, 1, 8, 0, tzinfo=UTC), ["\\Deleted", "\\Seen"], []),
    ):
        await world.append("INBOX", message, flags=flags, keywords=keywords, internal_date=day)


async def searching(world: ImapWorld, client: ImapClient, *, rev2: bool = False) -> None:
    await search_mailbox(world)
    await client.login()
    if rev2:
        await client.command("e1 ENABLE IMAP4rev2")
    await client.select()


# -- STORE ----------------------------------------------------------------------------------


async def test_store_add_remove_replace(world: ImapWorld) -> None:
    """RFC 9051 §6.4.6: +FLAGS adds, -FLAGS removes, FLAGS replaces; each answers
    with the new FLAGS of every message named (also when nothing changed)."""
    await world.deliver(MEETING, MIXED, UTF8, SMALL)
    async with world.logged_in() as client:
        await client.select()
        await client.converse(r"""
            C: A003 STORE 2:4 +FLAGS (\Deleted)
            S: * 2 FETCH (FLAGS (\Deleted))
            S: * 3 FETCH (FLAGS (\Deleted))
            S: * 4 FETCH (FLAGS (\Deleted))
            S: A003 OK STORE completed
            C: A004 STORE 3 -FLAGS (\Deleted)
            S: * 3 FETCH (FLAGS ())
            S: A004 OK STORE completed
            C: A005 STORE 1 FLAGS (\Seen \Flagged)
            S: * 1 FETCH (FLAGS (\Flagged \Seen))
            S: A005 OK STORE completed
            C: A006 STORE 1 +FLAGS (\Seen)
            S: * 1 FETCH (FLAGS (\Flagged \Seen))
            S: A006 OK STORE completed
            C: A007 STORE 1 FLAGS ()
            S: * 1 FETCH (FLAGS ())
            S: A007 OK STORE completed
            C: A008 STORE 4 -FLAGS \Deleted
            S: * 4 FETCH (FLAGS ())
            S: A008 OK STORE completed
        """)
    async with world.store() as store:
        flags = {m.uid: m.flags for m in await store.messages("INBOX")}
        assert flags == {1: set(), 2: {"\\Deleted"}, 3: set(), 4: set()}


async def test_store_silent_and_keywords(world: ImapWorld) -> None:
    """RFC 9051 §6.4.6: .SILENT sends no FETCH; keywords are stored with the system
    flags (PERMANENTFLAGS has \\*, so new ones may be made, §2.3.2)."""
    await world.deliver(MEETING, MIXED)
    async with world.logged_in() as client:
        await client.select()
        await client.converse(r"""
            C: a1 STORE 1:2 +FLAGS.SILENT (\Answered $Forwarded)
            S: a1 OK STORE completed
            C: a2 STORE 2 -FLAGS.SILENT ($Forwarded)
            S: a2 OK STORE completed
            C: a3 STORE 2 +FLAGS (Project-X $Label1)
            S: * 2 FETCH (FLAGS (\Answered $Label1 Project-X))
            S: a3 OK STORE completed
            C: a4 FETCH 1:2 FLAGS
            S: * 1 FETCH (FLAGS (\Answered $Forwarded))
            S: * 2 FETCH (FLAGS (\Answered $Label1 Project-X))
            S: a4 OK FETCH completed
            C: a5 STORE 1 FLAGS.SILENT ($Junk)
            S: a5 OK STORE completed
            C: a6 FETCH 1 FLAGS
            S: * 1 FETCH (FLAGS ($Junk))
            S: a6 OK FETCH completed
        """)


async def test_uid_store(world: ImapWorld) -> None:
    """RFC 9051 §6.4.9: UID STORE takes UIDs, its FETCH responses carry UID, and UIDs
    that do not exist are no error."""
    await world.deliver(MEETING, MIXED, UTF8)
    async with world.logged_in() as client:
        await client.select()
        await client.converse(r"""
            C: a1 UID STORE 2:3 +FLAGS (\Seen)
            S: * 2 FETCH (UID 2 FLAGS (\Seen))
            S: * 3 FETCH (UID 3 FLAGS (\Seen))
            S: a1 OK UID STORE completed
            C: a2 UID STORE 9 +FLAGS (\Seen)
            S: a2 OK UID STORE completed
        """)


async def test_store_in_an_examined_mailbox_is_refused(world: ImapWorld) -> None:
    """RFC 9051 §6.3.3: nothing may be changed in a mailbox opened with EXAMINE; STORE
    is NO (with READ-ONLY) and the flags stay as they were."""
    await world.deliver(MEETING)
    async with world.logged_in() as client:
        await client.command("S1 EXAMINE INBOX")
        await client.converse(r"""
            C: a1 STORE 1 +FLAGS (\Seen)
            S: a1 NO [READ-ONLY] *
            C: a2 UID STORE 1 FLAGS.SILENT (\Deleted)
            S: a2 NO [READ-ONLY] *
            C: a3 FETCH 1 FLAGS
            S: * 1 FETCH (FLAGS ())
            S: a3 OK FETCH completed
        """)


async def test_store_errors(world: ImapWorld) -> None:
    """RFC 9051 §9: a number beyond the mailbox is BAD; \\Recent cannot be stored
    (RFC 3501 §2.3.2), nor a keyword that is not an atom."""
    await world.deliver(MEETING)
    async with world.logged_in() as client:
        await client.select()
        await client.converse(r"""
            C: a1 STORE 2 +FLAGS (\Seen)
            S: a1 BAD *
            C: a2 STORE 1 +FLAGS (\Recent)
            S: a2 BAD *
            C: a3 STORE 1 +FLAGS (bad"keyword)
            S: a3 BAD *
            C: a4 STORE 1 BLURDY (\Seen)
            S: a4 BAD *
            C: a5 FETCH 1 FLAGS
            S: * 1 FETCH (FLAGS ())
            S: a5 OK FETCH completed
        """)


# -- SEARCH ---------------------------------------------------------------------------------


def searches(*pairs: tuple[str, str]) -> str:
    """A transcript of plain SEARCH commands: (keys, numbers found) each."""
    lines: list[str] = []
    for n, (keys, found) in enumerate(pairs, 1):
        lines += [f"C: s{n} SEARCH {keys}", f"S: * SEARCH {found}".rstrip()]
        lines.append(f"S: s{n} OK SEARCH completed")
    return "\n".join(lines)


async def test_search_flags(world: ImapWorld) -> None:
    """RFC 9051 §6.4.4: the flag keys and their UN- forms; RFC 3501 §6.4.4 NEW, OLD,
    RECENT (nothing is \\Recent here)."""
    async with world.connect() as client:
        await searching(world, client)
        await client.converse(
            searches(
                ("SEEN", "1 4"),
                ("UNSEEN", "2 3"),
                ("ANSWERED", "1"),
                ("UNANSWERED", "2 3 4"),
                ("FLAGGED", "2"),
                ("UNFLAGGED DELETED", "4"),
                ("UNDELETED DRAFT", "3"),
                ("UNDRAFT", "1 2 4"),
                ("KEYWORD $Work", "2"),
                ("UNKEYWORD $Work", "1 3 4"),
                ("ALL", "1 2 3 4"),
                ("RECENT", ""),
                ("NEW", ""),
                ("OLD", "1 2 3 4"),
            )
        )


async def test_search_dates(world: ImapWorld) -> None:
    """RFC 9051 §6.4.4: BEFORE/ON/SINCE compare the internal date, SENTBEFORE/SENTON/
    SENTSINCE the Date: header, by day, disregarding time and timezone."""
    async with world.connect() as client:
        await searching(world, client)
        await client.converse("""
            C: a1 SEARCH BEFORE 1-Feb-2024
            S: * SEARCH 1
            S: a1 OK SEARCH completed
            C: a2 SEARCH ON 1-Feb-2024
            S: * SEARCH 2
            S: a2 OK SEARCH completed
            C: a3 SEARCH SINCE 15-Feb-2024
            S: * SEARCH 3 4
            S: a3 OK SEARCH completed
            C: a4 SEARCH SINCE 1-Feb-2024 BEFORE 1-Mar-2024
            S: * SEARCH 2 3
            S: a4 OK SEARCH completed
            C: a5 SEARCH SENTBEFORE 1-Jan-2000
            S: * SEARCH 1
            S: a5 OK SEARCH completed
            C: a6 SEARCH SENTON 4-Feb-2026
            S: * SEARCH 3
            S: a6 OK SEARCH completed
            C: a7 SEARCH SENTSINCE 4-Feb-2026
            S: * SEARCH 3 4
            S: a7 OK SEARCH completed
            C: a8 SEARCH ON "10-Jan-2024"
            S: * SEARCH 1
            S: a8 OK SEARCH completed
        """)


async def test_search_sizes_headers_and_text(world: ImapWorld) -> None:
    """RFC 9051 §6.4.4: LARGER/SMALLER (RFC822.SIZE), the address and SUBJECT keys and
    HEADER (case-insensitive substrings; HEADER with "" matches any message that has
    the field), BODY (the body only) and TEXT (header and body)."""
    async with world.connect() as client:
        await searching(world, client)
        await client.converse("""
            C: a1 SEARCH LARGER 326
            S: * SEARCH 2 3
            S: a1 OK SEARCH completed
            C: a2 SEARCH SMALLER 326
            S: * SEARCH 4
            S: a2 OK SEARCH completed
            C: a3 SEARCH FROM foobar
            S: * SEARCH 1
            S: a3 OK SEARCH completed
            C: a4 SEARCH FROM "BOB@example.test"
            S: * SEARCH 4
            S: a4 OK SEARCH completed
            C: a5 SEARCH TO alice
            S: * SEARCH 2 3 4
            S: a5 OK SEARCH completed
            C: a6 SEARCH CC dave
            S: * SEARCH 2
            S: a6 OK SEARCH completed
            C: a7 SEARCH BCC dave
            S: * SEARCH
            S: a7 OK SEARCH completed
            C: a8 SEARCH SUBJECT "MEETING"
            S: * SEARCH 1
            S: a8 OK SEARCH completed
            C: a9 SEARCH HEADER X-Priority 1
            S: * SEARCH 4
            S: a9 OK SEARCH completed
            C: b1 SEARCH HEADER cc ""
            S: * SEARCH 2
            S: b1 OK SEARCH completed
            C: b2 SEARCH BODY noon
            S: * SEARCH 4
            S: b2 OK SEARCH completed
            C: b3 SEARCH BODY lunch
            S: * SEARCH
            S: b3 OK SEARCH completed
            C: b4 SEARCH TEXT lunch
            S: * SEARCH 4
            S: b4 OK SEARCH completed
            C: b5 SEARCH BODY "hello world"
            S: * SEARCH 2
            S: b5 OK SEARCH completed
        """)


async def test_search_combinations_and_sets(world: ImapWorld) -> None:
    """RFC 9051 §6.4.4: keys side by side are ANDed; OR, NOT, parentheses; a sequence
    set and UID set are keys too, ``*`` being the last message or UID."""
    async with world.connect() as client:
        await searching(world, client)
        await client.converse(r"""
            C: a1 SEARCH OR SUBJECT lunch SUBJECT meeting
            S: * SEARCH 1 4
            S: a1 OK SEARCH completed
            C: a2 SEARCH NOT SEEN NOT DRAFT
            S: * SEARCH 2
            S: a2 OK SEARCH completed
            C: a3 SEARCH (OR DELETED FLAGGED) SINCE 1-Feb-2024
            S: * SEARCH 2 4
            S: a3 OK SEARCH completed
            C: a4 SEARCH 2:*
            S: * SEARCH 2 3 4
            S: a4 OK SEARCH completed
            C: a5 SEARCH 1,3 UNSEEN
            S: * SEARCH 3
            S: a5 OK SEARCH completed
            C: a6 SEARCH UID 2:3 NOT 3
            S: * SEARCH 2
            S: a6 OK SEARCH completed
            C: a7 SEARCH * SEEN
            S: * SEARCH 4
            S: a7 OK SEARCH completed
            C: a8 SEARCH OR OR ANSWERED DRAFT NOT UNDELETED
            S: * SEARCH 1 3 4
            S: a8 OK SEARCH completed
        """)


async def test_uid_search(world: ImapWorld) -> None:
    """RFC 9051 §6.4.9: UID SEARCH answers with UIDs. Here the UIDs differ from the
    numbers: the first two messages were expunged."""
    async with world.store() as store:
        for n in range(2):
            await store.append("INBOX", b"Subject: gone %d\r\n\r\nx\r\n" % n, ["\\Deleted"])
        await store.expunge("INBOX")
    async with world.connect() as client:
        await searching(world, client)
        await client.converse("""
            C: a1 UID SEARCH SEEN
            S: * SEARCH 3 6
            S: a1 OK UID SEARCH completed
            C: a2 SEARCH SEEN
            S: * SEARCH 1 4
            S: a2 OK SEARCH completed
            C: a3 UID SEARCH UID 4:*
            S: * SEARCH 4 5 6
            S: a3 OK UID SEARCH completed
            C: a4 UID SEARCH 2
            S: * SEARCH 4
            S: a4 OK UID SEARCH completed
        """)


async def test_search_charset_utf8_literal(world: ImapWorld) -> None:
    """RFC 9051 §6.4.4 (CHARSET UTF-8 MUST be supported): a UTF-8 string, sent as a
    literal, matches the decoded RFC 2047 subject and the 8-bit body."""
    word = "Grüße".encode()
    body = "später".encode()
    async with world.connect() as client:
        await searching(world, client)
        await client.converse(rf"""
            C: a1 SEARCH CHARSET UTF-8 SUBJECT {{{len(word)}}}
            S: + Ready for literal data
            C: Grüße
            S: * SEARCH 3
            S: a1 OK SEARCH completed
            C: a2 SEARCH CHARSET UTF-8 TEXT {{{len(body)}+}}
            C: später
            S: * SEARCH 3
            S: a2 OK SEARCH completed
            C: a3 SEARCH CHARSET UTF-8 FROM {{{len("jörg".encode())}+}}
            C: jörg
            S: * SEARCH 3
            S: a3 OK SEARCH completed
            C: a4 SEARCH CHARSET US-ASCII SUBJECT report
            S: * SEARCH 2
            S: a4 OK SEARCH completed
        """)


async def test_search_unsupported_charset(world: ImapWorld) -> None:
    """RFC 9051 §6.4.4 and §7.1 BADCHARSET: an unsupported charset is NO
    [BADCHARSET] with the supported ones listed."""
    async with world.connect() as client:
        await searching(world, client)
        await client.converse("""
            C: A283 SEARCH CHARSET ISO-2022-JP SUBJECT x
            S: A283 NO [BADCHARSET (US-ASCII UTF-8)] *
        """)


async def test_search_return_options(world: ImapWorld) -> None:
    """RFC 4731 §3.1 (ESEARCH): RETURN (MIN MAX COUNT ALL) answers one ESEARCH tagged
    with the command; RETURN () means ALL; without matches MIN, MAX and ALL are left
    out and COUNT is 0; UID SEARCH marks its ESEARCH with UID."""
    async with world.connect() as client:
        await searching(world, client)
        await client.converse("""
            C: A282 SEARCH RETURN (MIN MAX COUNT ALL) NOT DRAFT
            S: * ESEARCH (TAG "A282") MIN 1 MAX 4 ALL 1:2,4 COUNT 3
            S: A282 OK SEARCH completed
            C: A283 SEARCH RETURN () UNSEEN
            S: * ESEARCH (TAG "A283") ALL 2:3
            S: A283 OK SEARCH completed
            C: A284 SEARCH RETURN (COUNT MIN) KEYWORD $Nothing
            S: * ESEARCH (TAG "A284") COUNT 0
            S: A284 OK SEARCH completed
            C: A285 UID SEARCH RETURN (COUNT) SEEN
            S: * ESEARCH (TAG "A285") UID COUNT 2
            S: A285 OK UID SEARCH completed
            C: A286 SEARCH RETURN (BLURDY) ALL
            S: A286 BAD *
        """)


async def test_search_after_enable_imap4rev2_is_esearch(world: ImapWorld) -> None:
    """RFC 9051 §6.4.4 / §7.3.4: an IMAP4rev2 server answers SEARCH with ESEARCH, ALL
    being the default result option."""
    async with world.connect() as client:
        await searching(world, client, rev2=True)
        await client.converse("""
            C: a1 SEARCH SEEN
            S: * ESEARCH (TAG "a1") ALL 1,4
            S: a1 OK SEARCH completed
            C: a2 UID SEARCH DRAFT
            S: * ESEARCH (TAG "a2") UID ALL 3
            S: a2 OK UID SEARCH completed
            C: a3 SEARCH RETURN (MAX) SEEN
            S: * ESEARCH (TAG "a3") MAX 4
            S: a3 OK SEARCH completed
        """)


async def test_search_syntax_errors(world: ImapWorld) -> None:
    """RFC 9051 §6.4.4: an unknown key, a missing argument or an unbalanced
    parenthesis is BAD."""
    async with world.connect() as client:
        await searching(world, client)
        await client.converse("""
            C: a1 SEARCH BLURDY
            S: a1 BAD *
            C: a2 SEARCH SUBJECT
            S: a2 BAD *
            C: a3 SEARCH (SEEN
            S: a3 BAD *
            C: a4 SEARCH SINCE 31-Foo-2024
            S: a4 BAD *
        """)


async def test_search_without_charset_is_utf8_for_imap4rev2(world: ImapWorld) -> None:
    """RFC 9051 §6.4.4: without CHARSET an IMAP4rev2 server MUST assume UTF-8, in a
    quoted string (UTF-8 is allowed there after ENABLE IMAP4rev2, §4.3) or a literal."""
    word = "Grüße".encode()
    async with world.connect() as client:
        await searching(world, client, rev2=True)
        await client.converse(rf"""
            C: a1 SEARCH SUBJECT "Grüße"
            S: * ESEARCH (TAG "a1") ALL 3
            S: a1 OK SEARCH completed
            C: a2 SEARCH BODY {{{len("später".encode())}+}}
            C: später
            S: * ESEARCH (TAG "a2") ALL 3
            S: a2 OK SEARCH completed
            C: a3 SEARCH SUBJECT {{{len(word)}}}
            S: + Ready for literal data
            C: Grüße
            S: * ESEARCH (TAG "a3") ALL 3
            S: a3 OK SEARCH completed
        """)


async def test_search_save_result_and_dollar(world: ImapWorld) -> None:
    """RFC 9051 §6.4.4 (the SAVE result option) and §6.4.4.1, examples 1, 3 and 6 of
    §6.4.4.4: an IMAP4rev2 server keeps the result of SEARCH RETURN (SAVE) and lets
    ``$`` stand for it in FETCH, SEARCH, UID SEARCH and COPY; SAVE alone sends no
    ESEARCH; after a SELECT ``$`` is empty, which is no error."""
    async with world.connect() as client:
        await searching(world, client, rev2=True)
        await client.converse(r"""
            C: A282 SEARCH RETURN (SAVE) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"
            S: A282 OK *
            C: A283 FETCH $ (UID FLAGS)
            S: * 2 FETCH (UID 2 FLAGS (\Flagged $Work))
            S: A283 OK *
            C: A300 SEARCH RETURN (SAVE ALL) SINCE 1-Feb-2024 NOT FROM "Smith"
            S: * ESEARCH (TAG "A300") ALL 2:4
            S: A300 OK *
            C: A301 UID SEARCH UID $ SMALLER 400
            S: * ESEARCH (TAG "A301") UID ALL 3:4
            S: A301 OK *
            C: A302 SELECT INBOX
            S: * OK [CLOSED] *
            S: * 4 EXISTS
            S: * FLAGS *
            S: * OK [PERMANENTFLAGS *] *
            S: * OK [UIDVALIDITY *] *
            S: * OK [UIDNEXT 5] *
            S: * LIST * "/" "INBOX"
            S: A302 OK [READ-WRITE] SELECT completed
            C: E283 COPY $ Trash
            S: E283 OK *
        """)
