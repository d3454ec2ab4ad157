"""Fixtures for the IMAP transcript tests: one world per test, on both store formats."""

from __future__ import annotations

from pathlib import Path

import pytest

from postoffice.store.layout import StoreFormat

from .imap_harness import ImapWorld


@pytest.fixture(params=["maildir", "mbox"])
def fmt(request: pytest.FixtureRequest) -> StoreFormat:
    value: StoreFormat = request.param
    return value


@pytest.fixture
def world(fmt: StoreFormat, tmp_path: Path) -> ImapWorld:
    return ImapWorld(tmp_path, fmt)
