"""Listing mailboxes and asking about them: SUBSCRIBE, UNSUBSCRIBE, LSUB, LIST with its
extensions (RFC 5258, RFC 5819, RFC 6154) and STATUS (RFC 9051 §6.3.9-§6.3.11)."""

from __future__ import annotations

from .imap_harness import INBOX_UIDVALIDITY, ImapWorld
from .messages import MEETING, MIXED, SMALL, UTF8

# -- SUBSCRIBE / UNSUBSCRIBE / LSUB -------------------------------------------------------------


async def test_subscribe_unsubscribe_and_lsub(world: ImapWorld) -> None:
    """RFC 9051 §6.3.7, §6.3.8 (both succeed when already done) and RFC 3501 §6.3.9
    LSUB (kept for IMAP4rev1 clients). A subscribed name that does not exist is
    listed by LSUB as \\Noselect."""
    async with world.logged_in() as client:
        await client.converse(r"""
            C: a1 CREATE news
            S: a1 OK CREATE completed
            C: A002 SUBSCRIBE news
            S: A002 OK SUBSCRIBE completed
            C: A003 SUBSCRIBE news
            S: A003 OK SUBSCRIBE completed
            C: A004 UNSUBSCRIBE Junk
            S: A004 OK UNSUBSCRIBE completed
            C: A005 UNSUBSCRIBE Junk
            S: A005 OK UNSUBSCRIBE completed
            C: A006 LSUB "" *
            S: * LSUB () "/" "Archive"
            S: * LSUB () "/" "Drafts"
            S: * LSUB () "/" "INBOX"
            S: * LSUB () "/" "Sent"
            S: * LSUB () "/" "Trash"
            S: * LSUB () "/" "news"
            S: A006 OK LSUB completed
            C: A007 DELETE news
            S: A007 OK DELETE completed
            C: A008 LSUB "" n*
            S: * LSUB (\Noselect) "/" "news"
            S: A008 OK LSUB completed
        """)


async def test_list_subscribed(world: ImapWorld) -> None:
    """RFC 9051 §6.3.9.1 SUBSCRIBED selection option (example 2): exactly the
    subscribed names, with \\Subscribed; a subscribed name that does not exist has
    \\NonExistent (§6.3.9.3)."""
    async with world.logged_in() as client:
        await client.converse(r"""
            C: a1 CREATE Fruit/Banana
            S: a1 OK CREATE completed
            C: a2 SUBSCRIBE Fruit/Banana
            S: a2 OK SUBSCRIBE completed
            C: a3 SUBSCRIBE Fruit/Peach
            S: a3 OK SUBSCRIBE completed
            C: A02 LIST (SUBSCRIBED) "" "Fruit*"
            S: * LIST (\HasNoChildren \Subscribed) "/" "Fruit/Banana"
            S: * LIST (\NonExistent \HasNoChildren \Subscribed) "/" "Fruit/Peach"
            S: A02 OK LIST completed
            C: A03 LIST (SUBSCRIBED) "" *
            S: * LIST (\HasNoChildren \Archive \Subscribed) "/" "Archive"
            S: * LIST (\HasNoChildren \Drafts \Subscribed) "/" "Drafts"
            S: * LIST (\HasNoChildren \Subscribed) "/" "Fruit/Banana"
            S: * LIST (\NonExistent \HasNoChildren \Subscribed) "/" "Fruit/Peach"
            S: * LIST (\HasNoChildren \Subscribed) "/" "INBOX"
            S: * LIST (\HasNoChildren \Junk \Subscribed) "/" "Junk"
            S: * LIST (\HasNoChildren \Sent \Subscribed) "/" "Sent"
            S: * LIST (\HasNoChildren \Trash \Subscribed) "/" "Trash"
            S: A03 OK LIST completed
        """)


# -- LIST -----------------------------------------------------------------------------------


async def test_list_empty_pattern_gives_the_delimiter(world: ImapWorld) -> None:
    """RFC 9051 §6.3.9 and its first example: LIST "" "" returns the hierarchy
    delimiter and the root, as \\Noselect."""
    async with world.logged_in() as client:
        await client.converse(r"""
            C: A101 LIST "" ""
            S: * LIST (\Noselect) "/" ""
            S: A101 OK LIST completed
        """)


