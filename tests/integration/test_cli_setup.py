"""``postoffice init``, ``user``, ``domain`` and ``check`` on a real temporary setup."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import pytest
from cryptography import x509

from tests.integration.conftest import CliRunner

TABLES = ("local-host-names", "access", "aliases", "virtusertable", "mailertable", "genericstable")


def test_init_writes_a_working_setup(setup_dir: Path) -> None:
    data = setup_dir.parent
    config = tomllib.loads(setup_dir.read_text(encoding="utf-8"))
    assert config["hostname"] == "mail.example.test"
    assert config["primary_domain"] == "example.test"
    assert config["listen"]["smtp"] == ["127.0.0.1:2525"]
    assert config["listen"]["imaps"] == ["127.0.0.1:2993"]
    assert "# " in setup_dir.read_text(encoding="utf-8")  # commented for the operator
    for name in TABLES:
        text = (data / "etc" / "mail" / name).read_text(encoding="utf-8")
        assert text.startswith(f"# {name}:")
    for sub in ("spool/mail", "spool/mqueue", "log", "mail"):
        assert (data / sub).is_dir()
    key = data / "etc" / "tls" / "key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate((data / "etc" / "tls" / "cert.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "mail.example.test" in names.get_values_for_type(x509.DNSName)


def test_init_refuses_to_overwrite(setup_dir: Path, run_cli: CliRunner) -> None:
    before = setup_dir.read_text(encoding="utf-8")
    result = run_cli("init", "--data-dir", str(setup_dir.parent), "--domain", "other.test")
    assert result.code != 0
    assert "already exists" in result.err and "--force" in result.err
    assert setup_dir.read_text(encoding="utf-8") == before


def test_init_force_keeps_tables_and_accounts(setup_dir: Path, run_cli: CliRunner) -> None:
    aliases = setup_dir.parent / "etc" / "mail" / "aliases"
    aliases.write_text("staff: alice\n", encoding="utf-8")
    assert (
        run_cli("-c", str(setup_dir), "user", "add", "alice@example.test", "--password", "pw").code
        == 0
    )
    result = run_cli(
        "init",
        "--data-dir",
        str(setup_dir.parent),
        "--domain",
        "example.test",
        "--hostname",
        "mx.example.test",
        "--force",
    )
    assert result.code == 0, result.err
    assert 'hostname = "mx.example.test"' in setup_dir.read_text(encoding="utf-8")
    assert aliases.read_text(encoding="utf-8") == "staff: alice\n"
    listed = run_cli("-c", str(setup_dir), "user", "list")
    assert "alice@example.test" in listed.out


def test_init_listen_flags(tmp_path: Path, run_cli: CliRunner) -> None:
    data = tmp_path / "d"
    result = run_cli(
        "init",
        "--data-dir",
        str(data),
        "--domain",
        "a.test",
        "--listen",
        "smtp=127.0.0.5:25",
        "--listen",
        "imap=[::1]:143",
    )
    assert result.code == 0, result.err
    config = tomllib.loads((data / "postoffice.toml").read_text(encoding="utf-8"))
    assert config["listen"]["smtp"] == ["127.0.0.5:25"]
    assert config["listen"]["imap"] == ["[::1]:143"]
    assert config["listen"]["pop3"] == []
    bad = run_cli("init", "--data-dir", str(tmp_path / "e"), "--listen", "smtp=nowhere")
    assert bad.code != 0 and "--listen" in bad.err


def test_user_lifecycle(setup_dir: Path, run_cli: CliRunner) -> None:
    c = ("-c", str(setup_dir))
    added = run_cli(*c, "user", "add", "Bob@Example.test", "--password-stdin", stdin="hunter2\n")
    assert added.code == 0, added.err
    assert "bob@example.test" in run_cli(*c, "user", "list").out
    dup = run_cli(*c, "user", "add", "bob@example.test", "--password", "x")
    assert dup.code == 1 and "already exists" in dup.err
    assert run_cli(*c, "user", "passwd", "bob@example.test", "--password", "new").code == 0
    assert run_cli("user", "del", "bob@example.test", "-c", str(setup_dir)).code == 0
    assert "bob@example.test" not in run_cli(*c, "user", "list").out
    gone = run_cli(*c, "user", "del", "bob@example.test")
    assert gone.code == 1 and "no such account" in gone.err


def test_user_needs_a_local_domain(setup_dir: Path, run_cli: CliRunner) -> None:
    c = ("-c", str(setup_dir))
    refused = run_cli(*c, "user", "add", "x@elsewhere.test", "--password", "pw")
    assert refused.code == 1 and "not a local domain" in refused.err
    (setup_dir.parent / "etc" / "mail" / "local-host-names").write_text("elsewhere.test\n")
    assert run_cli(*c, "user", "add", "x@elsewhere.test", "--password", "pw").code == 0


def test_user_add_refuses_unsafe_names(setup_dir: Path, run_cli: CliRunner) -> None:
    result = run_cli("-c", str(setup_dir), "user", "add", '"../x"@example.test', "--password", "p")
    assert result.code == 1 and "not allowed" in result.err


def test_domains(setup_dir: Path, run_cli: CliRunner) -> None:
    c = ("-c", str(setup_dir))
    assert run_cli(*c, "domain", "add", "Second.Test").code == 0
    (setup_dir.parent / "etc" / "mail" / "local-host-names").write_text("third.test\n")
    listed = run_cli(*c, "domain", "list").out
    assert "second.test\tdomain table" in listed
    assert "third.test\tlocal-host-names" in listed
    assert "example.test\tdomain table" in listed
    assert run_cli(*c, "domain", "del", "second.test").code == 0
    assert "second.test" not in run_cli(*c, "domain", "list").out


def test_commands_without_config_say_so(
    tmp_path: Path, run_cli: CliRunner, monkeypatch: object
) -> None:
    result = run_cli("-c", str(tmp_path / "missing.toml"), "user", "list")
    assert result.code == 1
    assert "missing.toml" in result.err and "file not found" in result.err


def test_classic_data_dir_defaults_to_mbox(
    tmp_path: Path, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from postoffice.cli import init_command

    classic = tmp_path / "classic"
    monkeypatch.setattr(init_command, "CLASSIC_DATA_DIR", classic)
    assert run_cli("init", "--data-dir", str(classic), "--domain", "a.test").code == 0
    assert 'format = "mbox"' in (classic / "postoffice.toml").read_text(encoding="utf-8")
    other = tmp_path / "other"
    assert run_cli("init", "--data-dir", str(other), "--domain", "a.test").code == 0
    assert 'format = "maildir"' in (other / "postoffice.toml").read_text(encoding="utf-8")
    chosen = tmp_path / "chosen"
    assert run_cli("init", "--data-dir", str(chosen), "--store", "mbox").code == 0
    assert 'format = "mbox"' in (chosen / "postoffice.toml").read_text(encoding="utf-8")


def test_user_add_provisions_mailboxes(setup_dir: Path, run_cli: CliRunner) -> None:
    assert (
        run_cli("-c", str(setup_dir), "user", "add", "carol@example.test", "--password", "p").code
        == 0
    )
    maildir = setup_dir.parent / "mail" / "example.test" / "carol"
    for sub in ("cur", "new", "tmp", ".Sent/cur", ".Drafts/new", ".Trash/tmp", ".Junk", ".Archive"):
        assert (maildir / sub).is_dir(), sub


def test_user_add_provisions_the_mbox_spool(tmp_path: Path, run_cli: CliRunner) -> None:
    data = tmp_path / "classic"
    assert (
        run_cli("init", "--data-dir", str(data), "--domain", "example.test", "--store", "mbox").code
        == 0
    )
    config = str(data / "postoffice.toml")
    assert run_cli("-c", config, "user", "add", "dave@example.test", "--password", "p").code == 0
    assert (data / "spool" / "mail" / "dave").is_file()
    assert (data / "mail" / "example.test" / "dave" / "Sent").is_file()
