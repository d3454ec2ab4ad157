"""IMAP commands of the selected state: FETCH, STORE, SEARCH, COPY, MOVE, EXPUNGE,
UID EXPUNGE, CLOSE, UNSELECT, CHECK (RFC 9051 §6.4; UIDPLUS RFC 4315, MOVE
RFC 6851, ESEARCH RFC 4731, BINARY RFC 3516, CONDSTORE RFC 7162 §3.1, QRESYNC
§3.2: VANISHED for EXPUNGE, UID FETCH ... VANISHED, see ``imap_qresync``).

What this module owns: resolving a sequence set against the session's view
(numbers or UIDs), carrying out each command against the store, and the
untagged data it answers with. The view (``imap_view``) keeps the numbers;
the store keeps the truth.

Decisions:
- a message expunged by another session but not yet reported keeps its
  number (RFC 9051 §7.5.1); FETCH of its content is answered for the other
  messages and the command ends ``NO [EXPUNGEISSUED]`` (RFC 5530);
- FETCH of BODY[...] without .PEEK, RFC822 and RFC822.TEXT sets \\Seen
  first and then reports FLAGS with the message, as RFC 9051 §6.4.5 asks;
  in a mailbox opened with EXAMINE nothing is changed;
- after ENABLE IMAP4rev2 every SEARCH answers with ESEARCH (RFC 9051
  §7.3.4); before, only a SEARCH with RETURN options does (RFC 4731 §3.1);
- CONDSTORE (RFC 7162 §3.1): FETCH CHANGEDSINCE, STORE UNCHANGEDSINCE (the
  store makes the MODSEQ test, see ``MailStore.store_flags_if_unchanged``),
  the SEARCH MODSEQ answer; once the session enabled it, FLAGS go with MODSEQ.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

from postoffice.core.errors import StoreError
from postoffice.protocol.imap.commands import Fetch, Search, StoreFlags, Transfer, UidExpunge
from postoffice.protocol.imap.fetch_items import FetchItem
from postoffice.protocol.imap.responses import (
    esearch,
    expunge,
    fetch_response,
    search,
    untagged_status,
)
from postoffice.protocol.imap.search_keys import AllKey, SearchKey, mentions_modseq
from postoffice.protocol.imap.sequence import SavedResult, SequenceOrSaved, format_sequence
from postoffice.server.imap_context import Reply, SessionState, store_failure
from postoffice.server.imap_fetch import (
    STRUCTURE_ITEMS,
    MessageContent,
    UnknownTransferEncoding,
    fetch_items,
    header_is_enough,
    needs_content,
)
from postoffice.server.imap_fetch_index import metadata_renderer
from postoffice.server.imap_fields import FieldBatch
from postoffice.server.imap_mailboxes import split_flags
from postoffice.server.imap_qresync import fetch_vanished, send_vanished
from postoffice.server.imap_quota import copy_refusal
from postoffice.server.imap_search import Candidate, matches
from postoffice.server.imap_search import header_fields as search_header_fields
from postoffice.server.imap_search import needs_content as search_needs_content
from postoffice.server.imap_view import MailboxView
from postoffice.store.api import SEEN, FlagMode, MessageInfo

FLUSH_OCTETS = 256 * 1024  # FETCH output written out once this much is waiting
_LINES_AT_ONCE = 1000  # index-only FETCH lines rendered and queued together
_KEEP_EVERY = 1000  # messages of a FETCH between writes of what it computed to the index
ESEARCH_OPTIONS = frozenset({"MIN", "MAX", "ALL", "COUNT", "SAVE"})  # SAVE: RFC 5182
_UID_ITEM = FetchItem("UID")
_FLAGS_ITEM = FetchItem("FLAGS")
_MODSEQ_ITEM = FetchItem("MODSEQ")


def with_modseq(items: list[FetchItem], *, always: bool = False) -> list[FetchItem]:
    """FETCH items once CONDSTORE is on: a response that carries FLAGS carries MODSEQ
    too (RFC 7162 §3.1), and with ``always`` (CHANGEDSINCE, §3.1.4.1) every one
    does; it goes after UID when UID leads, as in RFC 7162's examples."""
    names = {item.name for item in items}
    if "MODSEQ" in names or not (always or "FLAGS" in names):
        return items
    at = 1 if items[0].name == "UID" else 0
    return [*items[:at], _MODSEQ_ITEM, *items[at:]]


