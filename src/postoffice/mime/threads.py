"""Threading messages into conversations: the two THREAD algorithms of RFC 5256 §3.

What this module owns: pure functions from what the algorithms read of each
message (``ThreadInput``: sequence number, sent date, decoded Subject,
Message-ID, References and In-Reply-To values) to a list of threads
(``ThreadNode`` trees), in the order the THREAD response lists them. What
they compare of a message is worked out once, as its ``ThreadFacts``
(``thread_facts``: instant, own msg-id, references, base subject), which
depend on the message alone, so a caller may keep them between commands and
call the ``*_of_facts`` forms:

- ``ordered_subject_threads``: ORDEREDSUBJECT, "poor man's threading";
- ``references_threads``: REFERENCES, the steps of RFC 5256 §3 (a
  refinement of Jamie Zawinski's algorithm), numbered in the comments as
  the RFC numbers them;
- ``message_ids``: the msg-ids of a Message-ID, References or In-Reply-To
  value (RFC 5322 §3.6.4).

Rules shared by both: sent dates compare as instants and a tie goes by
sequence number (RFC 5256 §2.2); base subjects (``base_subject``) compare by
the RFC 5051 collation (``mime.collation``), as SORT does, so "Straße" and
"STRASSE" are two subjects, as for Dovecot.

Invariants: every input message appears exactly once in the output, as a
node with its number; a dummy (``number`` None, REFERENCES only) has at
least two children and is never below the top level. Nothing recurses on
the depth of a thread (a chain of replies may be as long as the mailbox),
and the work is about linear in the total length of the inputs (a loop
check walks up one chain of parents).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Final, NamedTuple

from postoffice.mime.base_subject import subject_of_thread
from postoffice.mime.collation import collation_key

__all__ = [
    "ThreadFacts",
    "ThreadInput",
    "ThreadNode",
    "message_ids",
    "ordered_subject_threads",
    "ordered_subject_threads_of_facts",
    "references_threads",
    "references_threads_of_facts",
    "thread_facts",
]

# RFC 5322 §3.6.4 msg-id = [CFWS] "<" id-left "@" id-right ">" [CFWS]; folding
# white space inside the brackets (obsolete forms) is dropped before comparing.
_MSG_ID: Final = re.compile(r"<([^<>]*)>")


@dataclass(frozen=True, slots=True)
class ThreadInput:
    """What threading reads of one searched message. ``sent`` is the RFC 5256 §2.2
    sent date (the Date field, else the internal date); the header values are
    the first field's decoded value, or "" when the field is missing."""

    number: int
    sent: datetime
    subject: str = ""
    message_id: str = ""
    references: str = ""
    in_reply_to: str = ""


class ThreadNode(NamedTuple):
    """One message of a thread and its replies, oldest first; ``number`` None is a
    dummy, standing for a message that is not there (RFC 5256 §3 REFERENCES)."""

    number: int | None
    children: tuple[ThreadNode, ...] = ()


_NO_NODE: Final = ThreadNode(None)  # a container's node before ``_freeze`` makes it


def _node(fields: tuple[int | None, tuple[ThreadNode, ...]]) -> ThreadNode:
    """``ThreadNode(number, children)`` without the Python-level ``__new__`` of a
    NamedTuple: one is made for every message of a THREAD."""
    return tuple.__new__(ThreadNode, fields)


def message_ids(value: str) -> list[str]:
    """The valid msg-ids of a header value, in order, brackets kept; comparison of
    the results is case-sensitive (RFC 5256 §3 REFERENCES step 1.A)."""
    found = []
    for match in _MSG_ID.finditer(value):
        inner = "".join(match.group(1).split())
        left, at, right = inner.partition("@")
        if left and at and right:
            found.append(f"<{inner}>")
    return found


class ThreadFacts(NamedTuple):
    """What the algorithms compare of one message, whatever its number."""

    sent: float  # the sent instant as a POSIX timestamp (compares as the instants do)
    message_id: str | None  # its first valid msg-id (RFC 5256 §3 step 1.A)
    references: tuple[str, ...]  # References' msg-ids, else In-Reply-To's first
    subject: str  # collation key of the base subject (``base_subject``, ``collation``)
    reply: bool  # the subject says reply or forward (RFC 5256 §2.1, step 5.B)


def thread_facts(message: ThreadInput) -> ThreadFacts:
    """The ``ThreadFacts`` of a message (all but its number)."""
    ids = message_ids(message.message_id)
    references = message_ids(message.references) or message_ids(message.in_reply_to)[:1]
    base, reply = subject_of_thread(message.subject)
    return ThreadFacts(
        message.sent.timestamp(),
        ids[0] if ids else None,
        tuple(references),
        collation_key(base),
        reply,
    )


