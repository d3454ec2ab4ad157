"""Fixtures for the store tests: both formats, a factory, a corpus of tricky messages.

``async def`` tests run through the suite-wide hook in ``tests/conftest.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from postoffice.core.clock import FixedClock
from postoffice.store import StoreFactory, StoreLayout
from postoffice.store.index import MailIndex, NewMessage
from postoffice.store.layout import StoreFormat

DOMAIN = "example.test"
ALICE = f"alice@{DOMAIN}"


@pytest.fixture(params=["maildir", "mbox"])
def fmt(request: pytest.FixtureRequest) -> StoreFormat:
    value: StoreFormat = request.param
    return value


@pytest.fixture
def layout(fmt: StoreFormat, tmp_path: Path) -> StoreLayout:
    return StoreLayout(tmp_path / "data", fmt, DOMAIN, fsync=True)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(1_700_000_000.0)


@pytest.fixture
def factory(layout: StoreLayout, clock: FixedClock) -> StoreFactory:
    return StoreFactory(layout, clock=clock, lock_timeout=5.0)


def tree(root: Path) -> set[str]:
    """Every path under ``root``, relative, for before/after comparisons."""
    found: set[str] = set()
    for directory, dirs, files in os.walk(root):
        for name in [*files, *dirs]:
            found.add(str((Path(directory) / name).relative_to(root)))
    return found


Messages = list[bytes]

# Byte-transparency corpus: From lines, quoted From lines, CRLF and bare LF,
# no trailing newline, an empty body, 8-bit and NUL octets.
TRICKY: Messages = [
    b"Subject: plain\r\n\r\nHello\r\n",
    b"From someone Mon Jan  1 00:00:00 2024\nSubject: starts with From\n\nbody\n",
    b"Subject: inner\n\nFrom here on\n>From quoted\n>>From twice\n>>>From\nFrom \n",
    b"Subject: no final newline\n\nlast line",
    b"",
    b"\n",
    b"Subject: empty body\r\n\r\n",
    b"Subject: eight bit\n\n\xe9t\xe9 \xff\xfe\x00\x01 caf\xc3\xa9\n",
    b"Subject: mixed\r\n\r\nCRLF\r\nLF\nCR alone\rFrom mid-line From \r\nFrom crlf\r\n",
    b">From at start\n",
    b"From ",
    b"Subject: trailing blank lines\n\nx\n\n\n",
]


def message(n: int, size: int = 300) -> bytes:
    """A distinctive test message of about ``size`` octets."""
    head = f"Subject: message {n}\r\nMessage-ID: <{n}@test>\r\n\r\n".encode()
    line = f"line of message {n:05d} ".encode() * 4 + b"\r\n"
    body = (line * (size // len(line) + 1))[: max(size - len(head), 0)]
    return head + body


def index_row(n: int) -> NewMessage:
    """A message row for index-level tests (no file behind it)."""
    return NewMessage(flags=0, keywords="", internal_date=float(n), size=n, locator=f"m{n}")


def filled_index(path: Path, count: int) -> tuple[MailIndex, int]:
    """A new index at ``path`` whose INBOX (UIDVALIDITY 7) holds ``count`` rows:
    UIDs and MODSEQs 1..count. Returns the index and the INBOX's id."""
    index = MailIndex.open(path, durable=False)
    with index.transaction():
        box = index.create_mailbox("INBOX", 7)
        for n in range(count):
            index.add_message(box.id, index_row(n))
    return index, box.id
