"""The authenticated state: ENABLE, SELECT, EXAMINE, CREATE, DELETE, RENAME, SUBSCRIBE,
UNSUBSCRIBE, LIST (with LIST-EXTENDED, LIST-STATUS, SPECIAL-USE), LSUB, NAMESPACE and
STATUS (RFC 9051 §6.3; RFC 3501 §6.3 for what IMAP4rev1 clients still get).

A new account has INBOX and the RFC 6154 folders Archive, Drafts, Junk, Sent and
Trash, all subscribed.
"""

from __future__ import annotations

from .imap_harness import INBOX_UIDVALIDITY, ImapWorld
from .messages import MEETING, MIXED, SMALL, UTF8, note

# -- ENABLE ---------------------------------------------------------------------------------


async def test_enable_imap4rev2_changes_select_and_search(world: ImapWorld) -> None:
    """RFC 9051 §6.3.1 (ENABLE answers ``* ENABLED``), §6.3.2 (SELECT sends a LIST
    response; the rev1 RECENT and UNSEEN are gone, Appendix E) and §6.4.4 (SEARCH
    answers ESEARCH, §7.3.4)."""
    await world.deliver(MEETING, MIXED)
    async with world.logged_in() as client:
        await client.converse(rf"""
            C: t1 ENABLE IMAP4rev2
            S: * ENABLED IMAP4rev2
            S: t1 OK ENABLE completed
            C: t2 SELECT INBOX
            S: * 2 EXISTS
            S: * FLAGS (\Answered \Deleted \Draft \Flagged \Seen)
            S: * OK [PERMANENTFLAGS (\Answered \Deleted \Draft \Flagged \Seen \*)] *
            S: * OK [UIDVALIDITY {INBOX_UIDVALIDITY}] *
            S: * OK [UIDNEXT 3] *
            S: * LIST (*) "/" "INBOX"
            S: t2 OK [READ-WRITE] SELECT completed
            C: t3 SEARCH ALL
            S: * ESEARCH (TAG "t3") ALL 1:2
            S: t3 OK SEARCH completed
            C: t4 SEARCH DELETED
            S: * ESEARCH (TAG "t4")
            S: t4 OK SEARCH completed
        """)


async def test_enable_of_unknown_capabilities_enables_nothing(world: ImapWorld) -> None:
    """RFC 5161 §3.1 / RFC 9051 §6.3.1: extensions the server does not know are
    left out of ``* ENABLED``; SEARCH keeps the rev1 form."""
    await world.deliver(MEETING)
    async with world.logged_in() as client:
        await client.converse(r"""
            C: t2 ENABLE X-QRESYNC X-GOOD-IDEA
            S: * ENABLED
            S: t2 OK ENABLE completed
            C: t3 SELECT INBOX
            S: * 1 EXISTS
            S: * 0 RECENT
            S: * FLAGS *
            S: * OK [PERMANENTFLAGS *] *
            S: * OK [UNSEEN 1] *
            S: * OK [UIDVALIDITY *] *
            S: * OK [UIDNEXT 2] *
            S: t3 OK [READ-WRITE] SELECT completed
            C: t4 SEARCH ALL
            S: * SEARCH 1
            S: t4 OK SEARCH completed
        """)


async def test_enable_leaves_capabilities_alone_and_reports_only_news(
    world: ImapWorld,
) -> None:
    """RFC 9051 §6.3.1: the CAPABILITY list MUST NOT change with ENABLE; ENABLE is
    additive and each ENABLED response SHOULD only contain the extensions that command
    enabled (so enabling IMAP4rev2 again reports nothing new)."""
    async with world.logged_in() as client:
        before = await client.command("c1 CAPABILITY")
        await client.converse("""
            C: t1 ENABLE IMAP4rev2
            S: * ENABLED IMAP4rev2
            S: t1 OK ENABLE completed
        """)
        after = await client.command("c2 CAPABILITY")
        assert before[0] == after[0]
        await client.converse("""
            C: t2 ENABLE IMAP4rev2
            S: * ENABLED
            S: t2 OK ENABLE completed
        """)


