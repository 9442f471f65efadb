"""Follow a callback on OUR server through its status API (`GET /api/v1/callbacks/{id}`).

Only webcallback servers offer this; other providers' servers just answer the web callback. The
shape we rely on: 200 JSON `{"id": ..., "state": "queued|dialing|bridged|completed|failed",
"reason": ..., "legs": {...}}`, with a bearer token. Request building and parsing are pure; the
poll loops take the client and a sleep function so tests run without waiting.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from webcallback.client.errors import CallbackConnectError, CallbackTimeout, StatusError

TERMINAL_STATES = frozenset({"completed", "failed"})
STATUS_PATH = "/api/v1/callbacks/{id}"


@dataclass(frozen=True)
class CallbackStatus:
    id: str
    state: str
    reason: str | None = None
    legs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.state in TERMINAL_STATES


def status_base_url(callback_url: str) -> str:
    """The origin (scheme://host:port) of the web callback URL: the status API lives there too."""
    url = httpx.URL(callback_url)
    return str(url.copy_with(raw_path=b"/", query=None, fragment=None)).rstrip("/")


def build_status_request(base_url: str, callback_id: str, token: str) -> httpx.Request:
    path = STATUS_PATH.format(id=quote(callback_id, safe=""))
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    return httpx.Request("GET", base_url.rstrip("/") + path, headers=headers)


def parse_status(status_code: int, body: bytes) -> CallbackStatus:
    """Raises StatusError unless a 200 with the expected JSON shape."""
    if status_code != 200:
        raise StatusError(f"status API answered HTTP {status_code}: {body[:200].decode('utf-8', 'replace')}")
    try:
        data = json.loads(body)
    except ValueError:
        raise StatusError("status API answered with a body that is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("state"), str):
        raise StatusError("status API answer has no 'state'")
    legs = data.get("legs")
    reason = data.get("reason")
    return CallbackStatus(
        id=str(data.get("id", "")),
        state=data["state"],
        reason=None if reason is None else str(reason),
        legs=legs if isinstance(legs, dict) else {},
    )


def _changes(statuses: Iterator[CallbackStatus]) -> Iterator[CallbackStatus]:
    """Drop repeats so the caller sees each state change once."""
    last: CallbackStatus | None = None
    for status in statuses:
        if status != last:
            yield status
        last = status


def _fetch(client: httpx.Client, request: httpx.Request) -> CallbackStatus:
    try:
        response = client.send(request)
    except httpx.TimeoutException as exc:
        raise CallbackTimeout(f"status API did not answer: {exc}") from exc
    except httpx.TransportError as exc:
        raise CallbackConnectError(f"status API unreachable: {exc}") from exc
    return parse_status(response.status_code, response.content)


def poll(
    client: httpx.Client,
    base_url: str,
    callback_id: str,
    token: str,
    *,
    interval: float = 1.0,
    deadline: float = 120.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[CallbackStatus]:
    """Yield each new state until a terminal one; raises CallbackTimeout after `deadline` seconds."""

    def statuses() -> Iterator[CallbackStatus]:
        end = clock() + deadline
        while True:
            status = _fetch(client, build_status_request(base_url, callback_id, token))
            yield status
            if status.done:
                return
            if clock() >= end:
                raise CallbackTimeout(f"callback {callback_id} still {status.state} after {deadline:g} s")
            sleep(interval)

    return _changes(statuses())


async def poll_async(
    client: httpx.AsyncClient,
    base_url: str,
    callback_id: str,
    token: str,
    *,
    interval: float = 1.0,
    deadline: float = 120.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> CallbackStatus:
    """Poll until the callback ends and return its final status."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while True:
        try:
            response = await client.send(build_status_request(base_url, callback_id, token))
        except httpx.TransportError as exc:
            raise CallbackConnectError(f"status API unreachable: {exc}") from exc
        status = parse_status(response.status_code, response.content)
        if status.done:
            return status
        if loop.time() >= end:
            raise CallbackTimeout(f"callback {callback_id} still {status.state} after {deadline:g} s")
        await sleep(interval)
