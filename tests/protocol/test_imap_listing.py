"""LIST and LSUB patterns (RFC 9051 §6.3.9; RFC 3501 §6.3.8; RFC 5258 §3.5 CHILDINFO)."""

from __future__ import annotations

import time
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postoffice.protocol.imap.listing import DELIMITER, MAX_PATTERN, compile_pattern

NAMES = [
    "INBOX",
    "INBOX/Sub",
    "blurdybloop",
    "foo",
    "foo/bar",
    "foo/bar/baz",
    "~/Mail/foo",
    "~/Mail/meetings",
    "a.b",
    "a*b",
    "ab",
    "Sent",
    "Sent/2024",
    "INBOXES",
    "Grün",
]


def matching(reference: str, pattern: str) -> list[str]:
    compiled = compile_pattern(reference, pattern)
    return [name for name in NAMES if compiled.matches(name)]


@pytest.mark.parametrize(
    ("reference", "pattern", "names"),
    [
        ("", "*", NAMES),  # RFC 9051 §6.3.9: * matches the delimiter too
        ("", "%", ["INBOX", "blurdybloop", "foo", "a.b", "a*b", "ab", "Sent", "INBOXES", "Grün"]),
        ("", "foo/%", ["foo/bar"]),
        ("", "foo/*", ["foo/bar", "foo/bar/baz"]),
        ("", "%/%", ["INBOX/Sub", "foo/bar", "Sent/2024"]),
        ("foo/", "%", ["foo/bar"]),  # the reference is prefixed to the pattern
        ("foo", "/%", ["foo/bar"]),
        ("foo/", "/%", ["foo/bar"]),  # no doubled delimiter
        ("~/Mail/", "%", ["~/Mail/foo", "~/Mail/meetings"]),  # RFC 9051 §6.3.9 A202
        ("", "a.b", ["a.b"]),  # "." is not a wildcard
        ("", "a*b", ["a.b", "a*b", "ab"]),
        ("", "f%o", ["foo"]),
        ("", "f%", ["foo"]),
        ("", "*bar*", ["foo/bar", "foo/bar/baz"]),
        ("", "%%%", ["INBOX", "blurdybloop", "foo", "a.b", "a*b", "ab", "Sent", "INBOXES", "Grün"]),
        ("", "*%", NAMES),
        ("", "", []),
        ("", "Gr%n", ["Grün"]),
        ("", "nothing", []),
    ],
)
def test_wildcards(reference: str, pattern: str, names: list[str]) -> None:
    assert matching(reference, pattern) == names


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("inbox", "INBOX", True),  # RFC 9051 §5.1: INBOX is case-insensitive
        ("INBOX", "inbox", True),
        ("Inbox/%", "INBOX/Sub", True),
        ("INBOX/%", "inbox/Sub", True),
        ("INBOX/sub", "INBOX/Sub", False),  # only INBOX itself
        ("inboxes", "INBOXES", False),  # not a name that only starts with it
        ("foo", "FOO", False),  # other names are case-sensitive here
    ],
)
def test_inbox_is_case_insensitive_only_at_the_top(pattern: str, name: str, matches: bool) -> None:
    assert compile_pattern("", pattern).matches(name) is matches


def test_text_is_reference_then_pattern() -> None:
    assert compile_pattern("foo/", "%").text == "foo/%"
    assert compile_pattern("foo/", "/%").text == "foo/%"
    assert compile_pattern("#news.", "comp.mail.*").text == "#news.comp.mail.*"
    assert len(compile_pattern("", "x" * (MAX_PATTERN + 50)).text) == MAX_PATTERN


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("%", "foo/bar/baz", True),  # foo matches
        ("%", "foo", False),  # no ancestor at all
        ("foo/%", "foo/bar/baz", True),  # foo/bar matches
        ("foo/%", "foo/bar", False),  # foo is an ancestor but does not match foo/%
        ("*", "a/b", True),
        ("x/%", "foo/bar/baz", False),
    ],
)
def test_matches_parent_of(pattern: str, name: str, expected: bool) -> None:
    # RFC 5258 §3.5 CHILDINFO, RFC 3501 §6.3.9 \Noselect parents in LSUB
    assert compile_pattern("", pattern).matches_parent_of(name) is expected


@pytest.mark.parametrize(
    "pattern",
    ["%" * 64 + "x", "*%" * 32 + "x", "a*" * 40 + "x", "*a" * 40 + "x", "%a" * 40 + "x"],
)
def test_hostile_patterns_cost_linear_time(pattern: str) -> None:
    # A backtracking matcher takes minutes here; the names are as long as a name may be.
    compiled = compile_pattern("", pattern)
    started = time.perf_counter()
    for name in ("a" * 1000, "a/" * 500, "a" * 999 + "y"):
        assert compiled.matches(name) is False
    assert time.perf_counter() - started < 1.0


@cache
def reference_match(pattern: str, name: str) -> bool:
    """The meaning of the wildcards, spelled out recursively (small inputs only)."""
    if not pattern:
        return not name
    head, rest = pattern[0], pattern[1:]
    if head == "*":
        return any(reference_match(rest, name[i:]) for i in range(len(name) + 1))
    if head == "%":
        stop = name.find(DELIMITER)
        limit = len(name) if stop < 0 else stop
        return any(reference_match(rest, name[i:]) for i in range(limit + 1))
    return bool(name) and name[0] == head and reference_match(rest, name[1:])


@settings(max_examples=500, deadline=None)
@given(
    pattern=st.text(alphabet="ab/*%", max_size=10),
    name=st.text(alphabet="ab/", max_size=10),
)
def test_matching_agrees_with_the_definition(pattern: str, name: str) -> None:
    assert compile_pattern("", pattern).matches(name) is reference_match(pattern, name)
