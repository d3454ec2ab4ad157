"""Helpers for the IMAP interop tests: mbsync and offlineimap, and curl's IMAP.

A synchronisation client copies a user's whole mailbox tree into a local
Maildir and back. These helpers build such a tree on a real ``postoffice
serve`` (mail by SMTP into INBOX, folders and messages made over IMAP with
stdlib ``imaplib``), read it back over IMAP, read the client's local Maildir
tree, and change the local tree the way a mail reader does (rename a file to
change its flags, move a message to another folder, add a folder).

Both clients are configured to lay the tree out alike: INBOX is
``ROOT/INBOX``, the mailbox ``a/b`` is the Maildir ``ROOT/a/b`` (a directory
with ``cur``, ``new`` and ``tmp``), and a directory without ``cur`` only
holds other folders. Both write messages with LF line ends where the server
has CRLF, so message octets are compared with LF line ends.

A Maildir file's flags are the letters after ``:2,`` in its name (D. J.
Bernstein, "Using maildir format"; the letters as mbsync and offlineimap map
them to IMAP system flags).

The curl tests use the server and IMAP helpers (``serve``, ``imaps_login``,
``deliver``). Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import email
import imaplib
import re
import smtplib
import ssl
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.smtp_fixtures import wait_for
from tests.interop.mailserver import DOMAIN, PASSWORD, Server

HOST = "127.0.0.1"
# Maildir info letters and the IMAP flags they stand for.
FLAG_OF_LETTER = {
    "D": "\\Draft",
    "F": "\\Flagged",
    "R": "\\Answered",
    "S": "\\Seen",
    "T": "\\Deleted",
}
# The special-use mailboxes every new account has; the sync clients copy them too.
SPECIAL_MAILBOXES = ("Archive", "Drafts", "Junk", "Sent", "Trash")
_LIST_LINE = re.compile(rb'^\((?P<attrs>[^)]*)\) (?:"(?:\\.|[^"\\])"|NIL) (?P<name>.+)$')


def serve(
    tmp_path_factory: pytest.TempPathFactory, store_format: str, users: tuple[str, ...]
) -> Iterator[Server]:
    """A module's server in ``store_format`` with ``users``; stopped, and its exit checked."""
    data = tmp_path_factory.mktemp(f"imapsync-{store_format}") / "var"
    running = Server(data, users=users, password=PASSWORD, store_format=store_format)
    running.setup()
    running.start()
    try:
        yield running
    finally:
        running.stop()
    assert running.process is not None
    code = running.process.returncode
    assert code == 0, f"postoffice serve exited with status {code}"


def address(user: str) -> str:
    return f"{user}@{DOMAIN}"


def imaps_login(server: Server, user: str) -> imaplib.IMAP4_SSL:
    """A logged-in stdlib IMAPS session, the certificate checked against the server's."""
    context = ssl.create_default_context(cafile=str(server.cert))
    client = imaplib.IMAP4_SSL(HOST, server.imaps_port, ssl_context=context, timeout=10)
    client.login(address(user), PASSWORD)
    return client


