"""What `webcallback run` writes to stderr, read back from real children: with `[log] format =
"json"` every line is a JSON object with the fixed keys, from every component (uvicorn, Alembic,
sippy, ours), with an access line per HTTP request, a refusal line with its error id, and the
callback's id on the lines of its dispatching — in one process and with SIP worker processes; the
text format line by line; and the level with a per-logger override. Real HTTP, real SIP (SIPp
phones), real datagrams that sippy cannot parse."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import shutil
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dispatch.service_process import Service, running_service
from tests.dispatch.test_end_to_end import DESTINATION, PASSWORD, RING_MS, short_talk_scenario, start
from webcallback.lab.phones import LabPhones, free_udp_port, udp_port_bound

KEYS = {"time", "level", "logger", "process", "message"}
TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
TEXT_LINE = re.compile(rf"^{TIME} (DEBUG|INFO|WARNING|ERROR) (sip\[\d+\] )?\S+: ")
# A SIP response with a status code below 100: sippy prints it (from its reactor thread).
ODD_RESPONSE = (
    "SIP/2.0 050 Odd\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKodd\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\n"
    "To: <sip:b@127.0.0.1>\r\nCall-ID: odd-1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
)
GARBAGE = "THIS IS NOT A SIP MESSAGE, NOT EVEN CLOSE\r\n\r\n"  # sippy cannot parse it: a traceback

@pytest.fixture
async def phones(tmp_path: Path) -> AsyncIterator[LabPhones]:
    scenario = short_talk_scenario(tmp_path)
    port = free_udp_port()
    async with LabPhones(port, ring_ms=RING_MS, log_dir=tmp_path / "phones", scenario=scenario) as p:
        yield p


@contextmanager
def counting_client(service: Service) -> Iterator[tuple[httpx.Client, list[httpx.Response]]]:
    """A client to the service that keeps every response it got, to match with the access lines."""
    responses: list[httpx.Response] = []
    hooks: dict[str, list[Callable[[httpx.Response], Any]]] = {"response": [responses.append]}
    with httpx.Client(base_url=service.url, timeout=30, event_hooks=hooks) as client:
        yield client, responses


def signed(client: httpx.Client, password: str = PASSWORD, to: str = DESTINATION) -> httpx.Response:
    nonce = secrets.token_hex(8)
    digest = hashlib.sha1((nonce + password).encode()).hexdigest()
    return client.post("/webcallback", json={"username": "alice", "nonce": nonce, "hash": digest, "to": to})


def wait_final(client: httpx.Client, callback_id: str, service: Service) -> str:
    deadline = time.monotonic() + 60  # a hang guard, not a budget
    while (state := client.get(f"/api/v1/callbacks/{callback_id}", headers=BEARER).json()["state"]) not in (
        "completed", "failed"):  # fmt: skip
        assert time.monotonic() < deadline, service.stderr[-3000:]
        time.sleep(0.05)
    return str(state)


BEARER = {"Authorization": "Bearer t0ken"}  # `start` sets api.token


def send_datagrams(sip_listen: str, *texts: str) -> None:
    host, port = sip_listen.rsplit(":", 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        for text in texts:
            peer.sendto(text.encode(), (host, int(port)))


def wait_for_line(service: Service, needle: str) -> None:
    deadline = time.monotonic() + 60  # a hang guard: the line comes as soon as the reactor runs
    while needle not in service.stderr:
        assert time.monotonic() < deadline and service.proc.poll() is None, service.stderr[-3000:]
        time.sleep(0.05)


def stop(service: Service) -> None:
    service.proc.send_signal(signal.SIGTERM)
    service.proc.wait(60)


def json_entries(stderr: str) -> list[dict[str, Any]]:
    """Every line of stderr as JSON (a line that is not fails the test) with the fixed keys."""
    entries = [json.loads(line) for line in stderr.splitlines()]
    for entry in entries:
        assert entry.keys() >= KEYS, entry
    return entries


def of(entries: list[dict[str, Any]], logger: str) -> list[dict[str, Any]]:
    return [e for e in entries if e["logger"] == logger]


@pytest.mark.sip
@pytest.mark.skipif(shutil.which("sipp") is None, reason="SIPp (sip-tester) is not installed")
async def test_json_lines_from_every_component_with_access_refusal_and_callback_lines(
    sqlite_url: str, tmp_path: Path, phones: LabPhones
) -> None:
    env, cwd = start(sqlite_url, tmp_path, phones.uri, LOG__FORMAT="json")
    with running_service(env, cwd) as service, counting_client(service) as (client, responses):
        assert client.get("/livez").status_code == 200
        assert signed(client, password="wrong").status_code == 401
        plain = {"username": "alice", "password": PASSWORD, "to": DESTINATION}
        assert client.get("/webcallback", params=plain).status_code == 403
        assert signed(client, to="12").status_code == 400
        accepted = signed(client)
        assert accepted.status_code == 200, accepted.text
        callback_id = accepted.json()["id"]
        assert wait_final(client, callback_id, service) == "completed"
        assert service.sip_listen is not None
        send_datagrams(service.sip_listen, ODD_RESPONSE, GARBAGE)
        wait_for_line(service, "can't parse SIP request")
        stop(service)
    entries = json_entries(service.stderr)
    assert PASSWORD not in service.stderr and not re.search(r"\b[0-9a-f]{40}\b", service.stderr)  # nor a hash

    # one access line per request, in order, with its status, duration and error id
    access = of(entries, "webcallback.access")
    assert [(a["method"], a["path"], a["status"]) for a in access] == [
        (r.request.method, r.request.url.path, r.status_code) for r in responses
    ]
    assert all(isinstance(a["duration_ms"], int | float) and a["duration_ms"] >= 0 for a in access)
    assert [a.get("error_id") for a in access] == [
        r.json().get("error") if r.status_code >= 400 else None for r in responses
    ]
    # each refusal once, with its error id, at its level
    assert [(r["error_id"], r["status"], r["level"]) for r in of(entries, "webcallback.refusals")] == [
        ("authentication-failed", 401, "WARNING"),
        ("password-needs-https", 403, "INFO"),
        ("invalid-number", 400, "INFO"),
    ]
    # the callback's id: on its accepting request's access line, and on the lines of its dispatching
    mine = [e for e in entries if e.get("callback_id") == callback_id]
    assert {"webcallback.access", "webcallback.engines.sip.driver", "webcallback.engines.sip.engine",
            "webcallback.service.records"} <= {e["logger"] for e in mine}  # fmt: skip
    assert any(e["message"].startswith("callback completed") for e in of(mine, "webcallback.service.records"))
    assert len([e for e in of(mine, "webcallback.engines.sip.driver") if "INVITE" in e["message"]]) == 2
    assert {e["callback_id"] for e in entries if "callback_id" in e} == {callback_id}
    # uvicorn, Alembic and sippy in the same format
    assert "Application startup complete." in [e["message"] for e in of(entries, "uvicorn.error")]
    assert "Context impl SQLiteImpl." in [e["message"] for e in of(entries, "alembic.runtime.migration")]
    sippy = of(entries, "sippy")
    assert [e["level"] for e in sippy if "invalid status code" in e["message"]] == ["WARNING"]
    assert [e["level"] for e in sippy if "can't parse SIP request" in e["message"]] == ["ERROR"]
    assert "THIS IS NOT A SIP MESSAGE" in next(e["message"] for e in sippy if e["level"] == "ERROR")


@pytest.mark.sip
@pytest.mark.skipif(shutil.which("sipp") is None, reason="SIPp (sip-tester) is not installed")
async def test_sip_worker_processes_write_the_same_json_lines(
    sqlite_url: str, tmp_path: Path, phones: LabPhones
) -> None:
    listen = next(p for p in iter(free_udp_port, 0) if not udp_port_bound("127.0.0.1", p + 1))
    env, cwd = start(sqlite_url, tmp_path, phones.uri, LOG__FORMAT="json", ENGINE__SIP__PROCESSES="2",
                     ENGINE__SIP__LISTEN=f"127.0.0.1:{listen}")  # fmt: skip
    with running_service(env, cwd) as service, counting_client(service) as (client, _responses):
        accepted = signed(client)
        assert accepted.status_code == 200, accepted.text
        callback_id = accepted.json()["id"]
        assert wait_final(client, callback_id, service) == "completed"
        send_datagrams(f"127.0.0.1:{listen + 1}", GARBAGE)  # the second worker's port
        wait_for_line(service, "can't parse SIP request")
        stop(service)
    entries = json_entries(service.stderr)
    assert {e["process"] for e in entries} == {"main", "sip[0]", "sip[1]"}
    mine = [e for e in entries if e.get("callback_id") == callback_id]
    driver = of(mine, "webcallback.engines.sip.driver")
    assert len({e["process"] for e in driver}) == 1 and driver[0]["process"].startswith("sip[")  # its worker
    assert [e["process"] for e in of(mine, "webcallback.service.records")] == ["main"]  # the dispatcher's
    assert [(e["process"], e["level"]) for e in of(entries, "sippy")] == [("sip[1]", "ERROR")]
    started = [e["message"] for e in entries if e["message"].startswith("SIP engine listening on")]
    assert sorted(started) == [f"SIP engine listening on 127.0.0.1:{listen + i}/udp" for i in (0, 1)]


def test_text_lines_from_every_component(sqlite_url: str, tmp_path: Path) -> None:
    env, cwd = start(sqlite_url, tmp_path, "sip:127.0.0.1:9", ENGINE__KIND="none")
    with running_service(env, cwd) as service, counting_client(service) as (client, _responses):
        assert client.get("/livez").status_code == 200
        assert signed(client, password="wrong").status_code == 401
        stop(service)
    lines = service.stderr.splitlines()
    assert lines and all(TEXT_LINE.match(line) for line in lines), service.stderr
    assert any(re.search(r" INFO webcallback\.access: GET /livez 200 \d+\.\d ms$", line) for line in lines)
    refusal = " WARNING webcallback.refusals: POST /webcallback refused 401: Wrong username or password. "
    assert [line.split("Z", 1)[1] for line in lines if "refused" in line] == [
        refusal + "user=alice client=127.0.0.1 error=authentication-failed"
    ]
    assert any(line.endswith(" INFO uvicorn.error: Application startup complete.") for line in lines)
    assert any(line.endswith(" INFO alembic.runtime.migration: Context impl SQLiteImpl.") for line in lines)


def test_the_level_and_a_per_logger_override(sqlite_url: str, tmp_path: Path) -> None:
    env, cwd = start(sqlite_url, tmp_path, "sip:127.0.0.1:9", ENGINE__KIND="none", LOG__LEVEL="warning",
                     LOG__LEVELS="webcallback.access=info")  # fmt: skip
    with running_service(env, cwd) as service, counting_client(service) as (client, _responses):
        assert client.get("/livez").status_code == 200
        plain = {"username": "alice", "password": "x", "to": DESTINATION}
        assert client.get("/webcallback", params=plain).status_code == 403
        assert signed(client, password="wrong").status_code == 401
        stop(service)
    lines = [line.split("Z ", 1)[1] for line in service.stderr.splitlines()]
    levels = {(line.split(" ")[0], line.split(" ")[1]) for line in lines}
    # INFO only from the access log (its own level); the 403 refusal (INFO) is left out, the 401 kept
    assert {logger for level, logger in levels if level == "INFO"} == {"webcallback.access:"}
    assert len([line for line in lines if line.startswith("INFO webcallback.access:")]) == 3
    assert [line for line in lines if "refused" in line] == [
        "WARNING webcallback.refusals: POST /webcallback refused 401: Wrong username or password. "
        "user=alice client=127.0.0.1 error=authentication-failed"
    ]
    assert "Application startup complete" not in service.stderr
