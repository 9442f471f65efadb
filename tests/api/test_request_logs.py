"""Every refusal is logged once, with its error id, at INFO or WARNING, and never with the password
or the hash; every request has its access line (status, duration, error id). Over real HTTP on
loopback (uvicorn in a thread), billing on, each refusal the app can meet: a wrong password, a
password over HTTP, an invalid number, no credit, a rate limit, and admission control's 503.
The format these records are written in, by `webcallback run`, is tests/operator/test_logs.py."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from tests.billing.conftest import PASSWORD, US_NUMBER, add_account, build, hash_params, import_deck, serve
from webcallback import logs
from webcallback.service.container import Services

Request = Callable[[httpx.Client, Services], httpx.Response]


@dataclass(frozen=True)
class Refusal:
    env: dict[str, str]
    send: Request
    status: int
    error_id: str
    level: int
    user: str | None = "alice"


def signed(client: httpx.Client, user: str = "alice", to: str = US_NUMBER) -> httpx.Response:
    return client.post("/webcallback", json={**hash_params(user), "to": to})


def wrong_password(client: httpx.Client, _svc: Services) -> httpx.Response:
    return client.post("/webcallback", json={**hash_params(password="not-" + PASSWORD), "to": US_NUMBER})


def plain_password_over_http(client: httpx.Client, _svc: Services) -> httpx.Response:
    return client.get("/webcallback", params={"username": "alice", "password": PASSWORD, "to": US_NUMBER})


def invalid_number(client: httpx.Client, _svc: Services) -> httpx.Response:
    return signed(client, to="12")


def no_credit(client: httpx.Client, svc: Services) -> httpx.Response:
    add_account(svc, "broke", credit="0")
    return signed(client, "broke")


def over_the_rate(client: httpx.Client, _svc: Services) -> httpx.Response:
    assert signed(client).status_code == 200  # the one request a minute allowed
    return signed(client)


def while_overloaded(client: httpx.Client, svc: Services) -> httpx.Response:
    # A dispatcher with every slot busy and nothing started lately (what a stuck node looks like
    # to admission control): the next callback would wait for ever.
    svc.shedder.attach(lambda: svc.settings.calls.concurrency)
    return signed(client)


ONE_A_MINUTE = {"security__limits__requests_per_minute_per_user": "1"}
REFUSALS = {
    "wrong password": Refusal({}, wrong_password, 401, "authentication-failed", logging.WARNING),
    "password over HTTP": Refusal({}, plain_password_over_http, 403, "password-needs-https", logging.INFO),
    "invalid number": Refusal({}, invalid_number, 400, "invalid-number", logging.INFO),
    "no credit": Refusal({}, no_credit, 403, "insufficient-credit", logging.INFO, user="broke"),
    "rate limit": Refusal(ONE_A_MINUTE, over_the_rate, 429, "rate-limited", logging.WARNING),
    "overloaded": Refusal({}, while_overloaded, 503, "overloaded", logging.WARNING),
}


@pytest.fixture
def records(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """caplog from INFO, its handler with the service's filter (the callback id, as `logs.configure`
    puts on the service's own handler)."""
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(logs.ContextFilter())
    return caplog


def logged(records: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in records.records if r.name == name]


@pytest.mark.parametrize("case", list(REFUSALS.values()), ids=list(REFUSALS))
def test_each_refusal_is_logged_once_with_its_error_id_and_no_secret(
    case: Refusal, sqlite_url: str, records: pytest.LogCaptureFixture
) -> None:
    svc = build(sqlite_url, **case.env)
    try:
        import_deck(svc)
        add_account(svc)
        with serve(svc) as base, httpx.Client(base_url=base, timeout=30) as client:
            refused = case.send(client, svc)
    finally:
        svc.close()
    assert (refused.status_code, refused.json()["error"]) == (case.status, case.error_id), refused.text
    (line,) = logged(records, "webcallback.refusals")
    fields = line.__dict__
    assert (fields["error_id"], fields["status"], line.levelno) == (case.error_id, case.status, case.level)
    assert fields["user"] == case.user and fields["client"] == "127.0.0.1"
    assert refused.json()["message"] in line.getMessage()
    access = logged(records, "webcallback.access")
    assert access[-1].__dict__["error_id"] == case.error_id and access[-1].__dict__["status"] == case.status
    service_text = "\n".join(r.getMessage() for r in records.records if not r.name.startswith("httpx"))
    # neither the password nor a salted hash (40 hex digits); the test's own client logs its URLs
    assert PASSWORD not in service_text and not re.search(r"\b[0-9a-f]{40}\b", service_text)


def test_an_accepted_callback_has_one_access_line_with_its_id_and_no_refusal(
    sqlite_url: str, records: pytest.LogCaptureFixture
) -> None:
    svc = build(sqlite_url)
    try:
        import_deck(svc)
        add_account(svc)
        with serve(svc) as base, httpx.Client(base_url=base, timeout=30) as client:
            accepted = signed(client)
            missing = client.get("/no/such/page")
            alive = client.get("/livez")
    finally:
        svc.close()
    assert (accepted.status_code, missing.status_code, alive.status_code) == (200, 404, 200)
    assert logged(records, "webcallback.refusals") == []  # a 404 of an unknown path is no refusal
    lines = [r.__dict__ for r in logged(records, "webcallback.access")]
    assert [(a["method"], a["path"], a["route"], a["status"], a.get("error_id")) for a in lines] == [
        ("POST", "/webcallback", "/webcallback", 200, None),
        ("GET", "/no/such/page", None, 404, "http-404"),
        ("GET", "/livez", "/livez", 200, None),
    ]
    assert lines[0]["callback_id"] == accepted.json()["id"]  # bound by the handler once accepted
    assert all(a["duration_ms"] >= 0 for a in lines)