async def test_enable_is_refused_once_a_mailbox_is_selected(world: ImapWorld) -> None:
    """RFC 5161 §3.1 / RFC 9051 §6.3.1: ENABLE only before any mailbox is selected."""
    async with world.logged_in() as client:
        await client.select()
        await client.converse("""
            C: t1 ENABLE IMAP4rev2
            S: t1 BAD *
        """)


# -- SELECT / EXAMINE -----------------------------------------------------------------------


async def test_select_inbox_for_an_imap4rev1_client(world: ImapWorld) -> None:
    """RFC 3501 §6.3.1 (EXISTS, RECENT, FLAGS, UNSEEN, PERMANENTFLAGS, UIDVALIDITY,
    UIDNEXT) and RFC 9051 §6.3.2 ([READ-WRITE])."""
    await world.deliver(MEETING, MIXED, UTF8)
    async with world.store() as store:
        await store.store_flags("INBOX", [1], ["\\Seen"])
    async with world.logged_in() as client:
        await client.converse(rf"""
            C: A142 SELECT INBOX
            S: * 3 EXISTS
            S: * 0 RECENT
            S: * FLAGS (\Answered \Deleted \Draft \Flagged \Seen)
            S: * OK [PERMANENTFLAGS (\Answered \Deleted \Draft \Flagged \Seen \*)] Flags permitted.
            S: * OK [UNSEEN 2] First unseen.
            S: * OK [UIDVALIDITY {INBOX_UIDVALIDITY}] UIDs valid.
            S: * OK [UIDNEXT 4] Predicted next UID.
            S: A142 OK [READ-WRITE] SELECT completed
        """)


async def test_select_names_the_keywords_in_use(world: ImapWorld) -> None:
    """RFC 9051 §7.3.5: FLAGS lists the flags defined in the mailbox, keywords
    in use included."""
    await world.append("INBOX", MEETING, keywords=["$Forwarded"])
    async with world.logged_in() as client:
        lines = await client.select()
        assert r"* FLAGS (\Answered \Deleted \Draft \Flagged \Seen $Forwarded)" in lines


async def test_examine_is_read_only(world: ImapWorld) -> None:
    """RFC 9051 §6.3.3: EXAMINE answers like SELECT, no permanent flags, and the
    tagged OK MUST begin with [READ-ONLY]."""
    await world.deliver(MEETING)
    async with world.logged_in() as client:
        await client.converse(rf"""
            C: A932 EXAMINE INBOX
            S: * 1 EXISTS
            S: * 0 RECENT
            S: * FLAGS (\Answered \Deleted \Draft \Flagged \Seen)
            S: * OK [PERMANENTFLAGS ()] *
            S: * OK [UNSEEN 1] *
            S: * OK [UIDVALIDITY {INBOX_UIDVALIDITY}] *
            S: * OK [UIDNEXT 2] *
            S: A932 OK [READ-ONLY] EXAMINE completed
        """)


async def test_select_of_a_missing_mailbox(world: ImapWorld) -> None:
    """RFC 9051 §6.3.2 (NO) and §7.1 NONEXISTENT; the session stays authenticated."""
    async with world.logged_in() as client:
        await client.converse("""
            C: a1 SELECT blurdybloop
            S: a1 NO [NONEXISTENT] *
            C: a2 EXAMINE blurdybloop
            S: a2 NO [NONEXISTENT] *
            C: a3 FETCH 1 FLAGS
            S: a3 BAD *
        """)


async def test_failed_select_leaves_no_mailbox_selected(world: ImapWorld) -> None:
    """RFC 9051 §6.3.2: SELECT first deselects the selected mailbox (with an untagged
    OK [CLOSED]), so after a failed SELECT no mailbox is selected: FETCH is BAD."""
    await world.deliver(MEETING)
    async with world.logged_in() as client:
        await client.select()
        await client.converse("""
            C: a2 FETCH 1 FLAGS
            S: * 1 FETCH (FLAGS ())
            S: a2 OK FETCH completed
            C: a3 SELECT blurdybloop
            S: * OK [CLOSED] *
            S: a3 NO [NONEXISTENT] *
            C: a4 FETCH 1 FLAGS
            S: a4 BAD *
        """)


