"""Recording one callback's life for the dispatcher: progress as it happens, then the end, once.

`ProgressLog` is the `on_progress` callback an engine gets: it may be called from any thread, never
blocks, and writes the events in order on the event loop. `CallRecorder.finish` stores the final
state and the CDR in one transaction, then calls `Services.on_callback_finished` hooks; `fail`
does the same for a callback that ended without an outcome (engine error, crash, shutdown).
Hooks run only when this process moved the callback to its final state, so at most once each.

A callback that ended without an outcome may still have legs up that nobody holds (the process
that placed them died): `fail` first has the `DialogReaper` BYE (or CANCEL) each leg's stored
dialog. Its talk is then what can be proven (docs/operations.md, "What a crash is charged"): up to
the far end's 2xx to that BYE (the call was up until then), else up to the last checkpoint
(`callbacks.talked_until`), never past the callback's `max_duration` (what its credit covers).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from datetime import datetime
from typing import Any

from webcallback.domain import (
    CallOutcome,
    DialogReaper,
    EndedBy,
    FailureReason,
    LegRecord,
    LegRole,
    LegState,
    ProgressEvent,
    ReapResult,
)
from webcallback.logs import bind_callback
from webcallback.service.container import Services
from webcallback.service.retry import until_stored
from webcallback.store.callbacks import BRIDGED, COMPLETED, DIALING, FAILED, Callback
from webcallback.store.telephony import TelephonyStore

log = logging.getLogger(__name__)


class CallRecorder:
    def __init__(self, services: Services, reaper: DialogReaper | None = None) -> None:
        self._services = services
        self._db = services.db
        self._metrics = services.metrics
        self._reaper = reaper
        self.store = TelephonyStore(services.db, services.callbacks.events)

    async def progress(self, callback: Callback, event: ProgressEvent) -> None:
        number = callback.callback if event.leg is LegRole.CALLBACK else callback.destination
        await self._db.run(self.store.record_progress, event, number, callback.username)
        if event.refresh:
            return
        self._metrics.progress(event)
        if event.state is LegState.BRIDGED:
            await self._db.run(self._services.callbacks.transition, callback.id, DIALING, BRIDGED)

    async def finish(self, callback: Callback, outcome: CallOutcome) -> None:
        await self._db.run(self.store.record_final_legs, callback.id, outcome.legs, callback.username)
        state = COMPLETED if outcome.completed else FAILED
        stored = await self._db.run(self.store.finish, callback, state, outcome)
        if not stored:
            self._metrics.ended(callback.id)
            log.warning("the callback was already final; its outcome %s is dropped", outcome.reason)
            return
        self._metrics.finished(callback.id, state, outcome)
        log.info("callback %s (%s, bridged %.1f s)", state, outcome.reason, outcome.bridged_s)
        await self._call_hooks(callback.id, outcome)

    async def fail(self, callback: Callback, reason: FailureReason, *, reap: bool = True) -> None:
        """End a callback the engine gave no outcome for: hang up the legs it may have left up
        (`reap`; not when the engine itself hung them up, as on shutdown), close their rows, and
        settle for the talk that can be proven."""
        proven = await self._reap(callback, reason) if reap else None
        await self._db.run(self.store.close_open_legs, callback.id, reason)
        legs = await self._db.run(self.store.legs, callback.id)
        current = await self._db.run(self._services.callbacks.find, callback.id) or callback
        proofs = [t for t in (proven, _epoch(current.talked_until)) if t is not None]
        until = max(proofs, default=None)
        await self.finish(callback, outcome_from_legs(callback.id, reason, legs, until, current.max_duration))

    async def _reap(self, callback: Callback, reason: FailureReason) -> float | None:
        """BYE/CANCEL the callback's stored dialogs; the latest time a far end proved it was
        still in the call (its 2xx to our BYE), or None."""
        dialogs = await self._db.run(self.store.open_dialogs, callback.id)
        if not dialogs or self._reaper is None:
            return None
        results = await self._reaper.end(list(dialogs.values()), str(reason))
        for role, result in zip(dialogs, results, strict=True):
            code = result.sip_code or "no answer"
            log.warning("%s leg left up: %s (%s)", role.value, result.result.value, code)
        ended = [r.at for r in results if r.result is ReapResult.ENDED]
        return max(ended) if ended else None

    async def recover(self, node: str) -> int:
        """Fail what this node left in flight when it last stopped without finishing (a crash)."""
        stale = await self.stale(node)
        await self.interrupt(stale)
        return len(stale)

    async def stale(self, node: str) -> list[Callback]:
        """What `node` had in flight: read before this process claims anything of its own."""
        return await self._db.run(self.store.in_flight, node)

    async def interrupt(self, stale: list[Callback]) -> None:
        """End these callbacks as `interrupted`, all at once: each may wait up to Timer F (32 s)
        for a far end's answer to its BYE."""
        results = await asyncio.gather(*(self._interrupt(cb) for cb in stale), return_exceptions=True)
        for callback, result in zip(stale, results, strict=True):
            if isinstance(result, BaseException):
                log.error("could not be recovered: %r", result, extra={"callback_id": callback.id})

    async def _interrupt(self, callback: Callback) -> None:
        bind_callback(callback.id)  # a task of its own (gather): its lines carry the id
        log.warning("the callback was %s when this node stopped: marking it interrupted", callback.state)
        await self.fail(callback, FailureReason.INTERRUPTED)

    async def checkpoint(self, callback_ids: list[str]) -> None:
        """Note that those of these callbacks that are bridged are still up now."""
        await self._db.run(self.store.checkpoint, callback_ids, time.time())

    async def _call_hooks(self, callback_id: str, outcome: CallOutcome) -> None:
        final = await self._db.run(self._services.callbacks.get, callback_id)
        for hook in self._services.on_callback_finished:
            try:
                await hook(final, outcome)
            except Exception:
                log.exception("finished-hook %r failed; skipped", hook)


