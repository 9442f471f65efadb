"""What the web layer logs about requests: one access line per HTTP request, and one line per
refusal (an `ApiError` answered 4xx or 503) with its error id.

The access line (`webcallback.access`, INFO) is written when the response has been sent: method,
path, route template, status, duration in ms, the client address, and the error id when the answer
was an error; it replaces uvicorn's access log (which has no duration and no error id). The query
string is never logged: it may carry a password. The refusal line (`webcallback.refusals`)
says who was refused and why, in the app's own words: 401, 429 and 503 at WARNING (failed logins,
limits, overload), the other refusals at INFO. The request's handler notes what it learned on
the way (`note`): the claimed username, the client address through trusted proxies, the callback
id once accepted (`logs.bind_callback`, so the access line carries it too).
"""

from __future__ import annotations

import logging
import time

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from webcallback.errors import ApiError
from webcallback.logs import CALLBACK_ID
from webcallback.security.events import clean
from webcallback.web.metrics import ResponseStatus

access_log = logging.getLogger("webcallback.access")
refusal_log = logging.getLogger("webcallback.refusals")

_ERROR = "webcallback.error_id"
_USER = "webcallback.user"
_CLIENT = "webcallback.client"
_WARNING_STATUSES = frozenset({401, 429, 503})


def note(request: Request, *, error_id: str | None = None, user: str | None = None,
         client: str | None = None) -> None:  # fmt: skip
    """Remember, for this request's log lines, what its handler learned."""
    state = request.scope.setdefault("state", {})
    if error_id is not None:
        state[_ERROR] = error_id
    if user is not None:
        state[_USER] = clean(user)
    if client is not None:
        state[_CLIENT] = client


def _peer(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def log_refusal(request: Request, exc: ApiError) -> None:
    """The one line for a refused request (called by the app's `ApiError` handler)."""
    note(request, error_id=exc.error_id)
    state = request.scope.get("state", {})
    user, client = state.get(_USER), state.get(_CLIENT) or _peer(request.scope)
    level = logging.WARNING if exc.status_code in _WARNING_STATUSES else logging.INFO
    refusal_log.log(
        level,
        "%s %s refused %d: %s user=%s client=%s",
        request.method, clean(request.url.path, 200), exc.status_code, clean(exc.message, 200),
        user or "-", client or "-",
        extra={"error_id": exc.error_id, "status": exc.status_code, "user": user, "client": client},
    )  # fmt: skip


class AccessLog:
    """Pure ASGI middleware (nothing buffered): the status from the response start, the duration
    to the end of the body. An exception that escapes (answered 500 outside) logs as 500
    `internal-error`. Each request starts with no callback id bound."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not access_log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        sending = ResponseStatus(send)
        state = scope.setdefault("state", {})
        token = CALLBACK_ID.set(None)
        try:
            await self.app(scope, receive, sending)
        except Exception:
            state.setdefault(_ERROR, "internal-error")
            raise
        finally:
            self._write(scope, state, sending.status, (time.perf_counter() - started) * 1000)
            CALLBACK_ID.reset(token)

    @staticmethod
    def _write(scope: Scope, state: dict[str, object], status: int, ms: float) -> None:
        route = getattr(scope.get("route"), "path", None)
        path = clean(scope.get("path", ""), 200)
        fields = {
            "method": scope["method"], "path": path, "route": route, "status": status,
            "duration_ms": round(ms, 2), "client": state.get(_CLIENT) or _peer(scope),
        }  # fmt: skip
        if state.get(_ERROR):
            fields["error_id"] = state[_ERROR]
        access_log.info("%s %s %d %.1f ms", scope["method"], path, status, ms, extra=fields)
