"""`webcallback provision xml`: the Account XML nodes for Cloud Softphone pointing at this server."""

from __future__ import annotations

import hmac
import os
import sys
from pathlib import Path

import click

from webcallback.cli.common import (
    config_option,
    password_options,
    read_password,
    services_from,
    settings_from,
)
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
@click.option(
    "--callback-number",
    help="callbackNumber node of the --account-file (default: the account's own callback number).",
)
@password_options
@config_option
@click.pass_context
def xml(
    ctx: click.Context,
    username: str,
    auth: Auth,
    fmt: Format,
    account_file: str | None,
    callback_number: str | None,
    password: str | None,
    password_stdin: bool,
) -> None:
    """Print the Account XML nodes (wcb_*, genericBalanceCheck*, genericRateCheck*) for USERNAME.

    With --account-file, also write a whole Account XML with the account's callback number and
    its password (asked for in a terminal unless given; checked against the stored one, so that
    `webcallback client call` does not count failed logins). Leave the prompt empty, or run it
    without a terminal, to leave the password out."""
    settings = settings_from(ctx)
    result = build_provisioning(settings, auth, fmt)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(render_nodes(result.nodes))
    if not account_file:
        return
    services = services_from(ctx)
    account = services.accounts.find(username)
    if account is None:
        click.echo(f"warning: there is no account {username} (webcallback account add)", err=True)
    if callback_number is None:
        callback_number = (account.callback_number if account else None) or ""
    if password is None and not password_stdin and sys.stdin.isatty():
        password = click.prompt(
            f"Password of {username} for {account_file} (empty: leave it out)",
            default="",
            show_default=False,
            hide_input=True,
        )
    else:
        password = read_password(password, password_stdin, None)
    if password and account is not None:
        stored = services.cipher.decrypt(account.username, account.password_enc, account.key_id)
        if not hmac.compare_digest(stored.encode(), password.encode()):
            click.echo(
                f"warning: that is not {username}'s stored password: requests made with "
                f"{account_file} will fail and count as failed logins",
                err=True,
            )
    text = account_xml(username, callback_number, password or None, result.nodes)
    _write_private(Path(account_file), text)
    click.echo(f"wrote {account_file}" + ("" if password else " (without a password)"), err=True)


def _write_private(path: Path, text: str) -> None:
    """Mode 0600: the file may hold the password."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
