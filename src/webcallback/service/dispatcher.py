"""The dispatcher: takes queued callbacks from the store and runs them on the telephony engine.

Lifetime (an async context manager, like the engine it drives):
- on entry, callbacks this node left `dialing`/`bridged` (it crashed) are failed as `interrupted`,
  then a loop claims queued callbacks — woken at once by `CallbackService.subscribe`, and every
  `poll_interval` seconds anyway, so callbacks queued by another node or before a restart are run;
- at most `calls.concurrency` callbacks run at once; each is one task that builds the
  `CallbackSpec`, awaits `engine.run_callback`, and records progress and the end (`records.py`);
- on exit it stops claiming, then `calls.shutdown = "drain"` waits up to `drain_timeout` for the
  calls in progress, `"hangup"` hangs them up at once (ended by `shutdown`); whatever is still
  running after that is hung up, then cancelled, and recorded as failed.

Whatever goes wrong with one callback (engine error, an exception, an engine that never returns,
cancellation) ends it in a final state with a reason; nothing is left in flight by a process that
is still running, as long as talk time is limited (`calls.max_duration` or credit).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
from collections.abc import Callable
from types import TracebackType

from webcallback.config import CallSettings, ConfigError, Settings
from webcallback.domain import (
    CallbackSpec,
    CallOutcome,
    DialogReaper,
    EndedBy,
    EngineError,
    FailureReason,
    LegOrder,
    TelephonyEngine,
)
from webcallback.logs import bind_callback
from webcallback.service.container import Services
from webcallback.service.node import node_id
from webcallback.service.records import CallRecorder, ProgressLog
from webcallback.service.retry import until_stored
from webcallback.store.callbacks import Callback

log = logging.getLogger(__name__)

POLL_INTERVAL = 2.0  # seconds between looks at the store when nobody wakes the dispatcher
HANGUP_GRACE = 10.0  # seconds hung-up calls get to end before their tasks are cancelled
WATCHDOG_GRACE = 60.0  # seconds an engine may overrun a callback's longest possible life


class DispatcherState(enum.Enum):
    UNOPENED = "unopened"
    RUNNING = "running"
    STOPPING = "stopping"
    CLOSED = "closed"


def node_name(settings: Settings) -> str:
    """Stable across restarts and never shared by two live processes: what crash recovery keys on
    (`service/node.py`)."""
    return node_id(settings)


def caller_id(template: str, callback: Callback) -> str:
    names = {
        "callback": callback.callback,
        "destination": callback.destination,
        "username": callback.username,
    }
    return template.format_map(names)


def build_spec(calls: CallSettings, callback: Callback) -> CallbackSpec:
    """The engine's instructions for one callback. `calls.max_duration` 0 means no service limit;
    the callback's own `max_duration` (what its credit pays for) can only shorten it."""
    limits = [d for d in (calls.max_duration or None, callback.max_duration) if d is not None]
    return CallbackSpec(
        callback_id=callback.id,
        destination=callback.destination,
        callback=callback.callback,
        caller_id_to_destination=caller_id(calls.caller_id_to_destination, callback),
        caller_id_to_callback=caller_id(calls.caller_id_to_callback, callback),
        leg_order=LegOrder(calls.leg_order),
        ring_timeout=calls.ring_timeout,
        progress_timeout=calls.progress_timeout or None,
        max_duration=min(limits) if limits else None,
    )


def check_templates(calls: CallSettings) -> None:
    """Refuse at start-up a caller-ID template that would fail every callback."""
    for key in ("caller_id_to_destination", "caller_id_to_callback"):
        template = getattr(calls, key)
        try:
            template.format_map({"callback": "", "destination": "", "username": ""})
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(f"calls.{key}", f"bad template {template!r}: {exc!r}") from None


