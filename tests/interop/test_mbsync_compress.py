"""mbsync (isync) speaking COMPRESS=DEFLATE (RFC 4978) to a real ``postoffice serve``.

isync compresses whenever the server offers COMPRESS=DEFLATE after login:
its debug output (``-D``) shows the COMPRESS command and our OK, and then
the sync must come out exactly as without compression (the messages with
the same octets on both sides), over IMAPS and over STARTTLS (compression
above TLS either way). A zlib fault on either side would be an mbsync
error ("Error decompressing data") or a server maillog warning.

Skipped only when mbsync is not installed (Debian package ``isync``;
``.ci/run`` installs it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.imapsync import deliver, serve, server_tree
from tests.interop.mailserver import Server, require_client
from tests.interop.test_mbsync import Mbsync, local_tree, sent

require_client("mbsync", "isync")

USERS = ("squeezed", "squeezedtls")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serve(tmp_path_factory, "maildir", USERS)


@pytest.mark.parametrize(
    ("user", "starttls"), [("squeezed", False), ("squeezedtls", True)], ids=["imaps", "starttls"]
)
def test_mbsync_syncs_under_compression(
    server: Server, tmp_path: Path, user: str, starttls: bool
) -> None:
    subjects = [f"squeezed {n}" for n in range(5)]
    deliver(server, user, *subjects, body="the same line again and again\n" * 200)
    mbsync = Mbsync(server, tmp_path, user, starttls=starttls, patterns="INBOX")
    run = mbsync.sync("-D")
    compress = sent(run, "COMPRESS DEFLATE")
    assert compress is not None, run.output
    ok = re.search(r"^F: \d+ OK DEFLATE active", run.output[compress:], re.M)
    assert ok is not None, run.output
    # commands went on after the switch (compressed), and the sync completed
    assert sent(run, "SELECT") or sent(run, "EXAMINE"), run.output
    local = local_tree(mbsync.root)
    assert [mail.subject for mail in local["INBOX"]] == subjects
    assert local == {"INBOX": server_tree(server, user)[0]["INBOX"]}
    assert "corrupt compressed input" not in server.maillog()
