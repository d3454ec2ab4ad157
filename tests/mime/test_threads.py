"""The THREAD algorithms of RFC 5256 §3 (``mime.threads``): ORDEREDSUBJECT and
REFERENCES, on made-up messages, and the every-message-once property."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postoffice.mime.base_subject import subject_of_thread
from postoffice.mime.threads import (
    ThreadInput,
    ThreadNode,
    message_ids,
    ordered_subject_threads,
    references_threads,
    references_threads_in_order,
    thread_facts,
)
from postoffice.protocol.imap.responses import thread

DAY = datetime(2024, 3, 1, tzinfo=UTC)


def at(hours: float) -> datetime:
    return DAY + timedelta(hours=hours)


def msg(
    number: int,
    hours: float,
    subject: str = "",
    message_id: str = "",
    references: str = "",
    in_reply_to: str = "",
) -> ThreadInput:
    return ThreadInput(number, at(hours), subject, message_id, references, in_reply_to)


def wire(threads: list[ThreadNode]) -> bytes:
    """The threads as ``* THREAD`` shows them (compact to compare, and it checks the
    response grammar's shapes at the same time)."""
    return thread(threads).removeprefix(b"* THREAD").strip()


# -- message ids and subjects -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ids"),
    [
        ("<a@b>", ["<a@b>"]),
        ("  <a@b> (comment) <c@d>\t<e@f>", ["<a@b>", "<c@d>", "<e@f>"]),
        ("<a@b><c@d>", ["<a@b>", "<c@d>"]),  # no space between them
        ("<a\r\n @b>", ["<a@b>"]),  # folded inside (obsolete), white space dropped
        ("<nothing-at-sign> <@b> <a@> <> a@b", []),
        ("<A@B> <a@b>", ["<A@B>", "<a@b>"]),  # case is kept: comparison is case-sensitive
        ("", []),
    ],
)
def test_message_ids(value: str, ids: list[str]) -> None:
    assert message_ids(value) == ids


@pytest.mark.parametrize(
    ("subject", "base", "reply"),
    [
        ("hello", "hello", False),
        ("Re: hello", "hello", True),
        ("Fwd: hello", "hello", True),
        ("hello (fwd)", "hello", True),
        ("[fwd: hello]", "hello", True),
        ("[list] hello", "hello", False),  # a blob alone is not a reply
        ("  hello  ", "hello", False),  # nor is white space
        ("[list] Re: hello", "hello", True),
    ],
)
def test_subject_of_thread(subject: str, base: str, reply: bool) -> None:
    """RFC 5256 §3 REFERENCES step 5.C: a reply or forward is a subject that had a
    subj-refwd, a "(fwd)" trailer or a "[fwd: ...]" wrapper taken off."""
    assert subject_of_thread(subject) == (base, reply)


# -- ORDEREDSUBJECT ---------------------------------------------------------------------------


def test_ordered_subject_groups_sorts_and_flattens() -> None:
    """RFC 5256 §3 ORDEREDSUBJECT: one thread per base subject, by sent date inside;
    threads by the sent date of their first message; later messages are children
    of the first, siblings of each other, even when they reply to each other."""
    messages = [
        msg(1, 5, "Re: apple", "<1@x>"),
        msg(2, 1, "banana"),
        msg(3, 3, "apple", "<3@x>"),
        msg(4, 2, "[list] Banana"),  # base subjects compare case-insensitively
        msg(5, 4, "cherry"),
        msg(6, 9, "RE: APPLE", references="<1@x>"),
    ]
    assert wire(ordered_subject_threads(messages)) == b"(2 4)(3 (1)(6))(5)"


def test_ordered_subject_ties_go_by_sequence_number() -> None:
    """RFC 5256 §2.2: the same sent date: the lower sequence number first, for the
    messages of a thread and for the threads."""
    messages = [msg(7, 1, "b"), msg(3, 1, "a"), msg(5, 1, "a"), msg(4, 1, "a"), msg(2, 1, "b")]
    assert wire(ordered_subject_threads(messages)) == b"(2 7)(3 (4)(5))"


def test_subjects_compare_by_unicode_casemap() -> None:
    """RFC 5051 (as SORT, and as Dovecot threads, tests/interop/test_dovecot_diff.py):
    "Straße" and "STRASSE" are two subjects; "Émile" and "émile" are one."""
    messages = [
        msg(1, 1, "Straße", "<1@x>"),
        msg(2, 2, "Re: STRASSE", "<2@x>"),
        msg(3, 3, "Émile", "<3@x>"),
        msg(4, 4, "Re: émile", "<4@x>"),
    ]
    assert wire(ordered_subject_threads(messages)) == b"(1)(2)(3 4)"
    assert wire(references_threads(messages)) == b"(1)(2)(3 4)"


