"""`webcallback calls ...`: the callbacks the service accepted and how they went."""

from __future__ import annotations

import click

from webcallback.cli.common import config_option, echo_json, fail, services_from


@click.group()
def calls() -> None:
    """Show callbacks."""


@calls.command("list")
@click.option("--limit", default=50, show_default=True)
@click.option("--state", help="Only callbacks in this state (queued, dialing, completed, failed...).")
@click.option("--user", "username", help="Only this account's callbacks.")
@click.option("--json", "as_json", is_flag=True)
@config_option
@click.pass_context
def list_(ctx: click.Context, limit: int, state: str | None, username: str | None, as_json: bool) -> None:
    """The newest callbacks first."""
    rows = services_from(ctx).callbacks.recent(limit=limit, state=state, username=username)
    if as_json:
        echo_json([r.as_dict() for r in rows])
        return
    for r in rows:
        click.echo(
            f"{r.id}  {r.created_at:%Y-%m-%d %H:%M:%S}  {r.username:16} {r.destination:16} "
            f"{r.callback:16} {r.state:10} {r.reason or ''}"
        )


@calls.command("show")
@click.argument("callback_id")
@click.option("--json", "as_json", is_flag=True)
@config_option
@click.pass_context
def show(ctx: click.Context, callback_id: str, as_json: bool) -> None:
    """One callback with its legs."""
    record = services_from(ctx).callbacks.find(callback_id)
    if record is None:
        fail(f"no callback {callback_id}")
        return
    if as_json:
        echo_json(record.as_dict())
        return
    for key, value in record.as_dict().items():
        click.echo(f"{key:14} {'' if value is None else value}")