def targets(
    view: MailboxView, sequence: SequenceOrSaved, *, uid: bool, saved: Sequence[int] = ()
) -> list[tuple[int, int]]:
    """(number, UID) of each message a set names, in mailbox order (``target_slices``)."""
    return list(_pairs(view.uids, target_slices(view, sequence, uid=uid, saved=saved)))


def _pairs(uids: Sequence[int], slices: Iterable[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """(number, UID) of the messages at the positions ``slices`` name."""
    return ((index + 1, uids[index]) for start, stop in slices for index in range(start, stop))


def target_slices(
    view: MailboxView, sequence: SequenceOrSaved, *, uid: bool, saved: Sequence[int] = ()
) -> list[tuple[int, int]]:
    """The messages a set names as index ranges ``[start, stop)`` of ``view.uids``
    (number = position + 1), ascending. Numbers beyond the mailbox raise
    ``SequenceRangeError`` (a BAD); UIDs not present are skipped. ``$`` is the
    saved search result (UIDs), less what was expunged since."""
    if isinstance(sequence, SavedResult):
        numbers = sorted(n for n in map(view.number_of, saved) if n is not None)
        slices: list[tuple[int, int]] = []
        for number in numbers:
            if slices and slices[-1][1] == number - 1:
                slices[-1] = (slices[-1][0], number)
            elif not slices or slices[-1][1] < number:  # (a UID saved twice: once)
                slices.append((number - 1, number))
        return slices
    if uid:
        return sequence.select_uid_slices(view.uids)
    return sequence.select_number_slices(len(view))


async def prepare_contents(state: SessionState, view: MailboxView, uids: list[int]) -> None:
    """Part trees kept in the index, read in one query before a FETCH or SEARCH."""
    assert state.store is not None and state.user is not None
    await state.ctx.contents.prepare(state.store, view.name, view.uidvalidity, uids, state.user)


async def keep_contents(state: SessionState, view: MailboxView) -> None:
    """Part trees computed by this command, written to the index in one transaction."""
    assert state.store is not None and state.user is not None
    await state.ctx.contents.keep(state.store, view.name, view.uidvalidity, state.user)


async def load_content(
    state: SessionState, view: MailboxView, uid: int, *, header_only: bool = False
) -> MessageContent:
    assert state.store is not None and state.user is not None
    info = view.infos.get(uid)
    return await state.ctx.contents.load(
        state.store,
        view.name,
        view.uidvalidity,
        uid,
        state.user,
        stored_size=None if info is None else info.size,
        header_only=header_only,
    )


# -- FETCH ----------------------------------------------------------------------------------


async def do_fetch(state: SessionState, command: Fetch) -> Reply:
    view = state.view
    assert view is not None and state.store is not None
    if command.vanished and not state.qresync:  # RFC 7162 §3.2.6
        return Reply("BAD", "VANISHED needs ENABLE QRESYNC first")
    # The positions the slices name: the view changes only between commands
    # (``ImapSession._report_changes``), never while this one runs.
    order = view.uids
    slices = target_slices(view, command.sequence, uid=command.uid, saved=state.saved)
    # (number, UID) pairs, made only when needed: an index-only FETCH of a whole
    # mailbox (a client's resync) goes by the slices, with no object per message
    # for the cyclic collector to count (a full collection with a big mailbox's
    # view in memory walks it for 30-50 ms).
    chosen: list[tuple[int, int]] | None = None
    items = list(command.items)
    if command.changed_since is not None:
        # RFC 7162 §3.1.4.1: only messages changed since (with MODSEQ, added below)
        since, infos = command.changed_since, view.infos
        chosen = [(n, u) for n, u in _pairs(order, slices) if infos[u].modseq > since]
    if command.uid and not any(item.name == "UID" for item in items):
        items.insert(0, _UID_ITEM)  # RFC 9051 §6.4.9: UID FETCH always returns UID
    if any(item.sets_seen for item in items) and not view.read_only:
        if chosen is None:
            chosen = list(_pairs(order, slices))
        unseen = [
            u for _, u in chosen if SEEN not in view.infos[u].flags and not view.is_expunged(u)
        ]
        if unseen:
            try:
                changed = await state.store.store_flags(
                    view.name, unseen, [SEEN], mode=FlagMode.ADD
                )
            except (StoreError, OSError) as exc:
                return store_failure(exc)
            view.record_flags(changed)
            if not any(item.name == "FLAGS" for item in items):
                items.append(_FLAGS_ITEM)
            if state.condstore and not any(item.name == "UID" for item in items):
                items.insert(0, _UID_ITEM)  # RFC 7162 §3.1: a flag change names its UID
    if state.condstore:  # always on with CHANGEDSINCE, which enables it (RFC 7162 §3.1)
        items = with_modseq(items, always=command.changed_since is not None)
    if command.vanished:  # RFC 7162 §3.2.6: VANISHED (EARLIER) before the FETCHes
        await fetch_vanished(state, view, command)
    if not needs_content(items):
        return await _fetch_index_only(state, command, items, order, slices, chosen)
    if chosen is None:
        chosen = list(_pairs(order, slices))
    header_only = header_is_enough(items)
    contents = state.ctx.contents
    assert state.user is not None
    # Structure items (header_only: all without a section) that the index may
    # hold rendered: a message with all of them kept is not read at all.
    rendered = [item.name for item in items if item.name in STRUCTURE_ITEMS] if header_only else []
    # RFC822.SIZE needs the tree (its end is the size as sent); the rendered
    # items alone do not.
    sized = any(item.name == "RFC822.SIZE" for item in items)
    # A line made whole from what is kept rendered, for the messages that have it all.
    line: Callable[[int, MessageInfo], bytes | None] | None = None
    uids = [u for _, u in chosen]
    utf8 = state.conn.utf8
    if rendered:
        lacking = await contents.prepare_rendered(
            state.store, view.name, view.uidvalidity, uids, state.user, rendered, utf8
        )
        if not sized:
            uids = lacking
            line = contents.line_renderer(items, state.user, view.name, view.uidvalidity, utf8)
    await prepare_contents(state, view, uids)
    failed = False
    done = 0
    lines: list[bytes] = []  # made by ``line``, sent together
    quick = 0  # messages answered by ``line``
    for number, uid in chosen:
        info = view.infos[uid]
        if line is not None:
            made = line(number, info)
            if made is not None:
                lines.append(made)
                quick += 1
                if len(lines) == _LINES_AT_ONCE:
                    state.conn.send(b"".join(lines))
                    lines.clear()
                    if state.conn.buffered_output > FLUSH_OCTETS:
                        await state.flush()
                continue
            if lines:
                state.conn.send(b"".join(lines))
                lines.clear()
        content = None
        if rendered:
            content = contents.rendered_content(
                state.user,
                view.name,
                view.uidvalidity,
                uid,
                rendered,
                state.conn.utf8,
                info.size,
                sized=sized,
            )
        if content is None:
            try:
                content = await load_content(state, view, uid, header_only=header_only)
            except (StoreError, OSError):
                failed = True  # expunged meanwhile (by another session or program)
                continue
        memo = contents.memo(state.user, view.name, view.uidvalidity, uid, state.conn.utf8)
        try:
            pairs = fetch_items(items, info, content, utf8=state.conn.utf8, memo=memo)
        except UnknownTransferEncoding as exc:
            return Reply("NO", f"Unknown Content-Transfer-Encoding {exc}", "UNKNOWN-CTE")
        state.conn.send(fetch_response(number, pairs))
        state.count("fetch")
        if state.conn.buffered_output > FLUSH_OCTETS:
            await state.flush()
        done += 1
        if done % _KEEP_EVERY == 0:
            await keep_contents(state, view)  # a long FETCH keeps what it made as it goes
    if lines:
        state.conn.send(b"".join(lines))
    state.count("fetch", quick)
    await keep_contents(state, view)
    if failed:
        return Reply("NO", "Some messages could not be fetched", "EXPUNGEISSUED")
    return Reply("OK", f"{'UID ' if command.uid else ''}FETCH completed")


async def _fetch_index_only(
    state: SessionState,
    command: Fetch,
    items: Sequence[FetchItem],
    order: Sequence[int],
    slices: Sequence[tuple[int, int]],
    chosen: Sequence[tuple[int, int]] | None,
) -> Reply:
    """FETCH from the index alone (flags, UIDs: a client's resync of a whole
    mailbox): the messages ``chosen`` names, else those at the ``slices`` of ``order``."""
    view = state.view
    assert view is not None
    render = metadata_renderer(items)
    infos, conn = view.infos, state.conn
    if chosen is not None:
        batches: Iterable[Iterable[tuple[int, int]]] = (
            chosen[start : start + _LINES_AT_ONCE]
            for start in range(0, len(chosen), _LINES_AT_ONCE)
        )
    else:
        batches = (
            _pairs(order, [(first, min(stop, first + _LINES_AT_ONCE))])
            for start, stop in slices
            for first in range(start, stop, _LINES_AT_ONCE)
        )
    sent = 0
    for batch in batches:
        lines = [render(number, infos[uid]) for number, uid in batch]
        conn.send(b"".join(lines))
        sent += len(lines)
        if conn.buffered_output > FLUSH_OCTETS:
            await state.flush()
    state.count("fetch", sent)
    return Reply("OK", f"{'UID ' if command.uid else ''}FETCH completed")


# -- STORE ----------------------------------------------------------------------------------


async def do_store(state: SessionState, command: StoreFlags) -> Reply:
    view = state.view
    assert view is not None and state.store is not None
    if view.read_only:
        return Reply("NO", "Mailbox is read-only", "READ-ONLY")
    try:
        system, keywords = split_flags(command.flags)
    except StoreError as exc:
        return Reply("BAD", str(exc))
    chosen = [
        (n, u) for n, u in targets(view, command.sequence, uid=command.uid, saved=state.saved)
    ]
    live = [u for _, u in chosen if not view.is_expunged(u)]
    mode = {"+": FlagMode.ADD, "-": FlagMode.REMOVE, "": FlagMode.REPLACE}[command.mode]
    modified: list[MessageInfo] = []
    try:
        if command.unchanged_since is None:
            changed = await state.store.store_flags(view.name, live, system, keywords, mode)
        else:
            # RFC 7162 §3.1.3: the store compares each MODSEQ as it makes the change
            result = await state.store.store_flags_if_unchanged(
                view.name, live, command.unchanged_since, system, keywords, mode
            )
            changed, modified = result.stored, result.modified
    except (StoreError, OSError) as exc:
        return store_failure(exc)
    view.record_flags([*changed, *modified])
    _send_stored(state, view, command, changed, modified)
    state.count("store", len(changed))
    prefix = "UID " if command.uid else ""
    # RFC 7162 §3.1.3: what failed the test, as numbers (STORE) or UIDs (UID STORE).
    # A message expunged meanwhile (by another session) failed it too: its state
    # changed, and the client's FETCH or NOOP will show how.
    done = {info.uid for info in changed}
    failed = sorted((set(live) - done) | {u for _, u in chosen if view.is_expunged(u)})
    if command.unchanged_since is None or not failed:
        return Reply("OK", f"{prefix}STORE completed")
    numbers = failed if command.uid else [view.number_of(u) or 0 for u in failed]
    code = f"MODIFIED {format_sequence(numbers)}"
    return Reply("OK", f"Conditional {prefix}STORE failed for some messages", code)


def _send_stored(
    state: SessionState,
    view: MailboxView,
    command: StoreFlags,
    changed: Sequence[MessageInfo],
    modified: Sequence[MessageInfo],
) -> None:
    """The FETCH responses of a STORE. Once CONDSTORE is on each carries MODSEQ, and
    is sent even for .SILENT (without FLAGS then, RFC 7162 §3.1.3); a message that
    failed the UNCHANGEDSINCE test is told with its present flags, so the client
    knows what changed (RFC 7162 §3.1.3 recommends it, and shows it in an example)."""
    # RFC 7162 §3.1: once CONDSTORE is on, every FETCH of changed flags has UID and MODSEQ.
    uid_items = [_UID_ITEM] if command.uid or state.condstore else []
    if state.condstore:
        items = [*uid_items, _MODSEQ_ITEM, *([] if command.silent else [_FLAGS_ITEM])]
    elif command.silent:
        return
    else:
        items = [*uid_items, _FLAGS_ITEM]
    both = [(info, items) for info in changed]
    both += [(info, [*uid_items, _MODSEQ_ITEM, _FLAGS_ITEM]) for info in modified]
    for info, wanted in sorted(both, key=lambda pair: pair[0].uid):
        number = view.number_of(info.uid)
        if number is not None:
            state.conn.send(fetch_response(number, fetch_items(wanted, info, None)))


# -- SEARCH ---------------------------------------------------------------------------------


async def search_matches(
    state: SessionState, view: MailboxView, key: SearchKey
) -> list[tuple[int, int]]:
    """(number, UID) of each message matching ``key``."""
    if isinstance(key, AllKey):  # what SORT and THREAD mostly ask: no message to test
        return list(enumerate(view.uids, 1))
    last_uid = view.uids[-1] if view.uids else 0
    saved = frozenset(state.saved)
    found: list[tuple[int, int]] = []
    reads = search_needs_content(key)
    fields = search_header_fields(key) if reads else None
    batch: FieldBatch | None = None
    if fields:
        # Header keys only: their values for every message in one index query, the
        # missing ones computed as needed and kept (``imap_fields``).
        assert state.store is not None and state.user is not None
        sizes = {uid: info.size for uid, info in view.infos.items()}
        batch = await FieldBatch.open(
            state.ctx.contents,
            state.store,
            view.name,
            view.uidvalidity,
            state.user,
            view.uids,
            fields,
            sizes,
        )
    elif reads:
        await prepare_contents(state, view, view.uids)
    for number, uid in enumerate(view.uids, 1):
        info = view.infos[uid]

        async def load(header_only: bool, uid: int = uid) -> MessageContent:
            return await load_content(state, view, uid, header_only=header_only)

        async def field_values(name: str, uid: int = uid, size: int = info.size) -> list[str]:
            if batch is not None:
                return await batch.get(uid, name)
            assert state.store is not None and state.user is not None
            return await state.ctx.contents.header_values(
                state.store, view.name, view.uidvalidity, uid, state.user, name, stored_size=size
            )

        candidate = Candidate(number, info, load, len(view), last_uid, field_values, saved)
        try:
            if await matches(key, candidate):
                found.append((number, uid))
        except (StoreError, OSError):
            if not reads:
                raise
            continue  # gone meanwhile: it matches nothing
    if batch is not None:
        await batch.save()  # the values and part trees computed, kept in the index
    elif reads:
        await keep_contents(state, view)
    return found


async def do_search(state: SessionState, command: Search) -> Reply:
    view = state.view
    assert view is not None
    options = command.return_options
    if options is not None and not set(options) <= ESEARCH_OPTIONS:
        return Reply("BAD", "Unknown RETURN option")
    saving = options is not None and "SAVE" in options
    if saving:
        state.saved = []  # RFC 5182 §2.1: a failed SEARCH leaves $ empty
    found = await search_matches(state, view, command.key)
    values = [u if command.uid else n for n, u in found]
    # RFC 7162 §3.1.6: with a MODSEQ key the answer tells the highest MODSEQ found
    modseqs: dict[int, int] | None = None
    if mentions_modseq(command.key):
        modseqs = {v: view.infos[u].modseq for v, (_, u) in zip(values, found, strict=True)}
    state.count("search")
    if saving:
        assert options is not None
        state.saved = [u for _, u in found]  # kept as UIDs: numbers move with expunges
        options = tuple(option for option in options if option != "SAVE")
        if not options:
            # RFC 5182 §2.1: SAVE alone sends no ESEARCH
            return Reply("OK", f"{'UID ' if command.uid else ''}SEARCH completed, result saved")
    if options is None and not state.rev2:
        state.conn.send(search(values, max(modseqs.values()) if modseqs else None))
    else:
        state.conn.send(_esearch(command, values, options or ("ALL",), modseqs))
    return Reply("OK", f"{'UID ' if command.uid else ''}SEARCH completed")


def _esearch(
    command: Search,
    values: Sequence[int],
    options: Sequence[str],
    modseqs: dict[int, int] | None,
) -> bytes:
    """RFC 4731 §3.1 / RFC 9051 §7.3.4: what each RETURN option asked for; with
    ``modseqs`` (value -> MODSEQ, a MODSEQ key was used) the MODSEQ item too."""
    data: list[tuple[str, bytes]] = []
    if values:
        if "MIN" in options:
            data.append(("MIN", b"%d" % min(values)))
        if "MAX" in options:
            data.append(("MAX", b"%d" % max(values)))
        if "ALL" in options:
            data.append(("ALL", format_sequence(values).encode("ascii")))
    if "COUNT" in options:
        data.append(("COUNT", b"%d" % len(values)))
    if modseqs and values:
        # RFC 4731 §3.2 (RFC 7162 §3.1.10): the highest MODSEQ of the messages the
        # answer returns: all found for ALL or COUNT, else the MIN and/or MAX one.
        if "ALL" in options or "COUNT" in options:
            returned: Sequence[int] = values
        else:
            returned = [v for o, v in (("MIN", min(values)), ("MAX", max(values))) if o in options]
        data.append(("MODSEQ", b"%d" % max(modseqs[v] for v in returned)))
    return esearch(command.tag, uid=command.uid, data=data)


# -- COPY / MOVE ----------------------------------------------------------------------------


async def do_transfer(state: SessionState, command: Transfer) -> Reply:
    view = state.view
    assert view is not None and state.store is not None
    verb = "MOVE" if command.move else "COPY"
    prefix = "UID " if command.uid else ""
    if command.move and view.read_only:
        return Reply("NO", "Mailbox is read-only", "READ-ONLY")
    chosen = [u for _, u in targets(view, command.sequence, uid=command.uid, saved=state.saved)]
    live = [u for u in chosen if not view.is_expunged(u)]
    try:
        destination = await state.store.status(command.mailbox)
    except (StoreError, OSError) as exc:
        return store_failure(exc, missing_code="TRYCREATE")  # RFC 9051 §6.4.7
    if not live:
        return Reply("OK", f"{prefix}{verb} completed")
    try:
        # RFC 9208 §4.3; a MOVE stays inside the one quota root (``imap_quota``)
        refused = None if command.move else await copy_refusal(state, view.name, live)
    except (StoreError, OSError) as exc:
        return store_failure(exc)
    if refused is not None:
        return refused
    try:
        if command.move:
            mapping = await state.store.move(view.name, live, command.mailbox)
        else:
            mapping = await state.store.copy(view.name, live, command.mailbox)
    except (StoreError, OSError) as exc:
        return store_failure(exc, missing_code="TRYCREATE")
    state.count(verb.lower(), len(mapping))
    sources = sorted(mapping)
    code = (
        f"COPYUID {destination.uidvalidity} {format_sequence(sources)} "
        f"{format_sequence(mapping[s] for s in sources)}"
        if mapping
        else None
    )
    if not command.move:
        return Reply("OK", f"{prefix}COPY completed", code)
    # RFC 6851 §4.3: COPYUID in an untagged OK before the EXPUNGEs
    if code is not None and len(sources) == len(set(mapping.values())):
        state.conn.send(untagged_status("OK", "Moved", code))
    _send_expunges(state, view, mapping)
    return Reply("OK", f"{prefix}MOVE completed")


# -- EXPUNGE / CLOSE ------------------------------------------------------------------------


def _send_expunges(state: SessionState, view: MailboxView, uids: Iterable[int]) -> None:
    """Drop the session's own expunged messages from the view and say so: EXPUNGE
    responses, or one VANISHED once QRESYNC is on (RFC 7162 §3.2.10)."""
    known = sorted(u for u in set(uids) if view.number_of(u) is not None)
    numbers = view.remove(known)
    if state.qresync:
        send_vanished(state, known)
    else:
        for number in numbers:
            state.conn.send(expunge(number))
    state.count("expunge", len(numbers))


async def do_expunge(state: SessionState, command: UidExpunge | None) -> Reply:
    view = state.view
    assert view is not None and state.store is not None
    if view.read_only:
        return Reply("NO", "Mailbox is read-only", "READ-ONLY")
    uids: list[int] | None = None
    if command is not None:  # RFC 4315 §2.1: only the named \Deleted messages
        uids = [u for _, u in targets(view, command.sequence, uid=True, saved=state.saved)]
        if not uids:
            return Reply("OK", "UID EXPUNGE completed")
    try:
        removed = await state.store.expunge(view.name, uids)
    except (StoreError, OSError) as exc:
        return store_failure(exc)
    _send_expunges(state, view, removed)
    return Reply("OK", f"{'UID ' if command else ''}EXPUNGE completed")


async def do_close(state: SessionState) -> Reply:
    """RFC 9051 §6.4.1: expunge silently (unless read-only), then deselect."""
    view = state.view
    assert view is not None and state.store is not None
    state.view = None
    state.saved = []
    if not view.read_only:
        try:
            removed = await state.store.expunge(view.name)
        except (StoreError, OSError) as exc:
            return store_failure(exc)
        state.count("expunge", len(removed))
    return Reply("OK", "CLOSE completed")
