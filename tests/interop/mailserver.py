"""Interop helpers: a real ``postoffice serve`` process and its Maildirs.

Clients written by others (swaks, curl) talk to the server over loopback; the
tests then read the delivered files. One server runs per test module, started
and stopped by the integration tests' ``SmtpServer`` (a free port, found in
the maillog), with the users ``demo`` and ``other`` at example.test.

A stored message is our three trace fields (Return-Path, Delivered-To,
Received, in that order) followed by the client's message, octet for octet:
``split_trace`` takes them apart so that tests can compare both halves.
"""

from __future__ import annotations

import os
import poplib
import re
import shutil
import ssl
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from tests.integration.smtp_fixtures import SmtpServer

DOMAIN = "example.test"
USERS = ("demo", "other")
PASSWORD = "interop-pw"
TRACE_FIELDS = (b"return-path", b"delivered-to", b"received")


@dataclass
class ClientRun:
    """What one run of a client written by others printed: its status and transcript.

    Each client names its own patterns for the queue id of the ``250`` and for
    the TLS version and cipher it reports.
    """

    code: int
    transcript: str
    QUEUED: ClassVar[re.Pattern[str]]
    TLS_USED: ClassVar[re.Pattern[str]]

    @property
    def queue_id(self) -> str:
        ids = self.QUEUED.findall(self.transcript)
        assert len(ids) == 1, self.transcript
        return str(ids[0])

    @property
    def tls(self) -> tuple[str, str]:
        found = self.TLS_USED.search(self.transcript)
        assert found, self.transcript
        return found.group(1), found.group(2)


def require_client(program: str, package: str) -> None:
    """Skip the calling test module when a client written by others is not installed.

    The only reason an interop test may skip: ``make test`` must work on a machine
    with nothing but Python and make; ``.ci/run`` installs ``package`` first.
    """
    if shutil.which(program) is None:
        pytest.skip(
            f"{program} not installed (Debian package {package}); .ci/run installs it",
            allow_module_level=True,
        )


class Server(SmtpServer):
    """The integration tests' ``SmtpServer`` (one harness starts every server),
    with the users ``demo`` and ``other`` and what the interop tests read."""

    @property
    def cert(self) -> Path:
        return Path(self.cafile)

    @property
    def data_dir(self) -> Path:
        return self.data

    def wait_for_message(self, user: str, marker: bytes, timeout: float = 30.0) -> bytes:
        """The one message in USER's mailbox that contains MARKER, once it is there."""
        found = self.wait_delivered(marker, user, timeout=timeout)
        assert len(found) == 1, f"{len(found)} messages in {user}'s mailbox hold {marker!r}"
        return found[0]


def start_server(data_dir: Path) -> Server:
    server = Server(data_dir, users=USERS, password=PASSWORD)
    server.setup()
    server.start()
    return server


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


def run_curl(
    url: str, cafile: Path, login: str, args: Sequence[str], *, require_tls: bool
) -> tuple[int, str, bytes]:
    """``curl -v`` on ``url`` (``--ssl-reqd`` with ``require_tls``: STARTTLS/STLS
    on a plain URL); its status, its transcript (stderr) and its output."""
    options = ["--cacert", str(cafile), *(["--ssl-reqd"] if require_tls else [])]
    result = subprocess.run(
        [
            *("curl", "--silent", "--show-error", "--verbose", "--max-time", "30"),
            *options,
            *("--user", login, *args, url),
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=90,
        env=clean_env(),
        check=False,
    )
    return result.returncode, result.stderr.decode("utf-8", "replace"), result.stdout


def pop3s_login(server: Server, user: str = "demo") -> poplib.POP3_SSL:
    """A logged-in stdlib POP3S session (to set up and look behind a client under test)."""
    context = ssl.create_default_context(cafile=str(server.cert))
    client = poplib.POP3_SSL("127.0.0.1", server.pop3s_port, context=context, timeout=10)
    client.user(f"{user}@{DOMAIN}")
    client.pass_(PASSWORD)
    return client


def empty_inbox(server: Server, user: str = "demo") -> None:
    """Delete every message of ``user``'s INBOX over POP3 (a module's server is shared)."""
    client = pop3s_login(server, user)
    for number in range(1, client.stat()[0] + 1):
        client.dele(number)
    client.quit()
    assert server.mailbox(user) == []
