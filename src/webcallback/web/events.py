"""`GET /api/v1/events`: the event log as Server-Sent Events, for the provider's tools (the
`[api] token` bearer, as the status API).

Each event is `id: <event id>`, `event: <type>`, `data: <the event as JSON>`; a comment line
(`: heartbeat`) every `events.heartbeat` seconds of silence. Resume with the `Last-Event-ID`
header (what EventSource sends on reconnecting) or `?since=<id>`; without either the stream starts
at the next event. Filters, each repeatable or comma-separated: `callback_id`, `account`, `type`
(a type like `leg.ringing`, or a prefix ending in `.` like `leg.`)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from webcallback.domain.events import EventFilter
from webcallback.errors import BadRequest
from webcallback.service.container import Services
from webcallback.service.events import EventBus
from webcallback.web.status import StatusApi

PATH = "/api/v1/events"


def _values(request: Request, name: str) -> tuple[str, ...]:
    return tuple(v.strip() for raw in request.query_params.getlist(name) for v in raw.split(",") if v.strip())


def _start(request: Request) -> int | None:
    raw = request.headers.get("last-event-id") or request.query_params.get("since")
    if raw is None or raw == "":
        return None
    if not raw.strip().isdigit():
        raise BadRequest(
            "Last-Event-ID and since must be an event id (a whole number).", error_id="bad-since"
        )
    return int(raw)


async def _sse(bus: EventBus, wanted: EventFilter, start: int | None) -> AsyncIterator[bytes]:
    yield b": stream open\n\n"  # the headers and a first line go out at once
    async for event in bus.stream(wanted, start):
        if event is None:
            yield b": heartbeat\n\n"
        else:
            data = json.dumps(event.as_json(), separators=(",", ":"))
            yield f"id: {event.id}\nevent: {event.type}\ndata: {data}\n\n".encode()


class EventsApi:
    def __init__(self, services: Services) -> None:
        self._auth = StatusApi(services)
        self._bus = services.events

    async def stream(self, request: Request) -> Response:
        self._auth.authorise(request)
        wanted = EventFilter(
            _values(request, "callback_id"), _values(request, "account"), _values(request, "type")
        )
        start = _start(request)
        self._bus.check_capacity()
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(
            _sse(self._bus, wanted, start), media_type="text/event-stream", headers=headers
        )

    def routes(self) -> list[BaseRoute]:
        return [Route(PATH, self.stream, methods=["GET"])]