def outcome_from_legs(
    callback_id: str,
    reason: FailureReason,
    legs: dict[str, dict[str, Any]],
    talked_until: float | None = None,
    max_duration: float | None = None,
) -> CallOutcome:
    """An outcome rebuilt from stored leg rows. Its `bridged_s` is the talk that can be proven:
    from the bridging to `talked_until` (a checkpoint, or a far end's answer to our BYE), at most
    `max_duration`; 0 when nothing proves any."""
    records = {LegRole(role): _leg_record(LegRole(role), row) for role, row in legs.items()}
    bridged = [row["bridged_at"] for row in legs.values() if row.get("bridged_at")]
    bridged_at = min(bridged).timestamp() if bridged else None
    talk = 0.0
    if bridged_at is not None and talked_until is not None:
        talk = max(0.0, talked_until - bridged_at)
        if max_duration is not None:
            talk = min(talk, max_duration)
    return CallOutcome(callback_id=callback_id, completed=False, reason=reason, legs=records,
                       bridged_at=bridged_at, bridged_s=round(talk, 3))  # fmt: skip


def _epoch(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _leg_record(role: LegRole, row: dict[str, Any]) -> LegRecord:
    def ts(name: str) -> float | None:
        value: datetime | None = row.get(name)
        return value.timestamp() if value is not None else None

    started, ringing, answered = ts("trying_at"), ts("ringing_at"), ts("answered_at")
    setup_end = ringing or answered
    return LegRecord(
        role=role,
        number=str(row["number"]),
        final_state=LegState(str(row["state"])),
        sip_code=row.get("sip_code"),
        reason=row.get("reason"),
        ended_by=EndedBy(str(row["ended_by"])) if row.get("ended_by") else None,
        started_at=started,
        answered_at=answered,
        ended_at=ts("ended_at"),
        setup_s=round(setup_end - started, 3) if started and setup_end else None,
        ring_s=round(answered - ringing, 3) if ringing and answered else None,
    )


class ProgressLog:
    """The engine's `on_progress`: queue from any thread, write in order on the loop."""

    def __init__(self, recorder: CallRecorder, callback: Callback) -> None:
        self._recorder = recorder
        self._callback = callback
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._queue: asyncio.Queue[ProgressEvent | None] = asyncio.Queue()
        self._task = asyncio.create_task(self._write(), name=f"progress-{callback.id}")

    def __call__(self, event: ProgressEvent) -> None:
        if threading.get_ident() == self._thread:
            self._queue.put_nowait(event)
        else:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, event)

    async def close(self) -> None:
        """Write what is queued, then stop."""
        await asyncio.sleep(0)  # let events handed over from other threads reach the queue
        self._queue.put_nowait(None)
        await asyncio.shield(self._task)

    async def _write(self) -> None:
        while (event := await self._queue.get()) is not None:
            try:
                # In order: a progress write waits out an outage before the next one is tried.
                await until_stored(
                    functools.partial(self._recorder.progress, self._callback, event),
                    f"recording {event.leg} {event.state}",
                )
            except Exception:
                log.exception("could not record progress %s", event)
