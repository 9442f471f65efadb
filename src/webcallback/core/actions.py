"""How the session does each thing to a leg: one step along the table plus the SIP command for it.

The session decides *when* (its flow logic); `LegActions` knows *how*: which trigger, which
command, which SDP (always restamped with the leg's own origin), what to report. It collects the
commands of one `receive`/`handle_timer` call, stamped with that call's `now`.
"""

from __future__ import annotations

from webcallback.core._transitions import RINGING_PHASES, Phase, Trigger
from webcallback.core.commands import Ack, Bye, Cancel, Command, Originate, Refresh, Reoffer, Report
from webcallback.core.leg import Leg
from webcallback.core.sdp import blackhole_answer, restamp
from webcallback.domain import CallbackSpec, EndedBy, LegRole, LegState, ProgressEvent


class LegActions:
    def __init__(self, spec: CallbackSpec) -> None:
        self.spec = spec
        self.now = 0.0
        self.out: list[Command] = []
        self.ended_order: list[Leg] = []  # who ended first names the failure

    def begin(self, now: float) -> None:
        self.now, self.out = now, []

    def take(self) -> list[Command]:
        out, self.out = self.out, []
        return out

    def dial(self, leg: Leg, offer: str | None, ring_limit: float | None = None) -> None:
        """INVITE; without SDP (late offer) unless `offer` (Flow I: the first leg's offer)."""
        leg.apply(Trigger.DIAL)
        leg.mark("started", self.now)
        ring_timeout = (
            self.spec.ring_timeout if ring_limit is None else min(ring_limit, self.spec.ring_timeout)
        )
        leg.ring_deadline = self.now + ring_timeout
        progress = self.spec.progress_timeout
        leg.progress_deadline = self.now + progress if progress is not None else None
        leg.offered_sdp = offer
        sdp = restamp(offer, leg.origin) if offer is not None else None
        headers = leg.policy.request_headers() if leg.policy is not None else ()
        self.out.append(
            Originate(leg=leg.role, number=leg.number, caller_id=leg.caller_id, sdp=sdp, headers=headers)
        )
        self.report(leg)

    def hold(self, leg: Leg) -> None:
        """ACK the leg's 200 with a black-hole answer: it is up but hears nothing yet."""
        assert leg.remote_sdp is not None
        leg.apply(Trigger.HOLD)
        self.out.append(Ack(leg=leg.role, sdp=blackhole_answer(leg.remote_sdp, leg.origin)))

    def reoffer(self, leg: Leg, sdp: str) -> None:
        leg.apply(Trigger.REOFFER)
        leg.offered_sdp = sdp
        stamped = restamp(sdp, leg.origin)
        if leg.timer is not None and leg.timer.in_flight:
            # a second INVITE transaction would cross our refresh (RFC 3261 §14.1): send it
            # once the refresh is answered
            leg.held_reoffer = stamped
            return
        self._send_reoffer(leg, stamped)

    def release_reoffer(self, leg: Leg) -> None:
        """The re-offer held back behind a refresh, now that the refresh is answered."""
        stamped, leg.held_reoffer = leg.held_reoffer, None
        if stamped is not None and leg.phase is Phase.REOFFERING:
            self._send_reoffer(leg, stamped)

    def _send_reoffer(self, leg: Leg, stamped: str) -> None:
        headers = leg.policy.request_headers() if leg.policy is not None else ()
        self.out.append(Reoffer(leg=leg.role, sdp=stamped, headers=headers))

    def refresh(self, leg: Leg) -> None:
        """Refresh the leg's session timer (RFC 4028 §7.4): the engine picks UPDATE or re-INVITE."""
        assert leg.timer is not None and leg.policy is not None
        leg.timer = leg.timer.sent()
        self.out.append(Refresh(leg=leg.role, headers=leg.policy.request_headers()))

    def bridge(self, leg: Leg, ack_sdp: str | None) -> None:
        """The leg's media is set; `ack_sdp` is the other leg's answer for the 200 it still owes."""
        leg.apply(Trigger.BRIDGE)
        if ack_sdp is not None:
            self.out.append(Ack(leg=leg.role, sdp=restamp(ack_sdp, leg.origin)))

    def end(self, leg: Leg, by: EndedBy) -> None:
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
            self.out.append(Cancel(leg=leg.role))
        else:
            leg.apply(Trigger.BYE)
            if phase is Phase.ANSWERED:  # a 2xx must be ACKed before the dialog can be BYEd
                self.out.append(Ack(leg=leg.role, sdp=blackhole_answer(leg.remote_sdp or "", leg.origin)))
            self.out.append(Bye(leg=leg.role))
        self.ended(leg, by)

    def ended(self, leg: Leg, by: EndedBy) -> None:
        """Book-keeping once a leg is over, whoever ended it."""
        leg.ended_by = by
        leg.mark("ended", self.now)
        self.ended_order.append(leg)
        failed = leg.furthest not in (LegState.ANSWERED, LegState.BRIDGED)
        self.report(leg, leg.code if failed else None, leg.reason if failed else None)

    def report(self, leg: Leg, code: int | None = None, reason: str | None = None) -> None:
        ended_by = leg.ended_by if leg.ended else None
        self.out.append(Report(progress=self.progress(leg.role, leg.state, code, reason, ended_by)))

    def progress(
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
            at=self.now,
            sip_code=code,
            reason=reason,
            ended_by=ended_by,
        )
