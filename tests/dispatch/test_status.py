"""The status API (`/api/v1/callbacks`) and `webcallback calls show`: auth and shape."""

from __future__ import annotations

import base64
import json
import os

import httpx
import pytest
from click.testing import CliRunner

from tests.conftest import make_settings
from tests.dispatch.conftest import Harness
from tests.dispatch.fake_engine import Script
from webcallback.cli.main import main
from webcallback.service.container import build_services
from webcallback.service.dispatcher import Dispatcher
from webcallback.web.app import create_app
from webcallback.web.status import StatusApi

TOKEN = "s3cret-token"
LEG_KEYS = {"number", "state", "sip_code", "reason", "ended_by", "trying_at", "ringing_at", "answered_at",
            "bridged_at", "ended_at", "updated_at", "attempts"}  # fmt: skip


def client(harness: Harness) -> httpx.AsyncClient:
    app = create_app(harness.services, extra_routes=StatusApi(harness.services).routes())
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def finished_callbacks(harness: Harness) -> tuple[str, str]:
    harness.engine.scripts["+15551230002"] = Script(kind="busy")
    ok, busy = harness.queue(), harness.queue(destination="+15551230002")
    async with Dispatcher(harness.services, harness.engine, poll_interval=0.05, node="n"):
        for cb in (ok, busy):
            await harness.wait_final(cb.id)
    return ok.id, busy.id


@pytest.mark.parametrize("settings_env", [{"API__TOKEN": TOKEN}])
async def test_show_returns_the_callback_with_its_legs_and_cdr(harness: Harness) -> None:
    ok, busy = await finished_callbacks(harness)
    async with client(harness) as http:
        r = await http.get(f"/api/v1/callbacks/{ok}", headers={"Authorization": f"Bearer {TOKEN}"})
        b = await http.get(f"/api/v1/callbacks/{busy}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert {"id", "state", "reason", "destination", "callback", "created_at", "legs", "cdr"} <= set(body)
    assert (body["id"], body["state"], body["reason"]) == (ok, "completed", "completed")
    assert set(body["legs"]) == {"destination", "callback"}
    assert set(body["legs"]["destination"]) == LEG_KEYS
    assert body["legs"]["callback"]["state"] == "ended" and body["legs"]["callback"]["sip_code"] == 200
    cdr = body["cdr"]
    assert cdr["completed"] is True and cdr["bridged_s"] > 0 and cdr["bridged_at"]
    assert set(cdr["legs"]["destination"]) == {"sip_code", "setup_s", "ring_s", "talk_s"}
    busy_body = b.json()
    assert (busy_body["state"], busy_body["reason"]) == ("failed", "destination-busy")
    assert busy_body["legs"]["destination"]["sip_code"] == 486 and busy_body["legs"]["callback"] is None
    assert busy_body["cdr"]["completed"] is False and busy_body["cdr"]["bridged_s"] == 0


@pytest.mark.parametrize("settings_env", [{"API__TOKEN": TOKEN}])
async def test_list_and_its_limit(harness: Harness) -> None:
    ok, busy = await finished_callbacks(harness)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with client(harness) as http:
        both = await http.get("/api/v1/callbacks", headers=auth)
        one = await http.get("/api/v1/callbacks?limit=1", headers=auth)
        bad = [await http.get(f"/api/v1/callbacks?limit={v}", headers=auth) for v in ("0", "x", "501")]
    assert {c["id"] for c in both.json()["callbacks"]} == {ok, busy}
    assert len(one.json()["callbacks"]) == 1 and one.json()["callbacks"][0]["cdr"] is not None
    assert [r.status_code for r in bad] == [400, 400, 400]


@pytest.mark.parametrize("settings_env", [{"API__TOKEN": TOKEN}])
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"}],
)
async def test_a_missing_or_wrong_token_gets_401(harness: Harness, headers: dict[str, str]) -> None:
    queued = harness.queue()
    async with client(harness) as http:
        show = await http.get(f"/api/v1/callbacks/{queued.id}", headers=headers)
        listing = await http.get("/api/v1/callbacks", headers=headers)
    assert (show.status_code, listing.status_code) == (401, 401)
    assert show.json()["error"] == "bad-token" and queued.id not in show.text


async def test_without_a_configured_token_the_api_does_not_exist(harness: Harness) -> None:
    queued = harness.queue()
    async with client(harness) as http:
        show = await http.get(f"/api/v1/callbacks/{queued.id}", headers={"Authorization": "Bearer "})
        listing = await http.get("/api/v1/callbacks")
    assert (show.status_code, listing.status_code) == (404, 404)


@pytest.mark.parametrize("settings_env", [{"API__TOKEN": TOKEN}])
async def test_an_unknown_callback_is_404(harness: Harness) -> None:
    async with client(harness) as http:
        r = await http.get("/api/v1/callbacks/nope", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 404 and r.json()["error"] == "no-such-callback"


async def test_calls_show_prints_legs_and_cdr(sqlite_url: str) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    env = {"WEBCALLBACK_DATABASE__URL": sqlite_url, "WEBCALLBACK_SECRETS__KEY": key}
    harness = Harness(build_services(make_settings(sqlite_url)))
    try:
        ok, busy = await finished_callbacks(harness)
        pending = harness.queue().id
    finally:
        harness.services.close()
    runner = CliRunner()
    text = runner.invoke(main, ["calls", "show", ok], env=env)
    assert text.exit_code == 0, text.output
    assert "leg destination:" in text.output and "leg callback:" in text.output
    assert "bridged_s" in text.output and "answered_at" in text.output
    as_json = json.loads(runner.invoke(main, ["calls", "show", busy, "--json"], env=env).output)
    assert (
        as_json["reason"] == "destination-busy" and as_json["cdr"]["legs"]["destination"]["sip_code"] == 486
    )
    queued = runner.invoke(main, ["calls", "show", pending], env=env).output
    assert "(not dialled)" in queued and "cdr: (not yet" in queued
    missing = runner.invoke(main, ["calls", "show", "nope"], env=env)
    assert missing.exit_code == 1


@pytest.mark.parametrize("settings_env", [{"API__TOKEN": TOKEN}])
async def test_the_clients_status_poller_follows_a_callback_on_this_api(harness: Harness) -> None:
    from webcallback.client.status import poll_async

    harness.engine.default = Script(talk_s=0.2)
    queued = harness.queue()
    async with (
        client(harness) as http,
        Dispatcher(harness.services, harness.engine, poll_interval=0.05, node="n"),
    ):
        final = await poll_async(http, "http://test", queued.id, TOKEN, interval=0.02, deadline=5)
    assert (final.id, final.state, final.reason) == (queued.id, "completed", "completed")
    assert set(final.legs) == {"destination", "callback"} and final.legs["callback"]["sip_code"] == 200
