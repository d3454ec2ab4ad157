"""The server TLS context and the per-client connection limiter."""

from __future__ import annotations

import os
import socket
import ssl
import threading
from pathlib import Path

import pytest

from postoffice.cli.selfsigned import write_self_signed
from postoffice.config.loader import load_config
from postoffice.config.model import Paths
from postoffice.core.errors import ConfigError
from postoffice.net.pipe import TlsSessionInfo, session_info
from postoffice.server.limits import ConnectionLimiter, SharedConnectionCounts
from postoffice.server.tls import server_tls_context

CONFIG = 'hostname = "mail.example.test"\nprimary_domain = "example.test"\n'


def make_paths(tmp_path: Path, with_cert: bool = True) -> Paths:
    config = tmp_path / "postoffice.toml"
    config.write_text(CONFIG, encoding="utf-8")
    paths = load_config(config).paths
    if with_cert:
        write_self_signed(paths.tls_cert, paths.tls_key, "mail.example.test", ["example.test"])
    return paths


def test_context_handshakes_with_a_real_client(tmp_path: Path) -> None:
    paths = make_paths(tmp_path)
    server_context = server_tls_context(paths)
    client_context = ssl.create_default_context(cafile=str(paths.tls_cert))
    left, right = socket.socketpair()
    result: dict[str, TlsSessionInfo] = {}

    def serve() -> None:
        with server_context.wrap_socket(left, server_side=True) as tls:
            result["info"] = session_info(tls)
            tls.sendall(tls.recv(5))

    thread = threading.Thread(target=serve)
    thread.start()
    with client_context.wrap_socket(right, server_hostname="mail.example.test") as tls:
        tls.sendall(b"hello")
        assert tls.recv(5) == b"hello"
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
    thread.join(timeout=10)
    info = result["info"]
    assert info.version in ("TLSv1.2", "TLSv1.3")
    assert info.cipher


def test_old_protocols_are_refused(tmp_path: Path) -> None:
    assert server_tls_context(make_paths(tmp_path)).minimum_version == ssl.TLSVersion.TLSv1_2


def test_missing_certificate_names_the_file(tmp_path: Path) -> None:
    paths = make_paths(tmp_path, with_cert=False)
    with pytest.raises(ConfigError, match=r"cert\.pem"):
        server_tls_context(paths)


def test_mismatched_key_is_a_config_error(tmp_path: Path) -> None:
    paths = make_paths(tmp_path)
    other = tmp_path / "other"
    write_self_signed(other / "c.pem", other / "k.pem", "x.test", [])
    paths.tls_key.write_bytes((other / "k.pem").read_bytes())
    with pytest.raises(ConfigError, match="cannot load certificate"):
        server_tls_context(paths)


def test_limiter_counts_per_client() -> None:
    limiter = ConnectionLimiter(per_client=2)
    assert limiter.admit("127.0.0.2")
    assert limiter.admit("127.0.0.2")
    assert not limiter.admit("127.0.0.2")
    assert limiter.admit("127.0.0.3")
    assert limiter.total == 3
    limiter.release("127.0.0.2")
    assert limiter.open_from("127.0.0.2") == 1
    assert limiter.admit("127.0.0.2")
    with pytest.raises(ValueError):
        ConnectionLimiter(0)


def test_shared_counts_limit_an_address_across_workers() -> None:
    with SharedConnectionCounts(per_client=3, workers=2) as counts:
        _shared_across_workers(counts)


def _shared_across_workers(counts: SharedConnectionCounts) -> None:
    first, second = counts.limiter(0), counts.limiter(1)
    assert first.admit("127.0.0.2") and first.admit("127.0.0.2")
    assert second.admit("127.0.0.2")
    assert not second.admit("127.0.0.2")  # 3 open, whichever worker holds them
    assert not first.admit("127.0.0.2")
    assert second.admit("127.0.0.3")
    assert first.open_from("127.0.0.2") == 3
    first.release("127.0.0.2")
    assert second.admit("127.0.0.2")
    counts.forget_worker(1)  # worker 1 died: its connections are gone
    assert first.open_from("127.0.0.2") == 1
    assert first.open_from("127.0.0.3") == 0
    second.release("127.0.0.9")  # never admitted: nothing to take away
    assert second.open_from("127.0.0.9") == 0


def test_shared_counts_are_shared_with_a_forked_worker() -> None:
    with SharedConnectionCounts(per_client=2, workers=2) as counts:
        _shared_with_a_child(counts)


def _shared_with_a_child(counts: SharedConnectionCounts) -> None:
    pid = os.fork()
    if pid == 0:  # the worker: two connections from one address, left open
        ok = counts.limiter(1).admit("192.0.2.1") and counts.limiter(1).admit("192.0.2.1")
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    parent = counts.limiter(0)
    assert parent.open_from("192.0.2.1") == 2
    assert not parent.admit("192.0.2.1")
    counts.forget_worker(1)
    assert parent.admit("192.0.2.1")


def test_shared_counts_reuse_free_slots_and_refuse_only_when_full() -> None:
    with SharedConnectionCounts(per_client=5, workers=1, slots=8) as counts:
        _slots_reused(counts)


def _slots_reused(counts: SharedConnectionCounts) -> None:
    limiter = counts.limiter(0)
    for round_ in range(5):  # many addresses come and go: free slots are taken again
        names = [f"10.0.{round_}.{n}" for n in range(8)]
        assert all(limiter.admit(name) for name in names)
        assert not limiter.admit(f"10.1.{round_}.0")  # 8 live addresses in 8 slots
        for name in names:
            limiter.release(name)
    assert limiter.admit("10.2.0.0")
    assert limiter.open_from("10.2.0.0") == 1
