"""End to end over real HTTP and real SIP: `webcallback run` in a child process with the embedded
SIP engine, SIPp phones on loopback, and the status API, the CLI and a real SIGTERM to look at it.

Phones: the lab's own scenario (answer after RING_MS, hang up a while after being connected), with
its talk time cut to TALK_MS to keep the wall time down; and the SIP tests' busy phone (486).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.dispatch.service_process import Service, running_service, service_env
from webcallback.config import load_settings
from webcallback.lab.phones import SCENARIO, LabPhones, free_udp_port, udp_port_bound
from webcallback.service.container import build_services

pytestmark = [
    pytest.mark.sip,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="SIPp (sip-tester) is not installed"),
]

RING_MS = 300
TALK_MS = 1500
PASSWORD = "pa55word"
DESTINATION, CALLBACK = "+15550100002", "+15550100001"
BUSY = SCENARIO.parent / "uas_reject.xml"


def short_talk_scenario(directory: Path) -> Path:
    text = SCENARIO.read_text().replace('timeout="5000"', f'timeout="{TALK_MS}"')
    path = directory / "lab_phone_short.xml"
    path.write_text(text)
    return path


@pytest.fixture
async def phones(tmp_path: Path) -> AsyncIterator[LabPhones]:
    scenario = short_talk_scenario(tmp_path)
    async with LabPhones(
        free_udp_port(), ring_ms=RING_MS, log_dir=tmp_path / "phones", scenario=scenario
    ) as p:
        yield p


def add_account(env: dict[str, str]) -> None:
    services = build_services(load_settings(os.devnull, environ=env))
    try:
        enc, kid = services.cipher.encrypt("alice", PASSWORD)
        services.accounts.add(
            "alice", password_enc=enc, key_id=kid, callback_number=CALLBACK, balance=Decimal(5)
        )
    finally:
        services.close()


def start(db_url: str, tmp_path: Path, trunk: str, **settings: str) -> tuple[dict[str, str], Path]:
    # Billing off, as in the other suites: with it on every number needs a rate (the lab tests
    # below run with it on, on the lab's own plan).
    env = service_env(db_url, ENGINE__SIP__TRUNK=trunk, API__TOKEN="t0ken", CALLS__RING_TIMEOUT="5",
                      BILLING__ENABLED="false", **settings)  # fmt: skip
    add_account(env)
    cwd = tmp_path / "service"
    cwd.mkdir()
    return env, cwd


def place(service: Service) -> str:
    r = service.request_callback("alice", PASSWORD, DESTINATION)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "queued"
    return str(r.json()["id"])


def watch(service: Service, callback_id: str, final: tuple[str, ...] = ("completed", "failed")) -> list[str]:
    """The states the status API showed, in order, until a final one."""
    seen: list[str] = []
    deadline = time.monotonic() + 30
    while not seen or seen[-1] not in final:
        state = service.status(callback_id)["state"]
        if not seen or seen[-1] != state:
            seen.append(state)
        assert time.monotonic() < deadline, f"stuck: {seen}\n{service.stderr[-3000:]}"
        time.sleep(0.02)
    return seen


async def test_a_callback_is_dialled_bridged_and_completed_over_sip(
    db_url: str, tmp_path: Path, phones: LabPhones
) -> None:
    env, cwd = start(db_url, tmp_path, phones.uri)
    with running_service(env, cwd) as service:
        started = time.monotonic()
        callback_id = place(service)
        states = watch(service, callback_id)
        elapsed = time.monotonic() - started
        body = service.status(callback_id)
        shown = json.loads(service.cli("calls", "show", callback_id, "--json").stdout)
        text = service.cli("calls", "show", callback_id).stdout
        assert service.terminate()
    assert states[-2:] == ["bridged", "completed"], states
    assert (body["state"], body["reason"], body["destination"], body["callback"]) == (
        "completed", "completed", DESTINATION, CALLBACK)  # fmt: skip
    for role in ("destination", "callback"):
        leg = body["legs"][role]
        assert (leg["state"], leg["sip_code"]) == ("ended", 200), leg
        assert (
            leg["trying_at"]
            <= leg["ringing_at"]
            <= leg["answered_at"]
            <= leg["bridged_at"]
            <= leg["ended_at"]
        )
    assert body["legs"]["destination"]["ended_by"] == "remote"  # the phone hung up...
    assert body["legs"]["callback"]["ended_by"] == "peer-leg"  # ...so we hung up the other
    cdr = body["cdr"]
    assert cdr["completed"] is True and cdr["reason"] == "completed"
    assert TALK_MS / 1000 - 0.2 < cdr["bridged_s"] < TALK_MS / 1000 + 1.0, cdr
    for role in ("destination", "callback"):
        times = cdr["legs"][role]
        assert times["sip_code"] == 200 and RING_MS / 1000 - 0.1 < times["ring_s"] < RING_MS / 1000 + 0.5, (
            times
        )
        assert times["talk_s"] >= cdr["bridged_s"] - 0.05
    assert shown["cdr"] == cdr and shown["legs"] == body["legs"]
    assert "leg destination:" in text and "bridged_s" in text
    assert elapsed < 2 * RING_MS / 1000 + TALK_MS / 1000 + 2


async def test_a_busy_destination_fails_the_callback_with_its_reason(db_url: str, tmp_path: Path) -> None:
    async with LabPhones(free_udp_port(), ring_ms=RING_MS, log_dir=tmp_path / "busy", scenario=BUSY) as busy:
        env, cwd = start(db_url, tmp_path, busy.uri)
        with running_service(env, cwd) as service:
            callback_id = place(service)
            service.wait_status(callback_id, ("completed", "failed"))
            body = service.status(callback_id)
    assert (body["state"], body["reason"]) == ("failed", "destination-busy")
    assert body["legs"]["destination"]["sip_code"] == 486
    assert body["legs"]["destination"]["ended_by"] == "remote"
    assert body["legs"]["callback"] is None  # never dialled
    assert body["cdr"]["completed"] is False and body["cdr"]["bridged_s"] == 0


@pytest.mark.parametrize("mode", ["hangup", "drain"])
async def test_sigterm_hangs_up_or_drains_calls_in_progress(
    sqlite_url: str, tmp_path: Path, phones: LabPhones, mode: str
) -> None:
    env, cwd = start(sqlite_url, tmp_path, phones.uri, CALLS__SHUTDOWN=mode, CALLS__DRAIN_TIMEOUT="20")
    with running_service(env, cwd) as service:
        callback_id = place(service)
        service.wait_status(callback_id, ("bridged",))
        signalled = time.monotonic()
        assert service.terminate()
        stopped_after = time.monotonic() - signalled
    services = build_services(load_settings(os.devnull, environ=env))
    try:
        from webcallback.service.status import StatusService

        body = StatusService(services.db).show(callback_id)
    finally:
        services.close()
    assert body is not None and body["state"] == "completed" and body["cdr"] is not None
    ended_by = {leg["ended_by"] for leg in body["legs"].values()}
    if mode == "hangup":
        assert ended_by == {"shutdown"} and stopped_after < TALK_MS / 1000
        assert body["cdr"]["bridged_s"] < TALK_MS / 1000
    else:
        assert ended_by == {"remote", "peer-leg"} and stopped_after > TALK_MS / 1000 - 0.3
        assert body["cdr"]["bridged_s"] > TALK_MS / 1000 - 0.2


def test_the_first_run_lab_places_a_callback_end_to_end(sqlite_url: str, tmp_path: Path) -> None:
    """`webcallback run` with no trunk: the printed commands, run as printed, complete a callback."""
    env = service_env(sqlite_url)
    with running_service(env, tmp_path) as service:
        banner = service.stdout
        commands = banner.split("(paste into a shell):", 1)[1].strip()
        _, token, sipp_port = _lab_details(banner)
        run = subprocess.run(["bash", "-c", commands], capture_output=True, text=True, timeout=60)
        assert service.terminate()
    lines = run.stdout.strip().splitlines()
    callback_id = lines[0].removeprefix("callback ")
    during, after = json.loads(lines[1]), json.loads(lines[2])
    assert after["id"] == callback_id, after
    assert (after["state"], after["reason"]) == ("completed", "completed"), after
    assert during["state"] in ("dialing", "bridged") and during["legs"]["destination"] is not None
    assert after["cdr"]["bridged_s"] > 4 and after["legs"]["callback"]["sip_code"] == 200
    assert token
    demo = json.loads(service.cli("account", "show", "demo").stdout)
    assert Decimal(demo["balance"]) < 10 and Decimal(demo["reserved"]) == 0  # billing settled it
    assert "SIPp stopped" in service.stderr
    assert not udp_port_bound("127.0.0.1", sipp_port)  # the lab's phones stopped with the service


def test_the_lab_commands_follow_the_configured_token_body_and_hash_recipe(
    sqlite_url: str, tmp_path: Path
) -> None:
    """A configured token is not printed (the shell supplies it); an empty success body means the
    status is followed through the listing; the hash follows `auth.hash_recipe`."""
    env = service_env(
        sqlite_url, API__TOKEN="my-own-t0ken", API__SUCCESS_BODY="empty", AUTH__HASH_RECIPE="password+nonce"
    )
    with running_service(env, tmp_path) as service:
        banner = service.stdout
        commands = banner.split("(paste into a shell):", 1)[1].strip()
        run = subprocess.run(["bash", "-c", commands], env=env, capture_output=True, text=True, timeout=60)
        assert service.terminate()
    assert "my-own-t0ken" not in banner
    lines = run.stdout.strip().splitlines()
    assert lines[0] == "HTTP 200", run.stdout + run.stderr
    after = json.loads(lines[2])["callbacks"][0]
    assert (after["state"], after["username"]) == ("completed", "demo"), after


def _lab_details(banner: str) -> tuple[str, str, int]:
    """(demo password, API token, SIPp port) from the lab's banner."""
    password = re.search(r"demo / (\S+) ", banner).group(1)  # type: ignore[union-attr]  # no match fails
    token = re.search(r"Bearer (\S+)'", banner).group(1)  # type: ignore[union-attr]  # no match fails
    port = int(re.search(r"SIPp phones at sip:127\.0\.0\.1:(\d+)", banner).group(1))  # type: ignore[union-attr]  # no match fails
    return password, token, port


