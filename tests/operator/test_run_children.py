"""`webcallback run` children with real signals and sockets: a second instance on the same SIP
port or as the same node is refused; a second signal ends the drain; systemd's readiness
notification reaches a real unix datagram socket."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.dispatch.service_process import running_service, service_env
from tests.dispatch.test_end_to_end import PASSWORD, add_account, place
from webcallback.lab.phones import SCENARIO, LabPhones, free_udp_port
from webcallback.sd_notify import notify

pytestmark = [
    pytest.mark.sip,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="SIPp (sip-tester) is not installed"),
]


def second_instance(env: dict[str, str], cwd: Path, **changes: str) -> subprocess.CompletedProcess[str]:
    env = env | {"WEBCALLBACK_SERVER__LISTEN": "127.0.0.1:0"} | changes
    cmd = [sys.executable, "-m", "webcallback", "run"]
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_a_second_instance_on_the_same_sip_port_is_refused(sqlite_url: str, tmp_path: Path) -> None:
    env = service_env(sqlite_url, ENGINE__SIP__TRUNK="sip:127.0.0.1:9", API__TOKEN="t")
    (first_dir := tmp_path / "first").mkdir()
    (second_dir := tmp_path / "second").mkdir()
    with running_service(env, first_dir) as first:
        port = first.sip_listen  # the port the first one bound (it was given port 0)
        assert port is not None
        refused = second_instance(env, second_dir, WEBCALLBACK_ENGINE__SIP__LISTEN=port)
        assert refused.returncode == 1, refused.stderr
        assert (
            f"error: engine.sip.listen {port}: cannot bind UDP {port}: Address already in use"
            in refused.stderr
        )
        # the same state directory (hence node id) with another SIP port: refused as the same node
        same_node = second_instance(env, first_dir, WEBCALLBACK_ENGINE__SIP__LISTEN="127.0.0.1:0")
        assert same_node.returncode == 1 and "is already running on this machine" in same_node.stderr
        assert first.proc.poll() is None  # the first one is untouched
        assert httpx.get(first.url + "/healthz", timeout=5).status_code == 200
    assert (first_dir / "var" / "node-id").exists()


@pytest.fixture
async def long_calls(tmp_path: Path) -> AsyncIterator[LabPhones]:
    """Phones that stay connected for a minute: a drain would wait for them."""
    scenario = tmp_path / "lab_phone_long.xml"
    scenario.write_text(SCENARIO.read_text().replace('timeout="5000"', 'timeout="60000"'))
    async with LabPhones(free_udp_port(), ring_ms=200, log_dir=tmp_path / "phones", scenario=scenario) as p:
        yield p


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_a_second_signal_ends_the_drain_and_hangs_the_calls_up(
    sqlite_url: str, tmp_path: Path, long_calls: LabPhones, signum: int
) -> None:
    drain = {"CALLS__SHUTDOWN": "drain", "CALLS__DRAIN_TIMEOUT": "600"}
    env = service_env(
        sqlite_url, ENGINE__SIP__TRUNK=long_calls.uri, API__TOKEN="t0ken", BILLING__ENABLED="false", **drain
    )
    add_account(env)
    (cwd := tmp_path / "service").mkdir()
    with running_service(env, cwd) as service:
        callback_id = place(service)
        service.wait_status(callback_id, ("bridged",))
        service.proc.send_signal(signum)
        deadline = time.monotonic() + 30
        while "draining 1 callbacks" not in service.stderr:
            assert service.proc.poll() is None and time.monotonic() < deadline, service.stderr[-2000:]
            time.sleep(0.05)
        service.proc.send_signal(signum)
        status = service.proc.wait(30)  # not the 600 s drain, nor the minute-long call
    # uvicorn re-raises the signal after a clean shutdown; click turns SIGINT's KeyboardInterrupt into
    # "Aborted!" and status 1, as for a single Ctrl-C.
    assert status == (1 if signum == signal.SIGINT else -signum), (status, service.stderr[-1500:])
    assert "second signal: ending the drain" in service.stderr
    assert "Application shutdown complete" in service.stderr
    shown = service.cli("calls", "show", callback_id, "--json")
    body = json.loads(shown.stdout)
    assert body["state"] == "completed"  # it was connected: completed with its real talk time
    assert {leg["ended_by"] for leg in body["legs"].values()} == {"shutdown"}  # hung up, with BYE
    assert body["cdr"] is not None and PASSWORD not in shown.stdout


def test_readiness_and_stopping_reach_the_notify_socket(sqlite_url: str, tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(20)
        env = service_env(sqlite_url, ENGINE__SIP__TRUNK="sip:127.0.0.1:9") | {"NOTIFY_SOCKET": str(path)}
        with running_service(env, tmp_path) as service:
            assert sock.recv(4096).decode() == "READY=1\nSTATUS=serving"
            service.proc.send_signal(signal.SIGTERM)
            assert sock.recv(4096).decode().startswith("STOPPING=1\n")
            service.proc.wait(20)


def test_notify_speaks_to_abstract_sockets_and_is_silent_outside_systemd(tmp_path: Path) -> None:
    name = f"webcallback-test-{tmp_path.name}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        assert notify("READY=1", {"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(100) == b"READY=1"
    assert not notify("READY=1", {})
    assert not notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})  # logged, not raised
