"""The engine's lifecycle and errors; no far end needed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sip.phones import free_udp_port
from webcallback.config import SipSettings
from webcallback.domain import CallbackSpec, EngineError, TelephonyEngine
from webcallback.engines.sip import SipEngine
from webcallback.engines.sip import reactor as reactor_mod

SPEC = CallbackSpec(
    callback_id="api-1",
    destination="+15550000009",
    callback="+15550000009",
    caller_id_to_destination="+1",
    caller_id_to_callback="+1",
)


def test_engine_satisfies_the_contract() -> None:
    engine: TelephonyEngine = SipEngine(SipSettings())
    assert isinstance(engine, SipEngine)


async def test_run_before_start_is_an_engine_error() -> None:
    with pytest.raises(EngineError, match="not started"):
        await SipEngine(SipSettings()).run_callback(SPEC, lambda p: None)
    assert await SipEngine(SipSettings()).hangup("nope") is False


async def test_one_reactor_per_process(sip_listen: str) -> None:
    other = SipEngine(SipSettings(listen=f"127.0.0.1:{free_udp_port()}"))
    with pytest.raises(EngineError, match="one reactor per process"):
        await other.start()
    same = SipEngine(SipSettings(listen=sip_listen))
    await same.start()
    await same.start()  # idempotent
    await same.stop()
    await same.stop()
    assert reactor_mod._shared is not None  # the session's reference keeps the reactor running


def test_port_in_use_is_an_engine_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        reactor = reactor_mod.Reactor("127.0.0.1", port)
        with pytest.raises(EngineError, match="cannot listen"):
            reactor.start()


@pytest.mark.parametrize("listen", [":5070", "127.0.0.1:99999", "127.0.0.1:x", "0.0.0.0:5070"])
def test_bad_listen_setting(listen: str) -> None:
    with pytest.raises(EngineError, match=r"engine\.sip\.listen"):
        SipEngine(SipSettings(listen=listen))


@pytest.mark.sip
def test_engine_restarts_in_one_process() -> None:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{root / 'src'}{os.pathsep}{root}"}
    done = subprocess.run(
        [sys.executable, "-m", "tests.sip.restart_check"],
        cwd=root, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[:3] == ["completed 0 0"] * 3


async def test_a_broken_stack_is_an_engine_error(sip_listen: str) -> None:
    def no_route(number: str) -> tuple[str, int]:
        raise RuntimeError(f"no route to {number}")

    engine = SipEngine(SipSettings(listen=sip_listen), next_hop=no_route)
    await engine.start()
    try:
        with pytest.raises(EngineError, match="no route"):
            await engine.run_callback(SPEC, lambda p: None)
        assert await engine.hangup(SPEC.callback_id) is False
    finally:
        await engine.stop()
