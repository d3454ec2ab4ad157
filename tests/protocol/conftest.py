"""Fixtures of the protocol tests: the IMAP connection transcript session, whole and bytewise."""

from __future__ import annotations

import pytest

from tests.protocol.imap_transcripts import MODES, Session


@pytest.fixture(params=MODES)
def session(request: pytest.FixtureRequest) -> Session:
    return Session(mode=request.param)