async def test_extended_list_ignores_an_empty_pattern(world: ImapWorld) -> None:
    """RFC 9051 §6.3.9: in the extended syntax an empty mailbox name argument is
    ignored; it has no special meaning."""
    async with world.logged_in() as client:
        await client.converse(r"""
            C: A101 LIST () "" ""
            S: A101 OK LIST completed
            C: A102 LIST "" ("" INBOX)
            S: * LIST (\HasNoChildren) "/" "INBOX"
            S: A102 OK LIST completed
        """)


async def test_list_star_and_percent(world: ImapWorld) -> None:
    """RFC 9051 §6.3.9: ``*`` matches across levels, ``%`` does not; a reference is
    the context the pattern is read in."""
    async with world.logged_in() as client:
        await client.converse(r"""
            C: a1 CREATE work/projects/2026
            S: a1 OK CREATE completed
            C: a2 LIST "" %
            S: * LIST (\HasNoChildren) "/" "INBOX"
            S: * LIST (\HasNoChildren \Archive) "/" "Archive"
            S: * LIST (\HasNoChildren \Drafts) "/" "Drafts"
            S: * LIST (\HasNoChildren \Junk) "/" "Junk"
            S: * LIST (\HasNoChildren \Sent) "/" "Sent"
            S: * LIST (\HasNoChildren \Trash) "/" "Trash"
            S: * LIST (\Noselect \HasChildren) "/" "work"
            S: a2 OK LIST completed
            C: a3 LIST "" work/%
            S: * LIST (\Noselect \HasChildren) "/" "work/projects"
            S: a3 OK LIST completed
            C: a4 LIST work/ *
            S: * LIST (\Noselect \HasChildren) "/" "work/projects"
            S: * LIST (\HasNoChildren) "/" "work/projects/2026"
            S: a4 OK LIST completed
            C: a5 LIST "" *26
            S: * LIST (\HasNoChildren) "/" "work/projects/2026"
            S: a5 OK LIST completed
            C: a6 LIST "" nothing*
            S: a6 OK LIST completed
        """)


async def test_list_return_options(world: ImapWorld) -> None:
    """RFC 9051 §6.3.9.2 (RETURN CHILDREN, SUBSCRIBED, STATUS: each selectable
    mailbox's LIST is followed by its STATUS, RFC 5819 §2, and a name that is only a
    level of the hierarchy, \\Noselect or \\NonExistent (§6.3.9.6), gets none) and
    RFC 6154 §5 (RETURN SPECIAL-USE)."""
    await world.deliver(MEETING, MIXED)
    async with world.store() as store:
        await store.store_flags("INBOX", [1], ["\\Seen"])
    async with world.logged_in() as client:
        await client.converse(r"""
            C: a1 CREATE Lists/ietf
            S: a1 OK CREATE completed
            C: a2 LIST "" % RETURN (CHILDREN SPECIAL-USE SUBSCRIBED STATUS (MESSAGES UNSEEN))
            S: * LIST (\HasNoChildren \Subscribed) "/" "INBOX"
            S: * STATUS "INBOX" (MESSAGES 2 UNSEEN 1)
            S: * LIST (\HasNoChildren \Archive \Subscribed) "/" "Archive"
            S: * STATUS "Archive" (MESSAGES 0 UNSEEN 0)
            S: * LIST (\HasNoChildren \Drafts \Subscribed) "/" "Drafts"
            S: * STATUS "Drafts" (MESSAGES 0 UNSEEN 0)
            S: * LIST (\HasNoChildren \Junk \Subscribed) "/" "Junk"
            S: * STATUS "Junk" (MESSAGES 0 UNSEEN 0)
            S: * LIST (\No* \HasChildren) "/" "Lists"
            S: * LIST (\HasNoChildren \Sent \Subscribed) "/" "Sent"
            S: * STATUS "Sent" (MESSAGES 0 UNSEEN 0)
            S: * LIST (\HasNoChildren \Trash \Subscribed) "/" "Trash"
            S: * STATUS "Trash" (MESSAGES 0 UNSEEN 0)
            S: a2 OK LIST completed
        """)


