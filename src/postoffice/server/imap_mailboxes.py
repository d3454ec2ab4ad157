"""IMAP commands on mailboxes as wholes: SELECT, EXAMINE, CREATE, DELETE, RENAME,
SUBSCRIBE, UNSUBSCRIBE, LIST, LSUB, NAMESPACE, STATUS, APPEND.

What this module owns: carrying out those commands against the user's store
and the untagged data each answers with (RFC 9051 §6.3; LIST-EXTENDED
RFC 5258, LIST-STATUS RFC 5819, SPECIAL-USE RFC 6154, CHILDREN RFC 3348,
UIDPLUS APPENDUID RFC 4315, MULTIAPPEND RFC 3502, STATUS=SIZE RFC 8438,
STATUS DELETED-STORAGE and APPEND's OVERQUOTA RFC 9208 (``imap_quota``),
CONDSTORE's HIGHESTMODSEQ RFC 7162 §3.1.2.1 and §3.1.7; QRESYNC's SELECT
parameter §3.2.5, carried out by ``imap_qresync``).

Decisions:
- one namespace, personal, prefix "" and delimiter "/" (RFC 2342);
- LIST always gives \\HasChildren or \\HasNoChildren and the special-use
  attribute (both RFCs allow it without being asked, RFC 5258 §4,
  RFC 6154 §5.1), and \\Subscribed when asked for;
- \\Recent is not kept: SELECT says ``* 0 RECENT`` to IMAP4rev1 clients and
  STATUS RECENT is 0 (IMAP4rev2 removed it, RFC 9051 Appendix E).
"""

from __future__ import annotations

from postoffice.core.errors import StoreError
from postoffice.mime.sections import is_crlf_clean, to_crlf
from postoffice.protocol.imap.commands import (
    Append,
    Create,
    ListMailboxes,
    MailboxCommand,
    Rename,
    Select,
    Status,
)
from postoffice.protocol.imap.listing import DELIMITER, MailboxPattern, compile_pattern
from postoffice.protocol.imap.mutf7 import encode_mutf7
from postoffice.protocol.imap.responses import (
    atoms,
    encode_string,
    exists,
    flags_list,
    mailbox_list,
    mailbox_status,
    namespace_personal,
    recent,
    untagged_status,
)
from postoffice.protocol.imap.sequence import format_sequence
from postoffice.server.imap_context import Reply, SessionState, store_failure
from postoffice.server.imap_qresync import resync_selected
from postoffice.server.imap_quota import append_refusal
from postoffice.server.imap_view import MailboxView, shown_modseq
from postoffice.store.api import SYSTEM_FLAGS, FlagMode, MailboxInfo, keyword_set, special_use

STATUS_ITEMS = (
    "MESSAGES",
    "UIDNEXT",
    "UIDVALIDITY",
    "UNSEEN",
    "DELETED",
    "SIZE",
    "RECENT",
    "HIGHESTMODSEQ",  # RFC 7162 §3.1.7
    "DELETED-STORAGE",  # RFC 9208 §4.2 (QUOTA=RES-STORAGE)
)
LIST_SELECT_OPTIONS = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
LIST_RETURN_OPTIONS = frozenset({"SUBSCRIBED", "CHILDREN", "STATUS", "SPECIAL-USE"})


def wire_name(state: SessionState, name: str) -> bytes:
    """A mailbox name as the client reads it: UTF-8 once enabled, else modified UTF-7."""
    utf8 = state.conn.utf8
    return encode_string(name if utf8 else encode_mutf7(name), utf8=utf8)


# -- SELECT / EXAMINE ---------------------------------------------------------------------


