"""The status API: `GET /api/v1/callbacks/{id}` and `GET /api/v1/callbacks?limit=N`.

For the provider's own tools, not the app: a bearer token from `[api] token`. No token configured
means the API is off (404, as if it did not exist); a missing or wrong token gets 401.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from webcallback.errors import AuthenticationFailed, BadRequest, NotFound
from webcallback.service.container import Services
from webcallback.service.status import MAX_LIST, StatusService

PREFIX = "/api/v1/callbacks"


class StatusApi:
    def __init__(self, services: Services) -> None:
        token = services.settings.api.token
        self._token = token.reveal().encode() if token else None
        self._db = services.db
        self._status = StatusService(services.db)

    def authorise(self, request: Request) -> None:
        if self._token is None:
            raise NotFound("Not Found", error_id="not-found")
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self._token):
            raise AuthenticationFailed("A valid bearer token is needed.", error_id="bad-token")

    async def show(self, request: Request) -> Response:
        self.authorise(request)
        callback_id = request.path_params["callback_id"]
        view = await self._db.run(self._status.show, callback_id)
        if view is None:
            raise NotFound(f"No callback {callback_id}.", error_id="no-such-callback")
        return JSONResponse(view)

    async def recent(self, request: Request) -> Response:
        self.authorise(request)
        limit = request.query_params.get("limit", "50")
        if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIST:
            raise BadRequest(f"limit must be 1 to {MAX_LIST}.", error_id="bad-limit")
        return JSONResponse({"callbacks": await self._db.run(self._status.recent, int(limit))})

    def routes(self) -> list[BaseRoute]:
        return [
            Route(PREFIX, self.recent, methods=["GET"]),
            Route(PREFIX + "/{callback_id}", self.show, methods=["GET"]),
        ]
