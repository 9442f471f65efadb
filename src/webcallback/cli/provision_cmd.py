"""`webcallback provision xml`: the Account XML nodes for Cloud Softphone pointing at this server."""

from __future__ import annotations

from pathlib import Path

import click

from webcallback.cli.common import config_option, settings_from
from webcallback.provisioning import (
    AUTH_CHOICES,
    FORMAT_CHOICES,
    Auth,
    Format,
    account_xml,
    build_provisioning,
    render_nodes,
)


@click.group("provision")
def provision() -> None:
    """Configure the Acrobits app for this server."""


@provision.command("xml")
@click.argument("username")
@click.option(
    "--auth",
    type=click.Choice(AUTH_CHOICES),
    default="password",
    show_default=True,
    help="password: %account[password]% (https only); nonce-sha1: a salted SHA-1 per request.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMAT_CHOICES),
    default="json",
    show_default=True,
    help="How the app sends the parameters: JSON, form or XML body, or a GET query string.",
)
@click.option(
    "--account-file",
    type=click.Path(dir_okay=False, writable=True),
    help="Also write a complete Account XML (for `webcallback client call --account`).",
)
@click.option("--callback-number", default="", help="callbackNumber node of the --account-file.")
@click.option("--password", help="Put this password node in the --account-file (left out otherwise).")
@config_option
@click.pass_context
def xml(
    ctx: click.Context,
    username: str,
    auth: Auth,
    fmt: Format,
    account_file: str | None,
    callback_number: str,
    password: str | None,
) -> None:
    """Print the Account XML nodes (wcb_*, genericBalanceCheck*, genericRateCheck*) for USERNAME."""
    result = build_provisioning(settings_from(ctx), auth, fmt)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(render_nodes(result.nodes))
    if account_file:
        Path(account_file).write_text(account_xml(username, callback_number, password, result.nodes), "utf-8")
        click.echo(f"wrote {account_file}", err=True)
