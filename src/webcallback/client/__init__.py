"""An app-exact Acrobits web callback client, for providers testing their setup.

It builds the request Cloud Softphone / Groundwire would send from an Account XML file (template
expansion, escaping, password guard, nonce + sha1, Digest auth, timeout) and applies the app's
response rules. Importable without the server: it needs only the stdlib and httpx (click for the
CLI in `webcallback.cli.client_cmd`).

    account = load_account("account.xml")
    request = build_request(account, normalize_number("+1 (555) 123-1234"))
    with httpx.Client() as http:
        result = send(http, request)
    print(result.message)
"""

from webcallback.client.account import Account, account_from_mapping, load_account, parse_account
from webcallback.client.errors import (
    AccountError,
    CallbackConnectError,
    CallbackTimeout,
    CallbackTransportError,
    ClientError,
    StatusError,
    TemplateError,
)
from webcallback.client.numbers import NumberError, normalize_number
from webcallback.client.request import USER_AGENT, CallbackRequest, Options, build_request
from webcallback.client.response import WAITING_FOR_CALL, CallbackResult, interpret
from webcallback.client.send import send, send_async
from webcallback.client.status import CallbackStatus, poll, poll_async
from webcallback.client.template import Context, Expansion, expand

__all__ = [
    "USER_AGENT",
    "WAITING_FOR_CALL",
    "Account",
    "AccountError",
    "CallbackConnectError",
    "CallbackRequest",
    "CallbackResult",
    "CallbackStatus",
    "CallbackTimeout",
    "CallbackTransportError",
    "ClientError",
    "Context",
    "Expansion",
    "NumberError",
    "Options",
    "StatusError",
    "TemplateError",
    "account_from_mapping",
    "build_request",
    "expand",
    "interpret",
    "load_account",
    "normalize_number",
    "parse_account",
    "poll",
    "poll_async",
    "send",
    "send_async",
]
