"""Fixtures for integration tests: the real ``postoffice`` command on a temporary setup."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from postoffice.cli.main import main


@dataclass
class CliResult:
    code: int
    out: str
    err: str


CliRunner = Callable[..., CliResult]


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """Run ``postoffice ARGS`` in this process; return exit status and output."""

    def run(*args: str, stdin: str = "") -> CliResult:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def setup_dir(tmp_path: Path, run_cli: CliRunner) -> Path:
    """A fresh ``postoffice init`` in tmp_path/var; returns the config file."""
    data = tmp_path / "var"
    result = run_cli("init", "--data-dir", str(data), "--domain", "example.test")
    assert result.code == 0, result.err
    return data / "postoffice.toml"