async def test_select_while_selected_closes_the_previous_mailbox(world: ImapWorld) -> None:
    """RFC 9051 §6.3.2 (second example) and §7.1 CLOSED: when SELECT closes the
    selected mailbox, an untagged OK [CLOSED] comes before the new mailbox's data."""
    await world.deliver(MEETING)
    async with world.logged_in() as client:
        await client.command("e1 ENABLE IMAP4rev2")
        await client.select()
        await client.converse(r"""
            C: A143 SELECT Drafts
            S: * OK [CLOSED] *
            S: * 0 EXISTS
            S: * FLAGS *
            S: * OK [PERMANENTFLAGS *] *
            S: * OK [UIDVALIDITY *] *
            S: * OK [UIDNEXT 1] *
            S: * LIST (*) "/" "Drafts"
            S: A143 OK [READ-WRITE] SELECT completed
        """)


async def test_select_inbox_is_case_insensitive(world: ImapWorld) -> None:
    """RFC 9051 §5.1: INBOX is case-insensitive."""
    await world.deliver(MEETING)
    async with world.logged_in() as client:
        await client.converse("""
            C: a1 EXAMINE inbox
            S: * 1 EXISTS
            S: * 0 RECENT
            S: * FLAGS *
            S: * OK [PERMANENTFLAGS ()] *
            S: * OK [UNSEEN 1] *
            S: * OK [UIDVALIDITY *] *
            S: * OK [UIDNEXT 2] *
            S: a1 OK [READ-ONLY] EXAMINE completed
        """)


# -- CREATE ---------------------------------------------------------------------------------


async def test_create_with_and_without_a_trailing_delimiter(world: ImapWorld) -> None:
    """RFC 9051 §6.3.4 example: a trailing delimiter only declares the intent to
    create children; the name created is without it."""
    async with world.logged_in() as client:
        await client.converse(r"""
            C: A003 CREATE owatagusiam/
            S: A003 OK CREATE completed
            C: A004 CREATE owatagusiam/blurdybloop
            S: A004 OK CREATE completed
            C: A005 LIST "" owatagusiam*
            S: * LIST (*\HasChildren) "/" "owatagusiam"
            S: * LIST (\HasNoChildren) "/" "owatagusiam/blurdybloop"
            S: A005 OK LIST completed
        """)


async def test_create_makes_missing_superiors(world: ImapWorld) -> None:
    """RFC 9051 §6.3.4: CREATE foo/bar/zap SHOULD create foo and foo/bar."""
    async with world.logged_in() as client:
        await client.converse(r"""
            C: a1 CREATE foo/bar/zap
            S: a1 OK CREATE completed
            C: a2 LIST "" foo*
            S: * LIST (*\HasChildren) "/" "foo"
            S: * LIST (*\HasChildren) "/" "foo/bar"
            S: * LIST (\HasNoChildren) "/" "foo/bar/zap"
            S: a2 OK LIST completed
        """)


async def test_create_of_an_existing_name(world: ImapWorld) -> None:
    """RFC 9051 §6.3.4: creating INBOX or an extant mailbox is an error; RFC 5530
    ALREADYEXISTS says which."""
    async with world.logged_in() as client:
        await client.converse("""
            C: a1 CREATE Sent
            S: a1 NO [ALREADYEXISTS] *
            C: a2 CREATE INBOX
            S: a2 NO [ALREADYEXISTS] *
            C: a3 CREATE Sent/
            S: a3 NO [ALREADYEXISTS] *
        """)


async def test_create_with_a_special_use(world: ImapWorld) -> None:
    """RFC 6154 §3 (CREATE-SPECIAL-USE): CREATE name (USE (attr)); the attribute shows
    in LIST; an unknown one is NO [USEATTR], as is a second use (a server MAY
    refuse combinations it cannot store)."""
    async with world.logged_in() as client:
        await client.converse(r"""
            C: t1 CREATE MySpecial (USE (\Drafts))
            S: t1 OK CREATE completed
            C: t2 CREATE Important (USE (\Flagged))
            S: t2 OK CREATE completed
            C: t3 CREATE Bogus (USE (\Sentmail))
            S: t3 NO [USEATTR] *
            C: t4 CREATE Twice (USE (\All \Flagged))
            S: t4 NO [USEATTR] *
            C: t5 LIST "" *
            S: * LIST (\HasNoChildren) "/" "INBOX"
            S: * LIST (\HasNoChildren \Archive) "/" "Archive"
            S: * LIST (\HasNoChildren \Drafts) "/" "Drafts"
            S: * LIST (\HasNoChildren \Flagged) "/" "Important"
            S: * LIST (\HasNoChildren \Junk) "/" "Junk"
            S: * LIST (\HasNoChildren \Drafts) "/" "MySpecial"
            S: * LIST (\HasNoChildren \Sent) "/" "Sent"
            S: * LIST (\HasNoChildren \Trash) "/" "Trash"
            S: t5 OK LIST completed
        """)


