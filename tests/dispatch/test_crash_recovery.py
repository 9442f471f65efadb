"""A crash with calls up, survived: `webcallback run` killed with SIGKILL (one process; with
`engine.sip.processes = 2`, the whole process group) while SIPp far ends hold bridged calls,
then started again on the same database.

The far ends are one SIPp UAS playing the lab phone's scenario with its talk timers raised far
beyond the test, so a leg ends only by a BYE it receives. Asserted on SIPp's message trace (a BYE
for every Call-ID it answered, after the kill) and on the store (every callback final as
`interrupted`, charged for the talk its checkpoints or the far end's answer prove, the users free
to call again) — not on wall-clock limits.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from decimal import Decimal
from pathlib import Path

import pytest

from tests.dispatch.service_process import Service, running_service, service_env
from tests.sip.phones import parse_trace, process_tree, wait_bound
from webcallback.config import load_settings
from webcallback.lab.phones import SCENARIO, free_udp_port, udp_port_bound
from webcallback.service.container import build_services
from webcallback.service.status import StatusService

pytestmark = [
    pytest.mark.sip,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="SIPp (sip-tester) is not installed"),
]

USERS = ("alice", "bob", "carol")
PASSWORD = "pa55word"
HOLD_MS = 120_000  # far longer than the test: only a BYE ends a leg


class HoldingFarEnds:
    """One SIPp UAS answering every leg and holding it until a BYE comes, tracing every message."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_udp_port()
        text = SCENARIO.read_text()
        for held in ('timeout="10000"', 'timeout="5000"'):
            text = text.replace(held, f'timeout="{HOLD_MS}"')
        self.scenario = workdir / "holding_phone.xml"
        self.scenario.write_text(text)
        self.trace = workdir / "far_ends_msg.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"sip:127.0.0.1:{self.port}"

    def __enter__(self) -> HoldingFarEnds:
        sipp = shutil.which("sipp")
        assert sipp is not None
        args = ["timeout", "300", sipp, "-sf", str(self.scenario), "-i", "127.0.0.1", "-p", str(self.port),
                "-nostdin", "-set", "RING_MS", "200", "-trace_msg", "-message_file", str(self.trace),
                "-trace_err", "-error_file", str(self.workdir / "far_ends_err.log")]  # fmt: skip
        out = (self.workdir / "far_ends.out").open("wb")
        self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir)
        wait_bound(self.port, self.proc, "SIPp far ends")
        return self

    def __exit__(self, *_: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)

    def calls(self) -> dict[str, list[tuple[float, str]]]:
        """Call-ID -> (time, what) of each request SIPp received on it."""
        out: dict[str, list[tuple[float, str]]] = {}
        text = self.trace.read_text(errors="replace") if self.trace.exists() else ""
        for message in parse_trace(text):
            if message.direction != "received" or not message.method:
                continue
            call_id = message.headers("Call-ID")[0]
            out.setdefault(call_id, []).append((message.at, message.method))
        return out


def _add_accounts(env: dict[str, str]) -> None:
    services = build_services(load_settings(os.devnull, environ=env))
    try:
        for i, name in enumerate(USERS):
            enc, kid = services.cipher.encrypt(name, PASSWORD)
            services.accounts.add(name, password_enc=enc, key_id=kid,
                                  callback_number=f"+1555010{i:04d}", balance=Decimal(5))  # fmt: skip
    finally:
        services.close()


def _stored(env: dict[str, str], callback_id: str) -> dict[str, object]:
    services = build_services(load_settings(os.devnull, environ=env))
    try:
        body = StatusService(services.db).show(callback_id)
    finally:
        services.close()
    assert body is not None
    return body


def _kill_all(service: Service) -> None:
    """SIGKILL to the service and all its processes, as systemd's `KillMode=control-group` or the
    OOM killer would: its process group, and its SIP workers (sessions of their own, which on
    their parent's death alone would hang up cleanly), workers first."""
    workers = process_tree(service.proc.pid)[1:]
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    os.killpg(service.proc.pid, signal.SIGKILL)
    service.proc.wait(30)


def _bridge_one_callback_per_user(service: Service) -> list[str]:
    ids = []
    for i, user in enumerate(USERS):
        r = service.request_callback(user, PASSWORD, f"+1555020{i:04d}")
        assert r.status_code == 200, r.text
        ids.append(str(r.json()["id"]))
    for cid in ids:
        service.wait_status(cid, ("bridged",))
    return ids


def _wait_final(service: Service, ids: list[str]) -> list[dict[str, object]]:
    return [service.wait_status(cid, ("completed", "failed"), timeout=120) for cid in ids]


