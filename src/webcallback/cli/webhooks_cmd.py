"""`webcallback webhooks ...` (the outbox and its delivery log) and `webcallback account webhook
...` (an account's own webhook)."""

from __future__ import annotations

import sys

import click

from webcallback.cli.common import config_option, echo_json, echo_table, fail, services_from


@click.group("webhooks")
def webhooks_group() -> None:
    """Webhook deliveries (the outbox)."""


@webhooks_group.command("list")
@click.option("--state", type=click.Choice(["pending", "delivered", "dead"]), help="Only these.")
@click.option("--limit", default=50, show_default=True)
@click.option("--attempts", "show_attempts", type=int, help="The delivery log of this delivery id.")
@click.option("--json", "as_json", is_flag=True)
@config_option
@click.pass_context
def list_(
    ctx: click.Context, state: str | None, limit: int, show_attempts: int | None, as_json: bool
) -> None:
    """The newest deliveries first (or one delivery's attempts)."""
    from webcallback.service import webhooks

    services = services_from(ctx)
    if show_attempts is not None:
        log = webhooks.delivery_log(services, show_attempts)
        if as_json:
            echo_json(log)
            return
        rows = [
            (
                f"{a['at']:%Y-%m-%d %H:%M:%S}",
                str(a["status"] or ""),
                f"{a['seconds']:.3f}",
                str(a["error"] or ""),
            )
            for a in log
        ]
        echo_table(("AT", "STATUS", "SECONDS", "ERROR"), rows, (19, 6, 8))
        return
    found = webhooks.deliveries(services, state, limit)
    if as_json:
        echo_json([r.__dict__ for r in found])
        return
    table = [
        (
            str(r.id),
            str(r.event_id),
            r.event_type,
            r.callback_id,
            r.target,
            r.state,
            str(r.attempts),
            str(r.last_status or r.last_error or ""),
            r.url,
        )
        for r in found
    ]
    echo_table(
        ("ID", "EVENT", "TYPE", "CALLBACK", "TARGET", "STATE", "TRIES", "LAST", "URL"),
        table,
        (6, 7, 18, 16, 8, 9, 5, 24),
    )


@webhooks_group.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--dead", "all_dead", is_flag=True, help="Every delivery given up.")
@config_option
@click.pass_context
def retry(ctx: click.Context, ids: tuple[int, ...], all_dead: bool) -> None:
    """Queue these deliveries (or all dead ones) for an attempt now, with a fresh count."""
    from webcallback.service import webhooks

    if not ids and not all_dead:
        fail("name delivery ids, or --dead", 2)
    count = webhooks.retry(services_from(ctx), ids, dead=all_dead)
    click.echo(f"{count} deliveries queued")


@click.command("webhook")
@click.argument("username")
@click.option("--url", help="Where this account's events are POSTed (https://).")
@click.option("--secret-stdin", is_flag=True, help="Read the signing secret from stdin.")
@click.option("--events", "types", default="", help="Comma-separated event types (default: all).")
@click.option("--clear", is_flag=True, help="Remove the account's webhook.")
@click.option("--allow-http", is_flag=True, help="Accept an http:// URL (labs).")
@config_option
@click.pass_context
def account_webhook(
    ctx: click.Context,
    username: str,
    url: str | None,
    secret_stdin: bool,
    types: str,
    clear: bool,
    allow_http: bool,
) -> None:
    """Show, set or clear an account's own webhook."""
    from webcallback.service import webhooks

    services = services_from(ctx)
    try:
        if clear:
            click.echo("removed" if webhooks.clear_account_webhook(services, username) else "no webhook")
        elif url:
            secret = sys.stdin.readline().strip() if secret_stdin else None
            events = tuple(t.strip() for t in types.split(",") if t.strip())
            webhooks.set_account_webhook(
                services, username, webhooks.check_url(url, allow_http=allow_http), secret, events
            )
            click.echo(f"webhook of {username}: {url}" + (" (signed)" if secret else " (unsigned)"))
        else:
            echo_json(webhooks.account_webhook(services, username))
    except LookupError:
        fail(f"no account {username}")
    except ValueError as exc:
        fail(str(exc), 2)
