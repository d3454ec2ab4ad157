"""``postoffice serve`` and ``make run`` as processes: ready line, maillog, clean stop."""

from __future__ import annotations

import contextlib
import os
import signal
import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate: object, timeout: float = 30.0) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def start_serve(config: Path, *extra: str) -> subprocess.Popen[str]:
    """``postoffice serve`` with every served listener on a free port (port 0); the
    config's ``http`` listener stays as ``init`` wrote it (not served yet)."""
    served = ("smtp", "submission", "submissions", "pop3", "pop3s", "imap", "imaps")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "postoffice",
            "-c",
            str(config),
            "serve",
            *(f"--listen={role}=127.0.0.1:0" for role in served),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextlib.contextmanager
def serving(config: Path) -> Iterator[subprocess.Popen[str]]:
    """``start_serve``, killed at the end if the test did not stop it (``stop``)."""
    process = start_serve(config)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)


def stop(process: subprocess.Popen[str], signum: int = signal.SIGTERM) -> str:
    """Send ``signum`` and wait for the server to end; its stderr."""
    process.send_signal(signum)
    _, err = process.communicate(timeout=30)
    return err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_reports_ready_and_stops_on_signal(setup_dir: Path, signum: int) -> None:
    maillog = setup_dir.parent / "log" / "maillog"
    with serving(setup_dir) as process:
        wait_for(lambda: maillog.exists() and "ready:" in maillog.read_text(encoding="utf-8"))
        err = stop(process, signum)
    assert process.returncode == 0
    assert "ready: mail.example.test" in err  # the foreground also logs to stderr
    log = maillog.read_text(encoding="utf-8")
    assert "postoffice/master[" in log
    assert "open files: up to " in log  # raised at start (server.resources)
    assert "listening: smtp on 127.0.0.1:" in log
    assert "listening: smtp on 127.0.0.1:2525" not in log  # --listen replaced the config's
    assert "configured but not served by this version: http=127.0.0.1:2080" in log
    assert "terminating on signal" in log


def test_sighup_with_a_broken_config_keeps_running(setup_dir: Path) -> None:
    maillog = setup_dir.parent / "log" / "maillog"
    with serving(setup_dir) as process:
        wait_for(lambda: maillog.exists() and "ready:" in maillog.read_text(encoding="utf-8"))
        good = setup_dir.read_text(encoding="utf-8")
        setup_dir.write_text(good + "\nnonsense = 1\n", encoding="utf-8")
        process.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload refused" in maillog.read_text(encoding="utf-8"))
        assert process.poll() is None
        setup_dir.write_text(good, encoding="utf-8")
        process.send_signal(signal.SIGHUP)
        wait_for(lambda: "configuration re-read" in maillog.read_text(encoding="utf-8"))
        stop(process)
    assert process.returncode == 0
    assert "nonsense: unknown key" in maillog.read_text(encoding="utf-8")


def test_serve_with_a_broken_config_exits_non_zero(setup_dir: Path) -> None:
    setup_dir.write_text(setup_dir.read_text(encoding="utf-8") + "bogus = true\n")
    process = start_serve(setup_dir)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 1
    assert "bogus: unknown key" in err


def test_make_run_prints_the_demo_user_and_ready_then_stops(tmp_path: Path) -> None:
    """The README's first command, on a data dir of its own (the venv is reused)."""
    data = tmp_path / "var"
    process = subprocess.Popen(
        ["make", "-s", "-C", str(ROOT), "run", f"DATA={data}", f"CONFIG={data}/postoffice.toml"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHON": sys.executable},
    )
    seen: list[str] = []
    try:
        assert process.stdout is not None
        started = time.monotonic()
        for line in process.stdout:
            seen.append(line)
            if "ready:" in line:
                break
            assert time.monotonic() - started < 60, "".join(seen)
        elapsed = time.monotonic() - started
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does to the foreground group
        rest, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    output = "".join(seen) + rest
    assert elapsed < 60
    assert "demo user: demo@example.test, password: demo" in output
    assert "ready: mail.example.test" in output
    assert "terminating on signal" in output
    assert (data / "postoffice.toml").exists()


@pytest.mark.parametrize("choice", ["uvloop", "asyncio"])
def test_serve_delivers_on_the_chosen_event_loop(setup_dir: Path, choice: str) -> None:
    """``[server] event_loop``: the workers run on that loop and mail goes through."""
    text = setup_dir.read_text(encoding="utf-8")
    assert '\nevent_loop = "asyncio"\n' in text
    setup_dir.write_text(text.replace('event_loop = "asyncio"', f'event_loop = "{choice}"'))
    command = [sys.executable, "-m", "postoffice", "-c", str(setup_dir), "user", "add"]
    added = subprocess.run(
        [*command, "bob@example.test", "--password", "bob-password"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert added.returncode == 0, added.stderr
    data = setup_dir.parent
    maillog = data / "log" / "maillog"
    with serving(setup_dir) as process:
        wait_for(lambda: maillog.exists() and "ready:" in maillog.read_text(encoding="utf-8"))
        log = maillog.read_text(encoding="utf-8")
        assert f"event loop: {choice}" in log
        port = int(log.split("listening: smtp on 127.0.0.1:")[1].split()[0])
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.sendmail(
                "someone@remote.test",
                ["bob@example.test"],
                b"Subject: on " + choice.encode() + b"\r\n\r\nhello\r\n",
            )
        wait_for(lambda: "status=sent" in maillog.read_text(encoding="utf-8"))
        stop(process)
    assert process.returncode == 0