def test_ordered_subject_empty_subjects_thread_together() -> None:
    messages = [msg(1, 1), msg(2, 2, "Re:"), msg(3, 0, "x")]
    assert wire(ordered_subject_threads(messages)) == b"(3)(1 2)"


# -- REFERENCES: links --------------------------------------------------------------------


def test_references_chain_and_in_reply_to() -> None:
    """Step 1: References links each message to the one before; without References
    the first valid In-Reply-To id is the parent."""
    messages = [
        msg(1, 1, "one", "<a@x>"),
        msg(2, 2, "two", "<b@x>", "<a@x>"),
        msg(3, 3, "three", "<c@x>", "<a@x> <b@x>"),
        msg(4, 4, "four", "<d@x>", in_reply_to="junk <b@x> <c@x>"),
        msg(5, 5, "five", "<e@x>", references="no ids", in_reply_to="<c@x>"),
    ]
    assert wire(references_threads(messages)) == b"(1 2 (3 5)(4))"


def test_last_reference_wins_over_a_guessed_parent() -> None:
    """Step 1.B: a message's own last reference replaces a parent another message's
    References gave it (step 1.A, which never changes an existing parent)."""
    messages = [
        # message 1's References says b follows a; b itself says it follows c
        msg(1, 1, "one", "<x@x>", "<a@x> <b@x>"),
        msg(2, 2, "two", "<a@x>"),
        msg(3, 3, "three", "<b@x>", "<c@x>"),
        msg(4, 4, "four", "<c@x>"),
    ]
    assert wire(references_threads(messages)) == b"(2)(4 3 1)"


def test_no_references_means_no_parent() -> None:
    """Step 1.B: with no references a message has no parent, whatever another
    message's References said."""
    messages = [
        msg(1, 1, "one", "<x@x>", "<a@x> <b@x>"),
        msg(2, 2, "two", "<a@x>"),
        msg(3, 3, "three", "<b@x>"),
    ]
    assert wire(references_threads(messages)) == b"(2)(3 1)"


def test_reference_loop_is_broken() -> None:
    """Step 1: no link that would make a loop (A refers to B, B to A)."""
    messages = [msg(1, 1, "a", "<a@x>", "<b@x>"), msg(2, 2, "b", "<b@x>", "<a@x>")]
    assert wire(references_threads(messages)) == b"(2 1)"
    longer = [
        msg(1, 1, "a", "<a@x>", "<c@x>"),
        msg(2, 2, "b", "<b@x>", "<a@x>"),
        msg(3, 3, "c", "<c@x>", "<b@x>"),
    ]
    assert wire(references_threads(longer)) == b"(3 1 2)"


def test_message_that_references_itself() -> None:
    messages = [
        msg(1, 1, "a", "<a@x>", "<a@x>"),
        msg(2, 2, "b", "<b@x>", "<a@x> <b@x>"),  # itself last, after its parent
        msg(3, 3, "c", "<c@x>", in_reply_to="<c@x>"),
    ]
    assert wire(references_threads(messages)) == b"(1)(2)(3)"


def test_duplicate_message_ids_belong_to_the_first() -> None:
    """Step 1.A: only the lowest numbered message keeps a duplicated Message-ID."""
    messages = [
        msg(1, 3, "first", "<a@x>"),
        msg(2, 1, "second", "<a@x>"),
        msg(3, 2, "reply", "<r@x>", "<a@x>"),
        msg(4, 4, "no id"),
        msg(5, 5, "also no id", "not an id"),
    ]
    assert wire(references_threads(messages)) == b"(2)(1 3)(4)(5)"


def test_references_compare_case_sensitively() -> None:
    messages = [msg(1, 1, "a", "<A@x>"), msg(2, 2, "b", "<b@x>", "<a@x>")]
    assert wire(references_threads(messages)) == b"(1)(2)"


# -- REFERENCES: dummies and pruning ---------------------------------------------------------