def quoted(name: str) -> str:
    """An IMAP quoted string (RFC 3501 §4.3) for a mailbox name (imaplib sends names as given)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def check(reply: tuple[str, Sequence[object]], what: str) -> list[object]:
    """The data of an imaplib reply that must be OK."""
    typ, data = reply
    assert typ == "OK", f"{what}: {typ} {data!r}"
    return list(data)


def message(subject: str, sender: str = "sender@client.test", body: str | None = None) -> bytes:
    """A small CRLF message with a unique Message-ID; its body names it unless given."""
    mark = uuid.uuid4().hex
    if body is None:
        body = f"Body of {subject}.\r\n.a line with a leading dot\r\nlast line\r\n"
    return (
        f"From: Sender <{sender}>\r\n"
        "To: Someone <someone@example.test>\r\n"
        f"Subject: {subject}\r\n"
        "Date: Tue, 3 Feb 2026 10:00:00 +0000\r\n"
        f"Message-ID: <{mark}@client.test>\r\n"
        "\r\n" + body
    ).encode("ascii")


def deliver(server: Server, user: str, *subjects: str, body: str | None = None) -> list[bytes]:
    """One message per subject to USER's INBOX by SMTP, in order; returns once each is
    delivered, with the messages as sent."""
    sent = re.compile(rf"to=<{re.escape(address(user))}>.*status=sent")
    messages = []
    for subject in subjects:
        octets = message(subject, body=body)
        before = len(sent.findall(server.maillog()))
        with smtplib.SMTP(HOST, server.port, timeout=10) as client:
            client.sendmail("sender@client.test", [address(user)], octets)

        def arrived(count: int = before) -> bool:
            return len(sent.findall(server.maillog())) > count

        wait_for(arrived, what=f"the delivery of {subject!r}")
        messages.append(octets)
    return messages


def append(client: imaplib.IMAP4, mailbox: str, subject: str, flags: str | None = None) -> None:
    check(client.append(quoted(mailbox), flags, None, message(subject)), f"APPEND to {mailbox}")


@dataclass(frozen=True, order=True)
class Mail:
    """One message as both sides can show it: Subject, flags (sorted), octets with LF ends."""

    subject: str
    flags: tuple[str, ...]
    body: bytes

    @classmethod
    def of(cls, octets: bytes, flags: set[str]) -> Mail:
        body = octets.replace(b"\r\n", b"\n")
        subject = email.message_from_bytes(body)["Subject"]
        assert subject is not None, body[:300]
        return cls(str(subject), tuple(sorted(flags - {"\\Recent"})), body)


Tree = dict[str, list[Mail]]


def summary(tree: Tree) -> dict[str, list[tuple[str, tuple[str, ...]]]]:
    """Each mailbox's (Subject, flags) pairs, sorted: what tests state as expected."""
    return {
        name: sorted((mail.subject, mail.flags) for mail in mails) for name, mails in tree.items()
    }


def server_mailboxes(client: imaplib.IMAP4) -> dict[str, set[str]]:
    """LIST "" "*": each mailbox name and its attributes (names as quoted strings or atoms)."""
    found: dict[str, set[str]] = {}
    for line in check(client.list(), "LIST"):
        assert isinstance(line, bytes), f"unexpected LIST data (a literal?): {line!r}"
        match = _LIST_LINE.match(line)
        assert match, line
        name = match.group("name").decode("ascii")
        if name.startswith('"'):
            name = re.sub(r"\\(.)", r"\1", name[1:-1])
        found[name] = set(match.group("attrs").decode("ascii").split())
    return found


def server_tree(server: Server, user: str) -> tuple[Tree, dict[tuple[str, str], int]]:
    """Every selectable mailbox of USER with its messages (EXAMINE, so nothing changes),
    and the UID of each (mailbox, Subject)."""
    client = imaps_login(server, user)
    tree: Tree = {}
    uids: dict[tuple[str, str], int] = {}
    try:
        for name, attributes in server_mailboxes(client).items():
            if "\\Noselect" in attributes or "\\NonExistent" in attributes:
                continue
            check(client.select(quoted(name), readonly=True), f"EXAMINE {name}")
            data = check(client.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])"), f"FETCH {name}")
            mails = []
            for item in data:
                if not isinstance(item, tuple):
                    continue  # the ")" closing each FETCH response
                head, octets = item
                uid = re.search(rb"\bUID (\d+)", head)
                flags = re.search(rb"\bFLAGS \(([^)]*)\)", head)
                assert uid and flags, head
                mail = Mail.of(octets, set(flags.group(1).decode("ascii").split()))
                assert (name, mail.subject) not in uids, f"{mail.subject!r} twice in {name}"
                uids[name, mail.subject] = int(uid.group(1))
                mails.append(mail)
            tree[name] = sorted(mails)
            check(client.unselect(), "UNSELECT")
    finally:
        client.logout()
    return tree, uids


