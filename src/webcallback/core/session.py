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
from webcallback.core._transitions import RINGING_PHASES, TIMED_PHASES, Phase, Trigger
from webcallback.core.actions import LegActions
from webcallback.core.commands import Command, Finished, Report
from webcallback.core.leg import Leg
from webcallback.core.outcome import build_outcome
from webcallback.core.sdp import Origin, same_media
from webcallback.core.session_timer import (
    FATAL_CODES,
    Due,
    Headers,
    SessionTimer,
    TimerPolicy,
    agreed_in_response,
)
from webcallback.domain import CallbackSpec, EndedBy, LegOrder, LegRole, LegState

# In Flow I the first leg retransmits its 200 until our ACK and gives up after 64*T1 = 32 s
# (RFC 3261 Timer H), so the second leg may not ring longer than this.
FLOW_I_RING_LIMIT = 30.0


class Flow(enum.StrEnum):
    III = "III"
    I = "I"  # noqa: E741 - the RFC's name


class CallbackSession:
    def __init__(
        self,
        spec: CallbackSpec,
        *,
        flow: Flow = Flow.III,
        local_address: str = "127.0.0.1",
        timers: TimerPolicy | None = None,
    ):
        self.spec = spec
        self.timers = timers  # session timers on both legs (RFC 4028); None: off
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
        self.started = self.finished = False
        self._act = LegActions(spec)

    def _new_leg(self, role: LegRole, number: str, caller_id: str, address: str) -> Leg:
        origin = Origin.for_leg(self.spec.callback_id, role.value, address)
        return Leg(role=role, number=number, caller_id=caller_id, origin=origin, policy=self.timers)

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
        ring = [leg.setup_deadline() for leg in self.legs.values() if leg.phase in RINGING_PHASES]
        timed = [leg.timer.next_deadline() for leg in self.legs.values() if leg.timer and _timed(leg)]
        deadlines = [d for d in [*ring, *timed, self.max_deadline] if d is not None]
        return min(deadlines, default=None)

    def retry_after_422(self, role: LegRole, min_se: str | None) -> Headers | None:
        """The leg's INVITE got 422 (RFC 4028 §6): ask again with the far end's `Min-SE`.
        Returns the new request headers, or None when there is no larger interval to ask for."""
        leg = self.legs[role]
        retry = leg.policy.after_422(min_se) if leg.policy is not None else None
        if retry is None:
            return None
        leg.policy = retry
        return retry.request_headers()

    def phase(self, role: LegRole) -> Phase:
        return self.legs[role].phase

    @property
    def ended_order(self) -> list[Leg]:
        return self._act.ended_order

    @property
    def _now(self) -> float:
        return self._act.now

    def _run(self, now: float, step: Callable[[], None]) -> list[Command]:
        self._act.begin(now)
        step()
        return self._act.take()

    def _peer(self, leg: Leg) -> Leg:
        return self.second if leg is self.first else self.first

    # ---- handlers ----------------------------------------------------------------------------

    def _start(self) -> None:
        self._act.dial(self.first, None)
        if self.spec.leg_order is LegOrder.PARALLEL:
            self._act.dial(self.second, None)

    def _on_trying(self, e: ev.Trying) -> None:
        leg = self.legs[e.leg]
        leg.apply(Trigger.TRYING)
        leg.heard = True

    def _on_ringing(self, e: ev.Ringing) -> None:
        leg = self.legs[e.leg]
        if leg.apply(Trigger.RING) is Phase.ENDED:
            return
        leg.heard = True
        leg.mark("ringing", self._now)
        self._act.report(leg, e.code, e.reason)
        if e.sdp is not None and self.flow is Flow.III:
            leg.remote_sdp = e.sdp
            held = self._peer(leg)
            if held.phase in (Phase.HELD, Phase.LINKED) and not same_media(held.offered_sdp or "", e.sdp):
                self._act.reoffer(held, e.sdp)  # early media: let the answered party hear ringback

    def _on_answered(self, e: ev.Answered) -> None:
        leg = self.legs[e.leg]
        if leg.apply(Trigger.ANSWER) is Phase.ENDED:
            return
        leg.mark("answered", self._now)
        leg.remote_sdp, leg.code, leg.reason = e.sdp, e.code, e.reason
        if leg.policy is not None:
            leg.timer = SessionTimer.start(agreed_in_response(leg.policy, e.session_expires), self._now)
        self._act.report(leg, e.code, e.reason)
        if self.flow is Flow.I:
            self._answered_flow_i(leg, e.sdp)
        else:
            self._answered_flow_iii(leg, e.sdp)

    def _answered_flow_i(self, leg: Leg, sdp: str) -> None:
        if leg is self.first:  # the first leg's 200 waits unACKed while the second rings
            self._act.dial(self.second, sdp, ring_limit=FLOW_I_RING_LIMIT)
        else:  # the second leg's answer goes into the first leg's ACK; sippy ACKed the second
            self._act.bridge(self.first, ack_sdp=sdp)
            self._act.bridge(leg, ack_sdp=None)
            self._bridge()

    def _answered_flow_iii(self, leg: Leg, offer: str) -> None:
        other = self._peer(leg)
        if other.phase in (Phase.IDLE, *RINGING_PHASES):
            self._act.hold(leg)
            if other.phase is Phase.IDLE:
                self._act.dial(other, None)
        elif other.phase is Phase.HELD:
            self._act.reoffer(other, offer)
        elif other.phase is Phase.LINKED:
            self._try_bridge(leg)
        # REOFFERING: the early-media re-INVITE is in flight; its answer will try the bridge.

    def _on_reoffer_answered(self, e: ev.ReofferAnswered) -> None:
        leg = self.legs[e.leg]
        if leg.apply(Trigger.REOFFER_OK) is Phase.ENDED:
            return
        leg.answer_sdp = e.sdp
        self._refreshed(leg, e.session_expires)
        other = self._peer(leg)
        if other.phase is Phase.ANSWERED:
            self._try_bridge(other)

    def _try_bridge(self, answered: Leg) -> None:
        """`answered` owes an ACK; its peer holds an answer to some SDP we re-offered it."""
        linked = self._peer(answered)
        assert answered.remote_sdp is not None and linked.answer_sdp is not None
        if not same_media(linked.offered_sdp or "", answered.remote_sdp):
            self._act.reoffer(linked, answered.remote_sdp)  # the 200 differs from the early media
            return
        self._act.bridge(linked, ack_sdp=None)
        self._act.bridge(answered, ack_sdp=linked.answer_sdp)
        self._bridge()

    def _on_reoffer_failed(self, e: ev.ReofferFailed) -> None:
        leg = self.legs[e.leg]
        if leg.apply(Trigger.REOFFER_FAIL) is Phase.ENDED:
            return
        leg.code, leg.reason = e.code, e.reason
        self._act.end(leg, EndedBy.ERROR)
        self._leg_over(leg)

    # ---- session timers (RFC 4028) -------------------------------------------------------------

    def _refreshed(self, leg: Leg, session_expires: str | None) -> None:
        if leg.timer is not None and leg.policy is not None:
            leg.timer = leg.timer.refreshed(agreed_in_response(leg.policy, session_expires), self._now)

    def _on_refresh_answered(self, e: ev.RefreshAnswered) -> None:
        leg = self.legs[e.leg]
        if leg.ended:
            return
        self._refreshed(leg, e.session_expires)
        self._act.release_reoffer(leg)

    def _on_refresh_failed(self, e: ev.RefreshFailed) -> None:
        leg = self.legs[e.leg]
        if leg.ended or leg.timer is None or leg.policy is None:
            return
        if e.code is None or e.code in FATAL_CODES:  # §10: the far end has lost the dialog
            self._expire(leg, e.code, e.reason)
            return
        retry = leg.policy.after_422(e.min_se) if e.code == 422 else None
        if retry is not None:
            leg.policy = retry
        leg.timer = leg.timer.failed(self._now, at_once=retry is not None)
        self._act.release_reoffer(leg)

    def _on_refresh_received(self, e: ev.RefreshReceived) -> None:
        leg = self.legs[e.leg]
        if not leg.ended and leg.policy is not None:
            leg.timer = SessionTimer.start(e.terms, self._now)

    def _expire(self, leg: Leg, code: int | None, reason: str | None) -> None:
        if code is not None:
            leg.code, leg.reason = code, reason
        self._act.end(leg, EndedBy.SESSION_EXPIRED)
        self._leg_over(leg)

    def _on_failed(self, e: ev.Failed) -> None:
        self._remote_end(e.leg, Trigger.FAIL, e.code, e.reason, e.by)

    def _on_remote_hangup(self, e: ev.RemoteHangup) -> None:
        self._remote_end(e.leg, Trigger.REMOTE_BYE, None, None)

    def _remote_end(
        self, role: LegRole, trigger: Trigger, code: int | None, reason: str | None,
        by: EndedBy = EndedBy.REMOTE,
    ) -> None:  # fmt: skip
        leg = self.legs[role]
        was_ended = leg.ended
        leg.apply(trigger)
        if was_ended:
            return  # late news about a leg we already ended
        if code is not None or by is not EndedBy.REMOTE:
            leg.code, leg.reason = code, reason
        self._act.ended(leg, by)
        self._leg_over(leg)

    def _on_hangup_requested(self, e: ev.HangupRequested) -> None:
        if self.started and not self.finished:
            self._end_all(e.ended_by)

    def _timers(self) -> None:
        for leg in (self.first, self.second):
            deadline = leg.setup_deadline()
            if leg.phase in RINGING_PHASES and deadline is not None and deadline <= self._now:
                self._act.end(leg, EndedBy.TIMEOUT)
                self._leg_over(leg)
        for leg in (self.first, self.second):
            due = leg.timer.due(self._now) if leg.timer and _timed(leg) else None
            if due is Due.REFRESH:
                self._act.refresh(leg)
            elif due is Due.EXPIRED and not self.finished:
                self._expire(leg, None, "session expired")
        if self.max_deadline is not None and self.max_deadline <= self._now and not self.finished:
            # The call was allowed max_duration seconds: a timer that fires late (the reactor
            # ticks every 10 ms, more under load) must not bill a started extra second.
            if self.unbridged_at is None:
                self.unbridged_at = self.max_deadline
            self._end_all(EndedBy.MAX_DURATION)

    # ---- the callback as a whole --------------------------------------------------------------

    def _bridge(self) -> None:
        self.bridged_at = self._now
        if self.spec.max_duration is not None:
            self.max_deadline = self._now + self.spec.max_duration
        for leg in (self.first, self.second):
            self._act.report(leg)
        self._act.out.append(Report(progress=self._act.progress(None, LegState.BRIDGED)))

    def _end_all(self, by: EndedBy) -> None:
        for leg in (self.first, self.second):
            self._act.end(leg, by)
        self._maybe_finish()

    def _leg_over(self, leg: Leg) -> None:
        """One leg is over: the other goes too, and the callback may be finished."""
        if self.bridged_at is not None and self.unbridged_at is None:
            self.unbridged_at = self._now
        self._act.end(self._peer(leg), EndedBy.PEER_LEG)
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        if self.finished or not all(leg.ended for leg in self.legs.values()):
            return
        if self.bridged_at is not None and self.unbridged_at is None:
            self.unbridged_at = self._now
        self.finished = True
        self._act.out.append(Report(progress=self._act.progress(None, LegState.ENDED)))
        self._act.out.append(Finished(outcome=build_outcome(self)))


def _timed(leg: Leg) -> bool:
    return leg.timer is not None and leg.phase in TIMED_PHASES


_HANDLERS: dict[type[Any], Callable[[CallbackSession, Any], None]] = {
    ev.Trying: CallbackSession._on_trying,
    ev.Ringing: CallbackSession._on_ringing,
    ev.Answered: CallbackSession._on_answered,
    ev.Failed: CallbackSession._on_failed,
    ev.ReofferAnswered: CallbackSession._on_reoffer_answered,
    ev.ReofferFailed: CallbackSession._on_reoffer_failed,
    ev.RemoteHangup: CallbackSession._on_remote_hangup,
    ev.HangupRequested: CallbackSession._on_hangup_requested,
    ev.RefreshAnswered: CallbackSession._on_refresh_answered,
    ev.RefreshFailed: CallbackSession._on_refresh_failed,
    ev.RefreshReceived: CallbackSession._on_refresh_received,
}
