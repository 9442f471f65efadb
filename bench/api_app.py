"""The ASGI app served by bench/api_throughput.py: the real service (`create_app(build_services)`)
plus a raw-ASGI "hello" on `/hello`, in the same process, so both are measured on the same server and
worker count. The hello drains the request body (the same POST the real endpoint gets) and answers a
fixed 35-byte JSON; every other path goes to the real app untouched.

Settings come from the environment, as `webcallback run` reads them (WEBCALLBACK_* variables); the
schema is migrated by the harness before the server starts, so workers do not race on it.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from webcallback.config import load_settings
from webcallback.service.container import build_services
from webcallback.service.maintenance import housekeeping
from webcallback.web.app import create_app

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HELLO_BODY = b'{"message":"ok","user":"benchuser1"}'
HELLO_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(HELLO_BODY)).encode())]


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    more = scope["method"] != "GET"
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HELLO_HEADERS})
    await send({"type": "http.response.body", "body": HELLO_BODY})


def create() -> ASGIApp:
    settings = load_settings(path=os.devnull, environ=dict(os.environ))
    services = build_services(settings, migrate=False)
    # The lifespan hook `webcallback run` has with no engine: nonce pruning and, on SQLite, the WAL
    # checkpoints in a background thread.
    app = create_app(services, lifespan_hooks=[housekeeping])

    async def combined(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/hello":
            await hello(scope, receive, send)
        else:
            await app(scope, receive, send)

    return combined
