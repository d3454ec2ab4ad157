"""Maildir specifics: delivery steps, flags in file names, other programs' changes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from postoffice.core.errors import StoreError
from postoffice.store import ChangeKind, FlagMode, StoreFactory, StoreLayout
from postoffice.store import maildir as maildir_module
from postoffice.store.maildir import MaildirFormat, info_name, split_name, unique_name
from tests.store.conftest import ALICE, DOMAIN


@pytest.fixture
def layout(tmp_path: Path) -> StoreLayout:
    return StoreLayout(tmp_path / "data", "maildir", DOMAIN)


def files(folder: Path, sub: str) -> list[str]:
    return sorted(os.listdir(folder / sub))


def age(path: Path, seconds: float) -> None:
    """Make a directory look untouched for ``seconds`` (so the cheap check trusts it)."""
    past = time.time() - seconds
    os.utime(path, (past, past))


async def test_layout_on_disk(factory: StoreFactory, tmp_path: Path) -> None:
    async with await factory.open(ALICE) as store:
        user = tmp_path / "data" / "mail" / DOMAIN / "alice"
        assert store.paths.mail_dir == user
        for sub in ("cur", "new", "tmp"):
            assert (user / sub).is_dir()
        for folder in (".Sent", ".Drafts", ".Trash", ".Junk", ".Archive"):
            assert (user / folder / "cur").is_dir()
            assert (user / folder / "maildirfolder").is_file()
        assert (user / "postoffice-index.sqlite3").is_file()
        await store.create_mailbox("a.b/c")
        assert (user / ".a%2Eb.c" / "new").is_dir()
        uid = await store.append("INBOX", b"plain")
        (name,) = files(user, "new")
        assert (user / "new" / name).read_bytes() == b"plain"
        assert files(user, "tmp") == []
        assert uid == 1


async def test_flags_live_in_the_file_name(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        inbox = store.paths.mail_dir
        await store.append("INBOX", b"x", flags=["\\Seen", "\\Flagged"])
        (name,) = files(inbox, "cur")
        assert name.endswith(":2,FS")
        await store.store_flags("INBOX", [1], ["\\Answered", "\\Deleted", "\\Draft"])
        (name,) = files(inbox, "cur")
        assert name.endswith(":2,DFRST")
        await store.store_flags("INBOX", [1], [], mode=FlagMode.REPLACE)
        (name,) = files(inbox, "cur")
        assert name.endswith(":2,")
        # Keywords alone do not rename the file.
        await store.store_flags("INBOX", [1], [], ["$Work"])
        assert files(inbox, "cur") == [name]
        assert files(inbox, "new") == []


async def test_other_programs_flags_are_read_and_kept(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        inbox = store.paths.mail_dir
        await store.append("INBOX", b"x")
        await store.messages("INBOX")
        (name,) = files(inbox, "new")
        feed = store.changes("INBOX")
        # mutt moves the message to cur/, marks it seen and "passed" (P, no IMAP flag).
        os.rename(inbox / "new" / name, inbox / "cur" / f"{name}:2,PS")
        (info,) = await store.messages("INBOX")
        assert info.flags == {"\\Seen"}
        assert info.modseq == 2
        change = await anext(feed)
        assert (change.kind, change.uid, change.flags) == (
            ChangeKind.FLAGS,
            1,
            frozenset({"\\Seen"}),
        )
        await store.store_flags("INBOX", [1], ["\\Flagged"])
        assert files(inbox, "cur") == [f"{name}:2,FPS"]
        assert await store.read("INBOX", 1) == b"x"
        feed.close()


async def test_a_flag_change_after_another_program_renamed_the_file_keeps_both(
    factory: StoreFactory,
) -> None:
    """STORE does not look at the disk first: the rename of a file that another
    program renamed fails, the index is brought up to date, and the change is
    made again on the real file, keeping the other program's flags."""
    async with await factory.open(ALICE) as store:
        inbox = store.paths.mail_dir
        await store.append("INBOX", b"x")
        await store.store_flags("INBOX", [1], ["\\Seen"])  # now cur/NAME:2,S
        (name,) = files(inbox, "cur")
        base = name.partition(":")[0]
        os.rename(inbox / "cur" / name, inbox / "cur" / f"{base}:2,FS")  # mutt flags it
        (info,) = await store.store_flags("INBOX", [1], ["\\Answered"])
        assert info.flags == {"\\Seen", "\\Flagged", "\\Answered"}
        assert files(inbox, "cur") == [f"{base}:2,FRS"]


