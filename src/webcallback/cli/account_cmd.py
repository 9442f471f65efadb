"""`webcallback account ...`: manage who may request callbacks."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import click

from webcallback.cli.common import (
    config_option,
    echo_json,
    echo_table,
    fail,
    password_options,
    read_password,
    services_from,
)
from webcallback.errors import ApiError
from webcallback.numbers import to_e164
from webcallback.store.accounts import AccountExists, NoSuchAccount
from webcallback.store.billing import CreditStore, RateStore


def _money(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise click.BadParameter(f"{text!r} is not an amount") from None
    if not value.is_finite():
        raise click.BadParameter(f"{text!r} is not an amount")
    return value


def _region(text: str | None) -> str | None:
    if text is None:
        return None
    if len(text) != 2 or not text.isalpha():
        raise click.BadParameter("region must be a two-letter ISO country code, e.g. US")
    return text.upper()


def _callback_number(text: str | None, region: str | None) -> str | None:
    if not text:
        return None
    try:
        return to_e164(text, region, what="callback number")
    except ApiError as exc:
        raise click.BadParameter(exc.message) from None


@click.group()
def account() -> None:
    """Manage accounts."""


@account.command("add")
@click.argument("username")
@password_options
@click.option("--callback-number", help="The user's phone, used when the app sends none.")
@click.option("--credit", default="0", help="Starting balance.")
@click.option("--currency", default="USD", show_default=True)
@click.option("--region", help="ISO country for national-format numbers, e.g. US.")
@click.option("--plan", help="Rate plan (default: billing.default_plan).")
@config_option
@click.pass_context
def add(
    ctx: click.Context,
    username: str,
    password: str | None,
    password_stdin: bool,
    callback_number: str | None,
    credit: str,
    currency: str,
    region: str | None,
    plan: str | None,
) -> None:
    """Create an account (the password is asked for unless given; it is stored encrypted). A
    starting credit is recorded in the ledger as a top-up."""
    password = read_password(password, password_stdin, f"Password for {username}") or ""
    services = services_from(ctx)
    region = _region(region)
    enc, kid = services.cipher.encrypt(username, password)
    _check_plan(services, plan)
    try:
        acct = services.accounts.add(
            username,
            password_enc=enc,
            key_id=kid,
            callback_number=_callback_number(callback_number, region),
            region=region,
            currency=currency.upper(),
            plan=plan,
        )
    except AccountExists:
        fail(f"account {username} already exists")
        return
    amount = _money(credit) or Decimal(0)
    if amount:
        CreditStore(services.db).topup(acct.id, amount, note="opening balance")
    click.echo(f"added {acct.username}")


def _check_plan(services: Any, plan: str | None) -> None:
    if plan and RateStore(services.db).find_plan(plan) is None:
        click.echo(f"warning: there is no rate plan {plan} yet (webcallback rates import)", err=True)


@account.command("set")
@click.argument("username")
@password_options
@click.option("--ask-password", is_flag=True, help="Ask for a new password (typed twice, not shown).")
@click.option("--callback-number")
@click.option("--credit", help="Set the balance to this amount (an adjustment in the ledger).")
@click.option("--currency")
@click.option("--region")
@click.option("--plan", help="Rate plan; an empty value means billing.default_plan.")
@click.option("--enable/--disable", "enabled", default=None)
@config_option
@click.pass_context
def set_(
    ctx: click.Context,
    username: str,
    password: str | None,
    password_stdin: bool,
    ask_password: bool,
    callback_number: str | None,
    credit: str | None,
    currency: str | None,
    region: str | None,
    plan: str | None,
    enabled: bool | None,
) -> None:
    """Change an account."""
    password = read_password(
        password, password_stdin, f"New password for {username}" if ask_password else None
    )
    services = services_from(ctx)
    if plan is not None:
        _check_plan(services, plan)
        values_plan: dict[str, Any] = {"plan": plan or None}
    else:
        values_plan = {}
    values: dict[str, Any] = dict(values_plan)
    if password is not None:
        values["password_enc"], values["key_id"] = services.cipher.encrypt(username, password)
    if region is not None:
        values["region"] = _region(region)
    if callback_number is not None:
        existing = services.accounts.find(username)
        values["callback_number"] = _callback_number(
            callback_number, values.get("region") or (existing.region if existing else None)
        )
    if currency is not None:
        values["currency"] = currency.upper()
    if enabled is not None:
        values["enabled"] = enabled
    _update(services, username, values)
    if credit is not None:
        acct = services.accounts.get(username)
        CreditStore(services.db).set_balance(
            acct.id, _money(credit) or Decimal(0), note="account set --credit"
        )
    click.echo(f"updated {username}")


def _update(services: Any, username: str, values: dict[str, Any]) -> None:
    try:
        services.accounts.update(username, **values)
    except NoSuchAccount:
        fail(f"no account {username}")


@account.command("disable")
@click.argument("username")
@config_option
@click.pass_context
def disable(ctx: click.Context, username: str) -> None:
    """Refuse callbacks for an account (403) without deleting it."""
    _update(services_from(ctx), username, {"enabled": False})
    click.echo(f"disabled {username}")


@account.command("enable")
@click.argument("username")
@config_option
@click.pass_context
def enable(ctx: click.Context, username: str) -> None:
    """Allow a disabled account again."""
    _update(services_from(ctx), username, {"enabled": True})
    click.echo(f"enabled {username}")


@account.command("show")
@click.argument("username")
@config_option
@click.pass_context
def show(ctx: click.Context, username: str) -> None:
    """Show an account (never its password)."""
    acct = services_from(ctx).accounts.find(username)
    if acct is None:
        fail(f"no account {username}")
    echo_json(acct.public())


@account.command("list")
@click.option("--json", "as_json", is_flag=True)
@config_option
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List accounts."""
    accounts = services_from(ctx).accounts.all()
    if as_json:
        echo_json([a.public() for a in accounts])
        return
    rows = [
        (
            a.username,
            a.callback_number or "-",
            a.region or "--",
            str(a.balance.normalize()),
            a.currency,
            "enabled" if a.enabled else "disabled",
        )
        for a in accounts
    ]
    echo_table(("USERNAME", "CALLBACK", "REGION", "BALANCE", "CURRENCY", "STATE"), rows, (20, 16, 6, 12, 8))


