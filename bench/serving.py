"""A ``postoffice serve`` process for the benchmarks: started on free ports, stopped cleanly.

Owns what every benchmark script did alike: start ``serve`` with the
``smtp``, ``pop3``, ``pop3s``, ``imap`` and ``imaps`` roles on port 0 (free ports, so that nothing
the machine runs is disturbed), wait for the maillog's ``listening:`` line of
the role measured and ``ready:``, and stop it (SIGTERM, then SIGKILL after a
minute). Not a test; CI does not run it.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path
from typing import IO

ROLES = ("smtp", "pop3", "pop3s", "imap", "imaps")


class Served:
    """One ``postoffice serve`` over ``config``, whose maillog is under ``data``."""

    def __init__(self, command: list[str], config: Path, data: Path, role: str):
        self.data = data
        self.stderr: IO[bytes] = open(data / "serve.stderr", "wb")  # noqa: SIM115 (stop closes)
        self.process = subprocess.Popen(
            [*command, "-c", str(config), "serve"]
            + [f"--listen={name}=127.0.0.1:0" for name in ROLES],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
        )
        self.port = self._wait_ready(role)

    def _wait_ready(self, role: str) -> int:
        maillog = self.data / "log" / "maillog"
        listening = re.compile(rf"listening: {role} on 127\.0\.0\.1:(\d+)")
        deadline = time.monotonic() + 60
        while True:
            log = maillog.read_text(encoding="utf-8") if maillog.exists() else ""
            found = listening.search(log)
            if found and "ready:" in log:
                return int(found.group(1))
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"postoffice serve did not start; see {self.data}/serve.stderr")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.stderr.close()
