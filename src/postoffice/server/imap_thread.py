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
message file), never a message body; a message gone meanwhile threads with
empty values.
"""

from __future__ import annotations

from typing import Final

from postoffice.mime.headers import first_date
from postoffice.mime.threads import ThreadInput, ordered_subject_threads, references_threads
from postoffice.protocol.imap.responses import thread as thread_response
from postoffice.protocol.imap.thread_command import THREAD_ALGORITHMS, Thread
from postoffice.server.imap_context import Reply, SessionState
from postoffice.server.imap_fields import view_fields
from postoffice.server.imap_selected import search_matches
from postoffice.server.imap_view import MailboxView

__all__ = ["CAPABILITIES", "Thread", "do_thread", "thread_input"]

CAPABILITIES: Final = tuple(f"THREAD={name}" for name in THREAD_ALGORITHMS)  # RFC 5256 §3
_REFERENCE_FIELDS: Final = ("message-id", "references", "in-reply-to")


def thread_input(
    view: MailboxView,
    number: int,
    uid: int,
    known: dict[tuple[int, str], list[str]],
    *,
    references: bool,
) -> ThreadInput:
    """What the algorithm reads of one message, numbered ``number``, from the values
    of its fields (``fields_for``; none for a message gone meanwhile)."""
    dates = known.get((uid, "date"), [])
    subjects = known.get((uid, "subject"), [])
    ids = ["", "", ""]
    if references:
        for index, field in enumerate(_REFERENCE_FIELDS):
            values = known.get((uid, field), [])
            ids[index] = values[0] if values else ""
    return ThreadInput(
        number,
        first_date(dates) or view.infos[uid].internal_date,  # RFC 5256 §2.2
        subjects[0] if subjects else "",
        *ids,
    )


async def do_thread(state: SessionState, command: Thread) -> Reply:
    view = state.view
    assert view is not None
    found = await search_matches(state, view, command.key)
    by_references = command.algorithm == "REFERENCES"
    uids = [uid for _, uid in found]
    fields = ("date", "subject", *(_REFERENCE_FIELDS if by_references else ()))
    known = await view_fields(state, view, uids, fields)
    messages = [
        thread_input(view, uid if command.uid else number, uid, known, references=by_references)
        for number, uid in found
    ]
    if by_references:
        threads = references_threads(messages)
    else:
        threads = ordered_subject_threads(messages)
    state.count("thread")
    state.conn.send(thread_response(threads))
    return Reply("OK", f"{'UID ' if command.uid else ''}THREAD completed")
