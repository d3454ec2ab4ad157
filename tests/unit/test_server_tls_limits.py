"""The server TLS context and the per-client connection limiter."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import pytest

from postoffice.cli.selfsigned import write_self_signed
from postoffice.config.loader import load_config
from postoffice.config.model import Paths
from postoffice.core.errors import ConfigError
from postoffice.server.limits import ConnectionLimiter
from postoffice.server.tls import TlsSessionInfo, server_tls_context, session_info

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
