"""`webcallback client`: send the request the Acrobits app would send, and show what it would show.

A thin layer over `webcallback.client`; it imports nothing else from the server so that a
provider can run it anywhere httpx and click are installed. Exit status: 0 the server accepted
(and, when followed, the callback completed); 1 the server refused (non-2xx) or the callback
failed; 2 no usable answer (timeout, connection error) or a local problem (bad account file).
"""

from __future__ import annotations

import ssl
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import click
import httpx

from webcallback.client import (
    CallbackRequest,
    CallbackResult,
    ClientError,
    Options,
    build_request,
    load_account,
    normalize_number,
    send,
)
from webcallback.client.account import Account, account_from_mapping
from webcallback.client.errors import CallbackTransportError
from webcallback.client.request import USER_AGENT
from webcallback.client.status import CallbackStatus, poll, status_base_url

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_REFUSED, EXIT_NO_ANSWER = 0, 1, 2


@dataclass(frozen=True)
class Emulation:
    """The request-shaping options common to `call` and `check`."""

    account: str
    password_stdin: bool
    options: Options
    follow_redirects: bool
    verify: ssl.SSLContext | bool


def _parse_params(pairs: tuple[str, ...]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        name, eq, value = pair.partition("=")
        if not eq or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint="--param")
        params[name] = value
    return params


