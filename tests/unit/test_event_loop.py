"""``server.event_loop``: which loop ``[server] event_loop`` starts, and the error when
uvloop is asked for but cannot be imported."""

from __future__ import annotations

import asyncio
import sys

import pytest
import uvloop

from postoffice.core.errors import ConfigError
from postoffice.server.event_loop import loop_factory, loop_name, run_served


async def running_loop() -> type[asyncio.AbstractEventLoop]:
    return type(asyncio.get_running_loop())


def test_asyncio_runs_the_standard_loop() -> None:
    assert loop_factory("asyncio") is None
    assert not issubclass(run_served(running_loop(), "asyncio"), uvloop.Loop)


@pytest.mark.parametrize("choice", ["uvloop", "auto"])
def test_uvloop_and_auto_run_uvloop_when_it_is_installed(choice: str) -> None:
    assert loop_name(choice) == "uvloop"  # type: ignore[arg-type]
    assert issubclass(run_served(running_loop(), choice), uvloop.Loop)  # type: ignore[arg-type]


def test_without_uvloop_auto_falls_back_and_uvloop_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now fails
    assert loop_name("auto") == "asyncio"
    with pytest.raises(ConfigError, match="uvloop is not installed"):
        loop_name("uvloop")
    main = running_loop()
    with pytest.raises(ConfigError):
        run_served(main, "uvloop")
    assert main.cr_frame is None  # closed, never started: no "never awaited" warning
