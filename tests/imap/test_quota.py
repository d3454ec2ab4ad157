"""QUOTA (RFC 9208): GETQUOTA, GETQUOTAROOT, SETQUOTA, STATUS DELETED-STORAGE, and
APPEND and COPY refused with OVERQUOTA, on both store formats (``imap_quota``:
one quota root "" per user; STORAGE in units of 1024 octets, rounded up)."""

from __future__ import annotations

from postoffice.core.address import parse_address

from .imap_harness import ALICE, ImapWorld, c_literal, crlf
from .messages import MEETING, SMALL

BIG = crlf("Subject: big\n\n" + "x" * 3000 + "\n")  # 3016 octets


def kib(octets: int) -> int:
    return -(-octets // 1024)


def set_quota(world: ImapWorld, *, octets: int | None = None, messages: int | None = None) -> None:
    world.accounts.set_quota(parse_address(ALICE), octets=octets, messages=messages)


async def inbox_count(world: ImapWorld, mailbox: str = "INBOX") -> int:
    async with world.store() as store:
        return (await store.status(mailbox)).messages


async def test_capabilities_name_quota_and_both_resources_but_not_quotaset(
    world: ImapWorld,
) -> None:
    """RFC 9208 §3.1 and §5: QUOTA, QUOTA=RES-STORAGE, QUOTA=RES-MESSAGE after login;
    no QUOTASET (SETQUOTA is not offered); nothing of it before login."""
    async with world.connect() as client:
        assert "QUOTA" not in client.greeting
        await client.login()
        lines = await client.command("c1 CAPABILITY")
    caps = lines[0].split()
    assert {"QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE"} <= set(caps)
    assert "QUOTASET" not in caps


async def test_no_limit_means_no_quota_root(world: ImapWorld) -> None:
    """An account without limits has no quota root: QUOTAROOT lists none, GETQUOTA ""
    is NONEXISTENT (a QUOTA response must list at least one resource)."""
    async with world.logged_in() as client:
        await client.converse("""
            C: q1 GETQUOTAROOT INBOX
            S: * QUOTAROOT INBOX
            S: q1 OK GETQUOTAROOT completed
            C: q2 GETQUOTA ""
            S: q2 NO [NONEXISTENT] No such quota root
        """)


async def test_usage_is_exact_after_append_and_expunge(world: ImapWorld) -> None:
    """RFC 9208 §4.1.1-§4.1.2: usage over all the user's mailboxes; STORAGE in KiB
    rounded up; the numbers follow APPEND and EXPUNGE at once."""
    await world.deliver(MEETING, SMALL)
    set_quota(world, octets=1024 * 1024, messages=10)
    used = len(MEETING) + len(SMALL)
    async with world.store() as store:
        await store.create_mailbox("Projects")
    async with world.logged_in() as client:
        await client.converse(f"""
            C: q1 GETQUOTAROOT INBOX
            S: * QUOTAROOT INBOX ""
            S: * QUOTA "" (STORAGE {kib(used)} 1024 MESSAGE 2 10)
            S: q1 OK GETQUOTAROOT completed
            C: q2 APPEND Projects {{{len(BIG)}+}}
            {c_literal(BIG)}
            S: q2 OK [APPENDUID * 1] APPEND completed
            C: q3 GETQUOTA ""
            S: * QUOTA "" (STORAGE {kib(used + len(BIG))} 1024 MESSAGE 3 10)
            S: q3 OK GETQUOTA completed
            C: q4 GETQUOTAROOT Projects
            S: * QUOTAROOT Projects ""
            S: * QUOTA "" (STORAGE {kib(used + len(BIG))} 1024 MESSAGE 3 10)
            S: q4 OK GETQUOTAROOT completed
        """)
        await client.select()
        await client.converse(rf"""
            C: q5 STORE 1 +FLAGS.SILENT (\Deleted)
            S: q5 OK STORE completed
            C: q6 EXPUNGE
            S: * 1 EXPUNGE
            S: q6 OK EXPUNGE completed
            C: q7 GETQUOTA ""
            S: * QUOTA "" (STORAGE {kib(len(SMALL) + len(BIG))} 1024 MESSAGE 2 10)
            S: q7 OK GETQUOTA completed
        """)


async def test_only_the_limited_resources_are_listed(world: ImapWorld) -> None:
    """A resource without a limit is left out of the QUOTA response."""
    await world.deliver(MEETING)
    set_quota(world, messages=5)
    async with world.logged_in() as client:
        await client.converse("""
            C: q1 GETQUOTA ""
            S: * QUOTA "" (MESSAGE 1 5)
            S: q1 OK GETQUOTA completed
        """)
        set_quota(world, octets=2048, messages=0)
        await client.converse("""
            C: q2 GETQUOTA ""
            S: * QUOTA "" (STORAGE 1 2)
            S: q2 OK GETQUOTA completed
        """)


async def test_unknown_root_missing_mailbox_and_setquota(world: ImapWorld) -> None:
    """GETQUOTA of another root and GETQUOTAROOT of a missing mailbox: NO
    [NONEXISTENT]; SETQUOTA (not offered): NO [NOPERM], the limits unchanged."""
    set_quota(world, messages=5)
    async with world.logged_in() as client:
        await client.converse("""
            C: q1 GETQUOTA "User quota"
            S: q1 NO [NONEXISTENT] No such quota root
            C: q2 GETQUOTAROOT Nowhere
            S: q2 NO [NONEXISTENT] Mailbox doesn't exist
            C: q3 SETQUOTA "" (STORAGE 512)
            S: q3 NO [NOPERM] Quotas are set by the administrator
            C: q4 GETQUOTA ""
            S: * QUOTA "" (MESSAGE 0 5)
            S: q4 OK GETQUOTA completed
        """)


async def test_status_deleted_and_deleted_storage(world: ImapWorld) -> None:
    """RFC 9208 §4.2: DELETED counts \\Deleted messages, DELETED-STORAGE their size in
    KiB (rounded down: never more than an EXPUNGE frees); also in LIST-STATUS."""
    await world.deliver(BIG, MEETING, SMALL)
    async with world.store() as store:
        await store.store_flags("INBOX", [1, 3], ["\\Deleted"])
    freed = (len(BIG) + len(SMALL)) // 1024
    async with world.logged_in() as client:
        await client.converse(f"""
            C: s1 STATUS INBOX (MESSAGES DELETED DELETED-STORAGE)
            S: * STATUS "INBOX" (MESSAGES 3 DELETED 2 DELETED-STORAGE {freed})
            S: s1 OK STATUS completed
            C: s2 LIST "" INBOX RETURN (STATUS (DELETED-STORAGE))
            S: * LIST (\\HasNoChildren) "/" "INBOX"
            S: * STATUS "INBOX" (DELETED-STORAGE {freed})
            S: s2 OK LIST completed
        """)
    assert freed == 3


async def test_append_over_storage_is_refused_and_nothing_written(world: ImapWorld) -> None:
    """RFC 9208 §4.3: NO [OVERQUOTA]; a MULTIAPPEND whose second message does not fit
    writes none of them (RFC 3502 §6.3.11)."""
    await world.deliver(MEETING)
    set_quota(world, octets=2048)
    async with world.logged_in() as client:
        await client.converse(f"""
            C: a1 APPEND INBOX {{{len(BIG)}+}}
            {c_literal(BIG)}
            S: a1 NO [OVERQUOTA] Quota exceeded (storage)
            C: a2 APPEND INBOX {{{len(SMALL)}+}}
            {c_literal(SMALL, f" {{{len(MEETING) * 6}+}}")}
            {c_literal(MEETING * 6)}
            S: a2 NO [OVERQUOTA] Quota exceeded (storage)
        """)
        assert await inbox_count(world) == 1
        await client.converse(f"""
            C: a3 APPEND INBOX {{{len(SMALL)}+}}
            {c_literal(SMALL)}
            S: a3 OK [APPENDUID * 2] APPEND completed
        """)
    assert await inbox_count(world) == 2


async def test_append_over_message_count_is_refused(world: ImapWorld) -> None:
    await world.deliver(MEETING, SMALL)
    set_quota(world, messages=2)
    async with world.logged_in() as client:
        await client.converse(f"""
            C: a1 APPEND Drafts {{{len(SMALL)}+}}
            {c_literal(SMALL)}
            S: a1 NO [OVERQUOTA] Quota exceeded (message count)
        """)
    assert await inbox_count(world, "Drafts") == 0


async def test_copy_over_quota_is_refused_and_nothing_written(world: ImapWorld) -> None:
    """COPY counts the copies' sizes and number: NO [OVERQUOTA], the destination
    untouched; a COPY that fits still works."""
    await world.deliver(BIG, SMALL)
    set_quota(world, octets=4096, messages=10)
    async with world.store() as store:
        await store.create_mailbox("Keep")
    async with world.logged_in() as client:
        await client.select()
        await client.converse("""
            C: c1 COPY 1:2 Keep
            S: c1 NO [OVERQUOTA] Quota exceeded (storage)
            C: c2 UID COPY 1 Keep
            S: c2 NO [OVERQUOTA] Quota exceeded (storage)
        """)
        assert await inbox_count(world, "Keep") == 0
        await client.converse("""
            C: c3 COPY 2 Keep
            S: c3 OK [COPYUID * 2 1] COPY completed
        """)
    assert await inbox_count(world, "Keep") == 1
    set_quota(world, octets=0, messages=3)
    async with world.logged_in() as client:
        await client.select()
        await client.converse("""
            C: c4 COPY 1:2 Keep
            S: c4 NO [OVERQUOTA] Quota exceeded (message count)
        """)
    assert await inbox_count(world, "Keep") == 1


async def test_move_inside_the_root_is_never_refused(world: ImapWorld) -> None:
    """A MOVE changes no usage of the one root: an account over its quota (a lowered
    limit) can still move mail to Trash and expunge it; a COPY is refused."""
    await world.deliver(BIG, SMALL)
    set_quota(world, octets=1024, messages=1)  # below what is there already
    async with world.logged_in() as client:
        await client.select()
        await client.converse(f"""
            C: m1 COPY 1 Trash
            S: m1 NO [OVERQUOTA] Quota exceeded (storage)
            C: m2 MOVE 1 Trash
            S: * OK [COPYUID * 1 1] Moved
            S: * 1 EXPUNGE
            S: m2 OK MOVE completed
            C: m3 GETQUOTA ""
            S: * QUOTA "" (STORAGE {kib(len(BIG) + len(SMALL))} 1 MESSAGE 2 1)
            S: m3 OK GETQUOTA completed
        """)
    assert await inbox_count(world, "Trash") == 1