async def do_select(state: SessionState, command: Select) -> Reply:
    assert state.store is not None
    if command.qresync is not None and not state.qresync:  # RFC 7162 §3.2.5
        return Reply("BAD", "The QRESYNC parameter needs ENABLE QRESYNC first")
    state.saved = []  # RFC 5182 §2.1: $ is empty in a newly selected mailbox
    if state.view is not None:  # RFC 9051 §6.3.2: a SELECT first deselects, even when it
        state.view = None  # fails, and says so with an untagged OK [CLOSED] (§7.1)
        state.conn.send(untagged_status("OK", "Previous mailbox is now closed.", "CLOSED"))
    try:
        status = await state.store.status(command.mailbox)  # looks at the disk
        messages = await state.store.messages(command.mailbox, sync=False)
    except (StoreError, OSError) as exc:
        return store_failure(exc)
    view = MailboxView(
        status.name,
        messages,
        uidvalidity=status.uidvalidity,
        uidnext=status.uidnext,
        highestmodseq=status.highestmodseq,
        read_only=command.read_only,
    )
    send = state.conn.send
    send(exists(len(view)))
    if not state.rev2:
        send(recent(0))  # RFC 3501 §6.3.1 (module docstring)
    send(flags_list([*SYSTEM_FLAGS, *sorted(view.keywords_seen)]))
    permanent = [] if command.read_only else [*SYSTEM_FLAGS, "\\*"]
    permanent_code = "PERMANENTFLAGS " + atoms(permanent).decode("ascii")
    send(untagged_status("OK", "Flags permitted.", permanent_code))
    if not state.rev2:
        first_unseen = next((n for n, m in enumerate(messages, 1) if "\\Seen" not in m.flags), None)
        if first_unseen is not None:
            send(untagged_status("OK", "First unseen.", f"UNSEEN {first_unseen}"))
    send(untagged_status("OK", "UIDs valid.", f"UIDVALIDITY {view.uidvalidity}"))
    send(untagged_status("OK", "Predicted next UID.", f"UIDNEXT {view.uidnext}"))
    if state.condstore:  # RFC 7162 §3.1.2.1 (§3.1.2.2 NOMODSEQ: every mailbox has MODSEQ)
        send(untagged_status("OK", "Highest", f"HIGHESTMODSEQ {shown_modseq(view.highestmodseq)}"))
    if state.rev2:  # RFC 9051 §6.3.2: the mailbox name as the server knows it
        send(mailbox_list(b"LIST", (), DELIMITER, wire_name(state, status.name)))
    if command.qresync is not None:  # RFC 7162 §3.2.5: VANISHED and FETCH to catch up
        try:
            await resync_selected(state, view, command.qresync)
        except (StoreError, OSError) as exc:
            return store_failure(exc)
    state.view = view
    state.count("select")
    mode = "READ-ONLY" if command.read_only else "READ-WRITE"
    return Reply("OK", f"{'EXAMINE' if command.read_only else 'SELECT'} completed", mode)


# -- CREATE / DELETE / RENAME / SUBSCRIBE ---------------------------------------------------


async def do_create(state: SessionState, command: Create) -> Reply:
    assert state.store is not None
    name = command.mailbox.rstrip(DELIMITER)  # RFC 9051 §6.3.4: a trailing delimiter is a hint
    use: str | None = None
    if command.special_use:
        if len(command.special_use) > 1:
            return Reply("NO", "Only one special use per mailbox", "USEATTR")
        try:
            use = special_use(command.special_use[0])
        except StoreError:
            return Reply("NO", "Unknown special-use attribute", "USEATTR")  # RFC 6154 §3
    try:
        await state.store.create_mailbox(name, use, parent=command.parent)
    except (StoreError, OSError) as exc:
        return store_failure(exc)
    return Reply("OK", "CREATE completed")


async def do_mailbox_verb(state: SessionState, command: MailboxCommand) -> Reply:
    assert state.store is not None
    store = state.store
    try:
        if command.verb == "DELETE":
            if state.view is not None and state.view.name == command.mailbox:
                return Reply("NO", "Cannot delete the selected mailbox", "INUSE")
            await store.delete_mailbox(command.mailbox)
        elif command.verb == "SUBSCRIBE":
            await store.subscribe(command.mailbox)
        else:
            await store.unsubscribe(command.mailbox)
    except (StoreError, OSError) as exc:
        return store_failure(exc)
    return Reply("OK", f"{command.verb} completed")


async def do_rename(state: SessionState, command: Rename) -> Reply:
    assert state.store is not None
    try:
        await state.store.rename_mailbox(command.old, command.new)
    except (StoreError, OSError) as exc:
        return store_failure(exc)
    view = state.view
    if view is not None and command.old.upper() != "INBOX":
        # The selected mailbox (or one above it) was renamed: it stays selected under
        # its new name (renaming INBOX moves its messages instead, RFC 9051 §6.3.6).
        if view.name == command.old:
            view.name = command.new
        elif view.name.startswith(command.old + DELIMITER):
            view.name = command.new + view.name[len(command.old) :]
    return Reply("OK", "RENAME completed")


# -- LIST / LSUB / NAMESPACE ------------------------------------------------------------------


