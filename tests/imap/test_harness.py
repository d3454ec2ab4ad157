"""The transcript harness itself: patterns, transcript parsing, and that a wrong
expectation fails (a harness that always passed would prove nothing)."""

from __future__ import annotations

import pytest

from .imap_harness import (
    ImapWorld,
    TranscriptMismatch,
    c_literal,
    line_matches,
    parse_transcript,
    s_literal,
)
from .messages import SMALL


@pytest.mark.parametrize(
    ("pattern", "line", "matches"),
    [
        ("* OK [UIDVALIDITY *] *", "* OK [UIDVALIDITY 17] UIDs valid.", True),
        ("* OK [UIDVALIDITY *] *", "* OK [UIDNEXT 17] Predicted.", False),
        ("* 3 EXISTS", "* 3 EXISTS", True),
        ("* 3 EXISTS", "* 4 EXISTS", False),
        ("* 3 EXISTS", "x 3 EXISTS", False),  # the leading * is literal
        (r"* OK [PERMANENTFLAGS (\Seen \*)] *", r"* OK [PERMANENTFLAGS (\Seen \*)] ok", True),
        (r"* OK [PERMANENTFLAGS (\Seen \*)] *", r"* OK [PERMANENTFLAGS (\Seen x)] ok", False),
        ("a1 OK [CAPABILITY *] Logged in", "a1 OK [CAPABILITY IMAP4rev2 ID] Logged in", True),
        ("+", "+ ", True),  # trailing spaces aside
        ("a1 OK", "a1 OK done", False),  # no implicit wildcard at the end
        ("*", "* anything", True),
    ],
)
def test_line_matches(pattern: str, line: str, matches: bool) -> None:
    assert line_matches(pattern, line) is matches


def test_parse_transcript_keeps_content_spacing() -> None:
    entries = parse_transcript("""
        C: a1 APPEND INBOX {5}
        S: + Ready
        C:  (\\Seen) x
        C:
        S: a1 OK
    """)
    assert entries == [
        ("C", "a1 APPEND INBOX {5}"),
        ("S", "+ Ready"),
        ("C", " (\\Seen) x"),
        ("C", ""),
        ("S", "a1 OK"),
    ]
    with pytest.raises(ValueError, match="C: or S:"):
        parse_transcript("X: nothing")


def test_literal_lines() -> None:
    assert s_literal(b"a\r\nb\r\n", ")") == "S: a\nS: b\nS: )"
    assert c_literal(b"x", " {3+}") == "C: x {3+}"


async def test_a_wrong_expectation_fails(world: ImapWorld) -> None:
    async with world.connect() as client:
        with pytest.raises(TranscriptMismatch, match="a1 OK NOOP completed"):
            await client.converse("""
                C: a1 NOOP
                S: a1 BAD nope
            """)
        with pytest.raises(TranscriptMismatch):  # a line too few
            await client.converse("""
                C: a2 NOOP
                S: * 1 EXISTS
                S: a2 OK NOOP completed
            """)
        with pytest.raises(TranscriptMismatch):  # a line too many
            await client.converse("""
                C: a3 CAPABILITY
                S: a3 OK CAPABILITY completed
            """)


async def test_literals_both_ways(world: ImapWorld) -> None:
    """A synchronising literal waits for ``+`` by itself when the next line is a
    ``C:`` line; a literal in a response reads as lines."""
    async with world.logged_in() as client:
        await client.converse(f"""
            C: a1 APPEND INBOX {{{len(SMALL)}}}
            {c_literal(SMALL)}
            S: a1 OK [APPENDUID * 1] APPEND completed
            C: a2 EXAMINE INBOX
            S: * 1 EXISTS
            S: * 0 RECENT
            S: * FLAGS *
            S: * OK [PERMANENTFLAGS ()] *
            S: * OK [UNSEEN 1] *
            S: * OK [UIDVALIDITY *] *
            S: * OK [UIDNEXT 2] *
            S: a2 OK [READ-ONLY] EXAMINE completed
            C: a3 FETCH 1 BODY[]
            S: * 1 FETCH (BODY[] {{{len(SMALL)}}}
            {s_literal(SMALL, ")")}
            S: a3 OK FETCH completed
        """)
        with pytest.raises(TranscriptMismatch):
            await client.converse(f"""
                C: a4 FETCH 1 BODY[]
                S: * 1 FETCH (BODY[] {{{len(SMALL)}}}
                {s_literal(SMALL.replace(b"noon", b"nine"), ")")}
                S: a4 OK FETCH completed
            """)


async def test_silence(world: ImapWorld) -> None:
    async with world.connect() as client:
        await client.converse("S: (none)")
        await client.send_raw(b"a1 NOOP\r\n")
        with pytest.raises(TranscriptMismatch, match="expected silence"):
            await client.silence()