def maildir_files(root: Path) -> dict[str, list[Path]]:
    """Each Maildir folder under ROOT (``INBOX``, ``a/b``) and its message files."""
    folders: dict[str, list[Path]] = {}
    for cur in sorted(root.rglob("cur")):
        folder = cur.parent
        if not (folder / "new").is_dir():
            continue
        name = folder.relative_to(root).as_posix()
        folders[name] = sorted(
            path for sub in ("cur", "new") for path in (folder / sub).iterdir() if path.is_file()
        )
    return folders


def flags_of(path: Path) -> set[str]:
    _, info, letters = path.name.rpartition(":2,")
    if not info:
        return set()
    return {FLAG_OF_LETTER[letter] for letter in letters if letter in FLAG_OF_LETTER}


def maildir_tree(root: Path) -> Tree:
    """The local Maildir tree as ``server_tree`` shows the server's."""
    return {
        name: sorted(Mail.of(path.read_bytes(), flags_of(path)) for path in paths)
        for name, paths in maildir_files(root).items()
    }


def local_file(root: Path, folder: str, subject: str) -> Path:
    """The one file in FOLDER whose Subject is SUBJECT."""
    found = [
        path
        for path in maildir_files(root).get(folder, [])
        if Mail.of(path.read_bytes(), set()).subject == subject
    ]
    assert len(found) == 1, f"{len(found)} files in {folder} with Subject {subject!r}"
    return found[0]


def unique_name() -> str:
    """A new Maildir file name (time, a random part, a host part; no ``,`` nor ``:``)."""
    return f"{time.time_ns()}.{uuid.uuid4().hex}.interop"


def set_flags(path: Path, letters: str) -> Path:
    """What a mail reader does to change a message's flags: rename it into ``cur``
    with a new info part, keeping the rest of its name (the sync client's UID in it)."""
    base = path.name.rpartition(":2,")[0] or path.name
    target = path.parent.parent / "cur" / f"{base}:2,{''.join(sorted(letters))}"
    path.rename(target)
    return target