@account.command("delete")
@click.argument("username")
@config_option
@click.pass_context
def delete(ctx: click.Context, username: str) -> None:
    """Delete an account (its callbacks stay, for the records)."""
    try:
        services_from(ctx).accounts.delete(username)
    except NoSuchAccount:
        fail(f"no account {username}")
    click.echo(f"deleted {username}")


@account.command("topup")
@click.argument("username")
@click.argument("amount")
@click.option("--note", help="Why (kept in the ledger).")
@config_option
@click.pass_context
def topup(ctx: click.Context, username: str, amount: str, note: str | None) -> None:
    """Add AMOUNT (positive) to the balance; the ledger records it."""
    value = _money(amount)
    if value is None or value <= 0:
        raise click.BadParameter("the amount must be positive", param_hint="AMOUNT")
    services = services_from(ctx)
    acct = services.accounts.find(username)
    if acct is None:
        fail(f"no account {username}")
        return
    entry = CreditStore(services.db).topup(acct.id, value, note=note)
    click.echo(
        f"{username}: +{entry.amount.normalize()} {entry.currency}, balance {entry.balance_after.normalize()}"
    )


@account.command("ledger")
@click.argument("username")
@click.option("--limit", type=int, help="At most this many entries (oldest first).")
@click.option("--json", "as_json", is_flag=True)
@config_option
@click.pass_context
def ledger_(ctx: click.Context, username: str, limit: int | None, as_json: bool) -> None:
    """Every change of the account's balance: top-ups, adjustments, call charges."""
    services = services_from(ctx)
    acct = services.accounts.find(username)
    if acct is None:
        fail(f"no account {username}")
        return
    entries = CreditStore(services.db).ledger(acct.id, limit)
    if as_json:
        echo_json([e.as_dict() for e in entries])
        return
    rows = [
        (
            str(e.id),
            f"{e.created_at:%Y-%m-%d %H:%M:%S}",
            e.kind,
            f"{e.amount:>14}",
            f"{e.balance_after:>14}",
            e.currency,
            e.callback_id or "",
            e.note or "",
        )
        for e in entries
    ]
    echo_table(
        ("ID", "TIME", "KIND", "AMOUNT", "BALANCE", "CURRENCY", "CALLBACK", "NOTE"),
        rows,
        (6, 19, 7, 14, 14, 8, 16),
    )
