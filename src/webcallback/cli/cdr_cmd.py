"""`webcallback cdr export`: call detail records with both legs' durations, rates and charges."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TextIO

import click

from webcallback.billing import cdr
from webcallback.cli.common import config_option, services_from
from webcallback.store.billing import CreditStore

_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]


@click.group("cdr")
def cdr_group() -> None:
    """Call detail records."""


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


@cdr_group.command("export")
@click.option("--from", "start", type=click.DateTime(_FORMATS), help="From this UTC time (inclusive).")
@click.option("--to", "end", type=click.DateTime(_FORMATS), help="Up to this UTC time (exclusive).")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("--output", "-o", type=click.File("w", encoding="utf-8"), default="-", help="Default: stdout.")
@config_option
@click.pass_context
def export(
    ctx: click.Context, start: datetime | None, end: datetime | None, fmt: str, output: TextIO
) -> None:
    """Callbacks accepted in [--from, --to), oldest first: one record each, settled or released."""
    services = services_from(ctx)
    rows = CreditStore(services.db).cdrs(_utc(start), _utc(end))
    output.write(cdr.render((cdr.record(r) for r in rows), fmt))
