"""``check``, ``newaliases``, ``makemap`` and ``explain`` against real table files."""

from __future__ import annotations

from pathlib import Path

from tests.integration.conftest import CliRunner


def tables(config: Path) -> Path:
    return config.parent / "etc" / "mail"


def test_check_on_a_fresh_setup(setup_dir: Path, run_cli: CliRunner) -> None:
    result = run_cli("check", "-c", str(setup_dir))
    assert result.code == 0, result.err
    assert "check: everything is in order" in result.out
    assert "aliases:" in result.out or "aliases" in result.out
    assert "cert.pem: ok" in result.out


def test_check_names_every_bad_line(setup_dir: Path, run_cli: CliRunner) -> None:
    (tables(setup_dir) / "access").write_text("Connect:10.1 RELAY\nFrom:x.test MAYBE\n")
    (tables(setup_dir) / "aliases").write_text("ok: alice\nbroken line without colon\n")
    result = run_cli("-c", str(setup_dir), "check")
    assert result.code == 1
    assert f"{tables(setup_dir) / 'access'}:2:" in result.err
    assert f"{tables(setup_dir) / 'aliases'}:2:" in result.err
    assert "2 problem(s)" in result.err


def test_check_reports_a_broken_config(setup_dir: Path, run_cli: CliRunner) -> None:
    setup_dir.write_text(setup_dir.read_text() + "\n[store]\nformat = 'zip'\n")
    result = run_cli("-c", str(setup_dir), "check")
    assert result.code == 1
    assert str(setup_dir) in result.err


def test_check_reports_a_missing_certificate(setup_dir: Path, run_cli: CliRunner) -> None:
    (setup_dir.parent / "etc" / "tls" / "key.pem").unlink()
    result = run_cli("-c", str(setup_dir), "check")
    assert result.code == 1
    assert "key.pem" in result.err


def test_newaliases_reports_and_validates(setup_dir: Path, run_cli: CliRunner) -> None:
    aliases = tables(setup_dir) / "aliases"
    aliases.write_text("postmaster: root\nstaff: alice,\n  bob, carol@other.test\n")
    ok = run_cli("-c", str(setup_dir), "newaliases")
    assert ok.code == 0, ok.err
    assert "2 aliases" in ok.out
    aliases.write_text("postmaster: root\npostmaster: alice\n")
    bad = run_cli("-c", str(setup_dir), "newaliases")
    assert bad.code == 1
    assert f"{aliases}:2:" in bad.err


def test_newaliases_ignores_other_tables(setup_dir: Path, run_cli: CliRunner) -> None:
    (tables(setup_dir) / "access").write_text("From:x.test MAYBE\n")
    assert run_cli("-c", str(setup_dir), "newaliases").code == 0


def test_makemap_classic_form(setup_dir: Path, run_cli: CliRunner) -> None:
    access = tables(setup_dir) / "access"
    access.write_text("Connect:192.168.1 RELAY\nFrom:spammer.test REJECT\n")
    ok = run_cli("-c", str(setup_dir), "makemap", "hash", str(access))
    assert ok.code == 0, ok.err
    assert "access" in ok.out and "2" in ok.out
    access.write_text("From:spammer.test ERROR:99 nope\n")
    bad = run_cli("-c", str(setup_dir), "makemap", "access")
    assert bad.code == 1 and f"{access}:1:" in bad.err
    unknown = run_cli("-c", str(setup_dir), "makemap", "sendmail.cf")
    assert unknown.code != 0 and "unknown table" in unknown.err


def test_explain_follows_the_tables(setup_dir: Path, run_cli: CliRunner) -> None:
    c = ("-c", str(setup_dir))
    assert run_cli(*c, "user", "add", "alice@example.test", "--password", "pw").code == 0
    (tables(setup_dir) / "aliases").write_text("staff: alice, carol@other.test\n")
    (tables(setup_dir) / "virtusertable").write_text("info@example.test staff\n")
    result = run_cli(
        *c, "explain", "info@example.test", "--from", "x@far.test", "--client", "127.0.0.2"
    )
    assert result.code == 0, result.err
    out = result.out
    assert "virtusertable:1" in out
    assert "aliases:1" in out
    assert "alice@example.test" in out
    assert "carol@other.test" in out
    unknown = run_cli(*c, "explain", "nobody@example.test")
    assert unknown.code == 0
    assert "5.1.1" in unknown.out
    rejected = run_cli(*c, "explain", "not an address@@")
    assert rejected.code != 0


def test_explain_sees_table_changes_without_a_rebuild(setup_dir: Path, run_cli: CliRunner) -> None:
    c = ("-c", str(setup_dir))
    access = tables(setup_dir) / "access"
    access.write_text("To:blocked.test REJECT\n")
    assert "5.7.1" in run_cli(*c, "explain", "someone@blocked.test").out
    access.write_text("# nothing\n")
    assert "5.7.1" not in run_cli(*c, "explain", "someone@blocked.test").out


def test_postmaster_reaches_the_account_root_points_at(setup_dir: Path, run_cli: CliRunner) -> None:
    c = ("-c", str(setup_dir))
    assert run_cli(*c, "user", "add", "alice@example.test", "--password", "pw").code == 0
    aliases = tables(setup_dir) / "aliases"
    assert "postmaster: root" in aliases.read_text(encoding="utf-8")  # RFC 5321 §4.5.1
    with aliases.open("a", encoding="utf-8") as handle:
        handle.write("root: alice\n")
    out = run_cli(*c, "explain", "postmaster").out
    assert "deliver" in out.lower() and "alice@example.test" in out
    assert "5.1.1" not in out
