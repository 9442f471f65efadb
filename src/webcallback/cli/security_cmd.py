"""`webcallback security ...`: lockouts, the security events log, registered callback numbers,
and rotating the password-encryption key."""

from __future__ import annotations

import ipaddress
import time
from pathlib import Path
from typing import Any

import click

from webcallback.cli.common import config_option, echo_json, echo_table, fail, services_from, settings_from
from webcallback.errors import ApiError
from webcallback.numbers import to_e164
from webcallback.security.store import SecurityStore, subject_key


@click.group()
def security() -> None:
    """Lockouts, security events, registered numbers, key rotation."""


def _lock_keys(subject: str) -> list[str]:
    try:
        ipaddress.ip_address(subject)
    except ValueError:
        return [subject_key("user", subject)]
    return [subject_key("ip", subject), subject_key("user", subject)]


@security.command("unlock")
@click.argument("subject", metavar="USER|IP")
@config_option
@click.pass_context
def unlock(ctx: click.Context, subject: str) -> None:
    """End the lockout of a username or a client address, and forget its failed logins."""
    store = SecurityStore(services_from(ctx).db)
    found = [key for key in _lock_keys(subject) if store.unlock(key)]
    click.echo(f"unlocked {', '.join(found)}" if found else f"{subject} was not locked out")


@security.command("lockouts")
@click.option("--json", "as_json", is_flag=True)
@config_option
@click.pass_context
def lockouts(ctx: click.Context, as_json: bool) -> None:
    """Lockouts in force."""
    rows = SecurityStore(services_from(ctx).db).lockouts(time.time())
    if as_json:
        echo_json(rows)
        return
    echo_table(
        ("LOCKED", "UNTIL", "REASON"), [(r["key"], str(r["until"]), r["reason"]) for r in rows], (40, 26)
    )


@security.command("events")
@click.option("--limit", default=50, show_default=True)
@click.option("--kind", help="auth-failed, lockout, locked, rate-limited, policy-refused, limit.")
@click.option("--user", "username")
@click.option("--ip", "client_ip")
@click.option("--json", "as_json", is_flag=True)
@config_option
@click.pass_context
def events(
    ctx: click.Context,
    limit: int,
    kind: str | None,
    username: str | None,
    client_ip: str | None,
    as_json: bool,
) -> None:
    """The newest security events first."""
    rows = SecurityStore(services_from(ctx).db).events(
        limit=limit, kind=kind, username=username, client_ip=client_ip
    )
    if as_json:
        echo_json([r.as_dict() for r in rows])
        return
    table = [
        (f"{r.at:%Y-%m-%d %H:%M:%S}", r.kind, r.reason, r.username or "-", r.client_ip or "-", r.detail or "")
        for r in rows
    ]
    echo_table(("TIME", "KIND", "REASON", "USERNAME", "CLIENT", "DETAIL"), table, (19, 15, 24, 16, 16))


# ---- registered callback numbers -------------------------------------------------------------


@security.group("numbers")
def numbers() -> None:
    """Callback numbers registered per account (`security.policy.callback_must_be_registered`)."""


def _account(services: Any, username: str) -> Any:
    account = services.accounts.find(username)
    if account is None:
        fail(f"no account {username}")
    return account


def _account_and_number(services: Any, username: str, number: str) -> tuple[Any, str]:
    account = _account(services, username)
    try:
        region = account.region or services.settings.numbers.default_region
        return account, to_e164(number, region, what="callback number")
    except ApiError as exc:
        raise click.BadParameter(exc.message) from None


@numbers.command("add")
@click.argument("username")
@click.argument("number")
@config_option
@click.pass_context
def numbers_add(ctx: click.Context, username: str, number: str) -> None:
    """Register a callback number for an account."""
    services = services_from(ctx)
    account, e164 = _account_and_number(services, username, number)
    added = SecurityStore(services.db).register_number(account.id, e164, time.time())
    click.echo(f"registered {e164} for {username}" if added else f"{e164} was already registered")


@numbers.command("remove")
@click.argument("username")
@click.argument("number")
@config_option
@click.pass_context
def numbers_remove(ctx: click.Context, username: str, number: str) -> None:
    """Remove a registered callback number."""
    services = services_from(ctx)
    account, e164 = _account_and_number(services, username, number)
    if not SecurityStore(services.db).unregister_number(account.id, e164):
        fail(f"{e164} is not registered for {username}")
    click.echo(f"removed {e164} from {username}")


@numbers.command("list")
@click.argument("username")
@config_option
@click.pass_context
def numbers_list(ctx: click.Context, username: str) -> None:
    """An account's registered callback numbers."""
    services = services_from(ctx)
    account = _account(services, username)
    for number in SecurityStore(services.db).registered(account.id):
        click.echo(number)


# ---- key rotation ----------------------------------------------------------------------------


@security.command("rotate-key")
@click.option(
    "--stage",
    is_flag=True,
    help="Only add the new key (first in the file); run `security reencrypt` once every node has the file.",
)
@config_option
@click.pass_context
def rotate_key(ctx: click.Context, stage: bool) -> None:
    """Generate a new password key, put it first in the key file and re-encrypt every account."""
    from webcallback.security.keys import rotate_key_file

    settings = settings_from(ctx)
    if settings.secrets.key:
        fail(
            "the keys come from secrets.key: put a new base64 key first in it (comma-separated, old keys "
            "after), restart, then run `webcallback security reencrypt`"
        )
    path = Path(settings.secrets.key_file)
    if not path.exists():
        fail(f"key file {path} does not exist")
    kid = rotate_key_file(path)
    click.echo(f"new key {kid} is first in {path}")
    if not stage:
        _reencrypt(ctx)


@security.command("reencrypt")
@config_option
@click.pass_context
def reencrypt(ctx: click.Context) -> None:
    """Re-encrypt every account password under the first key of the key file."""
    _reencrypt(ctx)


def _reencrypt(ctx: click.Context) -> None:
    from webcallback.security.keys import keys_in_use, reencrypt_accounts

    services = services_from(ctx)
    done, skipped = reencrypt_accounts(services.db, services.cipher)
    click.echo(f"re-encrypted {done} accounts under key {services.cipher.current_key_id}")
    if skipped:
        click.echo(f"{skipped} accounts changed meanwhile; run again to check them")
    old = keys_in_use(services.db) - {services.cipher.current_key_id}
    if not old:
        click.echo("no account uses an older key: older keys may be removed from the key file")
