"""The interop fixture: one real ``postoffice serve`` per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.interop.mailserver import Server, start_server, stop_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("interop") / "var")
    try:
        yield running
    finally:
        code = stop_server(running.process)
    assert code == 0, f"postoffice serve exited with status {code}"
