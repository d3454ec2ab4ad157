"""THREAD and UID THREAD (RFC 5256 §3): carrying out the command on the selected mailbox.

What this module owns: choosing the messages (SEARCH's own matching,
``imap_selected.search_matches``, so ``$`` and every search key mean what
they mean for SEARCH), reading what the algorithms need of each, running
the algorithm (``mime.threads``, pure) and sending ``* THREAD``.

Rules:
- the sent date is the Date field, or the internal date when it is missing
  or unreadable (RFC 5256 §2.2), as SORT DATE reads it;
- ORDEREDSUBJECT reads Date and Subject; REFERENCES also Message-ID,
  References and In-Reply-To; each the first field of its name;
- UID THREAD gives the algorithms UIDs in place of sequence numbers: UIDs
  ascend with the numbers, so every tie (RFC 5256 §2.2) and every "lowest
  sequence number" (duplicate Message-IDs) comes out the same.

Invariants: only header fields are read, for all the messages at once
(``imap_fields.fields_for``: kept in the index, so a second THREAD reads no
message file), never a message body; what the algorithm compares of each
message (``ThreadFacts``) is kept in the process and in the index once worked
out (``imap_fields.keys_for``), so a second THREAD of the mailbox reads not
even the header values; a message gone meanwhile threads with empty values.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Final, cast

from postoffice.mime.headers import first_timestamp
from postoffice.mime.threads import (
    ThreadFacts,
    facts_of,
    ordered_subject_threads_of_facts,
    references_threads_in_order,
)
from postoffice.protocol.imap.responses import thread as thread_response
from postoffice.protocol.imap.search_keys import AllKey
from postoffice.protocol.imap.thread_command import THREAD_ALGORITHMS, Thread
from postoffice.server.gc_pause import collection_paused
from postoffice.server.imap_context import Reply, SessionState
from postoffice.server.imap_fields import Columns, KeyKind, checked, keys_for
from postoffice.server.imap_keys import answer_digest
from postoffice.server.imap_selected import search_matches
from postoffice.server.imap_view import MailboxView
from postoffice.store.field_cache import string_lists

__all__ = ["CAPABILITIES", "Thread", "do_thread", "message_facts"]

CAPABILITIES: Final = tuple(f"THREAD={name}" for name in THREAD_ALGORITHMS)  # RFC 5256 §3
_REFERENCE_FIELDS: Final = ("message-id", "references", "in-reply-to")


def message_facts(
    view: MailboxView, uid: int, values: dict[str, list[str]], *, references: bool
) -> ThreadFacts:
    """What the algorithm compares of one message (its number aside), from the
    values of its fields by lower-case name (none for a message gone meanwhile)."""
    subjects = values.get("subject", [])
    ids = ["", "", ""]
    if references:
        for index, field in enumerate(_REFERENCE_FIELDS):
            found = values.get(field, [])
            ids[index] = found[0] if found else ""
    sent = first_timestamp(values.get("date", []))  # RFC 5256 §2.2: else the internal date
    return facts_of(
        view.infos[uid].internal_date.timestamp() if sent is None else sent,
        subjects[0] if subjects else "",
        *ids,
    )


def _encoded(facts: ThreadFacts) -> list[str]:
    """``ThreadFacts`` as the strings of their row in the index."""
    sent, message_id, references, subject, reply = facts
    return [repr(sent), message_id or "", subject, "1" if reply else "", *references]


def _columns(facts: list[ThreadFacts]) -> Columns:
    """Facts as key set columns: sent, message-id, references, subject, reply."""
    return [list(column) for column in zip(*facts, strict=True)] if facts else [[]] * 5


def _of_columns(columns: Columns) -> list[ThreadFacts]:
    sent, ids, references, subjects, replies = columns
    checked(sent, float)
    checked(ids, str, type(None))
    checked(subjects, str)
    checked(replies, bool)
    if not string_lists(references):
        raise TypeError("references that are not lists of msg-ids")
    rows = zip(sent, ids, map(tuple, references), subjects, replies, strict=True)
    # tuple.__new__ in C: no Python-level call for each of 100,000 messages
    return cast(list[ThreadFacts], list(map(tuple.__new__, itertools.repeat(ThreadFacts), rows)))


def _decoded(strings: list[str]) -> ThreadFacts:
    sent, message_id, subject, reply, *references = strings
    # tuple.__new__: no Python-level __new__ for each of 100,000 messages
    facts = (float(sent), message_id or None, tuple(references), subject, reply == "1")
    return tuple.__new__(ThreadFacts, facts)


async def do_thread(state: SessionState, command: Thread) -> Reply:
    view = state.view
    assert view is not None and state.store is not None and state.user is not None
    numbers: Sequence[int]
    uids: Sequence[int]
    if isinstance(command.key, AllKey):  # the usual THREAD: no (number, UID) pair a message
        numbers, uids = range(1, len(view.uids) + 1), view.uids
    else:
        found = await search_matches(state, view, command.key)
        numbers, uids = [number for number, _ in found], [uid for _, uid in found]
    # The same messages threaded before (by this process, or another: the index
    # keeps the last answer of each kind) give the same answer.
    kind = f"thread/{command.algorithm.lower()}/{'uid' if command.uid else 'number'}"
    digest = answer_digest(view.uidvalidity, numbers, uids)
    answers = state.ctx.contents.answers
    response = answers.get(state.user, view.name, kind, digest)
    if response is None:
        response = await state.store.answer(view.name, view.uidvalidity, kind, digest)
        if response is None:
            response = await _threads(state, view, command, numbers, uids)
            await state.store.save_answer(view.name, view.uidvalidity, kind, digest, response)
        answers.keep(state.user, view.name, kind, digest, response)
    state.count("thread")
    state.conn.send(response)
    return Reply("OK", f"{'UID ' if command.uid else ''}THREAD completed")


async def _threads(
    state: SessionState,
    view: MailboxView,
    command: Thread,
    numbers: Sequence[int],
    uids: Sequence[int],
) -> bytes:
    """The ``* THREAD`` response, computed."""
    by_references = command.algorithm == "REFERENCES"
    fields = ("date", "subject", *(_REFERENCE_FIELDS if by_references else ()))

    def derive(uid: int, values: dict[str, list[str]]) -> ThreadFacts:
        return message_facts(view, uid, values, references=by_references)

    kind = KeyKind(
        f"THREAD={command.algorithm}", fields, derive, _encoded, _decoded, _columns, _of_columns
    )
    facts = await keys_for(state, view, uids, kind)
    # UID THREAD gives the algorithms UIDs for numbers (module docstring).
    labels = uids if command.uid else numbers
    # A container and a node per message, all gone before the collector runs again.
    with collection_paused():
        ordered = [facts[uid] for uid in uids]
        if by_references:
            threads = references_threads_in_order(labels, ordered)
        else:
            threads = ordered_subject_threads_of_facts(zip(labels, ordered, strict=True))
        response = thread_response(threads)
        del ordered, threads
    return response
