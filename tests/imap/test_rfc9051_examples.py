"""The examples of RFC 9051 §6, played against our server with our data.

Mailbox names, numbers, UIDs and sizes are adapted to what the store holds; where
our answer legitimately differs in form from the example (the order of untagged
responses or of FETCH items, which the RFC leaves free, or optional redundant
responses), the test says so. Examples covered elsewhere are named in
``COVERED_ELSEWHERE``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from postoffice.core.address import parse_address

from .imap_harness import ImapWorld, s_literal
from .messages import MEETING, MIXED, SMALL, UTF8, crlf, note

COVERED_ELSEWHERE = {
    "6.1.1 CAPABILITY": "test_not_authenticated.test_rfc9051_capability_example",
    "6.1.2 NOOP": "test_concurrency.test_new_mail_and_expunges_elsewhere_at_noop",
    "6.1.3 LOGOUT": "test_not_authenticated.test_logout",
    "6.3.1 ENABLE": "test_mailboxes.test_enable_of_unknown_capabilities_enables_nothing",
    "6.3.2 SELECT": "test_mailboxes.test_select_while_selected_closes_the_previous_mailbox",
    "6.3.3 EXAMINE": "test_mailboxes.test_examine_is_read_only",
    "6.3.4 CREATE": "test_mailboxes.test_create_with_and_without_a_trailing_delimiter",
    "6.3.5 DELETE": "test_mailboxes.test_delete_with_children",
    "6.3.6 RENAME": "test_mailboxes.test_rename_inbox_moves_its_messages",
    "6.3.9 LIST": "test_mailboxes.test_list_empty_pattern_gives_the_delimiter",
    "6.3.10 NAMESPACE": "test_mailboxes.test_namespace",
    "6.3.12 APPEND": "test_append_idle.test_append_rfc9051_example",
    "6.4.1 CLOSE": "test_copy_move_expunge.test_close_expunges_silently",
    "6.4.2 UNSELECT": "test_copy_move_expunge.test_unselect_removes_nothing",
    "6.4.3 EXPUNGE": "test_copy_move_expunge.test_expunge_rfc9051_example",
    "6.4.8 MOVE": "test_copy_move_expunge.test_uid_move",
    "6.4.9 UID EXPUNGE": "test_copy_move_expunge.test_uid_expunge_of_a_subset",
}

VACATION = crlf("""
    From: Ivan <ivan@remote.test>
    To: alice@example.test
    Subject: plans
    MIME-Version: 1.0
    Content-Type: text/plain; charset=utf-8
    Content-Transfer-Encoding: 8bit

    Мой отпуск начинается в понедельник.
