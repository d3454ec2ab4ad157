"""Configuration loading: typed models, errors that name file and key, overrides, paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from postoffice.config.loader import load_config, locate_config
from postoffice.core.errors import ConfigError

MINIMAL = 'hostname = "mail.example.test"\nprimary_domain = "example.test"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "postoffice.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_config_gets_defaults(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, MINIMAL))
    assert loaded.config.hostname == "mail.example.test"
    assert loaded.config.store.format == "maildir"
    assert loaded.config.store.fsync is True
    assert loaded.config.relay.mynetworks == ["127.0.0.1/32", "::1/128"]
    assert loaded.paths.data_dir == tmp_path.resolve()
    assert loaded.paths.tables_dir == tmp_path.resolve() / "etc" / "mail"
    assert loaded.paths.spool_mail_dir == tmp_path.resolve() / "spool" / "mail"
    assert loaded.paths.queue_dir == tmp_path.resolve() / "spool" / "mqueue"
    assert loaded.paths.maillog == tmp_path.resolve() / "log" / "maillog"


def test_data_dir_is_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    path = tmp_path / "etc" / "po.toml"
    path.write_text(MINIMAL + 'data_dir = "../data"\n', encoding="utf-8")
    assert load_config(path).paths.data_dir == (tmp_path / "data").resolve()


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        (MINIMAL + "colour = 1\n", "colour", "unknown key"),
        (MINIMAL + "[store]\nformat = 'zip'\n", "store.format", "maildir"),
        (MINIMAL + "[store]\nfsinc = true\n", "store.fsinc", "unknown key"),
        (MINIMAL + "[listen]\nsmtp = ['127.0.0.1']\n", "listen.smtp", "HOST:PORT"),
        (MINIMAL + "[listen]\nsmtp = ['127.0.0.1:99999']\n", "listen.smtp", "port"),
        (MINIMAL + "[listen]\ngopher = ['127.0.0.1:70']\n", "listen.gopher", "unknown key"),
        (MINIMAL + "[relay]\nmynetworks = ['10.0.0.300/8']\n", "relay.mynetworks", ""),
        ('primary_domain = "example.test"\n', "hostname", "missing"),
        ('hostname = "bad host"\nprimary_domain = "x.test"\n', "hostname", "invalid domain"),
        (MINIMAL + "[aliases]\nmax_depth = 0\n", "aliases.max_depth", "greater"),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, text: str, key: str, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message
    assert f"{key}:" in message
    assert words in message


def test_broken_toml_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "[store\n")
    with pytest.raises(ConfigError, match=r"not valid TOML.*line 3"):
        load_config(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")


def test_listen_overrides_replace_one_role(tmp_path: Path) -> None:
    path = write(
        tmp_path, MINIMAL + "[listen]\nsmtp = ['127.0.0.1:25']\nimap = ['127.0.0.1:143']\n"
    )
    loaded = load_config(path, listen_overrides=["smtp=127.0.0.2:2525", "smtp=[::1]:2525"])
    assert loaded.config.listen.smtp == ["127.0.0.2:2525", "[::1]:2525"]
    assert loaded.config.listen.imap == ["127.0.0.1:143"]
    assert ("smtp", "::1", 2525) in loaded.config.listen.endpoints()


@pytest.mark.parametrize("bad", ["smtp", "gopher=127.0.0.1:70", "smtp=127.0.0.1", "imap=[::1:143"])
def test_bad_listen_override(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match="--listen"):
        load_config(write(tmp_path, MINIMAL), listen_overrides=[bad])


def test_locate_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("POSTOFFICE_CONFIG", raising=False)
    assert locate_config("given.toml") == Path("given.toml")
    monkeypatch.setenv("POSTOFFICE_CONFIG", "/from/env.toml")
    assert locate_config(None) == Path("/from/env.toml")
    monkeypatch.delenv("POSTOFFICE_CONFIG")
    write(tmp_path, MINIMAL)
    assert locate_config(None) == Path("postoffice.toml")
