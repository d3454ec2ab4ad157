"""Interop helpers: a real ``postoffice serve`` process and its Maildirs.

Clients written by others (swaks, curl) talk to the server over loopback; the
tests then read the delivered files. One server runs per test module, on a
free port (``--listen smtp=127.0.0.1:0``; the maillog names the port), with
the users ``demo`` and ``other`` at example.test.

A stored message is our three trace fields (Return-Path, Delivered-To,
Received, in that order) followed by the client's message, octet for octet:
``split_trace`` takes them apart so that tests can compare both halves.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

DOMAIN = "example.test"
USERS = ("demo", "other")
PASSWORD = "interop-pw"
LISTENING = re.compile(r"listening: smtp on 127\.0\.0\.1:(\d+)")
POSTOFFICE = (sys.executable, "-m", "postoffice")
TRACE_FIELDS = (b"return-path", b"delivered-to", b"received")


@dataclass
class Server:
    """A running ``postoffice serve`` and where to look for its results."""

    data_dir: Path
    config: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def cert(self) -> Path:
        return self.data_dir / "etc" / "tls" / "cert.pem"

    @property
    def maillog(self) -> Path:
        return self.data_dir / "log" / "maillog"

    def maildir_new(self, user: str) -> Path:
        return self.data_dir / "mail" / DOMAIN / user / "new"

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return postoffice("-c", str(self.config), *args)

    def wait_for_message(self, user: str, marker: bytes, timeout: float = 30.0) -> bytes:
        """The one file in USER's new/ that contains MARKER, once it is there."""
        deadline = time.monotonic() + timeout
        while True:
            found = [p.read_bytes() for p in self._files(user)]
            found = [data for data in found if marker in data]
            if len(found) > 1:
                raise AssertionError(f"{len(found)} messages in {user}'s mailbox hold {marker!r}")
            if found:
                return found[0]
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with status {self.process.returncode}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no message with {marker!r} in {user}'s mailbox")
            time.sleep(0.05)

    def messages_with(self, user: str, marker: bytes) -> list[bytes]:
        """Every file in USER's new/ holding MARKER, now (no waiting)."""
        return [data for data in (p.read_bytes() for p in self._files(user)) if marker in data]

    def _files(self, user: str) -> list[Path]:
        folder = self.maildir_new(user)
        if not folder.is_dir():
            return []
        return [p for p in folder.iterdir() if not p.name.startswith(".")]


def postoffice(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m postoffice ARGS``, which must succeed."""
    result = subprocess.run(
        [*POSTOFFICE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"postoffice {' '.join(args)}: {result.stderr}"
    return result


def start_server(data_dir: Path) -> Server:
    postoffice("init", "--data-dir", str(data_dir), "--domain", DOMAIN)
    config = data_dir / "postoffice.toml"
    for user in USERS:
        postoffice("-c", str(config), "user", "add", f"{user}@{DOMAIN}", "--password", PASSWORD)
    maillog = data_dir / "log" / "maillog"
    with open(data_dir / "serve.stderr", "wb") as stderr:
        process = subprocess.Popen(
            [*POSTOFFICE, "-c", str(config), "serve", "--listen", "smtp=127.0.0.1:0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    deadline = time.monotonic() + 60
    while True:
        log = maillog.read_text(encoding="utf-8") if maillog.exists() else ""
        found = LISTENING.search(log)
        if found and "ready:" in log:
            return Server(data_dir, config, int(found.group(1)), process)
        if process.poll() is not None or time.monotonic() > deadline:
            stop_server(process)
            err = (data_dir / "serve.stderr").read_text(encoding="utf-8", errors="replace")
            raise AssertionError(f"postoffice serve did not get ready:\n{err}")
        time.sleep(0.05)


def stop_server(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
    return process.returncode


def split_trace(stored: bytes) -> tuple[list[tuple[str, str]], bytes]:
    """The leading trace fields (name, unfolded value) and the message after them."""
    fields: list[tuple[str, str]] = []
    rest = stored
    while True:
        name, colon, _ = rest.partition(b":")
        if not colon or name.strip().lower() not in TRACE_FIELDS:
            return fields, rest
        end = rest.index(b"\r\n")
        while rest[end + 2 : end + 3] in (b" ", b"\t"):  # RFC 5322 §2.2.3 folding
            end = rest.index(b"\r\n", end + 2)
        raw = rest[: end + 2]
        rest = rest[end + 2 :]
        value = raw[len(name) + 1 :].decode("ascii")
        fields.append((name.decode("ascii"), re.sub(r"\s+", " ", value).strip()))


def check_trace(
    fields: list[tuple[str, str]],
    *,
    sender: str,
    recipient: str,
    helo: str,
    protocol: str,
    queue_id: str,
    tls: tuple[str, str] | None = None,
) -> str:
    """Assert our three trace fields, as Postfix writes them; returns the Received value.

    ``tls`` is (version, cipher) as the client reported it; None for plaintext.
    """
    names = [name.lower() for name, _ in fields]
    assert names == ["return-path", "delivered-to", "received"], fields
    values = [value for _, value in fields]
    assert values[0] == f"<{sender}>"
    assert values[1] == recipient
    received = values[2]
    assert received.startswith(f"from {helo} (") and "[127.0.0.1])" in received, received
    assert f" by mail.example.test (postoffice) with {protocol} id {queue_id}" in received
    assert re.search(r"; \w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}$", received)
    if tls is None:
        assert "using TLS" not in received, received
    else:
        version, cipher = tls
        assert f"(using {version} with cipher {cipher})" in received, received
    return received


def delivered(
    server: Server,
    user: str,
    mark: str,
    *,
    sender: str,
    recipient: str,
    helo: str,
    protocol: str,
    queue_id: str,
    tls: tuple[str, str] | None = None,
) -> tuple[bytes, str]:
    """Wait for the message marked ``mark`` in ``user``'s mailbox, assert its trace
    fields (``check_trace``), and return (the message after them, the Received value)."""
    stored = server.wait_for_message(user, mark.encode())
    fields, message = split_trace(stored)
    received = check_trace(
        fields,
        sender=sender,
        recipient=recipient,
        helo=helo,
        protocol=protocol,
        queue_id=queue_id,
        tls=tls,
    )
    return message, received


def clean_env() -> dict[str, str]:
    """The environment for client tools: no proxies, a fixed locale."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["LC_ALL"] = "C"
    return env
