"""What every command shares: `--config FILE`, loading settings (exit 2 on a bad key), services."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
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
    from webcallback.store.db import SchemaNotCurrent

    try:
        services = build_services(settings_from(ctx), prepare=True)
    except ConfigError as exc:  # checks that need more than one key (e.g. security.digest)
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except SchemaNotCurrent as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    ctx.call_on_close(services.close)
    return services


def password_options(fn: F) -> F:
    """`--password` (visible in shell history and `ps`: for scripts on a single-user box only) and
    `--password-stdin` (one line from standard input, e.g. from a secrets manager)."""
    fn = click.option(
        "--password-stdin",
        is_flag=True,
        help="Read the password from the first line of standard input.",
    )(fn)
    return click.option(
        "--password",
        help="The password on the command line (visible in shell history and ps: prefer the prompt "
        "or --password-stdin).",
    )(fn)


def read_password(password: str | None, from_stdin: bool, prompt: str | None) -> str | None:
    """The password from `--password`, `--password-stdin`, else (when `prompt` is given) asked for
    twice without echo. None when none was given and none is asked for."""
    if from_stdin:
        if password is not None:
            raise click.UsageError("give --password or --password-stdin, not both")
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise click.UsageError("--password-stdin: standard input has no password")
        return line
    if password is None and prompt is not None:
        entered: str = click.prompt(prompt, hide_input=True, confirmation_prompt=True)
        return entered
    return password


def echo_table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]], widths: tuple[int, ...]) -> None:
    """A header row, then the rows, columns padded to `widths` (the last one is not padded)."""
    for row in [header, *rows]:
        cells = [f"{cell:{width}}" for cell, width in zip(row[:-1], widths, strict=False)]
        click.echo(" ".join([*cells, row[-1]]).rstrip())


def fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))
