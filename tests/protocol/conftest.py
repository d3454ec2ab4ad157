"""Fixtures of the protocol tests: the feeding mode of a transcript (whole or octet by
octet), and the IMAP connection transcript session in both modes."""

from __future__ import annotations

import pytest

from tests.protocol.imap_transcripts import MODES, Session


@pytest.fixture(params=MODES)
def session(request: pytest.FixtureRequest) -> Session:
    return Session(mode=request.param)


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    """Feed every client write whole, or octet by octet."""
    return str(request.param)
