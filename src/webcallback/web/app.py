"""The ASGI application: routes, error rendering, lifespan. Handlers stay thin; the work is in
`service/`. Errors become the app's `message` in the response format; anything unexpected is
logged with a request id and answered 500 without details (never a traceback, never a secret)."""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from webcallback.errors import SERVICE_UNAVAILABLE, ApiError, ServiceUnavailable, TooManyRequests
from webcallback.logs import bind_callback
from webcallback.service.callbacks import CallbackRequest
from webcallback.service.container import LifespanHook, Services
from webcallback.service.health import OUTAGE_ERRORS, outage_summary
from webcallback.store.callbacks import Callback
from webcallback.web.access import AccessLog, log_refusal, note
from webcallback.web.billing_routes import BillingApi
from webcallback.web.client_info import TrustedProxies
from webcallback.web.inputs import read_input, response_format
from webcallback.web.metrics import HttpMetrics, MetricsApi
from webcallback.web.openapi import openapi_document
from webcallback.web.params import pick
from webcallback.web.responses import respond, respond_empty

log = logging.getLogger(__name__)

# Seconds a client is told to wait before retrying when the database is out.
OUTAGE_RETRY_AFTER = 5


class WebCallbackApi:
    """Holds the services and serves the app-facing endpoints."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings
        self.proxies = TrustedProxies(services.settings.server.trusted_proxies)

    async def webcallback(self, request: Request) -> Response:
        try:
            callback = await self._request_callback(request)
        except ApiError as exc:
            self.services.metrics.callback_refused(exc.error_id)
            raise
        bind_callback(callback.id)  # on this request's remaining lines, the access line included
        self.services.metrics.callback_accepted()
        if self.settings.api.success_body == "empty":
            return respond_empty(200)
        return respond(
            response_format(request, self.settings), 200, {"id": callback.id, "state": callback.state}
        )

    async def _request_callback(self, request: Request) -> Callback:
        api_input = await read_input(request, self.settings, self.proxies)
        names, values = self.settings.api.params, api_input.params.values
        return await self.services.callback_service.request_callback(
            CallbackRequest(
                credentials=api_input.credentials,
                target=pick(values, names.target, "destination number"),
                callback=pick(values, names.callback, "callback number"),
                client_ip=api_input.client.address,
                status_url=values.get(self.settings.webhooks.request_url_param),
            )
        )

    async def live(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(self, request: Request) -> Response:
        problems = await self.services.health.problems()
        if not problems:
            return JSONResponse({"status": "ok"})
        body = {"status": "unavailable", "problems": problems, "message": SERVICE_UNAVAILABLE}
        return JSONResponse(body, 503, headers={"Retry-After": str(OUTAGE_RETRY_AFTER)})

    async def outage(self, request: Request, exc: Exception) -> Response:
        """A store call failed because the database is unreachable or failing: 503 with the app's
        message, one WARNING line (no traceback: nothing is wrong with the request or the code)."""
        self.services.db.note_outage()
        unavailable = ServiceUnavailable(retry_after=OUTAGE_RETRY_AFTER)
        note(request, error_id=unavailable.error_id)
        log.warning("%s %s: database unavailable (%s)", request.method, request.url.path, outage_summary(exc),
                    extra={"error_id": unavailable.error_id})  # fmt: skip
        return self._render_error(request, unavailable)

    async def api_error(self, request: Request, exc: Exception) -> Response:
        """A refusal: logged once (web/access.py), answered in the request's format."""
        assert isinstance(exc, ApiError)
        log_refusal(request, exc)
        return self._render_error(request, exc)

    def _render_error(self, request: Request, exc: ApiError) -> Response:
        retry_after = exc.retry_after if isinstance(exc, TooManyRequests | ServiceUnavailable) else None
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        fields = {"message": exc.message, "error": exc.error_id}
        response = respond(response_format(request, self.settings), exc.status_code, fields, headers)
        for name, value in exc.headers:
            response.raw_headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
        return response

    async def http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        fields = {"message": str(exc.detail), "error": "http-" + str(exc.status_code)}
        note(request, error_id=fields["error"])
        return respond(response_format(request, self.settings), exc.status_code, fields, exc.headers)

    async def client_gone(self, request: Request, exc: Exception) -> Response:
        # Not our fault and nobody to answer: one quiet line, not a traceback (uvicorn drops the
        # response to a disconnected client).
        log.debug("client disconnected during %s %s", request.method, request.url.path)
        return respond_empty(499)

    async def unexpected_error(self, request: Request, exc: Exception) -> Response:
        request_id = secrets.token_hex(6)
        log.error("request %s %s %s failed", request_id, request.method, request.url.path, exc_info=exc)
        fields = {"message": f"Internal error (request {request_id}).", "error": "internal-error"}
        return respond(response_format(request, self.settings), 500, fields)

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_document(self.settings))

    def routes(self) -> list[BaseRoute]:
        path = "/" + self.settings.api.path.strip("/")
        methods = ["GET", "POST"]
        routes: list[BaseRoute] = [
            Route(path, self.webcallback, methods=methods),
            Route(path + "/", self.webcallback, methods=methods),
            Route("/livez", self.live, methods=["GET"]),
            Route("/readyz", self.ready, methods=["GET"]),
            Route("/healthz", self.ready, methods=["GET"]),  # the name before /readyz; kept
            Route("/openapi.json", self.openapi, methods=["GET"]),
            *MetricsApi(self.services).routes(),
        ]
        if self.services.billing is not None:
            routes += BillingApi(self, self.services.billing).routes()
        return routes


def create_app(
    services: Services,
    *,
    extra_routes: Sequence[BaseRoute] = (),
    lifespan_hooks: Sequence[LifespanHook] = (),
) -> Starlette:
    api = WebCallbackApi(services)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for hook in lifespan_hooks:
                await stack.enter_async_context(hook(services))
            yield

    handlers: dict[type[Exception] | int, Callable[[Request, Exception], Awaitable[Response]]] = {
        ApiError: api.api_error,
        HTTPException: api.http_error,
        ClientDisconnect: api.client_gone,
        **{error: api.outage for error in OUTAGE_ERRORS},
        Exception: api.unexpected_error,
    }
    return Starlette(
        routes=[*api.routes(), *extra_routes],
        exception_handlers=handlers,
        lifespan=lifespan,
        middleware=[
            *([Middleware(AccessLog)] if services.settings.log.access else []),
            Middleware(HttpMetrics, metrics=services.metrics),
        ],
    )