def test_dummies_for_missing_parents() -> None:
    """Step 1.A makes dummies; step 3 prunes them: a dummy's only child takes its
    place; at the top level a dummy with several children stays, shown as a
    thread-list of its children's threads; below it, they take its place."""
    siblings = [msg(1, 1, "x", "<1@x>", "<gone@x>"), msg(2, 2, "y", "<2@x>", "<gone@x>")]
    assert wire(references_threads(siblings)) == b"((1)(2))"
    alone = [msg(1, 1, "x", "<1@x>", "<gone@x>")]
    assert wire(references_threads(alone)) == b"(1)"
    middle_missing = [
        msg(1, 1, "x", "<a@x>"),
        msg(2, 2, "y", "<c@x>", "<a@x> <b@x>"),
        msg(3, 3, "z", "<d@x>", "<a@x> <b@x>"),
        msg(4, 4, "w", "<e@x>", "<a@x> <other@x> <b@x>"),
    ]
    # b is a dummy under a with three children: they move up under a
    assert wire(references_threads(middle_missing)) == b"(1 (2)(3)(4))"
    two_missing = [msg(1, 1, "x", "<1@x>", "<g1@x> <g2@x>"), msg(2, 2, "y", "<2@x>", "<g1@x>")]
    # g2 (one child) is pruned into g1, which keeps two children at the top
    assert wire(references_threads(two_missing)) == b"((1)(2))"


def test_dummy_sorts_by_its_first_child() -> None:
    """Steps 4 and 6: a dummy sorts by the sent date of its first child."""
    messages = [
        msg(1, 5, "x", "<1@x>"),
        msg(2, 9, "y", "<2@x>", "<gone@x>"),
        msg(3, 2, "z", "<3@x>", "<gone@x>"),
        msg(4, 7, "w", "<4@x>"),
    ]
    assert wire(references_threads(messages)) == b"((3)(2))(1)(4)"


# -- REFERENCES: subjects (step 5) -----------------------------------------------------------


def test_same_subject_roots_under_a_new_dummy() -> None:
    """Step 5.D: two top-level messages of one base subject, neither a reply:
    both under a new dummy."""
    messages = [msg(1, 1, "hello", "<1@x>"), msg(2, 2, "[list] Hello", "<2@x>")]
    assert wire(references_threads(messages)) == b"((1)(2))"


def test_reply_joins_the_original_subject() -> None:
    """Step 5.C/D: a reply (Re:) goes under the message that is not one, even when
    it was sent first; a message with an empty base subject is left alone."""
    messages = [
        msg(1, 1, "Re: hello", "<1@x>"),
        msg(2, 2, "hello", "<2@x>"),
        msg(3, 3, "hello (fwd)", "<3@x>"),
        msg(4, 0, "Re:", "<4@x>"),
        msg(5, 4, "", "<5@x>"),
    ]
    assert wire(references_threads(messages)) == b"(4)(2 (1)(3))(5)"


def test_two_replies_under_a_dummy() -> None:
    messages = [msg(1, 1, "Re: hello", "<1@x>"), msg(2, 2, "Re: hello", "<2@x>")]
    assert wire(references_threads(messages)) == b"((1)(2))"


def test_dummy_thread_gathers_the_same_subject() -> None:
    """Step 5: a dummy thread wins the subject table; a message of its subject
    joins its children; two dummy threads merge their children."""
    messages = [
        msg(1, 1, "Re: topic", "<1@x>", "<gone@x>"),
        msg(2, 3, "Re: topic", "<2@x>", "<gone@x>"),
        msg(3, 2, "topic", "<3@x>"),
        msg(4, 4, "Re: topic", "<4@x>", "<lost@x>"),
        msg(5, 5, "Re: topic", "<5@x>", "<lost@x>"),
        msg(6, 0, "other", "<6@x>"),
    ]
    assert wire(references_threads(messages)) == b"(6)((1)(3)(2)(4)(5))"


def test_merged_thread_keeps_its_replies() -> None:
    messages = [
        msg(1, 1, "plan", "<1@x>"),
        msg(2, 2, "Re: plan", "<2@x>", "<1@x>"),
        msg(3, 3, "Re: plan", "<3@x>"),  # no references: joins by subject
    ]
    assert wire(references_threads(messages)) == b"(1 (2)(3))"


# -- REFERENCES: order ----------------------------------------------------------------------


def test_siblings_by_sent_date_then_number() -> None:
    """Step 6 with RFC 5256 §2.2: siblings by sent date, ties by sequence number,
    at every depth."""
    messages = [
        msg(1, 0, "root", "<r@x>"),
        msg(2, 5, "a", "<a@x>", "<r@x>"),
        msg(3, 1, "b", "<b@x>", "<r@x>"),
        msg(4, 5, "c", "<c@x>", "<r@x>"),
        msg(5, 9, "d", "<d@x>", "<r@x> <b@x>"),
        msg(6, 8, "e", "<e@x>", "<r@x> <b@x>"),
        msg(7, 8, "f", "<f@x>", "<r@x> <b@x>"),
    ]
    assert wire(references_threads(messages)) == b"(1 (3 (6)(7)(5))(2)(4))"


