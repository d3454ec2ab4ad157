"""What every subcommand shares: the ``-c FILE`` option and loading the config from it.

``-c`` is accepted both before the subcommand (``postoffice -c F user list``)
and after it (``postoffice serve -c F``), as DESIGN.md §4 writes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from postoffice.config.loader import LoadedConfig, load_config, locate_config
from postoffice.directory.directory import Directory

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class CliState:
    config_path: str | None = None


def _remember_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        ctx.ensure_object(CliState).config_path = value


def config_option(func: F) -> F:
    """``-c/--config FILE`` on a subcommand; it overrides one given before the subcommand."""
    return click.option(
        "-c",
        "--config",
        "config_path",
        metavar="FILE",
        expose_value=False,
        callback=_remember_config,
        help="Configuration file (default: $POSTOFFICE_CONFIG, ./postoffice.toml, "
        "/etc/postoffice/postoffice.toml).",
    )(func)


def load(ctx: click.Context, *, listen_overrides: list[str] | None = None) -> LoadedConfig:
    state = ctx.ensure_object(CliState)
    return load_config(locate_config(state.config_path), listen_overrides=listen_overrides)


def open_directory(ctx: click.Context) -> Directory:
    loaded = load(ctx)
    return Directory(loaded.config, loaded.paths)