""")


async def test_6_2_3_login(world: ImapWorld) -> None:
    """RFC 9051 §6.2.3 example: LOGIN SMITH SESAME (the user name is not case
    sensitive here; the password is)."""
    world.accounts.add_user(parse_address("smith@example.test"), "SESAME")
    async with world.connect() as client:
        await client.converse("""
            C: a001 LOGIN SMITH sesame
            S: a001 NO [AUTHENTICATIONFAILED] *
            C: a002 LOGIN SMITH SESAME
            S: a002 OK [CAPABILITY *] Logged in
        """)


async def test_6_3_7_subscribe_and_6_3_8_unsubscribe(world: ImapWorld) -> None:
    """RFC 9051 §6.3.7 and §6.3.8 examples: a name may be subscribed without existing
    (a server MAY check it exists; ours does not)."""
    async with world.logged_in() as client:
        await client.converse(r"""
            C: A002 SUBSCRIBE #news.comp.mail.mime
            S: A002 OK SUBSCRIBE completed
            C: A003 LSUB "" #news*
            S: * LSUB (\Noselect) "/" "#news.comp.mail.mime"
            S: A003 OK LSUB completed
            C: A004 UNSUBSCRIBE #news.comp.mail.mime
            S: A004 OK UNSUBSCRIBE completed
            C: A005 LSUB "" #news*
            S: A005 OK LSUB completed
        """)


async def test_6_3_11_status(world: ImapWorld) -> None:
    """RFC 9051 §6.3.11 example (items in the order asked; the RFC's answer lists them
    in another order, which is as valid)."""
    async with world.store() as store:
        await store.create_mailbox("blurdybloop")
    await world.append("blurdybloop", note(1), note(2))
    async with world.logged_in() as client:
        await client.converse("""
            C: A042 STATUS blurdybloop (UIDNEXT MESSAGES)
            S: * STATUS "blurdybloop" (UIDNEXT 3 MESSAGES 2)
            S: A042 OK STATUS completed
        """)


async def test_6_3_13_idle(world: ImapWorld) -> None:
    """RFC 9051 §6.3.13 example: news while idling, an expunge by another client told
    before the next ``+ idling``, new mail after it. (The RFC also sends EXISTS after
    each EXPUNGE; that is redundant, EXPUNGE already lowers the count, §7.5.1.)"""
    await world.deliver(note(1), note(2), note(3))
    async with world.logged_in() as client, world.logged_in() as other:
        await client.converse("""
            C: A001 SELECT INBOX
            S: * 3 EXISTS
            S: * 0 RECENT
            S: * FLAGS *
            S: * OK [PERMANENTFLAGS *] *
            S: * OK [UNSEEN 1] *
            S: * OK [UIDVALIDITY *] *
            S: * OK [UIDNEXT 4] *
            S: A001 OK [READ-WRITE] SELECT completed
            C: A002 IDLE
            S: + idling
        """)
        await world.deliver(note(4))
        await client.converse("""
            S: * 4 EXISTS
            C: DONE
            S: A002 OK IDLE terminated
        """)
        await other.select()
        await other.converse(r"""
            C: o1 STORE 2 +FLAGS.SILENT (\Deleted)
            S: o1 OK STORE completed
            C: o2 EXPUNGE
            S: * 2 EXPUNGE
            S: o2 OK EXPUNGE completed
        """)
        await client.converse(rf"""
            C: A003 FETCH 4 (UID RFC822.SIZE)
            S: * 4 FETCH (UID 4 RFC822.SIZE {len(note(4))})
            S: A003 OK FETCH completed
            C: A004 IDLE
            S: * 2 EXPUNGE
            S: + idling
        """)
        await other.converse(r"""
            C: o3 STORE 3 +FLAGS.SILENT (\Deleted)
            S: o3 OK STORE completed
            C: o4 EXPUNGE
            S: * 3 EXPUNGE
            S: o4 OK EXPUNGE completed
        """)
        lines = await client.read_until("* 3 EXPUNGE")
        assert all(line.startswith("* 3 FETCH (UID 4 FLAGS (") for line in lines[:-1])
        await world.deliver(note(5))
        await client.converse(rf"""
            S: * 3 EXISTS
            C: DONE
            S: A004 OK IDLE terminated
            C: A005 FETCH 3 (UID RFC822.SIZE)
            S: * 3 FETCH (UID 5 RFC822.SIZE {len(note(5))})
            S: A005 OK FETCH completed
        """)


async def search_mailbox(world: ImapWorld) -> None:
    """1 MEETING \\Flagged, 2 MIXED \\Flagged, 3 SMALL (from Smith), 4 UTF8 \\Flagged,
    5 VACATION; internal dates 1-Jan-1994, then every 20 days."""
    smith = SMALL.replace(b"From: Bob <bob@example.test>", b"From: John Smith <smith@x.test>")
    for n, (message, flags) in enumerate(
        (
            (MEETING, ["\\Flagged"]),
            (MIXED, ["\\Flagged"]),
            (smith, ["\\Flagged"]),
            (UTF8, ["\\Flagged", "\\Deleted"]),
            (VACATION, ["\\Deleted"]),
        )
    ):
        day = datetime(1994, 1, 1, tzinfo=UTC) + timedelta(days=20 * n)
        await world.append("INBOX", message, flags=flags, internal_date=day)


async def test_6_4_4_search(world: ImapWorld) -> None:
    """RFC 9051 §6.4.4 examples A282 to A286 (ESEARCH answers; IMAP4rev2 enabled)."""
    await search_mailbox(world)
    word = "отпуск".encode()
    async with world.logged_in() as client:
        await client.command("e1 ENABLE IMAP4rev2")
        await client.select()
        await client.converse(rf"""
            C: A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"
            S: * ESEARCH (TAG "A282") MIN 4 COUNT 1
            S: A282 OK SEARCH completed
            C: A283 SEARCH RETURN () FLAGGED SINCE 1-Jan-1994 NOT FROM "Smith"
            S: * ESEARCH (TAG "A283") ALL 1:2,4
            S: A283 OK SEARCH completed
            C: A284 SEARCH TEXT "string not in mailbox"
            S: * ESEARCH (TAG "A284")
            S: A284 OK SEARCH completed
            C: A285 SEARCH CHARSET UTF-8 TEXT {{{len(word)}}}
            S: + Ready for literal data
            C: отпуск
            S: * ESEARCH (TAG "A285") ALL 5
            S: A285 OK SEARCH completed
            C: A286 SEARCH RETURN (MIN) UNFLAGGED
            S: * ESEARCH (TAG "A286") MIN 5
            S: A286 OK SEARCH completed
            C: A287 UID SEARCH RETURN (MIN MAX) 1:5000
            S: * ESEARCH (TAG "A287") UID MIN 1 MAX 5
            S: A287 OK UID SEARCH completed
            C: A288 SEARCH RETURN (COUNT) DELETED
            S: * ESEARCH (TAG "A288") COUNT 2
            S: A288 OK SEARCH completed
        """)


async def test_6_4_5_fetch(world: ImapWorld) -> None:
    """RFC 9051 §6.4.5 example A654: FLAGS and a header subset of messages 2 to 4
    (BODY[...] without PEEK sets \\Seen, so FLAGS already shows it)."""
    await world.deliver(MEETING, MIXED, UTF8, SMALL)
    fields = {
        2: b"Date: Tue, 3 Feb 2026 10:00:00 +0000\r\nFrom: Carol <carol@remote.test>\r\n\r\n",
        3: (
            b"Date: Wed, 4 Feb 2026 12:00:00 +0100\r\n"
            b"From: =?UTF-8?Q?J=C3=B6rg?= <joerg@remote.test>\r\n\r\n"
        ),
        4: b"Date: Thu, 5 Feb 2026 08:30:00 +0000\r\nFrom: Bob <bob@example.test>\r\n\r\n",
    }
    expected = "\n".join(
        f"S: * {n} FETCH (FLAGS (\\Seen) BODY[HEADER.FIELDS (DATE FROM)] {{{len(data)}}}\n"
        + s_literal(data, ")")
        for n, data in fields.items()
    )
    async with world.logged_in() as client:
        await client.select()
        await client.converse(f"""
            C: A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])
            {expected}
            S: A654 OK FETCH completed
        """)


async def test_6_4_6_store(world: ImapWorld) -> None:
    """RFC 9051 §6.4.6 example A003, with the flags the example implies beforehand
    (2 \\Seen; 4 \\Flagged \\Seen): the answer is the RFC's to the octet."""
    await world.deliver(note(1), note(2), note(3), note(4))
    async with world.store() as store:
        await store.store_flags("INBOX", [2], ["\\Seen"])
        await store.store_flags("INBOX", [4], ["\\Flagged", "\\Seen"])
    async with world.logged_in() as client:
        await client.select()
        await client.converse(r"""
            C: A003 STORE 2:4 +FLAGS (\Deleted)
            S: * 2 FETCH (FLAGS (\Deleted \Seen))
            S: * 3 FETCH (FLAGS (\Deleted))
            S: * 4 FETCH (FLAGS (\Deleted \Flagged \Seen))
            S: A003 OK STORE completed
        """)