# One message as the algorithms take it: its number (or UID) and its facts.
Numbered = tuple[int, ThreadFacts]


def _order_key(message: Numbered) -> tuple[float, int]:
    # RFC 5256 §2.2: by sent date, ties by sequence number.
    return (message[1].sent, message[0])


# -- ORDEREDSUBJECT ------------------------------------------------------------------------


def ordered_subject_threads(messages: Iterable[ThreadInput]) -> list[ThreadNode]:
    """RFC 5256 §3 ORDEREDSUBJECT (``ordered_subject_threads_of_facts``)."""
    return ordered_subject_threads_of_facts([(m.number, thread_facts(m)) for m in messages])


def ordered_subject_threads_of_facts(messages: Iterable[Numbered]) -> list[ThreadNode]:
    """RFC 5256 §3 ORDEREDSUBJECT: the messages sorted by base subject, then sent
    date, split into one thread per base subject; the threads in the order of
    their first messages' sent dates. The first message of a thread is its root,
    every other one a child of it: there are no grandchildren."""
    groups: dict[str, list[Numbered]] = {}
    for message in messages:
        groups.setdefault(message[1].subject, []).append(message)
    threads = [sorted(group, key=_order_key) for group in groups.values()]
    threads.sort(key=lambda thread: _order_key(thread[0]))
    return [
        ThreadNode(first[0], tuple(ThreadNode(later[0]) for later in rest))
        for first, *rest in threads
    ]


# -- REFERENCES ----------------------------------------------------------------------------


class _Container:
    """A message, or a dummy for a referenced message that is not there, with its
    place in the tree being built. ``children`` is an ordered set (a dict), so
    taking one out costs nothing; its order means something once sorted."""

    __slots__ = ("children", "facts", "node", "number", "parent")

    def __init__(self, number: int | None = None, facts: ThreadFacts | None = None) -> None:
        self.number = number
        self.facts = facts
        self.parent: _Container | None = None
        self.children: dict[_Container, None] = {}
        self.node = _NO_NODE  # its ``ThreadNode``, once ``_freeze`` made it

    def is_dummy(self) -> bool:
        return self.facts is None

    def descends_from(self, other: _Container) -> bool:
        """True when ``other`` is this container or one of its ancestors."""
        node: _Container | None = self
        while node is not None:
            if node is other:
                return True
            node = node.parent
        return False

    def adopt(self, child: _Container) -> None:
        child.parent = self
        self.children[child] = None

    def release(self, child: _Container) -> None:
        del self.children[child]
        child.parent = None

    def sort_children(self) -> None:
        if len(self.children) > 1:  # most containers have one child or none
            self.children = dict.fromkeys(sorted(self.children, key=_Container.key))

    def first_child(self) -> _Container | None:
        return next(iter(self.children), None)

    def _first_message(self) -> _Container | None:
        """This container, or for a dummy its first child's (down to a message)."""
        node: _Container | None = self
        while node is not None and node.facts is None:
            node = node.first_child()
        return node

    def key(self) -> tuple[float, int]:
        """The sent date and number it sorts by; a dummy sorts as its first child
        (RFC 5256 §3 REFERENCES steps 4 and 6), whose children are sorted already."""
        node = self._first_message()
        if node is None or node.facts is None:  # pruned before any sorting; kept total
            return (float("inf"), 0)
        return (node.facts.sent, node.number or 0)

    def thread_subject(self) -> tuple[str, bool]:
        """Base subject (its collation key) and reply-or-forward of the message, or of a
        dummy's first child (RFC 5256 §3 REFERENCES step 5.B)."""
        node = self._first_message()
        if node is None or node.facts is None:
            return ("", False)
        return (node.facts.subject, node.facts.reply)


def _below(roots: Iterable[_Container]) -> list[_Container]:
    """Every container under ``roots`` (them included), children before parents."""
    order: list[_Container] = []
    stack = list(roots)
    while stack:
        container = stack.pop()
        order.append(container)
        stack.extend(container.children)
    order.reverse()
    return order