async def test_list_special_use_selection(world: ImapWorld) -> None:
    """RFC 6154 §5.1 / §6 (LIST (SPECIAL-USE) "" *): only mailboxes with a special
    use are listed, each with its attribute."""
    async with world.logged_in() as client:
        await client.converse(r"""
            C: a1 CREATE plain
            S: a1 OK CREATE completed
            C: t1 LIST (SPECIAL-USE) "" *
            S: * LIST (\HasNoChildren \Archive*) "/" "Archive"
            S: * LIST (\HasNoChildren \Drafts*) "/" "Drafts"
            S: * LIST (\HasNoChildren \Junk*) "/" "Junk"
            S: * LIST (\HasNoChildren \Sent*) "/" "Sent"
            S: * LIST (\HasNoChildren \Trash*) "/" "Trash"
            S: t1 OK LIST completed
        """)


async def test_list_with_unknown_options_is_bad(world: ImapWorld) -> None:
    """RFC 9051 §6.3.9: a server MUST answer options it does not recognise with BAD;
    RECURSIVEMATCH alone is BAD too (§6.3.9.1)."""
    async with world.logged_in() as client:
        await client.converse("""
            C: a1 LIST (BLURDY) "" *
            S: a1 BAD *
            C: a2 LIST "" * RETURN (BLURDY)
            S: a2 BAD *
            C: a3 LIST (RECURSIVEMATCH) "" *
            S: a3 BAD *
        """)


async def test_namespace(world: ImapWorld) -> None:
    """RFC 9051 §6.3.10 (RFC 2342): one personal namespace, prefix "" and "/"."""
    async with world.logged_in() as client:
        await client.converse("""
            C: A001 NAMESPACE
            S: * NAMESPACE (("" "/")) NIL NIL
            S: A001 OK NAMESPACE completed
        """)


# -- STATUS ---------------------------------------------------------------------------------


async def test_status_with_every_item(world: ImapWorld) -> None:
    """RFC 9051 §6.3.11 (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE), RFC 8438
    STATUS=SIZE, RFC 3501 §6.3.10 RECENT (always 0 here: \\Recent is not kept)."""
    await world.deliver(MEETING, MIXED, UTF8, SMALL)
    async with world.store() as store:
        await store.store_flags("INBOX", [1, 2], ["\\Seen"])
        await store.store_flags("INBOX", [2], ["\\Deleted"])
    size = len(MEETING) + len(MIXED) + len(UTF8) + len(SMALL)
    async with world.logged_in() as client:
        await client.converse(rf"""
            C: A042 STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE RECENT)
            S: * STATUS "INBOX" (MESSAGES 4 UIDNEXT 5 UIDVALIDITY {INBOX_UIDVALIDITY} UNSEEN 2 DELETED 1 SIZE {size} RECENT 0)
            S: A042 OK STATUS completed
            C: A043 STATUS Drafts (UIDNEXT MESSAGES)
            S: * STATUS "Drafts" (UIDNEXT 1 MESSAGES 0)
            S: A043 OK STATUS completed
        """)  # noqa: E501


async def test_status_errors(world: ImapWorld) -> None:
    """RFC 9051 §6.3.11: STATUS of a missing mailbox is NO [NONEXISTENT]; an unknown
    item is a syntax error (BAD)."""
    async with world.logged_in() as client:
        await client.converse("""
            C: a1 STATUS blurdybloop (MESSAGES)
            S: a1 NO [NONEXISTENT] *
            C: a2 STATUS INBOX (MESSAGES BLURDY)
            S: a2 BAD *
        """)


async def test_status_of_the_selected_mailbox(world: ImapWorld) -> None:
    """RFC 9051 §6.3.11: STATUS of the selected mailbox is allowed (the client should
    not rely on it instead of the mailbox's own updates)."""
    await world.deliver(MEETING)
    async with world.logged_in() as client:
        await client.select()
        await client.converse("""
            C: a1 STATUS INBOX (MESSAGES UNSEEN)
            S: * STATUS "INBOX" (MESSAGES 1 UNSEEN 1)
            S: a1 OK STATUS completed
        """)


async def test_too_many_bad_commands_after_login_end_the_session(world: ImapWorld) -> None:
    """DESIGN.md §5 with RFC 9051 §7.1.5: after 20 bad commands the session is ended
    with BYE (the limit after login is higher than before it)."""
    bad = "\n".join(f"C: b{n} BLURDY\nS: b{n} BAD *" for n in range(19))
    async with world.logged_in() as client:
        await client.converse(bad)
        await client.converse("""
            C: b19 BLURDY
            S: b19 BAD *
            S: * BYE *
        """)
        assert await client.at_eof()