async def test_6_4_7_copy(world: ImapWorld) -> None:
    """RFC 9051 §6.4.7 example (and §6.3.12's second example, A004 and A005): COPY
    2:4 MEETING with COPYUID; UIDs 304, 319, 320 become 2, 3, 4 here."""
    await world.deliver(note(1), note(2), note(3), note(4))
    async with world.store() as store:
        await store.create_mailbox("MEETING")
        target = (await store.status("MEETING")).uidvalidity
    async with world.logged_in() as client:
        await client.select()
        await client.converse(f"""
            C: A003 COPY 2:4 MEETING
            S: A003 OK [COPYUID {target} 2:4 1:3] COPY completed
            C: A005 UID COPY 305:310 MEETING
            S: A005 OK UID COPY completed
        """)


async def test_6_4_9_uid_fetch(world: ImapWorld) -> None:
    """RFC 9051 §6.4.9 example A999: the number in the response is the sequence
    number, UID is always included (we put it first; item order is free)."""
    async with world.store() as store:
        for n in range(1, 6):
            await store.append("INBOX", note(n), ["\\Seen"])
        await store.store_flags("INBOX", [1, 3], ["\\Deleted"])
        await store.expunge("INBOX")
    async with world.logged_in() as client:
        await client.select()
        await client.converse(r"""
            C: A999 UID FETCH 2:5 FLAGS
            S: * 1 FETCH (UID 2 FLAGS (\Seen))
            S: * 2 FETCH (UID 4 FLAGS (\Seen))
            S: * 3 FETCH (UID 5 FLAGS (\Seen))
            S: A999 OK UID FETCH completed
        """)
