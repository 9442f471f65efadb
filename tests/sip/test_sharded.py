"""The SIP engine over worker processes (`engine.sip.processes`), against SIPp phones: callbacks
complete on every worker, a worker that dies fails its callbacks (and comes back), stop hangs up
and leaves no process, and workers do not outlive their parent."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.sip.phones import Phone, free_udp_port, udp_port_bound
from webcallback.config import SipSettings
from webcallback.domain import (
    CallbackSpec,
    EndedBy,
    EngineError,
    LegState,
    ProgressEvent,
)
from webcallback.engines.sip import ShardedSipEngine, SipEngine, create_engine

pytestmark = pytest.mark.sip

Phones = Callable[..., Phone]
NEXT_HOP = "tests.sip.phones:loopback_next_hop"
ROOT = Path(__file__).resolve().parents[2]


def free_port_pair() -> int:
    """A UDP port whose next port is free too (worker i listens on port + i)."""
    for _ in range(50):
        port = free_udp_port()
        if port < 65535 and not udp_port_bound(port + 1):
            return port
    raise AssertionError("no two free ports in a row")


def id_for(worker: int, tag: str, workers: int = 2) -> str:
    """A callback id that the engine sends to `worker`."""
    n = 0
    while zlib.crc32(f"{tag}-{n}".encode()) % workers != worker:
        n += 1
    return f"{tag}-{n}"


def spec(callback_id: str, a: Phone, b: Phone, **kw: Any) -> CallbackSpec:
    values: dict[str, Any] = {"ring_timeout": 5.0, "max_duration": None, **kw}
    return CallbackSpec(callback_id=callback_id, destination=a.number, callback=b.number,
                        caller_id_to_destination=b.number, caller_id_to_callback=a.number,
                        **values)  # fmt: skip


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.fixture
async def sharded() -> AsyncIterator[Callable[[], Awaitable[ShardedSipEngine]]]:
    made: list[ShardedSipEngine] = []

    async def factory() -> ShardedSipEngine:
        # Workers bind consecutive ports (no port 0 here): a port free when chosen may be taken
        # before a worker binds it, by another test process; then start again on other ports.
        for attempt in range(5):
            settings = SipSettings(listen=f"127.0.0.1:{free_port_pair()}", linger=2)
            engine = ShardedSipEngine(settings, processes=2, next_hop=NEXT_HOP)
            try:
                await engine.start()
            except EngineError as exc:
                if "cannot listen" not in str(exc) or attempt == 4:
                    raise
                continue
            made.append(engine)
            return engine
        raise AssertionError("unreachable")

    yield factory
    for engine in made:
        await engine.stop()


def test_processes_setting_picks_the_engine() -> None:
    assert isinstance(create_engine(SipSettings(processes=1)), SipEngine)
    assert isinstance(create_engine(SipSettings(processes=2)), ShardedSipEngine)
    assert isinstance(create_engine(SipSettings(processes=0)), SipEngine | ShardedSipEngine)
    with pytest.raises(EngineError, match="65535"):
        ShardedSipEngine(SipSettings(listen="127.0.0.1:65535"), processes=2)


async def test_callbacks_complete_on_every_worker(
    sharded: Callable[[], Awaitable[ShardedSipEngine]], phones: Phones
) -> None:
    engine = await sharded()
    pairs = [(phones("uas_answer.xml", ring_ms=100), phones("uas_answer.xml", ring_ms=200)) for _ in range(2)]
    progress: list[ProgressEvent] = []
    specs = [spec(id_for(i, "every"), a, b, max_duration=0.5) for i, (a, b) in enumerate(pairs)]
    outcomes = await asyncio.wait_for(
        asyncio.gather(*(engine.run_callback(s, progress.append) for s in specs)), 20
    )
    for (a, b), s, outcome in zip(pairs, specs, outcomes, strict=True):
        assert outcome.callback_id == s.callback_id and outcome.completed, outcome
        assert await a.verdict() == 0 and await b.verdict() == 0
        states = [p.state for p in progress if p.callback_id == s.callback_id and p.leg is None]
        assert states == [LegState.BRIDGED, LegState.ENDED]
    # each callback was placed by its own worker, from that worker's port
    for worker, (a, b) in zip(engine.workers, pairs, strict=True):
        for phone in (a, b):
            via = phone.received("INVITE")[0].headers("Via")[0]
            assert f"127.0.0.1:{worker.listen.port}" in via, via


async def test_a_worker_that_dies_fails_its_callbacks_and_comes_back(
    sharded: Callable[[], Awaitable[ShardedSipEngine]], phones: Phones
) -> None:
    engine = await sharded()
    ringing = phones("uas_noanswer.xml")
    callback_id = id_for(0, "crash")
    progress: list[ProgressEvent] = []
    task = asyncio.create_task(
        engine.run_callback(spec(callback_id, ringing, ringing, ring_timeout=20), progress.append)
    )
    await until(lambda: any(p.state is LegState.RINGING for p in progress))
    victim = engine.workers[0].process
    assert victim is not None
    os.kill(victim.pid, signal.SIGKILL)
    with pytest.raises(EngineError, match=r"SIP worker 0 exited \(status -9\)"):
        await asyncio.wait_for(task, 10)
    # while worker 0 restarts, its callbacks go to worker 1
    assert not engine.workers[0].up and engine.workers[1].up
    a, b = phones("uas_answer.xml", ring_ms=50), phones("uas_answer.xml", ring_ms=50)
    outcome = await asyncio.wait_for(
        engine.run_callback(spec(id_for(0, "meanwhile"), a, b, max_duration=0.3), lambda p: None), 20
    )
    assert outcome.completed
    assert f":{engine.workers[1].listen.port}" in a.received("INVITE")[0].headers("Via")[0]
    await until(lambda: engine.workers[0].up, timeout=20)  # restarted
    assert engine.workers[0].process is not None and engine.workers[0].process.pid != victim.pid
    a, b = phones("uas_answer.xml", ring_ms=50), phones("uas_answer.xml", ring_ms=50)
    outcome = await asyncio.wait_for(
        engine.run_callback(spec(id_for(0, "after"), a, b, max_duration=0.3), lambda p: None), 20
    )
    assert outcome.completed


async def test_stop_hangs_up_and_leaves_no_process(
    sharded: Callable[[], Awaitable[ShardedSipEngine]], phones: Phones
) -> None:
    engine = await sharded()
    a, b = phones("uas_answer.xml", ring_ms=50), phones("uas_answer.xml", ring_ms=50)
    bridged = asyncio.Event()

    def on_progress(event: ProgressEvent) -> None:
        if event.leg is None and event.state is LegState.BRIDGED:
            bridged.set()

    task = asyncio.create_task(engine.run_callback(spec(id_for(1, "stop"), a, b), on_progress))
    await asyncio.wait_for(bridged.wait(), 10)
    pids = [w.process.pid for w in engine.workers if w.process is not None]
    assert len(pids) == 2
    await engine.stop()
    outcome = await asyncio.wait_for(task, 5)
    assert outcome.completed
    assert {leg.ended_by for leg in outcome.legs.values()} == {EndedBy.SHUTDOWN}
    assert await a.verdict() == 0 and await b.verdict() == 0  # each got its BYE
    assert all(gone(pid) for pid in pids)
    with pytest.raises(EngineError, match="not started"):
        await engine.run_callback(spec("late", a, b), lambda p: None)


async def test_start_fails_cleanly_when_a_worker_cannot_listen() -> None:
    port = free_port_pair()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", port + 1))
        engine = ShardedSipEngine(SipSettings(listen=f"127.0.0.1:{port}"), processes=2)
        with pytest.raises(EngineError, match=rf"SIP worker 1 on 127.0.0.1:{port + 1}: cannot listen"):
            await engine.start()
    assert all(w.process is None for w in engine.workers)
    assert not udp_port_bound(port)  # worker 0 was stopped too


def test_workers_do_not_outlive_their_parent() -> None:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    parent = subprocess.Popen(
        [sys.executable, "-m", "tests.sip.sharded_parent", str(free_port_pair())],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert parent.stdout is not None
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2 and not any(gone(pid) for pid in pids)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while not all(gone(pid) for pid in pids):
        assert time.monotonic() < deadline, f"workers {pids} outlived their parent"
        time.sleep(0.05)
