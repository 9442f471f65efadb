"""One callback as a sans-IO state machine: two legs, their SDP, and the timers. No I/O, no clock.

Feed it what happened (`receive(event, now)`), wake it at `next_deadline()` (`handle_timer(now)`),
and carry out the commands it returns, in order. `now` is any monotonic clock in seconds; the
timestamps in reports and the outcome are on that clock, so the engine passes a monotonic clock
anchored to the epoch.

RFC 3725 flows:
- Flow III (default, and always for parallel ringing): every INVITE goes out without SDP. The leg
  that answers first is ACKed with a black-hole answer (it is "held"). When the other leg answers
  with its offer, the held leg is re-INVITEd with that offer, and its answer goes into the ACK of
  the other leg. If the other leg sends early media (18x with SDP) while the first is held, the
  held leg is re-INVITEd with it at once, so the user hears ringback; when the 200's SDP is the
  same, the answer we already have goes straight into its ACK.
- Flow I: the first leg's 200 offer is put in the second leg's INVITE; the second's answer goes
  into the first leg's ACK. Simple, but the first leg waits unacknowledged while the second rings.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

from webcallback.core import events as ev
from webcallback.core._transitions import RINGING_PHASES, Phase, Trigger
from webcallback.core.commands import Ack, Bye, Cancel, Command, Finished, Originate, Reoffer, Report
from webcallback.core.leg import Leg
from webcallback.core.outcome import build_outcome
from webcallback.core.sdp import Origin, blackhole_answer, restamp, same_media
from webcallback.engines.base import CallbackSpec, EndedBy, LegOrder, LegRole, LegState, ProgressEvent


class Flow(enum.StrEnum):
    III = "III"
    I = "I"  # noqa: E741 - the RFC's name


class CallbackSession:
    def __init__(self, spec: CallbackSpec, *, flow: Flow = Flow.III, local_address: str = "127.0.0.1"):
        self.spec = spec
        # Flow I needs the first leg's offer to dial the second, so it cannot ring both at once.
        self.flow = Flow.III if spec.leg_order is LegOrder.PARALLEL else flow
        addr = local_address
        dest = self._new_leg(LegRole.DESTINATION, spec.destination, spec.caller_id_to_destination, addr)
        back = self._new_leg(LegRole.CALLBACK, spec.callback, spec.caller_id_to_callback, addr)
        self.legs = {LegRole.DESTINATION: dest, LegRole.CALLBACK: back}
        callback_first = spec.leg_order is LegOrder.CALLBACK_FIRST
        self.first, self.second = (back, dest) if callback_first else (dest, back)
        self.bridged_at: float | None = None
        self.unbridged_at: float | None = None
        self.max_deadline: float | None = None
        self.ended_order: list[Leg] = []
        self.started = self.finished = False
        self._now = 0.0
        self._out: list[Command] = []

    def _new_leg(self, role: LegRole, number: str, caller_id: str, address: str) -> Leg:
        origin = Origin.for_leg(self.spec.callback_id, role.value, address)
        return Leg(role=role, number=number, caller_id=caller_id, origin=origin)

    # ---- the sans-IO interface ---------------------------------------------------------------

    def start(self, now: float) -> list[Command]:
        if self.started:
            raise RuntimeError("callback already started")
        self.started = True
        return self._run(now, self._start)

    def receive(self, event: ev.Event, now: float) -> list[Command]:
        handler = _HANDLERS[type(event)]
        return self._run(now, lambda: handler(self, event))

    def handle_timer(self, now: float) -> list[Command]:
        return self._run(now, self._timers)

    def next_deadline(self) -> float | None:
        if self.finished:
            return None
        ring = [leg.ring_deadline for leg in self.legs.values() if leg.phase in RINGING_PHASES]
        deadlines = [d for d in [*ring, self.max_deadline] if d is not None]
        return min(deadlines, default=None)

    def phase(self, role: LegRole) -> Phase:
        return self.legs[role].phase

    def _run(self, now: float, step: Callable[[], None]) -> list[Command]:
        self._now, self._out = now, []
        step()
        out, self._out = self._out, []
        return out

    def _peer(self, leg: Leg) -> Leg:
        return self.second if leg is self.first else self.first

    # ---- handlers ----------------------------------------------------------------------------

    def _start(self) -> None:
        self._dial(self.first, None)
        if self.spec.leg_order is LegOrder.PARALLEL:
            self._dial(self.second, None)

    def _on_trying(self, e: ev.Trying) -> None:
        self.legs[e.leg].apply(Trigger.TRYING)

    def _on_ringing(self, e: ev.Ringing) -> None:
        leg = self.legs[e.leg]
        if leg.apply(Trigger.RING) is Phase.ENDED:
            return
        leg.mark("ringing", self._now)
        self._report(leg, e.code, e.reason)
        if e.sdp is not None and self.flow is Flow.III:
            leg.remote_sdp = e.sdp
            held = self._peer(leg)
            if held.phase in (Phase.HELD, Phase.LINKED) and not same_media(held.offered_sdp or "", e.sdp):
                self._reoffer(held, e.sdp)  # early media: let the answered party hear ringback

    def _on_answered(self, e: ev.Answered) -> None:
        leg = self.legs[e.leg]
        if leg.apply(Trigger.ANSWER) is Phase.ENDED:
            return
        leg.mark("answered", self._now)
        leg.remote_sdp, leg.code, leg.reason = e.sdp, e.code, e.reason
        self._report(leg, e.code, e.reason)
        if self.flow is Flow.I:
            self._answered_flow_i(leg, e.sdp)
        else:
            self._answered_flow_iii(leg, e.sdp)

    def _answered_flow_i(self, leg: Leg, sdp: str) -> None:
        if leg is self.first:
            self._dial(self.second, sdp)
        else:
            self.first.apply(Trigger.BRIDGE)
            self._emit(Ack(leg=self.first.role, sdp=restamp(sdp, self.first.origin)))
            self._bridge(leg)

    def _answered_flow_iii(self, leg: Leg, offer: str) -> None:
        other = self._peer(leg)
        if other.phase in (Phase.IDLE, *RINGING_PHASES):
            self._hold(leg)
            if other.phase is Phase.IDLE:
                self._dial(other, None)
        elif other.phase is Phase.HELD:
            self._reoffer(other, offer)
        elif other.phase is Phase.LINKED:
            self._try_bridge(leg)
        # REOFFERING: the early-media re-INVITE is in flight; its answer will try the bridge.

    def _on_reoffer_answered(self, e: ev.ReofferAnswered) -> None:
        leg = self.legs[e.leg]
        if leg.apply(Trigger.REOFFER_OK) is Phase.ENDED:
            return
        leg.answer_sdp = e.sdp
        other = self._peer(leg)
        if other.phase is Phase.ANSWERED:
            self._try_bridge(other)

    def _try_bridge(self, answered: Leg) -> None:
        """`answered` owes an ACK; its peer holds an answer to some SDP we re-offered it."""
        linked = self._peer(answered)
        assert answered.remote_sdp is not None and linked.answer_sdp is not None
        if not same_media(linked.offered_sdp or "", answered.remote_sdp):
            self._reoffer(linked, answered.remote_sdp)  # the 200 differs from the early media
            return
        linked.apply(Trigger.BRIDGE)
        self._emit(Ack(leg=answered.role, sdp=restamp(linked.answer_sdp, answered.origin)))
        self._bridge(answered)

    def _on_reoffer_failed(self, e: ev.ReofferFailed) -> None:
        leg = self.legs[e.leg]
        if leg.apply(Trigger.REOFFER_FAIL) is Phase.ENDED:
            return
        leg.code, leg.reason = e.code, e.reason
        self._end_leg(leg, EndedBy.ERROR)
        self._leg_over(leg)

    def _on_failed(self, e: ev.Failed) -> None:
        self._remote_end(e.leg, Trigger.FAIL, e.code, e.reason)

    def _on_remote_hangup(self, e: ev.RemoteHangup) -> None:
        self._remote_end(e.leg, Trigger.REMOTE_BYE, None, None)

    def _remote_end(self, role: LegRole, trigger: Trigger, code: int | None, reason: str | None) -> None:
        leg = self.legs[role]
        was_ended = leg.ended
        leg.apply(trigger)
        if was_ended:
            return  # late news about a leg we already ended
        if code is not None:
            leg.code, leg.reason = code, reason
        self._ended(leg, EndedBy.REMOTE)
        self._leg_over(leg)

    def _on_hangup_requested(self, e: ev.HangupRequested) -> None:
        if self.started and not self.finished:
            self._end_all(e.ended_by)

    def _timers(self) -> None:
        for leg in (self.first, self.second):
            deadline = leg.ring_deadline
            if leg.phase in RINGING_PHASES and deadline is not None and deadline <= self._now:
                self._end_leg(leg, EndedBy.TIMEOUT)
                self._leg_over(leg)
        if self.max_deadline is not None and self.max_deadline <= self._now and not self.finished:
            self._end_all(EndedBy.MAX_DURATION)

    # ---- actions -----------------------------------------------------------------------------

    def _dial(self, leg: Leg, offer: str | None) -> None:
        leg.apply(Trigger.DIAL)
        leg.mark("started", self._now)
        leg.ring_deadline = self._now + self.spec.ring_timeout
        leg.offered_sdp = offer
        sdp = restamp(offer, leg.origin) if offer is not None else None
        self._emit(Originate(leg=leg.role, number=leg.number, caller_id=leg.caller_id, sdp=sdp))
        self._report(leg)

    def _hold(self, leg: Leg) -> None:
        assert leg.remote_sdp is not None
        leg.apply(Trigger.HOLD)
        self._emit(Ack(leg=leg.role, sdp=blackhole_answer(leg.remote_sdp, leg.origin)))

    def _reoffer(self, leg: Leg, sdp: str) -> None:
        leg.apply(Trigger.REOFFER)
        leg.offered_sdp = sdp
        self._emit(Reoffer(leg=leg.role, sdp=restamp(sdp, leg.origin)))

    def _bridge(self, answered: Leg) -> None:
        answered.apply(Trigger.BRIDGE)
        self.bridged_at = self._now
        if self.spec.max_duration is not None:
            self.max_deadline = self._now + self.spec.max_duration
        for leg in (self.first, self.second):
            self._report(leg)
        self._emit(Report(progress=self._progress(None, LegState.BRIDGED)))

    def _end_all(self, by: EndedBy) -> None:
        for leg in (self.first, self.second):
            self._end_leg(leg, by)
        self._maybe_finish()

    def _end_leg(self, leg: Leg, by: EndedBy) -> None:
        """Tear a leg down whatever its phase: CANCEL while it rings, BYE once it is up."""
        phase = leg.phase
        if phase is Phase.ENDED:
            return
        if phase is Phase.IDLE:
            leg.apply(Trigger.SKIP)
            leg.ended_by = by
            self.ended_order.append(leg)
            return
        if phase in RINGING_PHASES:
            leg.apply(Trigger.CANCEL)
            self._emit(Cancel(leg=leg.role))
        else:
            leg.apply(Trigger.BYE)
            if phase is Phase.ANSWERED:  # a 2xx must be ACKed before the dialog can be BYEd
                self._emit(Ack(leg=leg.role, sdp=blackhole_answer(leg.remote_sdp or "", leg.origin)))
            self._emit(Bye(leg=leg.role))
        self._ended(leg, by)

    def _ended(self, leg: Leg, by: EndedBy) -> None:
        leg.ended_by = by
        leg.mark("ended", self._now)
        self.ended_order.append(leg)
        failed = leg.furthest not in (LegState.ANSWERED, LegState.BRIDGED)
        self._report(leg, leg.code if failed else None, leg.reason if failed else None)

    def _leg_over(self, leg: Leg) -> None:
        if self.bridged_at is not None and self.unbridged_at is None:
            self.unbridged_at = self._now
        self._end_leg(self._peer(leg), EndedBy.PEER_LEG)
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        if self.finished or not all(leg.ended for leg in self.legs.values()):
            return
        if self.bridged_at is not None and self.unbridged_at is None:
            self.unbridged_at = self._now
        self.finished = True
        self._emit(Report(progress=self._progress(None, LegState.ENDED)))
        self._emit(Finished(outcome=build_outcome(self)))

    # ---- output ------------------------------------------------------------------------------

    def _emit(self, command: Command) -> None:
        self._out.append(command)

    def _report(self, leg: Leg, code: int | None = None, reason: str | None = None) -> None:
        progress = self._progress(leg.role, leg.state, code, reason, leg.ended_by if leg.ended else None)
        self._emit(Report(progress=progress))

    def _progress(
        self,
        role: LegRole | None,
        state: LegState,
        code: int | None = None,
        reason: str | None = None,
        ended_by: EndedBy | None = None,
    ) -> ProgressEvent:
        return ProgressEvent(
            callback_id=self.spec.callback_id,
            leg=role,
            state=state,
            at=self._now,
            sip_code=code,
            reason=reason,
            ended_by=ended_by,
        )


_HANDLERS: dict[type[Any], Callable[[CallbackSession, Any], None]] = {
    ev.Trying: CallbackSession._on_trying,
    ev.Ringing: CallbackSession._on_ringing,
    ev.Answered: CallbackSession._on_answered,
    ev.Failed: CallbackSession._on_failed,
    ev.ReofferAnswered: CallbackSession._on_reoffer_answered,
    ev.ReofferFailed: CallbackSession._on_reoffer_failed,
    ev.RemoteHangup: CallbackSession._on_remote_hangup,
    ev.HangupRequested: CallbackSession._on_hangup_requested,
}
