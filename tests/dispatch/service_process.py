"""`webcallback run` as a child process, configured through the environment, for end-to-end tests:
real HTTP and the real SIP engine, each on a port the child binds itself (port 0) and reports in
its `--ready-file`, stopped with a real SIGTERM. The parent waits for that file, not for a
timeout: on a busy machine start-up may take long, so the ceiling is only a guard against a hang."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import RELAXED_SECURITY

SRC = Path(__file__).resolve().parents[2] / "src"
READY_CEILING = 600.0  # seconds: a hang guard, not a start-up budget


@dataclass
class Service:
    url: str
    env: dict[str, str]
    cwd: Path
    proc: subprocess.Popen[bytes]
    token: str | None
    sip_listen: str | None = None  # the SIP engine's bound host:port (None: no engine in this process)

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
        "WEBCALLBACK_SERVER__LISTEN": "127.0.0.1:0",  # the child binds a free port and reports it
        "WEBCALLBACK_ENGINE__KIND": "sip",
        "WEBCALLBACK_ENGINE__SIP__LISTEN": "127.0.0.1:0",
    }
    env |= RELAXED_SECURITY  # as in tests.conftest.make_settings: the numbers are +1 555 ones
    env |= {f"WEBCALLBACK_{k.upper()}": v for k, v in settings.items()}
    return env


@contextmanager
def running_service(
    env: dict[str, str], cwd: Path, token: str | None = None, *, new_session: bool = False
) -> Iterator[Service]:
    """`new_session`: the child leads a process group of its own (with its SIP workers), so a
    test can kill the whole group as a crash of the machine's service would."""
    ready = cwd / "ready.json"
    ready.unlink(missing_ok=True)  # a restart in the same folder must not read the last run's
    command = [sys.executable, "-m", "webcallback", "run", "--ready-file", str(ready)]
    with (cwd / "stdout.log").open("wb") as out, (cwd / "stderr.log").open("wb") as err:
        proc = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=out, stderr=err, start_new_session=new_session
        )
    service = Service("", env, cwd, proc, token or env.get("WEBCALLBACK_API__TOKEN"))
    try:
        addresses = _wait_ready(service, ready)
        service.url, service.sip_listen = "http://" + addresses["http"], addresses["sip"]
        yield service
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(service: Service, ready: Path) -> dict[str, Any]:
    return wait_ready_file(service.proc, ready, lambda: service.stderr[-3000:])


def wait_ready_file(proc: subprocess.Popen[Any], ready: Path, log: Callable[[], str] = str) -> dict[str, Any]:
    """The addresses in `webcallback run --ready-file` (written whole once the child serves),
    waiting while the child still runs; `log` says what it printed, for the error."""
    deadline = time.monotonic() + READY_CEILING
    while not ready.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"webcallback run exited {proc.returncode}:\n{log()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"webcallback run hung in start-up:\n{log()}")
        time.sleep(0.05)
    addresses: dict[str, Any] = json.loads(ready.read_text())
    return addresses
