"""Which event loop the serving processes run: asyncio's own, or uvloop's.

What this module owns: ``run_served``, the one place a serving process starts
its loop, by ``[server] event_loop``:

- ``"asyncio"`` (the default): the standard library's loop;
- ``"uvloop"``: uvloop's loop (libuv); an error at start when uvloop is not
  installed (``pip install postoffice[uvloop]``);
- ``"auto"``: uvloop when it is installed, else asyncio's.

Why asyncio is the default: on the SMTP benchmark (``bench/smtp_accept``,
2,000 messages over new connections, fsync on) uvloop was slower, 376-447
msg/s against 468-525 with asyncio's loop on the same machine, because most
of a message's time is file work and Python code around it, not the loop;
uvloop pays off where many connections wait at once (IDLE), which
``bench/imap_idle`` can measure with either setting.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

from postoffice.core.errors import ConfigError

T = TypeVar("T")
EventLoopChoice = Literal["asyncio", "uvloop", "auto"]


def loop_factory(choice: EventLoopChoice) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory of the loop ``choice`` names; None for asyncio's own."""
    if choice == "asyncio":
        return None
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        if choice == "uvloop":
            raise ConfigError(
                '[server] event_loop = "uvloop", but uvloop is not installed '
                "(pip install 'postoffice[uvloop]')"
            ) from None
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def loop_name(choice: EventLoopChoice) -> str:
    """What ``choice`` runs on this host: "uvloop" or "asyncio" (for the maillog);
    raises ``ConfigError`` when uvloop is asked for and missing."""
    return "asyncio" if loop_factory(choice) is None else "uvloop"


def run_served(main: Coroutine[Any, Any, T], choice: EventLoopChoice) -> T:
    """Run ``main`` to its end on a new loop of the chosen kind."""
    try:
        with asyncio.Runner(loop_factory=loop_factory(choice)) as runner:
            return runner.run(main)
    finally:
        main.close()  # never started when the loop could not be made: no warning
