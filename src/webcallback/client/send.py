"""Send a CallbackRequest over an injected httpx client and interpret the answer.

The caller owns the client (its TLS settings, its lifetime); we only send and map errors, so
the same code serves tests (any transport) and the CLI. Redirects are not followed unless asked
(`follow_redirects=True`), so a provider sees a 3xx instead of having it hidden. Transport
failures become CallbackTimeout / CallbackConnectError, never raw httpx exceptions.
"""

from __future__ import annotations

import httpx

from webcallback.client.errors import CallbackConnectError, CallbackTimeout, CallbackTransportError
from webcallback.client.request import CallbackRequest
from webcallback.client.response import CallbackResult, interpret


def _auth(request: CallbackRequest) -> httpx.Auth | None:
    if request.digest_auth is None:
        return None
    return httpx.DigestAuth(*request.digest_auth)


def _extensions(request: CallbackRequest) -> dict[str, object]:
    timeout = httpx.Timeout(request.timeout)
    return {"timeout": timeout.as_dict()}


def _prepared(request: CallbackRequest) -> httpx.Request:
    prepared = request.to_httpx()
    prepared.extensions = _extensions(request)
    return prepared


def _map_error(exc: httpx.TransportError, request: CallbackRequest) -> CallbackTransportError:
    url = httpx.URL(request.url).copy_with(query=None)
    if isinstance(exc, httpx.TimeoutException):
        return CallbackTimeout(f"no response from {url} within {request.timeout:g} s")
    if isinstance(exc, httpx.ConnectError | httpx.NetworkError):
        return CallbackConnectError(f"cannot connect to {url}: {exc or type(exc).__name__}")
    return CallbackTransportError(f"request to {url} failed: {exc or type(exc).__name__}")


def send(client: httpx.Client, request: CallbackRequest, *, follow_redirects: bool = False) -> CallbackResult:
    """Send once (with a Digest round trip if configured) and apply the app's response rules."""
    try:
        response = client.send(_prepared(request), auth=_auth(request), follow_redirects=follow_redirects)
    except httpx.TransportError as exc:
        raise _map_error(exc, request) from exc
    return interpret(response.status_code, response.headers, response.content)


async def send_async(
    client: httpx.AsyncClient, request: CallbackRequest, *, follow_redirects: bool = False
) -> CallbackResult:
    """The asyncio twin of `send`."""
    try:
        response = await client.send(
            _prepared(request), auth=_auth(request), follow_redirects=follow_redirects
        )
    except httpx.TransportError as exc:
        raise _map_error(exc, request) from exc
    return interpret(response.status_code, response.headers, response.content)