def _attributes(info: MailboxInfo, command: ListMailboxes) -> list[str]:
    attributes: list[str] = []
    if not info.selectable:
        attributes.append("\\Noselect" if not command.extended else "\\NonExistent")
    attributes.append("\\HasChildren" if info.has_children else "\\HasNoChildren")
    if info.special_use is not None:
        attributes.append(info.special_use)
    if info.subscribed and ("SUBSCRIBED" in command.return_options or command.select_options):
        attributes.append("\\Subscribed")
    return attributes


async def do_list(state: SessionState, command: ListMailboxes) -> Reply:
    assert state.store is not None
    unknown = (command.select_options - LIST_SELECT_OPTIONS) | (
        command.return_options - LIST_RETURN_OPTIONS
    )
    if unknown:
        return Reply("BAD", f"Unknown LIST option {sorted(unknown)[0]}")
    odd = [item for item in command.status_items if item not in STATUS_ITEMS]
    if odd:
        return Reply("BAD", f"Unknown STATUS item {odd[0]}")
    if command.select_options == {"RECURSIVEMATCH"}:
        return Reply("BAD", "RECURSIVEMATCH needs another selection option")  # RFC 5258 §3
    word = b"LSUB" if command.lsub else b"LIST"
    if command.patterns == ("",) and not command.lsub and not command.extended:
        # RFC 9051 §6.3.9: an empty pattern asks for the delimiter and the root (in the
        # basic syntax only: the extended syntax ignores empty patterns)
        state.conn.send(mailbox_list(word, ["\\Noselect"], DELIMITER, b'""'))
        return Reply("OK", "LIST completed")
    try:
        mailboxes = await state.store.list_mailboxes()
        subscribed = set(await state.store.subscriptions())
    except (StoreError, OSError) as exc:
        return store_failure(exc)
    patterns = [compile_pattern(command.reference, p) for p in command.patterns]
    by_name = {info.name: info for info in mailboxes}
    selected: list[MailboxInfo] = []
    if command.lsub or "SUBSCRIBED" in command.select_options:
        for name in sorted(subscribed):
            info = by_name.get(name)
            if info is None:  # subscribed, but gone (RFC 5258 §3.1 \NonExistent)
                info = MailboxInfo(name, None, True, False, selectable=False)
            selected.append(info)
        if command.lsub:
            selected = [
                MailboxInfo(
                    i.name, i.special_use, True, i.has_children, by_name.get(i.name) is not None
                )
                for i in selected
            ]
    else:
        selected = mailboxes
    if "SPECIAL-USE" in command.select_options:
        selected = [info for info in selected if info.special_use is not None]
    for info in selected:
        if not any(p.matches(info.name) for p in patterns):
            continue
        state.conn.send(_list_line(state, word, info, command, subscribed))
        if "STATUS" in command.return_options and info.selectable:
            await _send_status(state, info.name, command.status_items)  # RFC 5819 §2
    if "RECURSIVEMATCH" in command.select_options:
        _childinfo(state, patterns, selected, by_name, command)
    return Reply("OK", f"{word.decode()} completed")


def _list_line(
    state: SessionState,
    word: bytes,
    info: MailboxInfo,
    command: ListMailboxes,
    subscribed: set[str],
) -> bytes:
    if command.lsub:
        attributes = [] if info.selectable else ["\\Noselect"]
    else:
        if info.name in subscribed and info.subscribed is False:
            info = MailboxInfo(
                info.name, info.special_use, True, info.has_children, info.selectable
            )
        attributes = _attributes(info, command)
    return mailbox_list(word, attributes, DELIMITER, wire_name(state, info.name))


def _childinfo(
    state: SessionState,
    patterns: list[MailboxPattern],
    selected: list[MailboxInfo],
    by_name: dict[str, MailboxInfo],
    command: ListMailboxes,
) -> None:
    """RFC 5258 §3.5: parents that do not match the selection themselves but have a
    matching descendant are listed with CHILDINFO extended data."""
    chosen = {info.name for info in selected}
    reported: set[str] = set()
    for info in selected:
        parts = info.name.split(DELIMITER)
        for n in range(1, len(parts)):
            parent = DELIMITER.join(parts[:n])
            if parent in chosen or parent in reported:
                continue
            if not any(p.matches(parent) for p in patterns):
                continue
            reported.add(parent)
            known = by_name.get(parent)
            attributes = (
                ["\\HasChildren"] if known is not None else ["\\NonExistent", "\\HasChildren"]
            )
            childinfo = b'("CHILDINFO" ("SUBSCRIBED"))'
            state.conn.send(
                mailbox_list(b"LIST", attributes, DELIMITER, wire_name(state, parent), childinfo)
            )


