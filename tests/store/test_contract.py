"""The store contract: every test here runs against Maildir and mbox (DESIGN.md §6)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from postoffice.core.errors import MailboxNameError, StoreError
from postoffice.store import ChangeKind, FileMailStore, FlagMode, MailStore, StoreFactory
from postoffice.store.fileio import CHUNK
from tests.store.conftest import ALICE, TRICKY, message

SEEN, DELETED, FLAGGED, ANSWERED, DRAFT = (
    "\\Seen",
    "\\Deleted",
    "\\Flagged",
    "\\Answered",
    "\\Draft",
)


def _conforms(store: FileMailStore) -> MailStore:
    return store  # mypy checks that FileMailStore implements the MailStore protocol


async def test_uid_ranges_are_not_expanded(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        for n in range(3):
            await store.append("INBOX", message(n))
        everything = range(1, 2**32)  # IMAP "1:*"
        changed = await store.store_flags("INBOX", everything, [DELETED])
        assert [m.uid for m in changed] == [1, 2, 3]
        assert await store.copy("INBOX", range(2, 2**32), "Trash") == {2: 1, 3: 2}
        assert await store.expunge("INBOX", range(2, 2**32)) == [2, 3]
        assert [m.uid for m in await store.messages("INBOX")] == [1]


async def test_new_user_is_provisioned(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        boxes = {box.name: box for box in await store.list_mailboxes()}
    assert next(iter(boxes)) == "INBOX"
    assert set(boxes) == {"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"}
    assert {name: box.special_use for name, box in boxes.items()} == {
        "INBOX": None,
        "Sent": "\\Sent",
        "Drafts": "\\Drafts",
        "Trash": "\\Trash",
        "Junk": "\\Junk",
        "Archive": "\\Archive",
    }
    assert all(box.subscribed and box.selectable for box in boxes.values())
    assert not any(box.has_children for box in boxes.values())


async def test_open_without_create_refuses_unknown_user(factory: StoreFactory) -> None:
    with pytest.raises(StoreError, match="no mail store"):
        await factory.open("nobody@example.test", create=False)
    await factory.provision("bob@example.test")
    store = await factory.open("bob@example.test", create=False)
    assert next(b.name for b in await store.list_mailboxes()) == "INBOX"
    await store.close()


async def test_bytes_come_back_exactly(factory: StoreFactory) -> None:
    store = await factory.open(ALICE)
    uids = [await store.append("INBOX", data) for data in TRICKY]
    assert uids == list(range(1, len(TRICKY) + 1))
    infos = await store.messages("INBOX")
    assert [info.size for info in infos] == [len(data) for data in TRICKY]
    for uid, data in zip(uids, TRICKY, strict=True):
        assert await store.read("INBOX", uid) == data
    await store.close()
    # ...and again from a fresh store object (nothing cached in memory).
    async with await factory.open(ALICE) as store:
        for uid, data in zip(uids, TRICKY, strict=True):
            assert await store.read("INBOX", uid) == data
        status = await store.status("INBOX")
    assert status.size == sum(len(data) for data in TRICKY)


async def test_range_reads(factory: StoreFactory) -> None:
    data = TRICKY[2] + TRICKY[8] * 50
    async with await factory.open(ALICE) as store:
        uid = await store.append("INBOX", data)
        for start, length in [(0, 1), (0, 10), (5, 17), (len(data) - 3, 3), (100, 1000)]:
            assert await store.read("INBOX", uid, start, length) == data[start : start + length]
        assert await store.read("INBOX", uid, 10) == data[10:]
        assert await store.read("INBOX", uid, len(data) + 5, 10) == b""
        assert await store.read("INBOX", uid, 0, 0) == b""
        for chunk_size in (1, 7, 4096, 65536):
            chunks = [c async for c in store.iter_bytes("INBOX", uid, chunk_size=chunk_size)]
            assert b"".join(chunks) == data
            assert max(len(c) for c in chunks) <= chunk_size
        chunks = [c async for c in store.iter_bytes("INBOX", uid, 13, 900, chunk_size=50)]
        assert b"".join(chunks) == data[13:900]
        with pytest.raises(StoreError):
            await store.read("INBOX", uid, -1, 5)


class CountingStream(io.BytesIO):
    """A source that records the largest read asked of it."""

    largest = 0

    def read(self, size: int | None = -1, /) -> bytes:
        if size is None or size < 0:
            raise AssertionError("the store read the whole source at once")
        self.largest = max(self.largest, size)
        return super().read(size)


async def test_stream_source_is_copied_in_chunks(factory: StoreFactory) -> None:
    data = (b"From the start\n" + bytes(range(256)) * 40 + b"\n") * 60  # ~600 KB
    source = CountingStream(data)
    async with await factory.open(ALICE) as store:
        uid = await store.append("INBOX", source)
        assert 0 < source.largest <= CHUNK
        assert await store.read("INBOX", uid) == data
        assert (await store.messages("INBOX"))[0].size == len(data)


async def test_uids_are_stable_and_never_reused(factory: StoreFactory) -> None:
    store = await factory.open(ALICE)
    for n in range(5):
        await store.append("INBOX", message(n))
    before = await store.status("INBOX")
    await store.store_flags("INBOX", [5], [DELETED])
    assert await store.expunge("INBOX") == [5]
    await store.close()

    store = await factory.open(ALICE)
    after = await store.status("INBOX")
    assert after.uidvalidity == before.uidvalidity
    assert [m.uid for m in await store.messages("INBOX")] == [1, 2, 3, 4]
    assert await store.append("INBOX", message(9)) == 6  # 5 is never given again
    for n in range(4):
        assert await store.read("INBOX", n + 1) == message(n)
    assert (await store.status("INBOX")).uidnext == 7
    await store.close()


async def test_status(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        empty = await store.status("Sent")
        assert (empty.messages, empty.unseen, empty.uidnext, empty.highestmodseq, empty.size) == (
            0,
            0,
            1,
            0,
            0,
        )
        await store.append("Sent", b"one", flags=[SEEN])
        await store.append("Sent", b"two!")
        await store.append("Sent", b"three")
        status = await store.status("sent".capitalize())
    assert status.name == "Sent"
    assert (status.messages, status.unseen, status.uidnext, status.size) == (3, 2, 4, 12)
    assert status.highestmodseq == 3
    assert status.uidvalidity > 0


async def test_version_moves_with_every_change_another_store_makes(
    factory: StoreFactory,
) -> None:
    async with await factory.open(ALICE) as store, await factory.open(ALICE) as other:
        await store.append("INBOX", b"one")
        seen = []
        for change in (
            lambda: other.append("INBOX", b"two"),
            lambda: other.store_flags("INBOX", [1], [SEEN], mode=FlagMode.ADD),
            lambda: other.store_flags("INBOX", [2], [DELETED], mode=FlagMode.ADD),
            lambda: other.expunge("INBOX", [2]),
        ):
            before = await store.version("INBOX")
            await change()
            after = await store.version("INBOX")
            assert after.highestmodseq > before.highestmodseq
            seen.append(after)
            status = await store.status("INBOX")
            assert (status.uidvalidity, status.uidnext, status.highestmodseq) == (
                after.uidvalidity,
                after.uidnext,
                after.highestmodseq,
            )
        assert [version.uidnext for version in seen] == [3, 3, 3, 3]
        assert [info.uid for info in await store.messages("INBOX")] == [1]
        assert (await store.version("INBOX", sync=False)) == seen[-1]


async def test_message_info_keeps_what_append_gave(factory: StoreFactory) -> None:
    when = datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)
    async with await factory.open(ALICE) as store:
        uid = await store.append(
            "INBOX",
            b"Subject: x\r\n\r\n",
            flags=["\\seen", FLAGGED],
            keywords=["$Forwarded", "project-x"],
            internal_date=when,
        )
        (info,) = await store.messages("INBOX")
    assert info.uid == uid
    assert info.flags == {SEEN, FLAGGED}
    assert info.keywords == {"$Forwarded", "project-x"}
    assert info.internal_date == when
    assert info.size == 14
    assert info.modseq == 1


async def test_append_refuses_bad_flags_and_keywords(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        with pytest.raises(StoreError, match="Recent"):
            await store.append("INBOX", b"x", flags=["\\Recent"])
        with pytest.raises(StoreError, match="keyword"):
            await store.append("INBOX", b"x", keywords=["two words"])
        with pytest.raises(StoreError, match="no such mailbox"):
            await store.append("Nowhere", b"x")
        assert (await store.status("INBOX")).messages == 0


async def test_store_flags_modes_and_modseq(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        for n in range(3):
            await store.append("INBOX", message(n))
        start = (await store.status("INBOX")).highestmodseq
        assert start == 3

        changed = await store.store_flags("INBOX", [1, 2], [SEEN], mode=FlagMode.ADD)
        assert [(m.uid, m.flags, m.modseq) for m in changed] == [
            (1, frozenset({SEEN}), 4),
            (2, frozenset({SEEN}), 5),
        ]

        # Adding a flag that is already there changes nothing and takes no MODSEQ.
        again = await store.store_flags("INBOX", [1], [SEEN])
        assert again[0].modseq == 4
        assert (await store.status("INBOX")).highestmodseq == 5

        result = await store.store_flags(
            "INBOX", [1, 3], [FLAGGED, ANSWERED], ["$Label1"], mode=FlagMode.REPLACE
        )
        assert [(m.uid, m.flags, m.keywords) for m in result] == [
            (1, frozenset({FLAGGED, ANSWERED}), frozenset({"$Label1"})),
            (3, frozenset({FLAGGED, ANSWERED}), frozenset({"$Label1"})),
        ]
        removed = await store.store_flags(
            "INBOX", [1], [FLAGGED], ["$Label1"], mode=FlagMode.REMOVE
        )
        assert removed[0].flags == {ANSWERED}
        assert removed[0].keywords == frozenset()
        # Unknown UIDs are skipped, as IMAP STORE does with UID sets.
        assert await store.store_flags("INBOX", [99], [DRAFT]) == []

        infos = {m.uid: m for m in await store.messages("INBOX")}
        assert infos[1].flags == {ANSWERED}
        assert infos[2].flags == {SEEN}
        assert infos[3].keywords == {"$Label1"}
        modseqs = [m.modseq for m in infos.values()]
        assert len(set(modseqs)) == 3
        assert max(modseqs) == (await store.status("INBOX")).highestmodseq == 8
        # Flag changes survive re-opening.
    async with await factory.open(ALICE) as store:
        infos = {m.uid: m for m in await store.messages("INBOX")}
        assert infos[3].flags == {FLAGGED, ANSWERED}


async def test_copy(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        for data in TRICKY[:4]:
            await store.append("INBOX", data, flags=[SEEN], keywords=["kw"])
        await store.append("Archive", b"already here")
        mapping = await store.copy("INBOX", [2, 4, 77], "Archive")
        assert mapping == {2: 2, 4: 3}
        assert await store.read("Archive", 2) == TRICKY[1]
        assert await store.read("Archive", 3) == TRICKY[3]
        copied = {m.uid: m for m in await store.messages("Archive")}
        assert copied[2].flags == {SEEN} and copied[2].keywords == {"kw"}
        assert (await store.status("INBOX")).messages == 4
        # Copying into the same mailbox is allowed and gives new UIDs.
        assert await store.copy("INBOX", [1], "INBOX") == {1: 5}
        assert await store.read("INBOX", 5) == TRICKY[0]


async def test_move(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        for data in TRICKY[:3]:
            await store.append("INBOX", data)
        mapping = await store.move("INBOX", [1, 3], "Trash")
        assert mapping == {1: 1, 3: 2}
        assert [m.uid for m in await store.messages("INBOX")] == [2]
        assert await store.read("INBOX", 2) == TRICKY[1]
        assert await store.read("Trash", 1) == TRICKY[0]
        assert await store.read("Trash", 2) == TRICKY[2]
        with pytest.raises(StoreError):
            await store.read("INBOX", 1)


async def test_expunge(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        for n in range(6):
            await store.append("INBOX", message(n))
        await store.store_flags("INBOX", [2, 3, 5], [DELETED])
        assert await store.expunge("INBOX", uids=[3, 4, 5]) == [3, 5]  # UID EXPUNGE
        assert [m.uid for m in await store.messages("INBOX")] == [1, 2, 4, 6]
        assert await store.expunge("INBOX") == [2]
        assert await store.expunge("INBOX") == []
        for uid in (1, 4, 6):
            assert await store.read("INBOX", uid) == message(uid - 1)
        status = await store.status("INBOX")
        # 6 appends, 3 flag changes, 3 expunges: each took a MODSEQ.
        assert status.highestmodseq == 12
        assert status.messages == 3


async def test_deliver_goes_to_inbox(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        uid = await store.deliver(io.BytesIO(message(1)), sender="bob@example.net")
        assert await store.read("INBOX", uid) == message(1)
        assert (await store.status("INBOX")).messages == 1


async def test_unknown_uid_and_closed_store(factory: StoreFactory) -> None:
    store = await factory.open(ALICE)
    with pytest.raises(StoreError, match="no message with UID 3"):
        await store.read("INBOX", 3)
    with pytest.raises(StoreError):
        _ = [c async for c in store.iter_bytes("INBOX", 3)]
    await store.close()
    with pytest.raises(StoreError, match="closed"):
        await store.status("INBOX")


async def test_failing_source_is_a_store_error_and_leaves_nothing(factory: StoreFactory) -> None:
    class Broken(io.RawIOBase):
        def __init__(self) -> None:
            self.calls = 0

        def read(self, size: int = -1, /) -> bytes:
            self.calls += 1
            if self.calls > 3:
                raise OSError("disk on fire")
            return b"From x\n" * 500

    async with await factory.open(ALICE) as store:
        await store.append("INBOX", b"kept")
        with pytest.raises(StoreError, match="disk on fire") as caught:
            await store.append("INBOX", Broken())
        assert isinstance(caught.value.__cause__, OSError)
        assert [m.uid for m in await store.messages("INBOX")] == [1]
        assert await store.read("INBOX", 1) == b"kept"
        assert await store.append("INBOX", b"next") == 2
        assert await store.read("INBOX", 2) == b"next"


async def test_bad_names_raise_mailbox_name_error(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        for bad in ["", "a//b", "/abs", "a/", "..", "a/../b", "x\x00y", "tab\there", "w*", "p%"]:
            with pytest.raises(MailboxNameError):
                await store.create_mailbox(bad)


async def test_index_rebuilt_when_corrupt(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        for data in TRICKY[:4]:
            await store.append("INBOX", data)
        await store.create_mailbox("Keep")
        await store.append("Keep", b"kept mail")
        old = await store.status("INBOX")
        index_path = store.paths.index_path
    index_path.write_bytes(b"this is not a database" * 100)
    async with await factory.open(ALICE) as store:
        new = await store.status("INBOX")
        assert new.uidvalidity > old.uidvalidity
        assert new.messages == 4
        infos = await store.messages("INBOX")
        contents = [await store.read("INBOX", m.uid) for m in infos]
        # mbox cannot know a message lacked its final newline once the index is gone.
        assert [c.rstrip(b"\n") for c in contents] == [d.rstrip(b"\n") for d in TRICKY[:4]]
        assert await store.read("Keep", 1) in (b"kept mail", b"kept mail\n")
        boxes = {b.name: b for b in await store.list_mailboxes()}
        assert boxes["Sent"].special_use == "\\Sent"
    assert list(index_path.parent.glob("postoffice-index.sqlite3.corrupt-*"))


async def test_change_feed(factory: StoreFactory) -> None:
    watcher_store = await factory.open(ALICE)
    actor = await factory.open(ALICE)  # another store object from the same factory
    inbox_feed = watcher_store.changes("INBOX")
    all_feed = watcher_store.changes()
    uid = await actor.append("INBOX", b"hello")
    await actor.append("Sent", b"sent")
    await actor.store_flags("INBOX", [uid], [DELETED])
    await actor.expunge("INBOX")
    await actor.create_mailbox("New")
    await actor.rename_mailbox("New", "Newer")

    seen = [await anext(inbox_feed) for _ in range(3)]
    assert [(c.kind, c.uid, c.modseq) for c in seen] == [
        (ChangeKind.APPENDED, 1, 1),
        (ChangeKind.FLAGS, 1, 2),
        (ChangeKind.EXPUNGED, 1, 3),
    ]
    assert seen[1].flags == {DELETED}
    assert inbox_feed.pending() == 0
    kinds = [(await anext(all_feed)).kind for _ in range(6)]
    assert kinds == [
        ChangeKind.APPENDED,
        ChangeKind.APPENDED,
        ChangeKind.FLAGS,
        ChangeKind.EXPUNGED,
        ChangeKind.CREATED,
        ChangeKind.RENAMED,
    ]
    inbox_feed.close()
    assert [c async for c in inbox_feed] == []
    all_feed.close()
    await watcher_store.close()
    await actor.close()


async def test_a_cancelled_caller_still_publishes_what_the_worker_did(
    factory: StoreFactory,
) -> None:
    # The worker thread cannot be stopped: an append whose caller is cancelled
    # (a client hung up) still completes, and IDLE watchers must hear of it.
    import asyncio
    import threading

    release = threading.Event()
    reading = threading.Event()

    class Slow(io.RawIOBase):
        done = False

        def read(self, size: int = -1, /) -> bytes:
            reading.set()
            release.wait(10)
            if self.done:
                return b""
            self.done = True
            return b"late mail"

    async with await factory.open(ALICE) as store:
        feed = store.changes("INBOX")
        task = asyncio.ensure_future(store.append("INBOX", Slow()))
        assert await asyncio.to_thread(reading.wait, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        change = await asyncio.wait_for(anext(feed), 10)
        assert (change.kind, change.mailbox, change.uid) == (ChangeKind.APPENDED, "INBOX", 1)
        assert await store.read("INBOX", 1) == b"late mail"
        feed.close()


async def test_inbox_can_be_renamed_below_itself(factory: StoreFactory) -> None:
    # RFC 3501 §6.3.5: renaming INBOX moves its messages and leaves INBOX's
    # inferiors alone, so a new name below INBOX does not move INBOX into itself.
    async with await factory.open(ALICE) as store:
        await store.append("INBOX", b"old mail", keywords=["$Work"])
        await store.rename_mailbox("INBOX", "INBOX/2024")
        assert (await store.status("INBOX")).messages == 0
        (moved,) = await store.messages("INBOX/2024")
        assert moved.keywords == {"$Work"}
        assert await store.read("INBOX/2024", moved.uid) == b"old mail"
        with pytest.raises(StoreError):
            await store.rename_mailbox("INBOX", "inbox")


async def test_a_reader_opened_for_a_cancelled_caller_is_closed(
    factory: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import threading

    from postoffice.store.engine import UserEngine

    release = threading.Event()
    opening = threading.Event()
    closed: list[int] = []
    real_open = UserEngine.open_message

    def slow_open(self: UserEngine, name: str, uid: int, changes: list[object]) -> object:
        opening.set()
        release.wait(10)
        reader = real_open(self, name, uid, changes)  # type: ignore[arg-type]
        real_close = reader.close

        def close() -> None:
            closed.append(uid)
            real_close()

        reader.close = close  # type: ignore[method-assign]
        return reader

    if factory.layout.format == "maildir":
        # Maildir reads of a message where the index says it is run on the loop:
        # no await between opening a reader and closing it, so no caller can be
        # cancelled in between. A message moved by another program takes the
        # full way (a sync), in a worker thread.
        threads: list[tuple[str, int]] = []
        real_indexed = UserEngine.open_indexed

        def recording_indexed(self: UserEngine, name: str, uid: int) -> object:
            threads.append(("indexed", threading.get_ident()))
            return real_indexed(self, name, uid)

        def recording_open(self: UserEngine, name: str, uid: int, changes: list[object]) -> object:
            threads.append(("full", threading.get_ident()))
            return real_open(self, name, uid, changes)  # type: ignore[arg-type]

        loop_thread = threading.get_ident()
        async with await factory.open(ALICE) as store:
            await store.append("INBOX", b"x")
            monkeypatch.setattr(UserEngine, "open_indexed", recording_indexed)
            monkeypatch.setattr(UserEngine, "open_message", recording_open)
            assert await store.read("INBOX", 1) == b"x"
            assert [chunk async for chunk in store.iter_bytes("INBOX", 1)] == [b"x"]
            assert threads == [("indexed", loop_thread)] * 2
            threads.clear()
            folder = store.paths.maildir_folder("INBOX")
            (moved,) = (folder / "new").iterdir()
            moved.rename(folder / "cur" / (moved.name + ":2,S"))  # a reader marked it seen
            assert await store.read("INBOX", 1) == b"x"
            assert threads[0] == ("indexed", loop_thread)
            assert [kind for kind, _ in threads] == ["indexed", "full", "indexed"]
            assert threads[1][1] != loop_thread
        return
    async with await factory.open(ALICE) as store:
        await store.append("INBOX", b"x")
        monkeypatch.setattr(UserEngine, "open_message", slow_open)
        task = asyncio.ensure_future(store.read("INBOX", 1))
        assert await asyncio.to_thread(opening.wait, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        for _ in range(500):
            if closed:
                break
            await asyncio.sleep(0.01)
        assert closed == [1]
