"""The status API client (our server only), pure parts and the asyncio poller against a FAKE API."""

from __future__ import annotations

import json

import httpx
import pytest

from webcallback.client import CallbackTimeout, StatusError, poll_async
from webcallback.client.status import build_status_request, parse_status, status_base_url

from .standin import Recorded, Reply, StandIn


def test_request_and_base_url() -> None:
    assert status_base_url("https://cb.example.com:8443/webcallback/?u=x") == "https://cb.example.com:8443"
    request = build_status_request("https://cb.example.com/", "a/b", "T")
    assert str(request.url) == "https://cb.example.com/api/v1/callbacks/a%2Fb"
    assert request.headers["Authorization"] == "Bearer T"


def test_parse_status() -> None:
    body = json.dumps({"id": "c1", "state": "bridged", "reason": None, "legs": {"callback": {"state": "up"}}})
    status = parse_status(200, body.encode())
    assert (status.id, status.state, status.reason, status.done) == ("c1", "bridged", None, False)
    assert parse_status(200, b'{"id": 1, "state": "failed", "reason": 486}').reason == "486"


@pytest.mark.parametrize(
    ("code", "body"), [(404, b"{}"), (200, b"nope"), (200, b"[]"), (200, b'{"id": "x"}')]
)
def test_parse_status_errors(code: int, body: bytes) -> None:
    with pytest.raises(StatusError):
        parse_status(code, body)


def fake_api(standin: StandIn, states: list[str]) -> None:
    """A FAKE of `GET /api/v1/callbacks/{id}` that steps through `states`, then stays on the last."""

    def route(_request: Recorded) -> Reply:
        state = states.pop(0) if len(states) > 1 else states[0]
        return Reply(
            200, json.dumps({"id": "c1", "state": state}).encode(), (("Content-Type", "application/json"),)
        )

    standin.routes["/api/v1/callbacks/c1"] = route


async def no_sleep(_seconds: float) -> None:
    return None


async def test_poll_async_until_completed(standin: StandIn) -> None:
    fake_api(standin, ["queued", "dialing", "completed"])
    async with httpx.AsyncClient(trust_env=False) as http:
        final = await poll_async(http, standin.base_url, "c1", "T", sleep=no_sleep)
    assert final.state == "completed" and len(standin.requests) == 3


async def test_poll_async_deadline(standin: StandIn) -> None:
    fake_api(standin, ["dialing"])
    async with httpx.AsyncClient(trust_env=False) as http:
        with pytest.raises(CallbackTimeout, match="still dialing"):
            await poll_async(http, standin.base_url, "c1", "T", interval=0.01, deadline=0.05)