def make_folder(root: Path, folder: str) -> Path:
    directory = root / folder
    for sub in ("cur", "new", "tmp"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    return directory


def move_message(path: Path, root: Path, folder: str, letters: str = "") -> Path:
    """What a mail reader does to move a message: a new file (a new name) in the
    other folder, then the old one removed."""
    target = make_folder(root, folder) / "cur" / f"{unique_name()}:2,{letters}"
    target.write_bytes(path.read_bytes())
    path.unlink()
    return target


def add_message(root: Path, folder: str, subject: str) -> bytes:
    """A new message written into FOLDER's ``new`` (the folder made if need be)."""
    octets = message(subject, sender="me@example.test").replace(b"\r\n", b"\n")
    directory = make_folder(root, folder)
    temporary = directory / "tmp" / unique_name()
    temporary.write_bytes(octets)
    temporary.rename(directory / "new" / temporary.name)
    return octets


@dataclass(frozen=True)
class SeededTree:
    """What ``seed_tree`` made: the expected (Subject, flags) of each mailbox."""

    mark: str
    expected: dict[str, list[tuple[str, tuple[str, ...]]]]

    def subject(self, what: str) -> str:
        return f"{self.mark} {what}"


def seed_tree(server: Server, user: str, store_format: str) -> SeededTree:
    """USER's mailbox tree before the first sync.

    INBOX: three messages by SMTP. Over IMAP: ``Work/Reports`` (two
    messages), ``Work/Notes`` (one) and ``Lists`` (one, flagged and seen).
    With Maildir, ``Work`` itself also holds a message (a mailbox with both
    messages and children); an mbox file cannot, so there ``Work`` is only
    the name above the other two (``\\Noselect``).
    """
    mark = uuid.uuid4().hex[:12]
    seeded = SeededTree(mark, {})
    inbox = [seeded.subject(f"inbox {n}") for n in (1, 2, 3)]
    deliver(server, user, *inbox)
    client = imaps_login(server, user)
    try:
        if store_format == "maildir":
            check(client.create("Work"), "CREATE Work")
            append(client, "Work", seeded.subject("work 1"))
        for name in ("Work/Reports", "Work/Notes", "Lists"):
            check(client.create(quoted(name)), f"CREATE {name}")
        append(client, "Work/Reports", seeded.subject("report 1"))
        append(client, "Work/Reports", seeded.subject("report 2"))
        append(client, "Work/Notes", seeded.subject("note 1"))
        append(client, "Lists", seeded.subject("list 1"), "(\\Flagged \\Seen)")
    finally:
        client.logout()
    expected = seeded.expected
    expected.update({name: [] for name in SPECIAL_MAILBOXES})
    expected["INBOX"] = [(subject, ()) for subject in inbox]
    expected["Work/Reports"] = [(seeded.subject(f"report {n}"), ()) for n in (1, 2)]
    expected["Work/Notes"] = [(seeded.subject("note 1"), ())]
    expected["Lists"] = [(seeded.subject("list 1"), ("\\Flagged", "\\Seen"))]
    if store_format == "maildir":
        expected["Work"] = [(seeded.subject("work 1"), ())]
    return seeded


def after_local_changes(
    seeded: SeededTree, new_folders: tuple[str, ...]
) -> dict[str, list[tuple[str, tuple[str, ...]]]]:
    """The tree expected once ``change_locally``'s changes and the ``late`` delivery
    are synchronised (both test modules make the same changes)."""
    expected = {name: list(pairs) for name, pairs in seeded.expected.items()}
    subject = seeded.subject
    expected["INBOX"] = sorted(
        [
            (subject("inbox 1"), ("\\Seen",)),
            (subject("inbox 2"), ("\\Answered", "\\Flagged")),
            (subject("late"), ()),
        ]
    )
    expected["Work/Notes"] = sorted([(subject("note 1"), ()), (subject("inbox 3"), ("\\Seen",))])
    expected["Work/Reports"] = [(subject("report 2"), ())]
    expected["Lists"] = [(subject("list 1"), ("\\Seen",))]
    for folder in new_folders:
        expected[folder] = [(subject(f"new in {folder}"), ())]
    return expected


def change_locally(
    root: Path, seeded: SeededTree, *, delete: str, new_folders: tuple[str, ...]
) -> dict[str, bytes]:
    """A mail reader's changes to the synchronised tree; returns the new messages'
    octets by folder.

    INBOX: ``inbox 1`` seen, ``inbox 2`` flagged and answered, ``inbox 3``
    moved to ``Work/Notes`` (as seen); ``Lists``: ``list 1`` no longer
    flagged; ``Work/Reports``: ``report 1`` deleted, by DELETE: ``"flag"``
    (the T flag, for a client that expunges) or ``"unlink"`` (the file
    removed); each of NEW_FOLDERS made (with any parent it needs) with one
    new message, ``new in FOLDER``.
    """
    subject = seeded.subject
    set_flags(local_file(root, "INBOX", subject("inbox 1")), "S")
    set_flags(local_file(root, "INBOX", subject("inbox 2")), "FR")
    move_message(local_file(root, "INBOX", subject("inbox 3")), root, "Work/Notes", "S")
    set_flags(local_file(root, "Lists", subject("list 1")), "S")
    doomed = local_file(root, "Work/Reports", subject("report 1"))
    if delete == "flag":
        set_flags(doomed, "T")
    else:
        assert delete == "unlink", delete
        doomed.unlink()
    return {
        folder: add_message(root, folder, subject(f"new in {folder}")) for folder in new_folders
    }


def snapshot(root: Path) -> dict[str, list[str]]:
    """The local tree's file names: a sync that changes nothing renames nothing."""
    return {name: [path.name for path in paths] for name, paths in maildir_files(root).items()}
