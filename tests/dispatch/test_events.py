"""Events: the `/api/v1/events` Server-Sent Events stream and the signed webhooks from the outbox.

Real HTTP over loopback both ways: the app under uvicorn on a port it binds itself (port 0, in the
test's loop, with the dispatcher and the fake engine of tests/dispatch), and a webhook receiver
(`http.server` in a thread, port 0) that checks each signature as a customer's would."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import secrets
import signal
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from click.testing import CliRunner

from tests.conftest import make_settings
from tests.dispatch.conftest import Harness
from tests.dispatch.service_process import running_service, service_env
from webcallback.cli.main import main
from webcallback.service.container import build_services
from webcallback.service.dispatcher import Dispatcher
from webcallback.service.maintenance import purge_events
from webcallback.service.webhooks import webhooks_hook
from webcallback.store.events import DEAD, DELIVERED, EventStore
from webcallback.web.app import create_app
from webcallback.web.events import EventsApi

TOKEN = "ev3nts-token"
SECRET = "whsec-test"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GUARD = 60.0  # seconds: a hang guard on reads, not a budget


# ---- a webhook receiver --------------------------------------------------------------------


@dataclass
class Receiver:
    """Answers `fail_first` requests with 500, then 200; while `hold` is clear, holds each request
    (a slow receiver). Records every request, with whether its signature verified."""

    fail_first: int = 0
    secret: str = SECRET
    hold: threading.Event = field(default_factory=threading.Event)
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def verified(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["status"] == 200 and r["verified"]]


def verify(secret: str, headers: Any, body: bytes) -> bool:
    """What docs/events.md tells a receiver to do."""
    timestamp = headers["Webcallback-Timestamp"]
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers.get("Webcallback-Signature", ""))


@contextmanager
def receiver(rx: Receiver) -> Iterator[Receiver]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            rx.hold.wait()
            with rx.lock:
                status = 500 if len(rx.requests) < rx.fail_first else 200
                rx.requests.append(
                    {
                        "status": status,
                        "verified": verify(rx.secret, self.headers, body),
                        "event": json.loads(body),
                    }
                )
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    rx.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield rx
    finally:
        rx.hold.set()
        server.shutdown()
        server.server_close()


# ---- the app, served in this loop ----------------------------------------------------------


@asynccontextmanager
async def serving(harness: Harness) -> AsyncIterator[str]:
    services = harness.services
    app = create_app(services, extra_routes=EventsApi(services).routes(), lifespan_hooks=[webhooks_hook])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # readiness, not a timeout
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        services.events.close()
        server.should_exit = True
        await task


async def read_events(response: httpx.Response, until: str | None = None) -> AsyncIterator[dict[str, Any]]:
    """Parse an SSE body: each event as {id, event, data} (comments as {"comment": text})."""
    fields: dict[str, Any] = {}
    async for line in response.aiter_lines():
        if line.startswith(":"):
            yield {"comment": line[1:].strip()}
        elif line == "":
            if fields:
                fields["data"] = json.loads(fields["data"])
                yield fields
                if until is not None and fields["event"] == until:
                    return
                fields = {}
        else:
            name, _, value = line.partition(":")
            fields[name] = value.lstrip(" ")


async def collect(
    url: str, until: str, headers: dict[str, str] | None = None, **params: str
) -> list[dict[str, Any]]:
    all_headers = {**AUTH, **(headers or {})}
    async with (
        httpx.AsyncClient(timeout=GUARD) as http,
        http.stream("GET", f"{url}/api/v1/events", headers=all_headers, params=params) as response,
    ):
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        return [e async for e in read_events(response, until) if "comment" not in e]


# No poll and no heartbeat for a long while: a stream sees the events only if the writes wake it.
QUIET = {"API__TOKEN": TOKEN, "EVENTS__POLL_INTERVAL": "3600", "EVENTS__HEARTBEAT": "3600"}


@pytest.mark.parametrize("settings_env", [QUIET])
async def test_stream_shows_a_callbacks_events_in_order_and_resumes_after_last_event_id(
    harness: Harness,
) -> None:
    async with serving(harness) as url:
        reader = asyncio.create_task(collect(url, "callback.completed", account="alice"))
        while harness.services.events.streams == 0:  # the stream is open: what follows is "now"
            await asyncio.sleep(0.01)
        callback = harness.queue()
        async with Dispatcher(harness.services, harness.engine, poll_interval=0.05, node="n"):
            await harness.wait_final(callback.id)
            seen = await asyncio.wait_for(reader, GUARD)
        types = [e["event"] for e in seen]
        assert types[:2] == ["callback.queued", "callback.dialing"] and types[-1] == "callback.completed"
        assert {
            "leg.trying",
            "leg.ringing",
            "leg.answered",
            "leg.bridged",
            "leg.ended",
            "callback.bridged",
        } <= set(types)
        assert types.count("leg.ended") == 2  # the engine's final account does not repeat the end
        ids = [int(e["id"]) for e in seen]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        assert all(e["data"]["callback_id"] == callback.id and e["data"]["type"] == e["event"] for e in seen)
        assert types.index("callback.bridged") > max(i for i, t in enumerate(types) if t == "leg.answered")
        answered = [e["data"]["data"] for e in seen if e["event"] == "leg.answered"]
        assert {a["leg"] for a in answered} == {"destination", "callback"} and answered[0]["sip_code"] == 200
        # Resuming after the bridging gives exactly what came later, by header or by `since`.
        bridged = next(e["id"] for e in seen if e["event"] == "callback.bridged")
        later = seen[types.index("callback.bridged") + 1 :]
        resumed = await collect(url, "callback.completed", headers={"Last-Event-ID": bridged})
        assert resumed == later
        assert await collect(url, "callback.completed", since=bridged, callback_id=callback.id) == later
        legs = await collect(url, "leg.ended", since="0", type="leg.")
        assert legs and all(e["event"].startswith("leg.") for e in legs)


@pytest.mark.parametrize("settings_env", [{**QUIET, "EVENTS__HEARTBEAT": "0.05", "EVENTS__MAX_STREAMS": "1"}])
async def test_stream_heartbeats_refuses_past_its_bound_and_needs_the_token(harness: Harness) -> None:
    async with serving(harness) as url, httpx.AsyncClient(timeout=GUARD) as http:
        assert (await http.get(f"{url}/api/v1/events")).status_code == 401
        bad = await http.get(f"{url}/api/v1/events", headers={**AUTH, "Last-Event-ID": "x"})
        assert bad.status_code == 400 and bad.json()["message"]
        async with http.stream("GET", f"{url}/api/v1/events", headers=AUTH) as response:
            comments = []
            async for line in response.aiter_lines():
                if line.startswith(":"):
                    comments.append(line)
                if ": heartbeat" in comments:
                    break
            second = await http.get(f"{url}/api/v1/events", headers=AUTH)
            assert second.status_code == 503 and second.json()["message"]


def hook_settings(rx: Receiver, **more: str) -> dict[str, str]:
    return {
        "API__TOKEN": TOKEN,
        "WEBHOOKS__URL": rx.url,
        "WEBHOOKS__SECRET": SECRET,
        "WEBHOOKS__BACKOFF_INITIAL": "0.05",
        "WEBHOOKS__BACKOFF_MAX": "0.2",
        **more,
    }


async def wait_until(cond: Any) -> None:
    deadline = asyncio.get_running_loop().time() + GUARD
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "hang guard"
        await asyncio.sleep(0.02)


async def test_webhooks_are_signed_and_a_slow_receiver_does_not_delay_a_callback(sqlite_url: str) -> None:
    with receiver(Receiver()) as rx:  # `hold` clear: every delivery hangs until the end
        harness = Harness(build_services(make_settings(sqlite_url, **hook_settings(rx))))
        try:
            async with serving(harness):
                callback = harness.queue()
                async with Dispatcher(harness.services, harness.engine, poll_interval=0.05, node="n"):
                    final = await harness.wait_final(callback.id)
                assert final.state == "completed" and rx.requests == []  # nothing delivered yet
                rx.hold.set()
                await wait_until(
                    lambda: any(r["event"]["type"] == "callback.completed" for r in rx.verified())
                )
            got = [r["event"] for r in rx.verified()]
            assert {e["type"] for e in got} >= {"callback.queued", "callback.dialing", "callback.completed"}
            assert all(e["callback_id"] == callback.id for e in got)
        finally:
            harness.services.close()


async def test_a_receiver_failing_three_times_gets_the_event_after_a_restart(sqlite_url: str) -> None:
    with receiver(Receiver(fail_first=3)) as rx:
        rx.hold.set()
        env = hook_settings(
            rx,
            WEBHOOKS__EVENTS="callback.queued",
            WEBHOOKS__BACKOFF_INITIAL="0.2",
            WEBHOOKS__BACKOFF_MAX="0.2",
        )
        first = Harness(build_services(make_settings(sqlite_url, **env)))
        try:
            async with serving(first):
                callback = first.queue()
                await wait_until(lambda: len(rx.requests) >= 2)
        finally:
            first.services.close()
        assert not rx.verified()  # the service stopped before a delivery went through
        # A new process on the same database: the outbox row is still there and is delivered.
        second = Harness(build_services(make_settings(sqlite_url, **env)))
        try:
            async with serving(second):
                await wait_until(lambda: rx.verified())
            store = EventStore(second.services.db)
            (row,) = store.outbox()
            attempts = store.attempts(row.id)
        finally:
            second.services.close()
        assert [r["status"] for r in rx.requests] == [500, 500, 500, 200]
        assert {r["event"]["id"] for r in rx.requests} == {rx.requests[0]["event"]["id"]}
        assert rx.verified()[0]["event"]["callback_id"] == callback.id
        assert row.state == DELIVERED and [a["status"] for a in attempts] == [500, 500, 500, 200]


@pytest.mark.parametrize("settings_env", [{"EVENTS__RETENTION_DAYS": "0.00001"}])
async def test_housekeeping_purges_old_events(harness: Harness) -> None:
    harness.queue()
    store = EventStore(harness.services.db)
    assert store.after(0)
    await asyncio.sleep(1.0)  # older than the retention (0.86 s)
    assert await purge_events(harness.services) == 1
    assert store.after(0) == []


async def test_an_accounts_own_webhook_set_by_the_cli_and_a_dead_delivery_retried(sqlite_url: str) -> None:
    with receiver(Receiver(fail_first=1, secret="acct-secret")) as rx:
        rx.hold.set()
        settings = {"SECRETS__KEY": base64.b64encode(os.urandom(32)).decode(), "WEBHOOKS__MAX_ATTEMPTS": "1"}
        env = {f"WEBCALLBACK_{k}": v for k, v in settings.items()} | {"WEBCALLBACK_DATABASE__URL": sqlite_url}
        runner = CliRunner()
        added = runner.invoke(main, ["account", "add", "alice", "--password", "pw"], env=env)
        assert added.exit_code == 0, added.output
        bad = runner.invoke(main, ["account", "webhook", "alice", "--url", rx.url], env=env)
        assert bad.exit_code == 2 and "https" in bad.output  # http only when allowed
        args = [
            "account",
            "webhook",
            "alice",
            "--url",
            rx.url,
            "--allow-http",
            "--secret-stdin",
            "--events",
            "callback.queued",
        ]
        made = runner.invoke(main, args, env=env, input="acct-secret\n")
        assert made.exit_code == 0 and "(signed)" in made.output, made.output
        shown = json.loads(runner.invoke(main, ["account", "webhook", "alice"], env=env).output)
        assert shown == {"url": rx.url, "signed": True, "events": ["callback.queued"]}
        harness = Harness(build_services(make_settings(sqlite_url, **settings)))
        store = EventStore(harness.services.db)
        try:
            async with serving(harness):
                callback = harness.queue(username="alice")
                await wait_until(lambda: [r.state for r in store.outbox()] == [DEAD])
            listed = runner.invoke(main, ["webhooks", "list", "--state", "dead"], env=env)
            assert listed.exit_code == 0 and "callback.queued" in listed.output and "500" in listed.output
            retried = runner.invoke(main, ["webhooks", "retry", "--dead"], env=env)
            assert retried.output.strip() == "1 deliveries queued"
            async with serving(harness):
                await wait_until(lambda: [r.state for r in store.outbox()] == [DELIVERED])
            (row,) = store.outbox()
            log = runner.invoke(main, ["webhooks", "list", "--attempts", str(row.id)], env=env)
            assert log.output.splitlines()[0].split() == ["AT", "STATUS", "SECONDS", "ERROR"]
            assert [line.split()[2] for line in log.output.splitlines()[1:]] == ["500", "200"]
        finally:
            harness.services.close()
        assert [(r["status"], r["verified"]) for r in rx.requests] == [(500, True), (200, True)]
        assert rx.requests[1]["event"]["callback_id"] == callback.id and row.target == "account"


def add_account(harness: Harness, username: str, password: str) -> None:
    enc, kid = harness.services.cipher.encrypt(username, password)
    harness.services.accounts.add(username, password_enc=enc, key_id=kid, balance=Decimal(10))


def signed_request(username: str, password: str, **params: str) -> dict[str, str]:
    nonce = secrets.token_hex(8)
    digest = hashlib.sha1((nonce + password).encode()).hexdigest()
    return {"username": username, "nonce": nonce, "hash": digest, "callback": "+15559870001", **params}


async def test_a_status_url_in_the_request_only_when_the_provider_allows_it(sqlite_url: str) -> None:
    with receiver(Receiver()) as rx:
        rx.hold.set()
        key = base64.b64encode(os.urandom(32)).decode()
        for allowed, to in ((False, "+15551230001"), (True, "+15551230002")):
            env = {
                "SECRETS__KEY": key,
                "WEBHOOKS__SECRET": SECRET,
                "WEBHOOKS__ALLOW_REQUEST_URL": str(allowed).lower(),
                "WEBHOOKS__REQUEST_URL_PARAM": "hook",
            }
            if allowed:  # http only because configured so; https otherwise
                https_only = Harness(build_services(make_settings(sqlite_url, **env)))
                async with serving(https_only) as url, httpx.AsyncClient(timeout=GUARD) as http:
                    add_account(https_only, "bob", "pw")
                    r = await http.post(
                        f"{url}/webcallback", json=signed_request("bob", "pw", to=to, hook=rx.url)
                    )
                https_only.services.close()
                assert r.status_code == 400 and "https" in r.json()["message"]
                env["WEBHOOKS__REQUEST_URL_ALLOW_HTTP"] = "true"
            harness = Harness(build_services(make_settings(sqlite_url, **env)))
            try:
                async with serving(harness) as url, httpx.AsyncClient(timeout=GUARD) as http:
                    if not allowed:
                        add_account(harness, "alice", "pw")
                    r = await http.post(
                        f"{url}/webcallback", json=signed_request("alice", "pw", to=to, hook=rx.url)
                    )
                    assert r.status_code == 200, r.text
                    callback_id = r.json()["id"]
                    if allowed:
                        await wait_until(lambda: rx.verified())
                stored = harness.services.callbacks.get(callback_id)
            finally:
                harness.services.close()
            assert stored.status_url == (rx.url if allowed else None)
        assert [r["event"]["callback_id"] for r in rx.verified()] == [callback_id]
        assert rx.verified()[0]["event"]["type"] == "callback.queued"


@pytest.mark.slow
def test_webcallback_run_streams_events_and_stops_with_a_stream_open(sqlite_url: str, tmp_path: Path) -> None:
    """The child's own write wakes the stream (no poll for an hour); SIGTERM ends the stream, so
    uvicorn, which waits for open responses, still shuts down."""
    env = service_env(
        sqlite_url,
        ENGINE__KIND="none",
        BILLING__ENABLED="false",
        API__TOKEN=TOKEN,
        EVENTS__HEARTBEAT="3600",
        EVENTS__POLL_INTERVAL="3600",
    )
    with running_service(env, tmp_path) as service:
        added = service.cli(
            "account",
            "add",
            "alice",
            "--password",
            "pw",
            "--callback-number",
            "+15559870001",
            "--credit",
            "5",
        )
        assert added.returncode == 0, added.stderr
        with (
            httpx.Client(timeout=GUARD) as http,
            http.stream("GET", f"{service.url}/api/v1/events", headers=AUTH) as response,
        ):
            lines = response.iter_lines()
            assert next(lines) == ": stream open"
            accepted = service.request_callback("alice", "pw", "+15551230001")
            assert accepted.status_code == 200, accepted.text
            event = [next(lines) for _ in range(4)]  # the blank line after the comment, then the event
            assert event[:3] == ["", "id: 1", "event: callback.queued"]
            assert json.loads(event[3].removeprefix("data: "))["callback_id"] == accepted.json()["id"]
            service.proc.send_signal(signal.SIGTERM)
            rest = list(lines)  # ends when the service ends the stream
        assert service.proc.wait(GUARD) in (0, -signal.SIGTERM), service.stderr
        assert "Application shutdown complete" in service.stderr and rest == [""]
