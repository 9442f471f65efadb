"""FakeEngine: a test double for `TelephonyEngine` that plays scripted callbacks in memory.

Each callback follows a `Script` chosen per destination number: both legs answer and talk, the
destination is busy, the engine raises, or the call runs until it is hung up. It reports progress
the way a real engine does (per leg: trying, ringing, answered, bridged, ended) and returns a
`CallOutcome` with per-leg times, so the dispatcher's records can be checked without SIP.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from webcallback.domain import (
    CallbackSpec,
    CallOutcome,
    EndedBy,
    EngineError,
    FailureReason,
    LegRecord,
    LegRole,
    LegState,
    ProgressCallback,
    ProgressEvent,
)


@dataclass
class Script:
    kind: str = "complete"  # complete | busy | engine-error | crash | forever | deaf (ignores hangup)
    ring_s: float = 0.01
    talk_s: float = 0.02


@dataclass
class FakeEngine:
    scripts: dict[str, Script] = field(default_factory=dict)  # by destination number
    default: Script = field(default_factory=Script)
    specs: list[CallbackSpec] = field(default_factory=list)
    hangups: list[tuple[str, EndedBy]] = field(default_factory=list)
    running: int = 0
    max_running: int = 0
    started: bool = False
    stopped: bool = False
    _hangup: dict[str, asyncio.Event] = field(default_factory=dict)
    _ended_by: dict[str, EndedBy] = field(default_factory=dict)

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def hangup(self, callback_id: str, ended_by: EndedBy = EndedBy.LOCAL) -> bool:
        self.hangups.append((callback_id, ended_by))
        if callback_id not in self._hangup:
            return False
        self._ended_by[callback_id] = ended_by
        self._hangup[callback_id].set()
        return True

    async def run_callback(self, spec: CallbackSpec, on_progress: ProgressCallback) -> CallOutcome:
        self.specs.append(spec)
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        self._hangup[spec.callback_id] = asyncio.Event()
        try:
            return await _Call(self, spec, on_progress).play(self.scripts.get(spec.destination, self.default))
        finally:
            self.running -= 1
            del self._hangup[spec.callback_id]


class _Call:
    def __init__(self, engine: FakeEngine, spec: CallbackSpec, on_progress: ProgressCallback) -> None:
        self.engine, self.spec, self.report = engine, spec, on_progress
        self.t: dict[tuple[LegRole, str], float] = {}

    def emit(self, leg: LegRole | None, state: LegState, **kw: object) -> None:
        now = time.time()
        if leg is not None:
            self.t[(leg, state.value)] = now
        self.report(ProgressEvent(callback_id=self.spec.callback_id, leg=leg, state=state, at=now, **kw))  # type: ignore[arg-type]  # kw: the event's other fields

    async def dial(self, leg: LegRole, script: Script) -> None:
        self.emit(leg, LegState.TRYING)
        await asyncio.sleep(0)
        self.emit(leg, LegState.RINGING, sip_code=180, reason="Ringing")
        await asyncio.sleep(script.ring_s)

    async def play(self, script: Script) -> CallOutcome:
        dest, back = LegRole.DESTINATION, LegRole.CALLBACK
        if script.kind == "engine-error":
            raise EngineError("the fake engine is broken")
        await self.dial(dest, script)
        if script.kind == "crash":
            raise RuntimeError("the fake engine crashed")
        if script.kind == "busy":
            self.emit(dest, LegState.ENDED, sip_code=486, reason="Busy Here", ended_by=EndedBy.REMOTE)
            return self.outcome("destination-busy", {dest: (486, EndedBy.REMOTE)})
        self.emit(dest, LegState.ANSWERED, sip_code=200, reason="OK")
        await self.dial(back, script)
        self.emit(back, LegState.ANSWERED, sip_code=200, reason="OK")
        for leg in (dest, back):
            self.emit(leg, LegState.BRIDGED)
        self.emit(None, LegState.BRIDGED)
        bridged_at = time.time()
        ended_by = await self.talk(script)
        for leg in (dest, back):
            self.emit(leg, LegState.ENDED, ended_by=ended_by)
        ends = {dest: (200, ended_by), back: (200, ended_by)}
        return self.outcome("completed", ends, bridged_at=bridged_at, completed=True)

    async def talk(self, script: Script) -> EndedBy:
        hung_up = self.engine._hangup[self.spec.callback_id]
        if script.kind == "deaf":
            await asyncio.Event().wait()
        timeout = None if script.kind == "forever" else script.talk_s
        if self.spec.max_duration is not None:
            timeout = min(timeout or self.spec.max_duration, self.spec.max_duration)
        try:
            await asyncio.wait_for(hung_up.wait(), timeout)
        except TimeoutError:
            return EndedBy.REMOTE
        return self.engine._ended_by[self.spec.callback_id]

    def outcome(
        self,
        reason: str,
        ends: dict[LegRole, tuple[int, EndedBy]],
        *,
        bridged_at: float | None = None,
        completed: bool = False,
    ) -> CallOutcome:
        now = time.time()
        legs = {role: self.record(role, code, by, now) for role, (code, by) in ends.items()}
        bridged_s = round(now - bridged_at, 3) if bridged_at else 0.0
        return CallOutcome(
            callback_id=self.spec.callback_id,
            completed=completed,
            reason=FailureReason(reason),
            legs=legs,
            bridged_at=bridged_at,
            bridged_s=bridged_s,
        )

    def record(self, role: LegRole, code: int, by: EndedBy, now: float) -> LegRecord:
        t = self.t
        start, ring, answer = t[(role, "trying")], t[(role, "ringing")], t.get((role, "answered"))
        number = self.spec.destination if role is LegRole.DESTINATION else self.spec.callback
        return LegRecord(
            role=role,
            number=number,
            final_state=LegState.ENDED,
            sip_code=code,
            ended_by=by,
            started_at=start,
            answered_at=answer,
            ended_at=now,
            setup_s=round(ring - start, 3),
            ring_s=round((answer or now) - ring, 3),
            talk_s=round(now - answer, 3) if answer else None,
        )