async def test_create_with_a_modified_utf7_name(world: ImapWorld) -> None:
    """RFC 3501 §5.1.3: an IMAP4rev1 client names mailboxes in modified UTF-7, and LIST
    gives them back the same way; after ENABLE IMAP4rev2 names are UTF-8 (RFC 9051
    §5.1)."""
    async with world.logged_in() as client:
        await client.converse(r"""
            C: a1 CREATE Entw&APw-rfe
            S: a1 OK CREATE completed
            C: a2 LIST "" Entw*
            S: * LIST (\HasNoChildren) "/" "Entw&APw-rfe"
            S: a2 OK LIST completed
        """)
    async with world.logged_in() as client:
        await client.converse(r"""
            C: e1 ENABLE IMAP4rev2
            S: * ENABLED IMAP4rev2
            S: e1 OK ENABLE completed
            C: a2 LIST "" Entw*
            S: * LIST (\HasNoChildren) "/" "Entwürfe"
            S: a2 OK LIST completed
        """)


# -- DELETE ---------------------------------------------------------------------------------


async def test_delete(world: ImapWorld) -> None:
    """RFC 9051 §6.3.5: DELETE removes the mailbox and its messages; a missing one is
    NO [NONEXISTENT] (§7.1)."""
    async with world.logged_in() as client:
        await client.converse(r"""
            C: A682 CREATE blurdybloop
            S: A682 OK CREATE completed
            C: A683 DELETE blurdybloop
            S: A683 OK DELETE completed
            C: A684 DELETE blurdybloop
            S: A684 NO [NONEXISTENT] *
            C: A685 LIST "" blurdybloop
            S: A685 OK LIST completed
        """)


async def test_delete_inbox_is_refused(world: ImapWorld) -> None:
    """RFC 9051 §6.3.5: it is an error to attempt to delete INBOX."""
    await world.deliver(MEETING)
    async with world.logged_in() as client:
        await client.converse("""
            C: a1 DELETE INBOX
            S: a1 NO *
            C: a2 STATUS INBOX (MESSAGES)
            S: * STATUS "INBOX" (MESSAGES 1)
            S: a2 OK STATUS completed
        """)


async def test_delete_with_children(world: ImapWorld) -> None:
    """RFC 9051 §6.3.5: DELETE MUST NOT remove inferior names, and deleting a
    \\Noselect name that has inferiors is an error. A server MAY delete a selectable
    mailbox with inferiors and keep its name as \\Noselect (RFC example 1): Maildir
    does; an mbox mailbox is a file and cannot have inferiors (CREATE under it is NO)."""
    async with world.logged_in() as client:
        await client.converse(r"""
            C: a1 CREATE foo/bar
            S: a1 OK CREATE completed
            C: a2 LIST "" foo*
            S: * LIST (\Noselect \HasChildren) "/" "foo"
            S: * LIST (\HasNoChildren) "/" "foo/bar"
            S: a2 OK LIST completed
            C: a3 DELETE foo
            S: a3 NO *
            C: a4 DELETE foo/bar
            S: a4 OK DELETE completed
            C: a5 LIST "" foo/*
            S: a5 OK LIST completed
        """)
        if world.fmt == "mbox":
            await client.converse("""
                C: b1 CREATE zap
                S: b1 OK CREATE completed
                C: b2 CREATE zap/rag
                S: b2 NO *
            """)
            return
        await client.converse(r"""
            C: b1 CREATE zap
            S: b1 OK CREATE completed
            C: b2 CREATE zap/rag
            S: b2 OK CREATE completed
            C: A684 DELETE zap
            S: A684 OK DELETE completed
            C: A685 LIST "" zap*
            S: * LIST (\Noselect \HasChildren) "/" "zap"
            S: * LIST (\HasNoChildren) "/" "zap/rag"
            S: A685 OK LIST completed
            C: A686 DELETE zap
            S: A686 NO *
        """)