def _emulation_options(func: F) -> F:
    decorators = [
        click.option(
            "--account",
            "account",
            required=True,
            type=click.Path(dir_okay=False),
            help="Account XML file (as exported/provisioned for Cloud Softphone).",
        ),
        click.option(
            "--password-stdin",
            is_flag=True,
            help="Read the account's password from standard input when the file has none "
            "(in a terminal it is asked for).",
        ),
        click.option("--installid", help="Value of the global parameter %installid%."),
        click.option("--appid", help="Value of the global parameter %appid%."),
        click.option(
            "--param",
            "params",
            multiple=True,
            metavar="NAME=VALUE",
            help="Any other global parameter, e.g. --param platform=ios. Repeatable.",
        ),
        click.option(
            "--raw-substitution",
            is_flag=True,
            help="Substitute values unescaped (naive templating) instead of URL/JSON/XML-escaping.",
        ),
        click.option(
            "--sha1-format",
            type=click.Choice(["hex", "base64"]),
            default="hex",
            show_default=True,
            help="Output of %sha1(...)% (the app's real format is undocumented).",
        ),
        click.option("--nonce", help="Use this %nonce% instead of a fresh random one."),
        click.option("--user-agent", default=USER_AGENT, show_default=True),
        click.option(
            "--follow-redirects",
            is_flag=True,
            help="Follow 3xx responses (default: report them as the failure they are here).",
        ),
        click.option(
            "--cacert",
            type=click.Path(exists=True, dir_okay=False),
            help="Trust this CA/self-signed certificate (PEM) for https.",
        ),
        click.option("--insecure", is_flag=True, help="Do not verify the server's TLS certificate."),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def _emulation(kw: dict[str, Any]) -> Emulation:
    params = _parse_params(kw.pop("params"))
    for name in ("installid", "appid"):
        value = kw.pop(name)
        if value is not None:
            params[name] = value
    options = Options(
        params, kw.pop("raw_substitution"), kw.pop("user_agent"), kw.pop("sha1_format"), kw.pop("nonce")
    )
    cacert, insecure = kw.pop("cacert"), kw.pop("insecure")
    verify: ssl.SSLContext | bool = not insecure
    if cacert and not insecure:
        verify = ssl.create_default_context(cafile=cacert)
    return Emulation(kw.pop("account"), kw.pop("password_stdin"), options, kw.pop("follow_redirects"), verify)


def _fail(message: str, code: int = EXIT_NO_ANSWER) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _build(emulation: Emulation, number: str, *, sending: bool = True) -> CallbackRequest:
    try:
        account = load_account(emulation.account)
        if sending:  # a dry run shows what the app would send with the file as it is
            account = _with_password(emulation, account)
        return build_request(account, normalize_number(number), emulation.options)
    except ClientError as exc:
        _fail(str(exc))


_PASSWORD_NODES = ("wcb_url", "wcb_postData", "wcb_customHeaders", "wcb_authPassword")


def _with_password(emulation: Emulation, account: Account) -> Account:
    """An account file without `<password>` whose templates need one: the password from
    `--password-stdin` or asked for in a terminal. Otherwise refused here, before anything is
    sent: the request would only fail, and count as a failed login towards the lockout."""
    if account.get("password") or not any("account[password]" in account.get(n) for n in _PASSWORD_NODES):
        return account
    if emulation.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = click.prompt(f"Password of {account.get('username') or 'the account'}", hide_input=True)
    else:
        _fail(f"{emulation.account} has no <password> and its templates need one: give --password-stdin")
    if not password:
        _fail("no password given")
    return account_from_mapping({**account.nodes, "password": password})


def _http(emulation: Emulation) -> httpx.Client:
    # trust_env=False: no proxy or netrc from the shell, so the request is exactly the printed one.
    return httpx.Client(verify=emulation.verify, trust_env=False)


def _send(emulation: Emulation, request: CallbackRequest) -> CallbackResult:
    try:
        with _http(emulation) as http:
            return send(http, request, follow_redirects=emulation.follow_redirects)
    except CallbackTransportError as exc:
        _fail(str(exc))


def _shown(result: CallbackResult) -> str:
    """The text the app would put in its message box."""
    if result.source == "empty":
        return f"(HTTP {result.status} with an empty body)"
    return result.message


@click.group("client")
def client() -> None:
    """Act as the Acrobits app: send a web callback request and show what the app would show."""


@client.command("call")
@click.argument("number")
@_emulation_options
@click.option("--dry-run", is_flag=True, help="Print the exact HTTP request instead of sending it.")
def call(number: str, dry_run: bool, **kw: Any) -> None:
    """Request a callback to NUMBER, as typed on the keypad (e.g. '+1 (555) 123-1234')."""
    emulation = _emulation(kw)
    request = _build(emulation, number, sending=not dry_run)
    for note in request.notes:
        click.echo(f"note: {note}", err=True)
    if dry_run and request.digest_auth:
        click.echo(
            f"note: HTTP Digest as {request.digest_auth[0]!r} after the server's 401 challenge", err=True
        )
    if dry_run:
        click.echo(request.wire())
        return
    result = _send(emulation, request)
    click.echo(_shown(result))
    sys.exit(EXIT_OK if result.ok else EXIT_REFUSED)


@client.command("check")
@click.argument("number")
@_emulation_options
@click.option("--token", help="Bearer token of a webcallback server's status API: follow the call.")
@click.option("--status-url", help="Base URL of the status API (default: the origin of wcb_url).")
@click.option("--poll-interval", type=float, default=1.0, show_default=True, help="Seconds between polls.")
@click.option(
    "--poll-timeout",
    type=float,
    default=120.0,
    show_default=True,
    help="Give up following the callback after this many seconds.",
)
def check(
    number: str,
    token: str | None,
    status_url: str | None,
    poll_interval: float,
    poll_timeout: float,
    **kw: Any,
) -> None:
    """Run one callback to NUMBER against any provider's server and report each step."""
    emulation = _emulation(kw)
    request = _build(emulation, number)
    click.echo(
        f"1. request: {request.method} {httpx.URL(request.url).copy_with(query=None)}"
        f" ({len(request.body)} body bytes, timeout {request.timeout:g} s"
        f"{', digest auth' if request.digest_auth else ''})"
    )
    for note in request.notes:
        click.echo(f"   note: {note}")
    result = _send(emulation, request)
    click.echo(
        f"2. response: HTTP {result.status}, Content-Type {result.content_type or '(none)'},"
        f" {len(result.body)} bytes"
    )
    if result.location:
        click.echo(f"   redirect to {result.location}: the app reports this as an error; fix wcb_url")
    origin = {"message": " (from the message field)", "body": " (first 100 characters of the body)"}
    click.echo(f"3. the app shows: {_shown(result)}{origin.get(result.source, '')}")
    if not result.ok:
        sys.exit(EXIT_REFUSED)
    if result.callback_id is None:
        click.echo("4. no callback id in the response: nothing more to follow")
        return
    if not token:
        click.echo(f"4. callback id {result.callback_id}; pass --token to follow it on a webcallback server")
        return
    base = status_url or status_base_url(request.url)
    click.echo(f"4. following callback {result.callback_id} at {base}")
    final = _follow(emulation, base, result.callback_id, token, poll_interval, poll_timeout)
    sys.exit(EXIT_OK if final.state == "completed" else EXIT_REFUSED)


def _follow(
    emulation: Emulation, base: str, callback_id: str, token: str, interval: float, deadline: float
) -> CallbackStatus:
    last: CallbackStatus | None = None
    try:
        with _http(emulation) as http:
            for status in poll(http, base, callback_id, token, interval=interval, deadline=deadline):
                reason = f" ({status.reason})" if status.reason else ""
                click.echo(f"   state: {status.state}{reason}")
                last = status
    except ClientError as exc:
        _fail(str(exc))
    assert last is not None  # poll yields at least once or raises
    return last