async def test_other_programs_mail_is_picked_up(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        inbox = store.paths.mail_dir
        await store.append("INBOX", b"ours")
        assert len(await store.messages("INBOX")) == 1
        feed = store.changes("INBOX")
        (inbox / "new" / "1700000000.M1P1.elsewhere").write_bytes(b"dropped in new")
        (inbox / "cur" / "1700000001.M1P1.elsewhere:2,S").write_bytes(b"dropped in cur")
        infos = await store.messages("INBOX")
        assert [i.uid for i in infos] == [1, 2, 3]
        assert infos[2].flags == {"\\Seen"}
        assert await store.read("INBOX", 2) == b"dropped in new"
        assert await store.read("INBOX", 3) == b"dropped in cur"
        assert [(await anext(feed)).uid for _ in range(2)] == [2, 3]
        # Deleted by another program: expunged, and the UID is not reused.
        os.unlink(inbox / "new" / "1700000000.M1P1.elsewhere")
        assert [i.uid for i in await store.messages("INBOX")] == [1, 3]
        change = await anext(feed)
        assert (change.kind, change.uid) == (ChangeKind.EXPUNGED, 2)
        with pytest.raises(StoreError):
            await store.read("INBOX", 2)
        assert await store.append("INBOX", b"again") == 4
        feed.close()


async def test_a_file_in_tmp_is_not_a_message(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        inbox = store.paths.mail_dir
        # A delivery that crashed between tmp/ and new/.
        (inbox / "tmp" / "1700000000.M1P99.host").write_bytes(b"half written")
        assert await store.messages("INBOX") == []
        assert (await store.status("INBOX")).messages == 0


async def test_failure_before_new_leaves_nothing_visible(
    factory: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await factory.open(ALICE)
    inbox = store.paths.mail_dir

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("power cut between tmp and new")

    monkeypatch.setattr(os, "link", crash)
    with pytest.raises(StoreError, match="power cut"):
        await store.append("INBOX", b"lost in transit")
    monkeypatch.undo()
    assert files(inbox, "tmp") == []
    assert files(inbox, "new") == []
    assert await store.messages("INBOX") == []
    assert await store.append("INBOX", b"fine") == 1
    await store.close()


async def test_old_tmp_files_are_cleaned_on_open(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        tmp = store.paths.mail_dir / "tmp"
    old, young = tmp / "old.M1P1.host", tmp / "young.M1P1.host"
    old.write_bytes(b"x")
    young.write_bytes(b"y")
    past = time.time() - 37 * 3600
    os.utime(old, (past, past))
    async with await factory.open(ALICE):
        pass
    assert not old.exists()
    assert young.exists()


async def test_nothing_is_rescanned_when_nothing_changed(
    factory: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await factory.open(ALICE)
    inbox = store.paths.mail_dir
    for n in range(3):
        await store.append("INBOX", b"m%d" % n)
    age(inbox / "new", 60)
    age(inbox / "cur", 60)
    scans: list[str] = []
    original_scan, original_same = MaildirFormat.scan, MaildirFormat.same_files

    def counting_scan(self: MaildirFormat, *args: object) -> object:
        scans.append("scan")
        return original_scan(self, *args)  # type: ignore[arg-type]

    def counting_same(self: MaildirFormat, *args: object) -> bool:
        scans.append("names")
        return original_same(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(MaildirFormat, "scan", counting_scan)
    monkeypatch.setattr(MaildirFormat, "same_files", counting_same)
    assert len(await store.messages("INBOX")) == 3
    # The first look after our own appends: the names on disk are the index's,
    # so no row is compared.
    assert scans == ["names"]
    for _ in range(3):
        assert len(await store.messages("INBOX")) == 3
        await store.status("INBOX")
    assert scans == ["names"]
    listings: list[Path] = []
    original_listing = maildir_module._listing

    def counting_listing(folder: Path) -> dict[str, str]:
        listings.append(folder)
        return original_listing(folder)

    monkeypatch.setattr(maildir_module, "_listing", counting_listing)
    (inbox / "new" / "1700000000.M2P2.other").write_bytes(b"new one")
    age(inbox / "new", 30)
    assert len(await store.messages("INBOX")) == 4
    assert scans == ["names", "names", "scan"]
    assert len(listings) == 1  # the scan used the listing the name check read
    await store.close()


async def test_nested_mailboxes_can_all_hold_mail(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        await store.create_mailbox("Lists")
        await store.create_mailbox("Lists/debian")
        await store.append("Lists", b"parent")
        await store.append("Lists/debian", b"child")
        boxes = {b.name: b for b in await store.list_mailboxes()}
        assert boxes["Lists"].selectable and boxes["Lists"].has_children
        await store.delete_mailbox("Lists")
        boxes = {b.name: b for b in await store.list_mailboxes()}
        assert not boxes["Lists"].selectable
        assert await store.read("Lists/debian", 1) == b"child"


async def test_folders_made_by_other_programs_are_found(factory: StoreFactory) -> None:
    async with await factory.open(ALICE) as store:
        folder = store.paths.mail_dir / ".Lists.postfix-users"
        for sub in ("cur", "new", "tmp"):
            (folder / sub).mkdir(parents=True)
        (folder / "new" / "1.M1P1.h").write_bytes(b"list mail")
        boxes = {b.name for b in await store.list_mailboxes()}
        assert "Lists/postfix-users" in boxes
        assert await store.read("Lists/postfix-users", 1) == b"list mail"
        # A folder removed behind our back disappears from the list.
        for sub in ("cur", "new", "tmp"):
            for entry in (folder / sub).iterdir():
                entry.unlink()
            (folder / sub).rmdir()
        folder.rmdir()
        assert "Lists/postfix-users" not in {b.name for b in await store.list_mailboxes()}


def test_unique_names_and_info() -> None:
    names = {unique_name() for _ in range(1000)}
    assert len(names) == 1000
    assert all(":" not in n and "/" not in n for n in names)
    assert info_name("base", 0b11111) == "base:2,DFRST"
    assert split_name("base:2,PSa") == ("base", 0b10000, "Pa")
    assert split_name("base") == ("base", 0, "")


class _Listing:
    """``os.scandir`` stand-in that runs ``before`` and can hide names (readdir races)."""

    def __init__(self, real: object, path: str, hide: set[str]):
        self._entries = [e for e in real(path) if e.name not in hide]  # type: ignore[operator]

    def __enter__(self) -> _Listing:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __iter__(self) -> object:
        return iter(self._entries)


def _race(
    monkeypatch: pytest.MonkeyPatch, target: Path, action: object, hide: set[str] | None = None
) -> list[int]:
    """On the first listing of ``target``: run ``action``, then list (hiding ``hide``)."""
    real = os.scandir
    calls = [0]

    def scandir(path: object = ".") -> object:
        if Path(str(path)) == target and not calls[0]:
            calls[0] += 1
            action()  # type: ignore[operator]
            return _Listing(real, str(path), hide or set())
        return real(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", scandir)
    return calls


async def test_a_message_moving_from_new_to_cur_during_a_scan_is_not_expunged(
    factory: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await factory.open(ALICE) as store:
        inbox = store.paths.mail_dir
        await store.append("INBOX", b"one", keywords=["$Label1"])
        (name,) = files(inbox, "new")
        feed = store.changes("INBOX")

        def mua_reads_it() -> None:  # what mutt does when it shows a new message
            os.rename(inbox / "new" / name, inbox / "cur" / f"{name}:2,S")

        calls = _race(monkeypatch, inbox / "new", mua_reads_it)
        infos = await store.messages("INBOX")
        monkeypatch.undo()
        assert calls == [1]
        assert [(i.uid, i.flags, i.keywords) for i in infos] == [
            (1, frozenset({"\\Seen"}), frozenset({"$Label1"}))
        ]
        change = await anext(feed)
        assert (change.kind, change.uid) == (ChangeKind.FLAGS, 1)
        assert feed.pending() == 0
        feed.close()


async def test_a_rename_that_readdir_misses_is_not_an_expunge(
    factory: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await factory.open(ALICE) as store:
        inbox = store.paths.mail_dir
        await store.append("INBOX", b"one", flags=["\\Seen"])
        await store.append("INBOX", b"two", flags=["\\Seen"])
        first, second = files(inbox, "cur")
        base = first.partition(":")[0]

        def mua_flags_it() -> None:
            os.rename(inbox / "cur" / first, inbox / "cur" / f"{base}:2,FS")

        # readdir(3) may miss an entry renamed while the directory is read.
        _race(monkeypatch, inbox / "cur", mua_flags_it, hide={f"{base}:2,FS"})
        infos = await store.messages("INBOX")
        monkeypatch.undo()
        assert [(i.uid, i.flags) for i in infos] == [
            (1, frozenset({"\\Seen", "\\Flagged"})),
            (2, frozenset({"\\Seen"})),
        ]
        assert files(inbox, "cur") == sorted([f"{base}:2,FS", second])