async def test_delete_of_the_selected_mailbox_is_refused(world: ImapWorld) -> None:
    """RFC 9051 §6.3.5 allows any error to refuse a DELETE: the selected mailbox is
    NO [INUSE] (RFC 5530) and stays selected, with its messages."""
    await world.append("Drafts", MEETING)
    async with world.logged_in() as client:
        await client.select("Drafts")
        await client.converse("""
            C: a1 DELETE Drafts
            S: a1 NO [INUSE] *
            C: a2 FETCH 1 UID
            S: * 1 FETCH (UID 1)
            S: a2 OK FETCH completed
        """)


# -- RENAME ---------------------------------------------------------------------------------


async def test_rename_takes_the_inferior_names_along(world: ImapWorld) -> None:
    """RFC 9051 §6.3.6 example: renaming foo to zowie renames foo/bar to zowie/bar."""
    async with world.logged_in() as client:
        await client.converse(r"""
            C: a1 CREATE blurdybloop
            S: a1 OK CREATE completed
            C: a2 CREATE foo/bar
            S: a2 OK CREATE completed
            C: A683 RENAME blurdybloop sarasoop
            S: A683 OK RENAME completed
            C: A684 RENAME foo zowie
            S: A684 OK RENAME completed
            C: A685 LIST "" *
            S: * LIST (\HasNoChildren) "/" "INBOX"
            S: * LIST (\HasNoChildren \Archive) "/" "Archive"
            S: * LIST (\HasNoChildren \Drafts) "/" "Drafts"
            S: * LIST (\HasNoChildren \Junk) "/" "Junk"
            S: * LIST (\HasNoChildren \Sent) "/" "Sent"
            S: * LIST (\HasNoChildren \Trash) "/" "Trash"
            S: * LIST (\HasNoChildren) "/" "sarasoop"
            S: * LIST (\Noselect \HasChildren) "/" "zowie"
            S: * LIST (\HasNoChildren) "/" "zowie/bar"
            S: A685 OK LIST completed
        """)


async def test_rename_of_the_selected_mailbox(world: ImapWorld) -> None:
    """RFC 9051 §6.3.6 does not forbid renaming the selected mailbox, and every command
    gets its tagged response (§2.2.2): the RENAME is answered OK and the session goes on
    with the same messages, now under the new name."""
    await world.append("Drafts", MEETING, SMALL)
    async with world.logged_in() as client:
        await client.select("Drafts")
        await client.converse(r"""
            C: a1 RENAME Drafts Entwurf
            S: a1 OK RENAME completed
            C: a2 NOOP
            S: a2 OK NOOP completed
            C: a3 FETCH 1:* UID
            S: * 1 FETCH (UID 1)
            S: * 2 FETCH (UID 2)
            S: a3 OK FETCH completed
            C: a4 STORE 2 +FLAGS (\Seen)
            S: * 2 FETCH (FLAGS (\Seen))
            S: a4 OK STORE completed
            C: a5 STATUS Entwurf (MESSAGES UNSEEN)
            S: * STATUS "Entwurf" (MESSAGES 2 UNSEEN 1)
            S: a5 OK STATUS completed
        """)


async def test_rename_of_a_parent_of_the_selected_mailbox(world: ImapWorld) -> None:
    """RFC 9051 §6.3.6: inferior names are renamed along; the selected one stays
    selected under its new name."""
    async with world.store() as store:
        await store.create_mailbox("work/todo")
    await world.append("work/todo", note(1))
    async with world.logged_in() as client:
        await client.select("work/todo")
        await client.converse("""
            C: a1 RENAME work job
            S: a1 OK RENAME completed
            C: a2 FETCH 1 UID
            S: * 1 FETCH (UID 1)
            S: a2 OK FETCH completed
            C: a3 LIST "" job*
            S: * LIST (\\Noselect \\HasChildren) "/" "job"
            S: * LIST (\\HasNoChildren) "/" "job/todo"
            S: a3 OK LIST completed
        """)