class Dispatcher:
    def __init__(
        self,
        services: Services,
        engine: TelephonyEngine,
        *,
        node: str | None = None,
        poll_interval: float = POLL_INTERVAL,
        hangup_grace: float = HANGUP_GRACE,
        watchdog_grace: float = WATCHDOG_GRACE,
        reaper: DialogReaper | None = None,
    ) -> None:
        self._services = services
        self._settings = services.settings.calls
        check_templates(self._settings)
        self._engine = engine
        self.node = node or node_name(services.settings)
        self._poll_interval = poll_interval
        self._hangup_grace = hangup_grace
        self._watchdog_grace = watchdog_grace
        self._recorder = CallRecorder(services, reaper)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._background: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] = lambda: None
        self.state = DispatcherState.UNOPENED

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def __aenter__(self) -> Dispatcher:
        if self.state is not DispatcherState.UNOPENED:
            raise RuntimeError(f"dispatcher is {self.state.value}; it cannot be started again")
        # What a crash left: read now, before this process claims anything under the same node
        # id; ended in the background, as hanging its legs up may wait for silent far ends.
        stale = await self._recorder.stale(self.node)
        self._background.append(asyncio.create_task(self._recorder.interrupt(stale), name="recovery"))
        if self._settings.checkpoint_interval > 0:
            self._background.append(asyncio.create_task(self._checkpoints(), name="checkpoints"))
        self.state = DispatcherState.RUNNING
        self._unsubscribe = self._services.callback_service.subscribe(self.wake)
        self._services.shedder.attach(lambda: len(self._tasks))
        self._loop_task = asyncio.create_task(self._claim_loop(), name="dispatcher")
        log.info("dispatcher %s running (concurrency %d)", self.node, self._settings.concurrency)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def wake(self, _callback: Callback | None = None) -> None:
        """Look at the store now (called for each callback queued on this node)."""
        self._wake.set()

    # ---- taking work -------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        while self.state is DispatcherState.RUNNING:
            self._wake.clear()
            try:
                await self._claim()
            except Exception:
                log.exception("dispatcher: could not claim queued callbacks; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval)

    async def _claim(self) -> None:
        free = self._settings.concurrency - len(self._tasks)
        if free <= 0:
            return
        claimed = await self._services.db.run(self._services.callbacks.claim_queued, self.node, free)
        self._services.shedder.claimed(len(claimed))
        for callback in claimed:
            self._services.metrics.claimed(callback)
            task = asyncio.create_task(self._run(callback), name=f"callback-{callback.id}")
            self._tasks[callback.id] = task
            task.add_done_callback(functools.partial(self._done, callback.id))

    async def _checkpoints(self) -> None:
        """Every `calls.checkpoint_interval`: one UPDATE noting that the bridged calls this node
        runs are still up (what a crash is charged for, `records.py`)."""
        while True:
            await asyncio.sleep(self._settings.checkpoint_interval)
            try:
                await self._recorder.checkpoint(list(self._tasks))
            except Exception as exc:  # an outage: the next one will do
                log.warning("dispatcher: talk checkpoint not stored: %s", exc)

    def _done(self, callback_id: str, _task: asyncio.Task[None]) -> None:
        self._tasks.pop(callback_id, None)
        self.wake()  # a slot is free

    # ---- one callback ------------------------------------------------------------------------

    async def _run(self, callback: Callback) -> None:
        bind_callback(callback.id)  # this task's lines, and the engine's for it (logs.py)
        progress = ProgressLog(self._recorder, callback)
        try:
            result = await self._place(callback, progress)
        except asyncio.CancelledError:
            await self._record(callback, progress, FailureReason.SHUTDOWN, retry=False)
            raise
        await self._record(callback, progress, result)

    async def _place(self, callback: Callback, progress: ProgressLog) -> CallOutcome | FailureReason:
        """The engine's outcome, or the reason there is none."""
        try:
            spec = build_spec(self._settings, callback)
            return await asyncio.wait_for(self._engine.run_callback(spec, progress), self._watchdog(spec))
        except TimeoutError:
            log.error("the engine overran the callback's longest possible life")
            return FailureReason.ENGINE_TIMEOUT
        except EngineError as exc:
            log.error("engine error: %s", exc)
            return FailureReason.ENGINE_ERROR
        except Exception:
            log.exception("the callback failed unexpectedly")
            return FailureReason.INTERNAL_ERROR

    def _watchdog(self, spec: CallbackSpec) -> float | None:
        """Both legs ringing in turn, then the longest talk, then a grace; None when talk is unlimited."""
        if spec.max_duration is None:
            return None
        return 2 * spec.ring_timeout + spec.max_duration + self._watchdog_grace

    async def _record(
        self,
        callback: Callback,
        progress: ProgressLog,
        result: CallOutcome | FailureReason,
        *,
        retry: bool = True,
    ) -> None:
        """Store the callback's end; through a database outage it retries until stored (see
        `service/retry.py`), except on the way out of a cancelled task (`retry=False`)."""

        async def write() -> None:
            if isinstance(result, str):  # on shutdown the engine hung the legs up itself
                await self._recorder.fail(callback, result, reap=result is not FailureReason.SHUTDOWN)
            else:
                await self._recorder.finish(callback, result)

        try:
            await progress.close()
            if retry:
                await until_stored(write, "recording the callback's end")
            else:
                await write()
        except Exception:
            log.exception("could not record the callback's end; a restart marks it interrupted")

    # ---- stopping ----------------------------------------------------------------------------

    async def stop(self) -> None:
        if self.state is not DispatcherState.RUNNING:
            return
        self.state = DispatcherState.STOPPING
        self._unsubscribe()
        self._services.shedder.attach(None)
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        if self._tasks and self._settings.shutdown == "drain":
            await self._drain(self._settings.drain_timeout)
        await self._hangup_all()
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self.state = DispatcherState.CLOSED
        log.info("dispatcher %s stopped", self.node)

    async def _drain(self, timeout: float) -> None:
        """Until the calls end, `timeout` passes or `services.stop_draining` is set (a second
        signal), whichever comes first; `_hangup_all` then ends what is left."""
        log.info("draining %d callbacks (up to %.0f s)", len(self._tasks), timeout)
        drained = asyncio.ensure_future(asyncio.wait(list(self._tasks.values())))
        hurried = asyncio.ensure_future(self._services.stop_draining.wait())
        try:
            await asyncio.wait((drained, hurried), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            drained.cancel()  # cancels the waiting only, not the calls
            hurried.cancel()
        if hurried.done() and not hurried.cancelled() and self._tasks:
            log.warning("drain ended early: hanging up %d callbacks", len(self._tasks))

    async def _hangup_all(self) -> None:
        if not self._tasks:
            return
        log.info("hanging up %d callbacks", len(self._tasks))
        ids = list(self._tasks)
        results = await asyncio.gather(
            *(self._engine.hangup(cid, EndedBy.SHUTDOWN) for cid in ids), return_exceptions=True
        )
        for cid, result in zip(ids, results, strict=True):
            if isinstance(result, BaseException):
                log.error("hangup failed: %r", result, extra={"callback_id": cid})
        tasks = list(self._tasks.values())
        _done, pending = await asyncio.wait(tasks, timeout=self._hangup_grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