def test_after_a_crash_the_lab_phones_are_gone_and_the_restart_fails_the_call_as_interrupted(
    sqlite_url: str, tmp_path: Path
) -> None:
    env = service_env(sqlite_url)
    with running_service(env, tmp_path) as service:
        password, service.token, sipp_port = _lab_details(service.stdout)
        r = service.request_callback("demo", password, DESTINATION)
        callback_id = r.json()["id"]
        service.wait_status(callback_id, ("bridged",))
        service.proc.kill()  # SIGKILL: no shutdown at all
        service.proc.wait(10)
        deadline = time.monotonic() + 5
        while udp_port_bound("127.0.0.1", sipp_port):  # the phones die with the service
            assert time.monotonic() < deadline, "the lab's SIPp outlived the service"
            time.sleep(0.05)
    (tmp_path / "stdout.log").unlink()
    with running_service(env, tmp_path) as again:
        _, again.token, _ = _lab_details(again.stdout)
        body = again.wait_status(callback_id, ("failed", "completed"), timeout=120)  # ended in the background
    assert (body["state"], body["reason"]) == ("failed", "interrupted")
    assert body["cdr"]["reason"] == "interrupted" and body["cdr"]["bridged_at"] is not None
    assert {leg["state"] for leg in body["legs"].values()} == {"ended"}


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


