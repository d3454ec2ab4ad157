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
from itertools import pairwise, repeat
from operator import itemgetter
from typing import Final, NamedTuple

from postoffice.mime.base_subject import subject_of_thread
from postoffice.mime.collation import collation_key

__all__ = [
    "ThreadFacts",
    "ThreadInput",
    "ThreadNode",
    "facts_of",
    "message_ids",
    "ordered_subject_threads",
    "ordered_subject_threads_of_facts",
    "references_threads",
    "references_threads_in_order",
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
    return facts_of(
        message.sent.timestamp(),
        message.subject,
        message.message_id,
        message.references,
        message.in_reply_to,
    )


def facts_of(
    sent: float, subject: str, message_id: str, references: str, in_reply_to: str
) -> ThreadFacts:
    """``thread_facts`` of a message whose sent date is already a POSIX timestamp."""
    ids = message_ids(message_id)
    referenced = message_ids(references) or message_ids(in_reply_to)[:1]
    base, reply = subject_of_thread(subject)
    return ThreadFacts(sent, ids[0] if ids else None, tuple(referenced), collation_key(base), reply)


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

_NONE: Final = -1  # no parent


class _Forest:
    """The containers of RFC 5256 §3 REFERENCES as parallel lists indexed by
    container: the messages first (in the order given), then each dummy (a
    referenced message that is not there) as it is made, then the root of
    step 2. A list per attribute and plain integers, not an object per
    container: THREAD of a 100,000-message mailbox makes one per message.

    ``children[i]`` is an ordered set (a dict, None while empty), so taking a
    child out costs nothing; its order means something once sorted."""

    __slots__ = ("children", "facts", "numbers", "parent")

    def __init__(self, numbers: Sequence[int], facts: Sequence[ThreadFacts]) -> None:
        self.numbers: list[int | None] = list(numbers)
        self.facts: list[ThreadFacts | None] = list(facts)
        self.parent: list[int] = [_NONE] * len(numbers)
        self.children: list[dict[int, None] | None] = [None] * len(numbers)

    def add(self) -> int:
        """A new dummy (or the root), with no parent and no children."""
        self.numbers.append(None)
        self.facts.append(None)
        self.parent.append(_NONE)
        self.children.append(None)
        return len(self.parent) - 1

    def descends_from(self, node: int, other: int) -> bool:
        """True when ``other`` is ``node`` or one of its ancestors."""
        parent = self.parent
        while node != _NONE:
            if node == other:
                return True
            node = parent[node]
        return False

    def adopt(self, node: int, child: int) -> None:
        self.parent[child] = node
        kids = self.children[node]
        if kids is None:
            self.children[node] = {child: None}
        else:
            kids[child] = None

    def release(self, node: int, child: int) -> None:
        kids = self.children[node]
        assert kids is not None
        del kids[child]
        self.parent[child] = _NONE

    def first_message(self, node: int) -> int:
        """``node``, or for a dummy its first child's (down to a message); _NONE
        for a dummy with no message below its first children."""
        facts, children = self.facts, self.children
        while facts[node] is None:
            kids = children[node]
            if not kids:
                return _NONE
            node = next(iter(kids))
        return node

    def thread_subject(self, node: int) -> tuple[str, bool]:
        """Base subject (its collation key) and reply-or-forward of the message, or of a
        dummy's first child (RFC 5256 §3 REFERENCES step 5.B)."""
        first = self.first_message(node)
        facts = None if first == _NONE else self.facts[first]
        if facts is None:
            return ("", False)
        return (facts.subject, facts.reply)

    def is_dummy(self, node: int) -> bool:
        return self.facts[node] is None


def _link_messages(forest: _Forest) -> None:
    """Step 1: the parent/child links References and In-Reply-To say, and the
    dummies made on the way."""
    facts_of, parent, children = forest.facts, forest.parent, forest.children
    descends_from, adopt = forest.descends_from, forest.adopt
    by_id: dict[str, int] = {}
    for index, facts in enumerate(facts_of):
        # 1.A: no valid Message-ID, or one an earlier (lower numbered) message has:
        # the message gets a unique ID, i.e. nothing can reference it
        assert facts is not None
        own = facts.message_id
        if own is not None and own not in by_id:
            by_id[own] = index
    for index, facts in enumerate(facts_of[: len(facts_of)]):  # not the dummies made here
        assert facts is not None
        # the references: those of References, else the first valid one of In-Reply-To
        references = facts.references
        last = _NONE
        if len(references) == 1:  # the usual reply: one reference, no links between them
            last = by_id.get(references[0], _NONE)
            if last == _NONE:  # 1.A: a dummy for a message not found, used for every reference
                last = by_id[references[0]] = forest.add()
        elif references:
            chain: list[int] = []
            for message_id in references:
                found = by_id.get(message_id, _NONE)
                if found == _NONE:
                    found = by_id[message_id] = forest.add()
                chain.append(found)
            # A link from ``up`` to ``child`` makes a loop when ``child`` is ``up`` or
            # above it; a container with no children is above nothing (no walk).
            for up, child in pairwise(chain):
                # 1.A: each reference the parent of the next, unless the child already
                # has a parent (References may have been cut short) or it makes a loop
                if parent[child] == _NONE and (
                    up != child if not children[child] else not descends_from(up, child)
                ):
                    adopt(up, child)
            last = chain[-1]
        # 1.B: the last reference is the parent of the message itself, replacing any
        # parent it had; with no references it has none; still no loops
        if parent[index] != _NONE:
            forest.release(parent[index], index)
        if last != _NONE and (
            last != index if not children[index] else not descends_from(last, index)
        ):
            adopt(last, index)


def _children_first(forest: _Forest, tops: Iterable[int]) -> list[int]:
    """Every container with children under ``tops`` (them included, each with
    children), children before parents."""
    children = forest.children
    order: list[int] = []
    stack = list(tops)
    while stack:
        node = stack.pop()
        order.append(node)
        kids = children[node]
        assert kids
        stack += [child for child in kids if children[child]]
    order.reverse()
    return order


def _depths(parent: list[int], nodes: Iterable[int]) -> dict[int, int]:
    """How far below the top each of ``nodes`` is (the root 1), each container's
    chain of parents walked once in all."""
    depth: dict[int, int] = {_NONE: 0}
    for start in nodes:
        path: list[int] = []
        node = start
        while node not in depth:
            path.append(node)
            node = parent[node]
        steps = depth[node]
        for node in reversed(path):
            steps += 1
            depth[node] = steps
    return depth


def _prune(forest: _Forest, root: int) -> None:
    """Step 3: dummies without children go; a dummy's children take its place,
    except at the top level when there would be more than one of them.

    Only a container with a dummy child changes, and a dummy's own children are
    settled before its parent's: the parents of dummies are taken deepest
    first (after which no container but the root has a dummy child)."""
    facts, parent, children = forest.facts, forest.parent, forest.children
    parents = {parent[node] for node in range(root) if facts[node] is None} - {_NONE}
    depth = _depths(parent, parents)
    for container in sorted(parents, key=depth.__getitem__, reverse=True):
        kids = children[container]
        assert kids is not None
        kept: list[int] = []
        for child in kids:
            grand = children[child]
            if facts[child] is not None or (container == root and grand and len(grand) > 1):
                kept.append(child)
            elif grand:
                kept.extend(grand)  # promoted a level up
        for child in kept:
            parent[child] = container
        children[container] = dict.fromkeys(kept)


def _sort_top_level(forest: _Forest, root: int, keys: list[tuple[float, int]]) -> None:
    """Step 4: each dummy on the top level sorted by sent date and so given its
    first child (its children are messages, after step 3). The top level itself
    is put in order where its order counts: among the threads of one subject
    (step 5), and in the answer (step 6)."""
    children = forest.children
    for node in children[root] or ():
        kids = children[node]
        if forest.facts[node] is None and kids:
            ordered = sorted(kids, key=keys.__getitem__)
            children[node] = dict.fromkeys(ordered)
            keys[node] = keys[ordered[0]]


def _merge_by_subject(forest: _Forest, root: int, keys: list[tuple[float, int]]) -> None:
    """Step 5: top-level threads with the same base subject come together.

    Only threads of one subject touch each other here (and the order in which
    the top level gets them back does not count: step 6 sorts it), so the
    subjects are taken one by one, and a subject of one thread costs nothing
    more."""
    facts_of = forest.facts
    first: dict[str, int] = {}  # the first thread of each subject
    shared: dict[str, list[int]] = {}  # the threads of each subject that has several
    for node in forest.children[root] or ():
        facts = facts_of[node]
        # 5.B: the base subject of the message, or of a dummy's first child
        subject = forest.thread_subject(node)[0] if facts is None else facts.subject
        if subject and first.setdefault(subject, node) != node:
            shared.setdefault(subject, [first[subject]]).append(node)
    for nodes in shared.values():
        _merge_one_subject(forest, root, sorted(nodes, key=keys.__getitem__))


def _merge_one_subject(forest: _Forest, root: int, top: list[int]) -> None:
    """Step 5 for the top-level threads of one base subject, in the order of step 4."""
    is_dummy, parent = forest.is_dummy, forest.parent
    # merging neither moves nor changes the first child of a container on the top
    # level (children are added after it), so whether each is a reply holds throughout
    reply_of = {node: forest.thread_subject(node)[1] for node in top}
    held = top[0]  # 5.A, 5.C: a dummy wins over a message, and a message that is
    for node in top[1:]:  # not a reply or forward over one that is
        if not is_dummy(held) and (is_dummy(node) or (reply_of[held] and not reply_of[node])):
            held = node
    for node in top:  # 5.D
        if parent[node] != root or held == node:
            continue
        forest.release(root, node)
        if is_dummy(held) and is_dummy(node):
            for child in list(forest.children[node] or ()):  # both dummies: the children join
                forest.release(node, child)
                forest.adopt(held, child)
        elif is_dummy(held) or (reply_of[node] and not reply_of[held]):
            forest.adopt(held, node)  # a child of the dummy, or of the original message
        else:
            dummy = forest.add()  # both under a new dummy, which takes the table's place
            forest.release(root, held)
            forest.adopt(root, dummy)
            forest.adopt(dummy, held)
            forest.adopt(dummy, node)
            held = dummy


def _freeze(forest: _Forest, root: int, keys: list[tuple[float, int]]) -> list[ThreadNode]:
    """Step 6's sort of every set of siblings by sent date, the deepest first, and
    the tree as ``ThreadNode`` values, built bottom-up without recursion."""
    numbers, children = forest.numbers, forest.children
    # A leaf for every container (all C calls), those with children replaced below.
    nodes = list(map(tuple.__new__, repeat(ThreadNode), zip(numbers, repeat(()))))
    keys += [(float("inf"), 0)] * (len(numbers) - len(keys))  # the dummies of step 5
    for node in _children_first(forest, [node for node in children[root] or () if children[node]]):
        kids = children[node]
        assert kids
        ordered = sorted(kids, key=keys.__getitem__) if len(kids) > 1 else list(kids)
        if forest.facts[node] is None:  # a dummy sorts as its first child
            keys[node] = keys[ordered[0]]
        nodes[node] = _node((numbers[node], tuple([nodes[child] for child in ordered])))
    return [nodes[node] for node in sorted(children[root] or (), key=keys.__getitem__)]


def references_threads(messages: Iterable[ThreadInput]) -> list[ThreadNode]:
    """RFC 5256 §3 REFERENCES (``references_threads_of_facts``)."""
    return references_threads_of_facts([(m.number, thread_facts(m)) for m in messages])


def references_threads_of_facts(messages: Iterable[Numbered]) -> list[ThreadNode]:
    """RFC 5256 §3 REFERENCES: threads from References and In-Reply-To, top-level
    threads of the same base subject gathered, siblings by sent date."""
    ordered = sorted(messages, key=itemgetter(0))
    return references_threads_in_order([n for n, _ in ordered], [f for _, f in ordered])


def references_threads_in_order(
    numbers: Sequence[int], facts: Sequence[ThreadFacts]
) -> list[ThreadNode]:
    """``references_threads_of_facts`` of the messages numbered ``numbers`` (in
    ascending order), with ``facts[i]`` those of ``numbers[i]``: no pair made per
    message of a big mailbox."""
    if len(numbers) != len(facts):
        raise ValueError("references_threads_in_order: a number for each message")
    forest = _Forest(numbers, facts)
    _link_messages(forest)
    # step 2: the messages (and dummies) without a parent are the top level
    root = forest.add()
    parent = forest.parent
    forest.children[root] = dict.fromkeys(node for node in range(root) if parent[node] == _NONE)
    for node in forest.children[root] or ():
        parent[node] = root
    _prune(forest, root)
    # what each container sorts by: its sent date and number; a dummy its first
    # child's, set once its children are sorted (steps 4 and 6)
    keys = [
        (each.sent, number or 0) if each is not None else (float("inf"), 0)
        for number, each in zip(forest.numbers, forest.facts, strict=True)
    ]
    _sort_top_level(forest, root, keys)
    _merge_by_subject(forest, root, keys)
    return _freeze(forest, root, keys)
