"""`GET /metrics` (Prometheus text format) and the ASGI middleware that observes every request.

`/metrics` needs `Authorization: Bearer <api.token>` when a token is set (401 otherwise); without
a token it is open, as Prometheus scrapes usually are on a private network. Requests are labelled
by route template (`/api/v1/callbacks/{callback_id}`), never by the raw path, so the number of
series stays bounded; a path no route matched is `unmatched`.
"""

from __future__ import annotations

import hmac
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from webcallback.errors import AuthenticationFailed
from webcallback.service.container import Services
from webcallback.service.metrics import CONTENT_TYPE, Metrics
from webcallback.store.gauges import StoreGauges


class MetricsApi:
    def __init__(self, services: Services) -> None:
        token = services.settings.api.token
        self._token = token.reveal().encode() if token else None
        self._services = services
        self._gauges = StoreGauges(services.db)

    async def scrape(self, request: Request) -> Response:
        if self._token is not None:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self._token):
                raise AuthenticationFailed("A valid bearer token is needed.", error_id="bad-token")
        metrics = self._services.metrics
        await self._services.db.run(metrics.read_store, self._gauges)
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    def routes(self) -> list[BaseRoute]:
        return [Route("/metrics", self.scrape, methods=["GET"])]


class HttpMetrics:
    """Pure ASGI middleware (no response buffering): status from the response start, duration to
    the end of the body. An exception that escapes (answered 500 outside) counts as 500."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        sending = ResponseStatus(send)
        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            elapsed = time.perf_counter() - started
            self.metrics.http_request(template, scope["method"], sending.status, elapsed)


class ResponseStatus:
    """An ASGI `send` that passes every message on and notes the response's status (500 until
    the response starts: what an exception escaping the app is answered with)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.status = 500

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self._send(message)