def _link_messages(messages: Sequence[Numbered]) -> list[_Container]:
    """Step 1: the parent/child links References and In-Reply-To say; the
    containers of the messages and of the dummies made on the way."""
    by_id: dict[str, _Container] = {}
    containers: list[_Container] = []
    for number, facts in messages:
        container = _Container(number, facts)
        containers.append(container)
        # 1.A: no valid Message-ID, or one an earlier (lower numbered) message has:
        # the message gets a unique ID, i.e. nothing can reference it
        own = facts.message_id
        if own is not None and own not in by_id:
            by_id[own] = container

    def find(message_id: str) -> _Container:
        found = by_id.get(message_id)
        if found is None:  # 1.A: a dummy for a message not found, used for every reference
            found = by_id[message_id] = _Container()
            containers.append(found)
        return found

    for (_, facts), container in zip(messages, containers[: len(messages)], strict=True):
        # the references: those of References, else the first valid one of In-Reply-To
        chain = [find(message_id) for message_id in facts.references]
        for parent, child in pairwise(chain):
            # 1.A: each reference the parent of the next, unless the child already has
            # a parent (References may have been cut short) or the link makes a loop
            if child.parent is None and not parent.descends_from(child):
                parent.adopt(child)
        # 1.B: the last reference is the parent of the message itself, replacing any
        # parent it had; with no references it has none; still no loops
        if container.parent is not None:
            container.parent.release(container)
        if chain and not chain[-1].descends_from(container):
            chain[-1].adopt(container)
    return containers


def _prune(root: _Container) -> None:
    """Step 3: dummies without children go; a dummy's children take its place,
    except at the top level when there would be more than one of them."""
    for container in _below([root]):
        children = container.children
        if not children or all(child.facts is not None for child in children):
            continue  # no dummy below it: nothing to drop or promote (most containers)
        kept: list[_Container] = []
        for child in children:
            if not child.is_dummy() or (container is root and len(child.children) > 1):
                kept.append(child)
            else:
                kept.extend(child.children)  # none, or promoted a level up
        for child in kept:
            child.parent = container
        container.children = dict.fromkeys(kept)


def _sort_top_level(root: _Container) -> None:
    """Step 4: the top level by sent date; a dummy by its first child, once its
    own children are sorted."""
    for container in root.children:
        if container.is_dummy():
            container.sort_children()
    root.sort_children()


def _merge_by_subject(root: _Container) -> None:
    """Step 5: top-level threads with the same base subject come together."""
    table: dict[str, _Container] = {}  # 5.A: the subject table
    top = list(root.children)
    for container in top:
        subject, reply = container.thread_subject()  # 5.B
        if not subject:
            continue
        held = table.get(subject)
        # 5.C: a dummy wins over a message, and a message that is not a reply or
        # forward over one that is
        if held is None or (
            not held.is_dummy()
            and (container.is_dummy() or (held.thread_subject()[1] and not reply))
        ):
            table[subject] = container
    for container in top:
        if container.parent is not root:
            continue  # merged into another thread already
        subject, reply = container.thread_subject()  # 5.D
        if not subject:
            continue
        held = table[subject]
        if held is container:
            continue
        root.release(container)
        if held.is_dummy() and container.is_dummy():
            for child in list(container.children):  # both dummies: the children join
                container.release(child)
                held.adopt(child)
        elif held.is_dummy() or (reply and not held.thread_subject()[1]):
            held.adopt(container)  # a child of the dummy, or of the original message
        else:
            dummy = _Container()  # both under a new dummy, which takes the table's place
            root.release(held)
            root.adopt(dummy)
            dummy.adopt(held)
            dummy.adopt(container)
            table[subject] = dummy


def _freeze(root: _Container) -> list[ThreadNode]:
    """Step 6's sort of every set of siblings by sent date, the deepest first, and
    the tree as ``ThreadNode`` values, built bottom-up without recursion."""
    for container in _below(root.children):
        children = container.children
        if not children:
            container.node = _node((container.number, ()))
            continue
        if len(children) > 1:
            container.sort_children()
            children = container.children
        container.node = _node((container.number, tuple([child.node for child in children])))
        for child in children:
            child.node = _NO_NODE
        if container.parent is not root:  # (the top level's children give it its order)
            # No parent-child cycle is left behind: the containers go with their
            # last reference, with no work for the cyclic garbage collector.
            container.children = {}
    root.sort_children()
    top = [container.node for container in root.children]
    for container in root.children:
        container.children = {}
        container.node = _NO_NODE
    root.children = {}
    return top


def references_threads(messages: Iterable[ThreadInput]) -> list[ThreadNode]:
    """RFC 5256 §3 REFERENCES (``references_threads_of_facts``)."""
    return references_threads_of_facts([(m.number, thread_facts(m)) for m in messages])


def references_threads_of_facts(messages: Iterable[Numbered]) -> list[ThreadNode]:
    """RFC 5256 §3 REFERENCES: threads from References and In-Reply-To, top-level
    threads of the same base subject gathered, siblings by sent date."""
    ordered = sorted(messages, key=lambda message: message[0])
    containers = _link_messages(ordered)
    # step 2: the messages (and dummies) without a parent are the top level
    root = _Container()
    for container in containers:
        if container.parent is None:
            root.adopt(container)
    _prune(root)
    _sort_top_level(root)
    _merge_by_subject(root)
    return _freeze(root)