async def do_namespace(state: SessionState) -> Reply:
    """RFC 2342 / RFC 9051 §6.3.10: one personal namespace, no others."""
    state.conn.send(namespace_personal("", DELIMITER))
    return Reply("OK", "NAMESPACE completed")


# -- STATUS ----------------------------------------------------------------------------------


async def _send_status(state: SessionState, name: str, items: tuple[str, ...]) -> Reply | None:
    assert state.store is not None
    try:
        status = await state.store.status(name)
        deleted = deleted_octets = 0
        if "DELETED" in items or "DELETED-STORAGE" in items:
            for m in await state.store.messages(name):
                if "\\Deleted" in m.flags:
                    deleted += 1
                    deleted_octets += m.size
    except (StoreError, OSError) as exc:
        return store_failure(exc)
    values = {
        "MESSAGES": status.messages,
        "UIDNEXT": status.uidnext,
        "UIDVALIDITY": status.uidvalidity,
        "UNSEEN": status.unseen,
        "DELETED": deleted,
        "SIZE": status.size,
        "RECENT": 0,
        "HIGHESTMODSEQ": shown_modseq(status.highestmodseq),
        # RFC 9208 §4.2: what an EXPUNGE would free, in units of 1024 octets; rounded
        # down, so it never promises more than the STORAGE usage (rounded up) drops
        "DELETED-STORAGE": deleted_octets // 1024,
    }
    answer = [(item, values[item]) for item in items]
    state.conn.send(mailbox_status(wire_name(state, status.name), answer))
    return None


async def do_status(state: SessionState, command: Status) -> Reply:
    unknown = [item for item in command.items if item not in STATUS_ITEMS]
    if unknown:
        return Reply("BAD", f"Unknown STATUS item {unknown[0]}")
    failed = await _send_status(state, command.mailbox, command.items)
    return failed or Reply("OK", "STATUS completed")


# -- APPEND ----------------------------------------------------------------------------------


def split_flags(flags: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """System flags and keywords of a flag list; raises ``StoreError`` for a bad one."""
    system: list[str] = []
    keywords: list[str] = []
    for flag in flags:
        if flag.startswith("\\"):
            known = {f.lower(): f for f in SYSTEM_FLAGS}.get(flag.lower())
            if known is None:
                raise StoreError(f"{flag} is not a flag that can be set")
            system.append(known)
        else:
            keywords.append(flag)
    keyword_set(keywords)
    return system, keywords


async def do_append(state: SessionState, command: Append) -> Reply:
    assert state.store is not None
    store = state.store
    try:
        status = await store.status(command.mailbox)
    except (StoreError, OSError) as exc:
        return store_failure(exc, missing_code="TRYCREATE")  # RFC 9051 §6.3.12
    for message in command.messages:
        if not message.data:
            return Reply("NO", "Empty message")
        try:
            split_flags(message.flags)
        except StoreError as exc:
            return Reply("BAD", str(exc))
    datas = [m.data if is_crlf_clean(m.data) else to_crlf(m.data) for m in command.messages]
    try:
        refused = await append_refusal(state, [len(data) for data in datas])  # RFC 9208 §4.3
    except (StoreError, OSError) as exc:
        return store_failure(exc)
    if refused is not None:
        return refused
    uids: list[int] = []
    for message, data in zip(command.messages, datas, strict=True):
        system, keywords = split_flags(message.flags)
        try:
            uids.append(
                await store.append(command.mailbox, data, system, keywords, message.internal_date)
            )
        except (StoreError, OSError) as exc:
            if uids:  # RFC 3502 §6.3.11: all of a MULTIAPPEND, or none of it
                await _withdraw(state, command.mailbox, uids)
            return store_failure(exc, missing_code="TRYCREATE")
    state.count("append", len(uids))
    code = f"APPENDUID {status.uidvalidity} {format_sequence(uids)}"  # RFC 4315 §3
    return Reply("OK", "APPEND completed", code)


async def _withdraw(state: SessionState, mailbox: str, uids: list[int]) -> None:
    assert state.store is not None
    try:
        await state.store.store_flags(mailbox, uids, ["\\Deleted"], mode=FlagMode.ADD)
        await state.store.expunge(mailbox, uids)
    except (StoreError, OSError):
        pass  # the failure being reported is the APPEND's; these stay visible
