"""`webcallback rates ...`: import, inspect and look up rate plans."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

from webcallback.billing.deckfile import DeckError, parse_deck
from webcallback.billing.display import format_rate
from webcallback.billing.rating import Rate, RateDeck
from webcallback.cli.common import config_option, echo_json, echo_table, fail, services_from
from webcallback.errors import ApiError
from webcallback.numbers import to_e164


@click.group()
def rates() -> None:
    """Rate plans: prefix -> price per minute, connection fee, billing increments."""


def _billing(ctx: click.Context) -> Any:
    services = services_from(ctx)
    if services.billing is None:
        fail("billing is disabled (billing.enabled = false)")
    return services.billing


@rates.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--plan", required=True, help="Plan to create or replace.")
@click.option("--currency", help="The plan's currency (default: the plan's, else billing.default_currency).")
@config_option
@click.pass_context
def import_(ctx: click.Context, file: Path, plan: str, currency: str | None) -> None:
    """Replace PLAN's rates with FILE: CSV with the header
    `prefix,price_per_minute,connection_fee,first_increment,next_increment,description`
    (only prefix and price_per_minute are required; docs/billing.md).

    The whole file is checked first; a bad row is reported with its line number and nothing is
    imported. The import itself is one transaction.
    """
    billing = _billing(ctx)
    try:
        with file.open(encoding="utf-8-sig", newline="") as fh:
            lines = fh.readlines()
    except UnicodeDecodeError:
        fail(f"{file} is not UTF-8 text")
        return
    try:
        deck = parse_deck(tqdm(lines, desc="checking", unit=" rows", disable=None, leave=False))
    except DeckError as exc:
        fail(f"{file}: {exc}; nothing imported")
        return
    existing = billing.rates.find_plan(plan)
    cur = (currency or (existing.currency if existing else billing.settings.billing.default_currency)).upper()
    with tqdm(total=len(deck), desc="importing", unit=" rates", disable=None) as bar:
        info = billing.rates.import_plan(plan, cur, deck, progress=bar.update)
    click.echo(f"imported {info.rate_count} rates into plan {plan} ({info.currency}, version {info.version})")


@rates.command("lookup")
@click.argument("number")
@click.option("--plan", help="Plan to look in (default: billing.default_plan).")
@click.option("--region", default=None, help="Country for a national-format NUMBER.")
@click.option("--json", "as_json", is_flag=True)
@config_option
@click.pass_context
def lookup(ctx: click.Context, number: str, plan: str | None, region: str | None, as_json: bool) -> None:
    """The rate a call to NUMBER is charged at (longest matching prefix)."""
    billing = _billing(ctx)
    name = plan or billing.plan_of(None)
    deck: RateDeck | None = billing.rates.load_deck(name)
    if deck is None:
        fail(f"no rate plan {name}")
        return
    try:
        e164 = to_e164(number, region or billing.settings.numbers.default_region)
    except ApiError as exc:
        fail(exc.message)
        return
    rate = deck.lookup(e164)
    if rate is None:
        fail(f"no rate for {e164} in plan {name}")
        return
    _show(rate, deck.currency, e164, as_json)


def _show(rate: Rate, currency: str, number: str, as_json: bool) -> None:
    data = {
        "number": number,
        "prefix": rate.prefix,
        "price_per_minute": str(rate.price_per_minute),
        "connection_fee": str(rate.connection_fee),
        "increments": rate.increments,
        "currency": currency,
        "description": rate.description,
    }
    if as_json:
        echo_json(data)
        return
    shown = format_rate(rate.price_per_minute, rate.connection_fee, currency)
    click.echo(f"{number}: prefix {rate.prefix} {shown} billed {rate.increments} {rate.description}".rstrip())


@rates.command("list")
@click.option("--plan", help="List this plan's rates instead of the plans.")
@click.option("--limit", default=50, show_default=True, help="With --plan: at most this many rates.")
@click.option("--json", "as_json", is_flag=True)
@config_option
@click.pass_context
def list_(ctx: click.Context, plan: str | None, limit: int, as_json: bool) -> None:
    """The rate plans, or one plan's rates (by prefix)."""
    billing = _billing(ctx)
    if plan is None:
        plans = billing.rates.plans()
        if as_json:
            echo_json([p.__dict__ for p in plans])
        else:
            rows = [
                (p.name, p.currency, str(p.rate_count), str(p.version), f"{p.updated_at:%F %T}")
                for p in plans
            ]
            echo_table(("PLAN", "CURRENCY", "RATES", "VERSION", "UPDATED"), rows, (20, 8, 8, 8))
        return
    info = billing.rates.find_plan(plan)
    if info is None:
        fail(f"no rate plan {plan}")
        return
    found = billing.rates.rates_of(plan, limit)
    if as_json:
        echo_json([r.__dict__ for r in found])
        return
    rate_rows = [
        (
            r.prefix,
            format_rate(r.price_per_minute, r.connection_fee, info.currency),
            str(r.increments),
            r.description,
        )
        for r in found
    ]
    echo_table(("PREFIX", "RATE", "BILLED", "DESCRIPTION"), rate_rows, (16, 24, 8))
