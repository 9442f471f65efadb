"""`webcallback billing ...`: maintenance of credit reservations."""

from __future__ import annotations

import asyncio

import click

from webcallback.cli.common import config_option, fail, services_from


@click.group("billing")
def billing_group() -> None:
    """Credit reservations."""


@billing_group.command("release-stale")
@click.option("--older-than", default=7200.0, show_default=True, help="Seconds a reservation has been held.")
@config_option
@click.pass_context
def release_stale(ctx: click.Context, older_than: float) -> None:
    """Release reservations left behind by callbacks that ended without settling (a node died
    mid-call) or were never stored."""
    services = services_from(ctx)
    if services.billing is None:
        fail("billing is disabled (billing.enabled = false)")
        return
    count = asyncio.run(services.billing.release_stale(older_than))
    click.echo(f"released {count} reservation{'s' if count != 1 else ''}")