@pytest.mark.parametrize("processes", ["1", "2"])
def test_sigkill_with_calls_bridged_then_restart_byes_every_leg_and_charges_the_talk(
    sqlite_url: str, tmp_path: Path, processes: str
) -> None:
    cwd = tmp_path / "service"
    cwd.mkdir()
    with HoldingFarEnds(tmp_path) as far_ends:
        listen = next(p for p in iter(free_udp_port, 0) if not udp_port_bound("127.0.0.1", p + 1))
        env = service_env(sqlite_url, ENGINE__SIP__TRUNK=far_ends.uri, API__TOKEN="t0ken",
                          ENGINE__SIP__PROCESSES=processes, ENGINE__SIP__LISTEN=f"127.0.0.1:{listen}",
                          CALLS__CHECKPOINT_INTERVAL="0.5", CALLS__RING_TIMEOUT="10",
                          BILLING__ENABLED="false")  # fmt: skip
        _add_accounts(env)
        with running_service(env, cwd, new_session=True) as service:
            ids = _bridge_one_callback_per_user(service)
            time.sleep(1.5)  # at least two checkpoints (every 0.5 s)
            _kill_all(service)
        killed_at = time.time()
        answered = {cid for cid, requests in far_ends.calls().items() if "INVITE" in [m for _, m in requests]}
        assert len(answered) == 2 * len(USERS), far_ends.calls()
        assert not any("BYE" in [m for _, m in far_ends.calls()[cid]] for cid in answered)  # still up

        (cwd / "stdout.log").unlink()
        with running_service(env, cwd, new_session=True) as again:
            finals = _wait_final(again, ids)
            r = again.request_callback(USERS[0], PASSWORD, "+15550300001")  # free to call again
            assert r.status_code == 200, r.text
            stderr = again.stderr

        calls = far_ends.calls()
        byes = {cid: [at for at, m in calls[cid] if m == "BYE"] for cid in answered}
        assert all(byes.values()), f"legs never hung up: {byes}\n{stderr[-3000:]}"
        assert all(min(at) >= killed_at - 1 for at in byes.values())  # SIPp's clock: second resolution
        for body in finals:
            assert (body["state"], body["reason"]) == ("failed", "interrupted"), body
            cdr = body["cdr"]
            assert isinstance(cdr, dict)
            assert cdr["bridged_at"] is not None
            assert cdr["bridged_s"] >= 1.0, cdr  # the checkpoints proved at least ~1.5 s of talk
            assert {leg["state"] for leg in body["legs"].values()} == {"ended"}  # type: ignore[attr-defined]
        assert "leg left up" in stderr


def test_a_sip_worker_killed_alone_has_its_legs_hung_up_by_the_parent(
    sqlite_url: str, tmp_path: Path
) -> None:
    """`processes = 2`, one worker SIGKILLed with calls bridged: the parent fails its callbacks
    (`engine-error`) and BYEs their legs from the stored dialogs; the other worker's go on."""
    cwd = tmp_path / "service"
    cwd.mkdir()
    with HoldingFarEnds(tmp_path) as far_ends:
        listen = next(p for p in iter(free_udp_port, 0) if not udp_port_bound("127.0.0.1", p + 1))
        env = service_env(sqlite_url, ENGINE__SIP__TRUNK=far_ends.uri, API__TOKEN="t0ken",
                          ENGINE__SIP__PROCESSES="2", ENGINE__SIP__LISTEN=f"127.0.0.1:{listen}",
                          CALLS__SHUTDOWN="hangup", BILLING__ENABLED="false")  # fmt: skip
        _add_accounts(env)
        with running_service(env, cwd, new_session=True) as service:
            ids = _bridge_one_callback_per_user(service)
            victim = process_tree(service.proc.pid)[1]
            os.kill(victim, signal.SIGKILL)
            finals: dict[str, dict[str, object]] = {}
            seen = -1
            # Its callbacks fail one by one as the parent records them, the other worker's stay
            # up: poll until failures have begun and a second's look finds no new one.
            while not finals or len(finals) != seen:
                seen = len(finals)
                time.sleep(1.0 if finals else 0.1)
                finals = {cid: body for cid in ids if (body := service.status(cid))["state"] == "failed"}
            failed = [service.wait_status(cid, ("failed",), timeout=60) for cid in finals]
            up = [cid for cid in ids if cid not in finals]
            assert all(service.status(cid)["state"] == "bridged" for cid in up)
            deadline = time.monotonic() + 60
            while len(byed := _byed(far_ends)) < 2 * len(failed):  # the reaper's BYEs
                assert time.monotonic() < deadline, f"{byed}\n{service.stderr[-3000:]}"
                time.sleep(0.1)
            assert service.terminate()
        assert all(body["reason"] == "engine-error" for body in failed), failed
        assert len(byed) == 2 * len(failed)  # both legs of each failed callback, no others


def _byed(far_ends: HoldingFarEnds) -> set[str]:
    return {cid for cid, requests in far_ends.calls().items() if "BYE" in [m for _, m in requests]}
