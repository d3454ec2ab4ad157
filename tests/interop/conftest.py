"""The interop fixture: one real ``postoffice serve`` per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.interop.mailserver import Server, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("interop") / "var")
    try:
        yield running
    finally:
        running.stop()
    assert running.process is not None
    code = running.process.returncode
    assert code == 0, f"postoffice serve exited with status {code}"