def test_dates_compare_as_instants() -> None:
    plus_two = datetime(2024, 3, 1, 3, 0, tzinfo=UTC).astimezone(
        __import__("datetime").timezone(timedelta(hours=2))
    )
    messages = [
        ThreadInput(1, plus_two, "a", "<1@x>"),  # 03:00 UTC, written as 05:00+02:00
        ThreadInput(2, at(4), "b", "<2@x>"),
    ]
    assert wire(references_threads(messages)) == b"(1)(2)"
    assert wire(ordered_subject_threads(messages)) == b"(1)(2)"


def test_long_reply_chain_has_no_recursion_limit() -> None:
    count = 3000
    messages = [
        msg(n, n, f"step {n}", f"<{n}@x>", " ".join(f"<{k}@x>" for k in range(max(1, n - 5), n)))
        for n in range(1, count + 1)
    ]
    assert (
        wire(references_threads(messages))
        == b"(" + b" ".join(b"%d" % n for n in range(1, count + 1)) + b")"
    )


def test_missing_parents_deep_in_a_long_chain_go() -> None:
    """Each reply names its parent, then a message that is not there: a dummy
    between every two messages of a 20,000-deep chain, each with one child, so
    each goes and its child takes its place (step 3), every level of the chain
    looked at a bounded number of times."""
    count = 20_000
    messages = [msg(1, 1, "start", "<1@x>")] + [
        msg(n, n, f"step {n}", f"<{n}@x>", f"<{n - 1}@x> <gone{n}@x>") for n in range(2, count + 1)
    ]
    assert (
        wire(references_threads(messages))
        == b"(" + b" ".join(b"%d" % n for n in range(1, count + 1)) + b")"
    )


def test_a_top_dummy_of_one_child_gives_way_and_of_two_stays() -> None:
    """Step 3 at the top level: a missing parent with one reply is replaced by it;
    one with two replies stays, as a dummy over both."""
    messages = [
        msg(1, 1, "a", "<1@x>", "<lost@x>"),
        msg(2, 2, "b", "<2@x>", "<other@x>"),
        msg(3, 3, "c", "<3@x>", "<other@x>"),
    ]
    assert wire(references_threads(messages)) == b"(1)((2)(3))"


# -- properties -----------------------------------------------------------------------------


def _numbers(threads: Iterable[ThreadNode]) -> list[int]:
    found: list[int] = []
    stack = list(threads)
    while stack:
        node = stack.pop()
        if node.number is not None:
            found.append(node.number)
        stack.extend(node.children)
    return found


def _dummies_only_on_top(threads: list[ThreadNode]) -> bool:
    for top in threads:
        if top.number is None and len(top.children) < 2:
            return False
        stack = list(top.children)
        while stack:
            node = stack.pop()
            if node.number is None:
                return False
            stack.extend(node.children)
    return True


_IDS = st.sampled_from(["<a@x>", "<b@x>", "<c@x>", "<d@x>", "<e@x>", "bad", ""])
_SUBJECTS = st.sampled_from(["", "x", "Re: x", "x (fwd)", "y", "[l] Y", "Fwd: y", "Re:"])


@st.composite
def _mailboxes(draw: st.DrawFn) -> list[ThreadInput]:
    count = draw(st.integers(0, 12))
    numbers = sorted(draw(st.sets(st.integers(1, 40), min_size=count, max_size=count)))
    return [
        ThreadInput(
            number,
            at(draw(st.integers(0, 4))),
            draw(_SUBJECTS),
            draw(_IDS),
            " ".join(draw(st.lists(_IDS, max_size=4))),
            draw(_IDS),
        )
        for number in numbers
    ]


@settings(max_examples=400, deadline=None)
@given(_mailboxes())
def test_every_message_appears_exactly_once(messages: list[ThreadInput]) -> None:
    wanted = sorted(message.number for message in messages)
    for algorithm in (ordered_subject_threads, references_threads):
        threads = algorithm(messages)
        assert sorted(_numbers(threads)) == wanted
        assert _dummies_only_on_top(threads)
        assert algorithm(list(reversed(messages))) == threads  # the input order is no input
    ordered = ordered_subject_threads(messages)
    assert all(not child.children for top in ordered for child in top.children)
    # the same from lists in number order, as a server passes a mailbox's
    numbers = [message.number for message in messages]
    facts = [thread_facts(message) for message in messages]
    assert references_threads_in_order(numbers, facts) == references_threads(messages)


def test_in_order_needs_a_number_for_each_message() -> None:
    with pytest.raises(ValueError, match="a number for each message"):
        references_threads_in_order([1, 2], [thread_facts(msg(1, 1, "a", "<1@x>"))])
