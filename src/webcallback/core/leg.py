"""One leg of a callback: its phase, what it said, and when. Mutated only through `apply`."""

from __future__ import annotations

from dataclasses import dataclass, field

from webcallback.core._transitions import PHASE_TO_STATE, TRANSITIONS, Phase, Trigger
from webcallback.core.errors import IllegalTransition
from webcallback.core.sdp import Origin
from webcallback.core.session_timer import SessionTimer, TimerPolicy
from webcallback.domain import EndedBy, LegRecord, LegRole, LegState

# The order in which a leg gets further; `LegRecord.final_state` is the furthest one reached.
_PROGRESS = (LegState.IDLE, LegState.TRYING, LegState.RINGING, LegState.ANSWERED, LegState.BRIDGED)


@dataclass
class Leg:
    role: LegRole
    number: str
    caller_id: str
    origin: Origin
    phase: Phase = Phase.IDLE
    furthest: LegState = LegState.IDLE
    remote_sdp: str | None = None  # the far end's latest offer (183 or 2xx)
    offered_sdp: str | None = None  # the other leg's SDP we last re-offered here (unstamped)
    answer_sdp: str | None = None  # this leg's answer to `offered_sdp`
    ring_deadline: float | None = None
    heard: bool = False  # anything came back to the INVITE (100 Trying at least)
    progress_deadline: float | None = None  # no 18x/2xx by then: no progress (only 100 Trying)
    code: int | None = None
    reason: str | None = None
    ended_by: EndedBy | None = None
    times: dict[str, float] = field(default_factory=dict)  # started, ringing, answered, ended
    policy: TimerPolicy | None = None  # session timers asked for on this leg (None: off)
    timer: SessionTimer | None = None  # once the dialog is confirmed
    held_reoffer: str | None = None  # an SDP to re-offer once our refresh in flight is answered

    def apply(self, trigger: Trigger) -> Phase:
        """Move along the table, or raise `IllegalTransition` and change nothing."""
        nxt = TRANSITIONS[self.phase].get(trigger)
        if nxt is None:
            raise IllegalTransition(self.role.value, self.phase.value, trigger.value)
        self.phase = nxt
        state = PHASE_TO_STATE[nxt]
        if state in _PROGRESS and _PROGRESS.index(state) > _PROGRESS.index(self.furthest):
            self.furthest = state
        return nxt

    def setup_deadline(self) -> float | None:
        """When this leg, still ringing, is given up: the ring timeout, or sooner the progress
        timeout while nothing beyond 100 Trying came back."""
        deadlines = [self.ring_deadline]
        if self.furthest in (LegState.IDLE, LegState.TRYING):
            deadlines.append(self.progress_deadline)
        return min((d for d in deadlines if d is not None), default=None)

    @property
    def state(self) -> LegState:
        return PHASE_TO_STATE[self.phase]

    @property
    def ended(self) -> bool:
        return self.phase is Phase.ENDED

    def mark(self, name: str, now: float) -> None:
        """Remember the first time something happened (a second 18x keeps the first's time)."""
        self.times.setdefault(name, now)

    def record(self) -> LegRecord:
        t = self.times
        started, ringing, answered, ended = (t.get(k) for k in ("started", "ringing", "answered", "ended"))
        first_reply = ringing if ringing is not None else answered
        return LegRecord(
            role=self.role,
            number=self.number,
            final_state=self.furthest,
            sip_code=self.code,
            reason=self.reason,
            ended_by=self.ended_by,
            started_at=started,
            answered_at=answered,
            ended_at=ended,
            setup_s=_span(started, first_reply if first_reply is not None else ended),
            ring_s=_span(ringing, answered if answered is not None else ended),
            talk_s=_span(answered, ended),
        )


def _span(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return round(end - start, 3)
