"""``postoffice user add --quota/--quota-messages``, ``user quota`` (show and change)
and the quota column of ``user list``; the ``init`` template's ``over_quota``."""

from __future__ import annotations

import tomllib
from pathlib import Path

from tests.integration.conftest import CliRunner


def test_quota_options_and_the_quota_command(setup_dir: Path, run_cli: CliRunner) -> None:
    c = ("-c", str(setup_dir))
    added = run_cli(
        *c, "user", "add", "bob@example.test", "--password", "pw", "--quota", "5",
        "--quota-messages", "100",
    )  # fmt: skip
    assert added.code == 0, added.err
    assert run_cli(*c, "user", "add", "eve@example.test", "--password", "pw").code == 0
    listed = run_cli(*c, "user", "list").out.splitlines()
    assert "bob@example.test\tenabled\tquota 5 MiB, 100 messages" in listed
    assert "eve@example.test\tenabled\tquota -, -" in listed
    shown = run_cli(*c, "user", "quota", "Bob@Example.test")
    assert shown.out == "bob@example.test\tquota 5 MiB, 100 messages\n"
    changed = run_cli(*c, "user", "quota", "bob@example.test", "--messages", "0")
    assert changed.out == "bob@example.test\tquota 5 MiB, -\n"  # the storage limit kept
    changed = run_cli(*c, "user", "quota", "bob@example.test", "--storage", "0")
    assert changed.out == "bob@example.test\tquota -, -\n"
    changed = run_cli(*c, "user", "quota", "eve@example.test", "--storage", "2", "--messages", "9")
    assert changed.out == "eve@example.test\tquota 2 MiB, 9 messages\n"
    missing = run_cli(*c, "user", "quota", "nobody@example.test", "--messages", "1")
    assert missing.code == 1 and "no such account" in missing.err
    assert run_cli(*c, "user", "quota", "nobody@example.test").code == 1
    negative = run_cli(*c, "user", "quota", "eve@example.test", "--messages", "-1")
    assert negative.code == 2  # a usage error: nothing changed
    assert "quota 2 MiB, 9 messages" in run_cli(*c, "user", "quota", "eve@example.test").out


def test_init_writes_over_quota_and_check_reads_it(setup_dir: Path, run_cli: CliRunner) -> None:
    config = tomllib.loads(setup_dir.read_text(encoding="utf-8"))
    assert config["smtp"]["over_quota"] == "defer"
    text = setup_dir.read_text(encoding="utf-8").replace(
        'over_quota = "defer"', 'over_quota = "bounce"'
    )
    setup_dir.write_text(text, encoding="utf-8")
    bad = run_cli("-c", str(setup_dir), "check")
    assert bad.code != 0 and "over_quota" in bad.err
