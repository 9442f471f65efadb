"""The SIP engine on several processes: one sippy reactor per core (`engine.sip.processes`).

sippy's reactor is one thread holding the GIL, so one process does at most about one core of SIP
work (see BENCHMARKS.md). `ShardedSipEngine` runs N worker processes (`worker`), each a whole
`SipEngine` listening on its own port: `engine.sip.listen`'s port + i. A callback goes to the
worker `crc32(callback_id) % N`, and every request inside its dialogs comes back to that worker's
port (it is in our Via and Contact), so the workers share nothing.

The parent keeps the dispatcher's contract: `run_callback` sends the spec down the worker's pipe
(`wire`), relays its progress to `on_progress` in the event loop and returns its outcome.
A worker that dies fails its callbacks in flight with `EngineError` naming it, and is started
again; meanwhile its share of new callbacks goes to the next worker. `stop` asks every worker to
hang up and exit, and kills any that has not within the grace period. Workers die with the parent
(see `worker`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import sys
import zlib
from dataclasses import dataclass, field, replace

from webcallback import logs
from webcallback.config import LOG_LEVELS, LogSettings, SipSettings
from webcallback.domain import (
    CallbackSpec,
    CallOutcome,
    EndedBy,
    EngineError,
    ProgressCallback,
    ProgressEvent,
)
from webcallback.engines.sip.addressing import HostPort, parse_hostport
from webcallback.engines.sip.wire import WorkerConfig, frame, read_frame

log = logging.getLogger(__name__)

_START_TIMEOUT = 15.0  # seconds for a worker to import sippy and bind its port
_STOP_GRACE = 3.0 + 5.0  # the worker's own hang-up grace, then this much to exit
_RESTART_DELAY = 1.0


def worker_count(processes: int) -> int:
    """`engine.sip.processes`: 0 = one per CPU core."""
    return processes or len(os.sched_getaffinity(0))


@dataclass
class _Call:
    worker: _Worker
    future: asyncio.Future[CallOutcome]
    on_progress: ProgressCallback


@dataclass
class _Worker:
    index: int
    listen: HostPort
    process: asyncio.subprocess.Process | None = None
    reader_task: asyncio.Task[None] | None = None
    calls: dict[str, _Call] = field(default_factory=dict)
    up: bool = False

    def send(self, *message: object) -> None:
        if self.up and self.process is not None and self.process.stdin is not None:
            self.process.stdin.write(frame(message))


class ShardedSipEngine:
    """`TelephonyEngine` over `processes` SIP worker processes (see the module docstring).

    `next_hop` replaces the trunk as `SipEngine`'s does, but as a "package.module:function"
    reference, since each worker imports it.
    """

    def __init__(self, settings: SipSettings, *, processes: int, next_hop: str | None = None) -> None:
        if processes < 1:
            raise EngineError("engine.sip.processes: at least one worker")
        self.settings = settings
        listen = parse_hostport(settings.listen, 5060, "engine.sip.listen")
        if listen.port + processes - 1 > 65535:
            raise EngineError(f"engine.sip.listen: ports {listen.port}+{processes} go past 65535")
        self.next_hop = next_hop
        self.workers = [_Worker(i, HostPort(listen.host, listen.port + i)) for i in range(processes)]
        self._calls: dict[str, _Call] = {}
        self._started = False
        self._stopping = False
        self._restarts: set[asyncio.Task[None]] = set()

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        self._stopping = False
        results = await asyncio.gather(*(self._spawn(w) for w in self.workers), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            await self._kill_all()
            raise errors[0]
        self._started = True
        log.info("SIP engine started: %d worker processes on %s", len(self.workers),
                 ", ".join(str(w.listen) for w in self.workers))  # fmt: skip

    async def stop(self) -> None:
        """Every worker hangs up its calls (ended by `shutdown`) and exits."""
        if not self._started:
            return
        self._started, self._stopping = False, True
        for worker in self.workers:
            worker.send("stop")
        waits = [w.reader_task for w in self.workers if w.reader_task is not None]
        if waits:
            await asyncio.wait(waits, timeout=_STOP_GRACE)
        await self._kill_all()
        for call in list(self._calls.values()):  # a worker that did not report in time
            _fail(call, "the SIP engine stopped before the callback ended")

    def workers_up(self) -> int:
        """Worker processes running now (one being restarted is not)."""
        return sum(1 for worker in self.workers if worker.up)

    async def run_callback(self, spec: CallbackSpec, on_progress: ProgressCallback) -> CallOutcome:
        if not self._started:
            raise EngineError("the SIP engine is not started")
        if spec.callback_id in self._calls:
            raise EngineError(f"callback {spec.callback_id} is already running")
        worker = self._pick(spec.callback_id)
        call = _Call(worker, asyncio.get_running_loop().create_future(), on_progress)
        self._calls[spec.callback_id] = worker.calls[spec.callback_id] = call
        worker.send("run", spec)
        try:
            return await asyncio.shield(call.future)
        except asyncio.CancelledError:
            worker.send("hangup", spec.callback_id, EndedBy.LOCAL)
            raise
        finally:
            self._calls.pop(spec.callback_id, None)
            worker.calls.pop(spec.callback_id, None)

    def _pick(self, callback_id: str) -> _Worker:
        """The callback's own worker; the next one up while it is restarting."""
        first = zlib.crc32(callback_id.encode()) % len(self.workers)
        for i in range(len(self.workers)):
            worker = self.workers[(first + i) % len(self.workers)]
            if worker.up:
                return worker
        raise EngineError("no SIP worker is running")

    async def hangup(self, callback_id: str, ended_by: EndedBy = EndedBy.LOCAL) -> bool:
        call = self._calls.get(callback_id)
        if call is None or not call.worker.up:
            return False
        call.worker.send("hangup", callback_id, ended_by)
        return True

    # ---- workers ---------------------------------------------------------------------------

    async def _spawn(self, worker: _Worker) -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "webcallback.engines.sip.worker", str(os.getpid()),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, start_new_session=True,
            limit=2**20, env=_child_env(),
        )  # fmt: skip
        worker.process = process
        assert process.stdin is not None and process.stdout is not None
        config = WorkerConfig(
            settings=replace(self.settings, listen=str(worker.listen), processes=1),
            index=worker.index,
            next_hop=self.next_hop,
            gc_threshold=gc.get_threshold(),
            log=worker_log_settings(),
        )
        process.stdin.write(frame(("config", config)))
        try:
            answer = await asyncio.wait_for(read_frame(process.stdout), _START_TIMEOUT)
        except TimeoutError:
            answer = ("error", f"no answer in {_START_TIMEOUT:.0f} s")
        if answer is None or answer[0] != "ready":
            reason = answer[1] if answer is not None and answer[0] == "error" else "exited at start"
            raise EngineError(f"SIP worker {worker.index} on {worker.listen}: {reason}")
        worker.up = True
        worker.reader_task = asyncio.create_task(self._read(worker, process.stdout))

    async def _read(self, worker: _Worker, stdout: asyncio.StreamReader) -> None:
        try:
            while (message := await read_frame(stdout)) is not None:
                self._handle(worker, message)
                if message[0] == "stopped":
                    break
        except Exception:
            log.exception("SIP worker %d: bad message; stopping it", worker.index)
        worker.up = False
        await self._reap(worker)
        if not self._stopping:
            asyncio.get_running_loop().call_later(_RESTART_DELAY, self._restart, worker)

    def _handle(self, worker: _Worker, message: tuple[object, ...]) -> None:
        match message:
            case ("progress", ProgressEvent() as event):
                call = worker.calls.get(event.callback_id)
                if call is not None:
                    try:
                        with logs.callback_bound(event.callback_id):  # on the dispatcher's lines for it
                            call.on_progress(event)
                    except Exception:  # the dispatcher's bug must not kill the call
                        log.exception("on_progress failed", extra={"callback_id": event.callback_id})
            case ("outcome", str(callback_id), CallOutcome() as outcome):
                call = worker.calls.get(callback_id)
                if call is not None and not call.future.done():
                    call.future.set_result(outcome)
            case ("failed", str(callback_id), str(reason)):
                call = worker.calls.get(callback_id)
                if call is not None:
                    _fail(call, f"SIP engine failed: {reason}")
            case ("stopped",):
                pass
            case _:
                raise ValueError(f"unexpected message {message[0]!r}")

    async def _reap(self, worker: _Worker) -> None:
        process = worker.process
        code = None
        if process is not None:
            with contextlib.suppress(TimeoutError):
                code = await asyncio.wait_for(process.wait(), 5)
        if worker.calls:
            log.error("SIP worker %d exited (status %s) with %d callbacks in flight", worker.index,
                      code, len(worker.calls))  # fmt: skip
        for call in list(worker.calls.values()):
            _fail(call, f"SIP worker {worker.index} exited (status {code}) during the callback")

    def _restart(self, worker: _Worker) -> None:
        if self._stopping or worker.up:
            return

        async def again() -> None:
            try:
                await self._spawn(worker)
                log.info("SIP worker %d restarted on %s", worker.index, worker.listen)
            except Exception as exc:
                log.error("SIP worker %d did not restart: %s; trying again", worker.index, exc)
                await self._kill(worker)
                if not self._stopping:
                    asyncio.get_running_loop().call_later(_RESTART_DELAY * 5, self._restart, worker)

        task = asyncio.get_running_loop().create_task(again())
        self._restarts.add(task)
        task.add_done_callback(self._restarts.discard)

    async def _kill_all(self) -> None:
        await asyncio.gather(*(self._kill(w) for w in self.workers))

    async def _kill(self, worker: _Worker) -> None:
        worker.up = False
        process, worker.process = worker.process, None
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        if worker.reader_task is not None and worker.reader_task is not asyncio.current_task():
            await asyncio.gather(worker.reader_task, return_exceptions=True)
        worker.reader_task = None


def worker_log_settings() -> LogSettings:
    """The workers log as this process does: its `[log]` settings when `logs.configure` set them
    up (`webcallback run`), else (an engine inside tests) at the level `webcallback` logs at."""
    configured = logs.active()
    if configured is not None:
        return configured
    level = logging.getLevelName(logging.getLogger("webcallback").getEffectiveLevel()).lower()
    return LogSettings(level=level if level in LOG_LEVELS else "info")


def _child_env() -> dict[str, str]:
    """The parent's environment, with its import path ahead of the installed packages: a worker
    runs the same code as its parent (and finds a `next_hop` reference the parent can import)."""
    installed = (sys.prefix, sys.base_prefix, sys.exec_prefix)
    own = [os.path.abspath(p or ".") for p in sys.path if not os.path.abspath(p or ".").startswith(installed)]
    inherited = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([*own, *([inherited] if inherited else [])])}


def _fail(call: _Call, reason: str) -> None:
    if not call.future.done():
        call.future.set_exception(EngineError(reason))
