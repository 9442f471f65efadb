"""`webcallback run` as a child process, configured through the environment, for end-to-end tests:
real HTTP on a free port, the real SIP engine on a free UDP port, stopped with a real SIGTERM."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import RELAXED_SECURITY
from tests.httpserver import free_port
from webcallback.lab.phones import free_udp_port

SRC = Path(__file__).resolve().parents[2] / "src"
START_TIMEOUT = 20.0


@dataclass
class Service:
    url: str
    env: dict[str, str]
    cwd: Path
    proc: subprocess.Popen[bytes]
    token: str | None

    @property
    def stdout(self) -> str:
        return (self.cwd / "stdout.log").read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return (self.cwd / "stderr.log").read_text(errors="replace")

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "webcallback", *args]
        return subprocess.run(cmd, env=self.env, cwd=self.cwd, capture_output=True, text=True, timeout=60)

    def request_callback(self, username: str, password: str, target: str) -> httpx.Response:
        nonce = secrets.token_hex(8)
        digest = hashlib.sha1((nonce + password).encode()).hexdigest()
        body = {"username": username, "nonce": nonce, "hash": digest, "to": target}
        return httpx.post(f"{self.url}/webcallback", json=body, timeout=10)

    def status(self, callback_id: str) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"}
        r = httpx.get(f"{self.url}/api/v1/callbacks/{callback_id}", headers=headers, timeout=10)
        r.raise_for_status()
        body: dict[str, Any] = r.json()
        return body

    def wait_status(self, callback_id: str, states: tuple[str, ...], timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (body := self.status(callback_id))["state"] not in states:
            if time.monotonic() > deadline:
                raise AssertionError(f"callback still {body['state']}: {body}\n{self.stderr[-3000:]}")
            time.sleep(0.05)
        return body

    def terminate(self, timeout: float = 30) -> bool:
        """SIGTERM, as systemd would; True when the service shut down cleanly. (uvicorn re-raises
        the signal once its shutdown is complete, so a clean exit status is -SIGTERM.)"""
        self.proc.send_signal(signal.SIGTERM)
        status = self.proc.wait(timeout)
        return status in (0, -signal.SIGTERM) and "Application shutdown complete" in self.stderr


def service_env(db_url: str, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBCALLBACK_")}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), str(SRC.parent)])
    env |= {
        "WEBCALLBACK_DATABASE__URL": db_url,
        "WEBCALLBACK_SECRETS__KEY": base64.b64encode(os.urandom(32)).decode(),
        "WEBCALLBACK_SERVER__LISTEN": f"127.0.0.1:{free_port()}",
        "WEBCALLBACK_ENGINE__KIND": "sip",
        "WEBCALLBACK_ENGINE__SIP__LISTEN": f"127.0.0.1:{free_udp_port()}",
    }
    env |= RELAXED_SECURITY  # as in tests.conftest.make_settings: the numbers are +1 555 ones
    env |= {f"WEBCALLBACK_{k.upper()}": v for k, v in settings.items()}
    return env


@contextmanager
def running_service(env: dict[str, str], cwd: Path, token: str | None = None) -> Iterator[Service]:
    url = "http://" + env["WEBCALLBACK_SERVER__LISTEN"]
    with (cwd / "stdout.log").open("wb") as out, (cwd / "stderr.log").open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "webcallback", "run"], env=env, cwd=cwd, stdout=out, stderr=err
        )
    service = Service(url, env, cwd, proc, token or env.get("WEBCALLBACK_API__TOKEN"))
    try:
        _wait_healthy(service)
        yield service
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_healthy(service: Service) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if service.proc.poll() is not None:
            raise RuntimeError(f"webcallback run exited {service.proc.returncode}:\n{service.stderr[-3000:]}")
        try:
            if httpx.get(service.url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"webcallback run did not answer:\n{service.stderr[-3000:]}")
        time.sleep(0.05)
