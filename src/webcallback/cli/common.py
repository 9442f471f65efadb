"""What every command shares: `--config FILE`, loading settings (exit 2 on a bad key), services."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from webcallback.config import ConfigError, Settings, load_settings

F = TypeVar("F", bound=Callable[..., Any])


def _remember_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.meta["webcallback.config"] = value


def config_option(fn: F) -> F:
    """`--config FILE`, accepted on the group and on every command."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        expose_value=False,
        is_eager=True,
        callback=_remember_config,
        help="TOML config file (default: ./webcallback.toml if present).",
    )(fn)


def settings_from(ctx: click.Context) -> Settings:
    try:
        return load_settings(ctx.meta.get("webcallback.config"))
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


def services_from(ctx: click.Context) -> Any:
    from webcallback.service.container import build_services

    try:
        services = build_services(settings_from(ctx))
    except ConfigError as exc:  # checks that need more than one key (e.g. security.digest)
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    ctx.call_on_close(services.close)
    return services


def fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))