async def test_sip_worker_processes_place_callbacks_and_stop_with_the_service(
    sqlite_url: str, tmp_path: Path, phones: LabPhones
) -> None:
    """`engine.sip.processes = 2`: the service's callbacks go through two SIP worker processes,
    and SIGTERM hangs up through them and leaves none behind."""
    listen = next(p for p in iter(free_udp_port, 0) if not udp_port_bound("127.0.0.1", p + 1))
    env, cwd = start(sqlite_url, tmp_path, phones.uri, ENGINE__SIP__PROCESSES="2",
                     ENGINE__SIP__LISTEN=f"127.0.0.1:{listen}", CALLS__SHUTDOWN="hangup")  # fmt: skip
    with running_service(env, cwd) as service:
        workers = [p for p in _children(service.proc.pid) if "webcallback.engines.sip.worker" in _cmdline(p)]
        assert len(workers) == 2, service.stderr[-3000:]
        first = place(service)
        assert watch(service, first)[-2:] == ["bridged", "completed"]
        second = place(service)
        service.wait_status(second, ("bridged",))
        assert service.terminate()
    services = build_services(load_settings(os.devnull, environ=env))
    try:
        from webcallback.service.status import StatusService

        body = StatusService(services.db).show(second)
    finally:
        services.close()
    assert body is not None and body["state"] == "completed"
    assert {leg["ended_by"] for leg in body["legs"].values()} == {"shutdown"}
    assert all(_gone(pid) for pid in workers)
    assert "SIP engine started: 2 worker processes" in service.stderr


async def test_a_far_end_that_lost_the_call_ends_it_as_session_expired(
    sqlite_url: str, tmp_path: Path
) -> None:
    """Session timers through the service: both legs refreshed by UPDATE every 2 s (a 4 s session;
    `session_min_se` below RFC 4028's 90 s, for tests only); the trunk answers the refresh 481, so
    the callback ends with BYE on both legs and `session-expired` in the store and the CDR."""
    lost = Path(__file__).parents[1] / "sip" / "scenarios" / "uas_timer_update_481.xml"
    async with LabPhones(free_udp_port(), ring_ms=RING_MS, log_dir=tmp_path / "lost", scenario=lost) as trunk:
        env, cwd = start(sqlite_url, tmp_path, trunk.uri, ENGINE__SIP__SESSION_EXPIRES="4",
                         ENGINE__SIP__SESSION_MIN_SE="2")  # fmt: skip
        with running_service(env, cwd) as service:
            callback_id = place(service)
            service.wait_status(callback_id, ("completed", "failed"))
            body = service.status(callback_id)
            assert service.terminate()
    assert (body["state"], body["reason"]) == ("completed", "session-expired"), body
    ended_by = sorted(leg["ended_by"] for leg in body["legs"].values())
    assert ended_by == ["peer-leg", "session-expired"], body["legs"]
    expired = next(leg for leg in body["legs"].values() if leg["ended_by"] == "session-expired")
    assert expired["sip_code"] == 481
    assert body["cdr"]["reason"] == "session-expired" and body["cdr"]["bridged_s"] > 0
