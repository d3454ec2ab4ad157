"""The kept ENVELOPE, BODYSTRUCTURE and BODY answers of FETCH (``ContentLoader.memo``)
are bounded by the memory they take, not only by the octets of the values: a
BODY of a plain message is some 60 octets, while its key and entry cost several
times that, so a bound on the values alone lets the memory grow far past it."""

from __future__ import annotations

import tracemalloc

from postoffice.server.imap_fetch import ContentLoader

BODY = b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 5 1)'


def test_kept_answers_take_about_their_bound_in_memory() -> None:
    loader = ContentLoader()
    loader.rendered_capacity = 1024 * 1024
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for uid in range(1, 60_001):  # many more than fit: the oldest go
            memo = loader.memo("alice@example.test", "INBOX", 1_700_000_000, uid, False)
            assert memo("BODY", lambda: bytes(bytearray(BODY))) == BODY
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert used <= 1.5 * loader.rendered_capacity, f"{used} octets for a bound of 1 MiB"
    memo = loader.memo("alice@example.test", "INBOX", 1_700_000_000, 60_000, False)
    assert memo("BODY", lambda: b"not computed again") == BODY  # the newest is kept
