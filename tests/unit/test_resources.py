"""``server.resources.raise_open_files``: a low soft limit is raised, never past the
hard one, and a high one is never lowered. Each case runs in a child process,
whose limits it may change without touching the test runner's."""

from __future__ import annotations

import resource
import subprocess
import sys

CHILD = """
import resource, sys
from postoffice.server.resources import raise_open_files
soft, hard = (int(x) for x in sys.argv[1:3])
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
print(*raise_open_files(int(sys.argv[3])))
"""


def run_child(soft: int, hard: int, wanted: int) -> tuple[int, int]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(soft), str(hard), str(wanted)],
        capture_output=True,
        text=True,
        check=True,
    )
    got_soft, got_hard = (int(x) for x in done.stdout.split())
    return got_soft, got_hard


def test_a_low_soft_limit_is_raised_to_what_is_wanted() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard >= 1024
    assert run_child(256, 1024, 512) == (512, 1024)


def test_the_hard_limit_caps_the_raise() -> None:
    assert run_child(256, 1024, 65_536) == (1024, 1024)


def test_a_higher_soft_limit_is_kept() -> None:
    assert run_child(1000, 1024, 512) == (1000, 1024)