async def test_rename_errors(world: ImapWorld) -> None:
    """RFC 9051 §6.3.6: renaming a missing mailbox or onto an existing name is an
    error (RFC 5530 NONEXISTENT, ALREADYEXISTS)."""
    async with world.logged_in() as client:
        await client.converse("""
            C: a1 RENAME blurdybloop sarasoop
            S: a1 NO [NONEXISTENT] *
            C: a2 RENAME Sent Trash
            S: a2 NO [ALREADYEXISTS] *
        """)


async def test_rename_inbox_moves_its_messages(world: ImapWorld) -> None:
    """RFC 9051 §6.3.6 (RFC 3501 §6.3.5): renaming INBOX moves all its messages to a
    new mailbox of the given name and leaves INBOX empty, and there."""
    await world.deliver(MEETING, MIXED, SMALL)
    async with world.logged_in() as client:
        await client.converse(r"""
            C: Z433 RENAME INBOX old-mail
            S: Z433 OK RENAME completed
            C: Z434 LIST "" *
            S: * LIST (\HasNoChildren) "/" "INBOX"
            S: * LIST (\HasNoChildren \Archive) "/" "Archive"
            S: * LIST (\HasNoChildren \Drafts) "/" "Drafts"
            S: * LIST (\HasNoChildren \Junk) "/" "Junk"
            S: * LIST (\HasNoChildren \Sent) "/" "Sent"
            S: * LIST (\HasNoChildren \Trash) "/" "Trash"
            S: * LIST (\HasNoChildren) "/" "old-mail"
            S: Z434 OK LIST completed
            C: Z435 STATUS INBOX (MESSAGES)
            S: * STATUS "INBOX" (MESSAGES 0)
            S: Z435 OK STATUS completed
            C: Z436 STATUS old-mail (MESSAGES)
            S: * STATUS "old-mail" (MESSAGES 3)
            S: Z436 OK STATUS completed
            C: Z437 EXAMINE old-mail
            S: * 3 EXISTS
            S: * 0 RECENT
            S: * FLAGS *
            S: * OK [PERMANENTFLAGS ()] *
            S: * OK [UNSEEN 1] *
            S: * OK [UIDVALIDITY *] *
            S: * OK [UIDNEXT *] *
            S: Z437 OK [READ-ONLY] EXAMINE completed
            C: Z438 FETCH 1:* BODY.PEEK[HEADER.FIELDS (SUBJECT)]
            S: * 1 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {30}
            S: Subject: afternoon meeting
            S:
            S: )
            S: * 2 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {23}
            S: Subject: the report
            S:
            S: )
            S: * 3 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {19}
            S: Subject: lunch?
            S:
            S: )
            S: Z438 OK FETCH completed
        """)
    # mail keeps arriving in the (new, empty) INBOX
    await world.deliver(note(1))
    async with world.store() as store:
        assert (await store.status("INBOX")).messages == 1


async def test_uids_of_a_recreated_mailbox_are_not_reused(world: ImapWorld) -> None:
    """RFC 9051 §6.3.4 and §6.3.5: a mailbox created again under the name of a deleted
    one MUST NOT reuse its UIDs unless its UIDVALIDITY differs; the same after a
    RENAME took the old mailbox away (§6.3.6)."""
    async with world.store() as store:
        await store.create_mailbox("notes")
        before = await store.status("notes")
    await world.append("notes", note(1), note(2))
    async with world.logged_in() as client:
        await client.converse("""
            C: a1 DELETE notes
            S: a1 OK DELETE completed
            C: a2 CREATE notes
            S: a2 OK CREATE completed
        """)
        async with world.store() as store:
            again = await store.status("notes")
        assert again.uidvalidity != before.uidvalidity or again.uidnext > 2
        await client.converse("""
            C: a3 APPEND notes {6+}
            C: x: y
            C:
            S: a3 OK [APPENDUID * *] APPEND completed
            C: a4 RENAME notes kept
            S: a4 OK RENAME completed
            C: a5 CREATE notes
            S: a5 OK CREATE completed
        """)
        async with world.store() as store:
            third = await store.status("notes")
            kept = await store.status("kept")
        assert third.uidvalidity != kept.uidvalidity or third.uidnext > kept.uidnext - 1
