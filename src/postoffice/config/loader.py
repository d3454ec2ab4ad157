"""Loading the configuration file: locate it, parse TOML, validate, resolve paths.

Lookup order (DESIGN.md §4): ``-c FILE``, ``$POSTOFFICE_CONFIG``,
``./postoffice.toml``, ``/etc/postoffice/postoffice.toml``. Every failure is
a ``ConfigError`` naming the file, the key and what was expected.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from postoffice.config.model import PROTOCOLS, Config, Paths, parse_endpoint
from postoffice.core.errors import ConfigError

DEFAULT_LOCATIONS = (Path("postoffice.toml"), Path("/etc/postoffice/postoffice.toml"))


@dataclass(frozen=True)
class LoadedConfig:
    config: Config
    paths: Paths


def locate_config(explicit: str | os.PathLike[str] | None) -> Path:
    """The config file to read, by the lookup order above."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("POSTOFFICE_CONFIG")
    if env:
        return Path(env)
    for candidate in DEFAULT_LOCATIONS:
        if candidate.exists():
            return candidate
    raise ConfigError(
        "no configuration found (tried -c, $POSTOFFICE_CONFIG, "
        + ", ".join(str(p) for p in DEFAULT_LOCATIONS)
        + "); run `postoffice init` first"
    )


def load_config(path: Path, *, listen_overrides: list[str] | None = None) -> LoadedConfig:
    """Read and validate ``path``; apply ``--listen PROTO=HOST:PORT`` overrides."""
    try:
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError("file not found", file=path) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=path) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=path) from exc
    if listen_overrides:
        raw = apply_listen_overrides(raw, listen_overrides, file=path)
    config = validate_config(raw, file=path)
    return LoadedConfig(config, resolve_paths(config, path))


def validate_config(raw: dict[str, Any], *, file: Path | None = None) -> Config:
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "(top level)"
        message = _describe(first)
        more = len(exc.errors()) - 1
        if more:
            message += f" (and {more} more error{'s' if more > 1 else ''})"
        raise ConfigError(message, file=file, key=key) from exc


def _describe(error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def parse_listen_override(text: str) -> tuple[str, str]:
    """``smtp=127.0.0.1:2525`` -> (``smtp``, ``127.0.0.1:2525``); ValueError otherwise."""
    proto, sep, endpoint = text.partition("=")
    if not sep or proto not in PROTOCOLS:
        raise ValueError(f"expected PROTO=HOST:PORT with PROTO one of {', '.join(PROTOCOLS)}")
    parse_endpoint(endpoint)
    return proto, endpoint


def apply_listen_overrides(
    raw: dict[str, Any], overrides: list[str], *, file: Path | None = None
) -> dict[str, Any]:
    """Replace the listeners of each protocol named in ``overrides``."""
    replaced: dict[str, list[str]] = {}
    for text in overrides:
        try:
            proto, endpoint = parse_listen_override(text)
        except ValueError as exc:
            raise ConfigError(str(exc), key=f"--listen {text}") from exc
        replaced.setdefault(proto, []).append(endpoint)
    listen = dict(raw.get("listen", {}))
    listen.update(replaced)
    return {**raw, "listen": listen}


def resolve_paths(config: Config, config_file: Path) -> Paths:
    base = config_file.resolve().parent
    data_dir = (base / config.data_dir).resolve()

    def under(path: str) -> Path:
        return (data_dir / path).resolve()

    return Paths(
        config_file=config_file.resolve(),
        data_dir=data_dir,
        tables_dir=under(config.tables.dir),
        tls_cert=under(config.tls.cert),
        tls_key=under(config.tls.key),
        maillog=under(config.log.maillog),
        directory_db=under(config.directory.database),
        mail_dir=data_dir / "mail",
        spool_mail_dir=data_dir / "spool" / "mail",
        queue_dir=data_dir / "spool" / "mqueue",
        dkim_keys_dir=under(config.dkim.keys_dir),
        maildrop_dir=data_dir / "spool" / "maildrop",
    )
