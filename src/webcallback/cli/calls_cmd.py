"""`webcallback calls ...`: the callbacks the service accepted and how they went."""

from __future__ import annotations

from typing import Any

import click

from webcallback.cli.common import config_option, echo_json, echo_table, fail, services_from


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
    table = [
        (
            r.id,
            f"{r.created_at:%Y-%m-%d %H:%M:%S}",
            r.username,
            r.destination,
            r.callback,
            r.state,
            r.reason or "",
        )
        for r in rows
    ]
    echo_table(
        ("ID", "CREATED", "USERNAME", "DESTINATION", "CALLBACK", "STATE", "REASON"),
        table,
        (16, 19, 16, 16, 16, 10),
    )


@calls.command("show")
@click.argument("callback_id")
@click.option("--json", "as_json", is_flag=True)
@config_option
@click.pass_context
def show(ctx: click.Context, callback_id: str, as_json: bool) -> None:
    """One callback with its legs and CDR."""
    from webcallback.service.status import StatusService

    view = StatusService(services_from(ctx).db).show(callback_id)
    if view is None:
        fail(f"no callback {callback_id}")
        return
    if as_json:
        echo_json(view)
        return
    legs, cdr = view.pop("legs"), view.pop("cdr")
    for key, value in view.items():
        click.echo(f"{key:14} {_text(value)}")
    for role, leg in legs.items():
        click.echo(f"\nleg {role}:" + ("" if leg else " (not dialled)"))
        for key, value in (leg or {}).items():
            if key == "attempts":
                _echo_attempts(value)
            else:
                click.echo(f"  {key:12} {_text(value)}")
    click.echo("\ncdr:" + ("" if cdr else " (not yet: the callback has not ended)"))
    if cdr:
        _echo_cdr(cdr)


def _echo_attempts(attempts: list[dict[str, Any]]) -> None:
    """One line per trunk the leg was tried on (several trunks: failover)."""
    for i, a in enumerate(attempts, 1):
        code = f" {a['sip_code']}" if a.get("sip_code") is not None else ""
        click.echo(f"  {'attempt ' + str(i):12} {a['trunk']} {a['number']}:{code} {_text(a.get('result'))}")


def _echo_cdr(cdr: dict[str, Any]) -> None:
    for key, value in cdr.items():
        if key != "legs":
            click.echo(f"  {key:12} {_text(value)}")
    for role, times in cdr["legs"].items():
        click.echo(f"  {role:12} " + "  ".join(f"{k}={_text(v)}" for k, v in times.items()))


def _text(value: object) -> str:
    return "" if value is None else str(value)
