"""ESORT (RFC 5267 §3): SORT and UID SORT with RETURN options, answered with ESEARCH
(RFC 4731), over a real session on Maildir and mbox; the mailbox of ``test_sort``.

In that mailbox SORT (DATE) gives 4 3 1 2, SORT (ARRIVAL) 2 3 1 4 and UID SORT
(SIZE) 3 5 4 2.
"""

from __future__ import annotations

from .imap_harness import ImapWorld, capabilities_around_login
from .test_sort import sorting


async def test_esort_is_announced(world: ImapWorld) -> None:
    before, after = await capabilities_around_login(world)
    assert "ESORT" not in before
    assert "ESORT" in after


async def test_return_options_in_sort_order(world: ImapWorld) -> None:
    """RFC 5267 §3.1: MIN and MAX are the first and last in sort order, ALL keeps
    the sort order, COUNT as ESEARCH's; ``RETURN ()`` means ALL; UID SORT marks
    its ESEARCH with UID; nothing found leaves MIN, MAX and ALL out."""
    async with world.connect() as client:
        await sorting(world, client)
        await client.converse("""
            C: e1 SORT RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 ALL
            S: * ESEARCH (TAG "e1") MIN 4 MAX 2 ALL 4,3,1:2 COUNT 4
            S: e1 OK SORT completed
            C: e2 SORT RETURN () (ARRIVAL) UTF-8 ALL
            S: * ESEARCH (TAG "e2") ALL 2:3,1,4
            S: e2 OK SORT completed
            C: e3 UID SORT RETURN (COUNT ALL) (SIZE) UTF-8 ALL
            S: * ESEARCH (TAG "e3") UID ALL 3,5,4,2 COUNT 4
            S: e3 OK UID SORT completed
            C: e4 sort return (min max) (reverse date) utf-8 all
            S: * ESEARCH (TAG "e4") MIN 2 MAX 4
            S: e4 OK SORT completed
            C: e5 SORT RETURN (MIN MAX ALL COUNT) (DATE) UTF-8 SUBJECT nothing-like-this
            S: * ESEARCH (TAG "e5") COUNT 0
            S: e5 OK SORT completed
            C: e6 SORT RETURN (MAX) (DATE) UTF-8 SUBJECT banana
            S: * ESEARCH (TAG "e6") MAX 1
            S: e6 OK SORT completed
            C: e7 SORT (DATE) UTF-8 ALL
            S: * SORT 4 3 1 2
            S: e7 OK SORT completed
        """)


async def test_modseq_and_refusals(world: ImapWorld) -> None:
    """RFC 7162 §3.1.5: with a MODSEQ key the ESEARCH answer carries the highest
    MODSEQ of the messages it returns: all four for COUNT (the expunged message's
    change made HIGHESTMODSEQ 6, the others' highest is 5), for MAX alone the one
    it names. Unknown RETURN options (SAVE and PARTIAL are not offered) are BAD."""
    async with world.connect() as client:
        await sorting(world, client)
        await client.converse("""
            C: m1 SORT RETURN (COUNT) (DATE) UTF-8 MODSEQ 1
            S: * ESEARCH (TAG "m1") COUNT 4 MODSEQ 5
            S: * OK [HIGHESTMODSEQ 6] *
            S: m1 OK SORT completed
            C: m2 SORT RETURN (MAX) (REVERSE ARRIVAL) UTF-8 MODSEQ 1
            S: * ESEARCH (TAG "m2") MAX 2 MODSEQ 3
            S: m2 OK SORT completed
            C: b1 SORT RETURN (SAVE) (DATE) UTF-8 ALL
            S: b1 BAD *
            C: b2 SORT RETURN (COLOR) (DATE) UTF-8 ALL
            S: b2 BAD *
            C: b3 SORT RETURN (PARTIAL 1:5) (DATE) UTF-8 ALL
            S: b3 BAD *
            C: b4 SORT RETURN (MIN) UTF-8 ALL
            S: b4 BAD *
            C: b5 SORT RETURN MIN (DATE) UTF-8 ALL
            S: b5 BAD *
        """)
