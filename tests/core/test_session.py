"""Whole callbacks driven by hand: events in, commands out, time passed in (nothing sleeps)."""

from __future__ import annotations

import pytest

from tests.core.core_helpers import (
    ANSWER_BACK,
    ANSWER_DEST,
    OFFER_BACK,
    OFFER_DEST,
    make_spec,
    outcome_of,
    reports,
    sip_only,
)
from webcallback.core import CallbackSession, Flow, IllegalTransition, Phase
from webcallback.core import events as ev
from webcallback.core.commands import Ack, Bye, Cancel, Command, Originate, Reoffer
from webcallback.core.sdp import lines, same_media
from webcallback.domain import EndedBy, LegOrder, LegRole, LegState

D, C = LegRole.DESTINATION, LegRole.CALLBACK


def _answer_first(s: CallbackSession, role: LegRole = D, offer: str = OFFER_DEST) -> list[Command]:
    s.receive(ev.Trying(leg=role), 0.1)
    s.receive(ev.Ringing(leg=role), 0.5)
    return s.receive(ev.Answered(leg=role, sdp=offer), 1.0)


def _bridge_iii(s: CallbackSession) -> list[Command]:
    s.start(0.0)
    _answer_first(s)
    s.receive(ev.Ringing(leg=C), 1.5)
    s.receive(ev.Answered(leg=C, sdp=OFFER_BACK), 2.0)
    return s.receive(ev.ReofferAnswered(leg=D, sdp=ANSWER_DEST), 2.1)


def test_flow_iii_destination_first_happy_path() -> None:
    s = CallbackSession(make_spec(), local_address="192.0.2.9")
    start = s.start(0.0)
    assert sip_only(start) == [Originate(leg=D, number="+15551230001", caller_id="+15551230002", sdp=None)]
    held = sip_only(_answer_first(s))
    assert [type(c) for c in held] == [Ack, Originate]
    assert isinstance(held[0], Ack) and "a=inactive" in held[0].sdp and "c=IN IP4 0.0.0.0" in held[0].sdp
    assert held[1] == Originate(leg=C, number="+15551230002", caller_id="+15551230001", sdp=None)
    reinvite = sip_only(s.receive(ev.Answered(leg=C, sdp=OFFER_BACK), 2.0))
    assert len(reinvite) == 1 and isinstance(reinvite[0], Reoffer) and reinvite[0].leg is D
    assert same_media(reinvite[0].sdp, OFFER_BACK) and "o=webcallback" in reinvite[0].sdp
    done = s.receive(ev.ReofferAnswered(leg=D, sdp=ANSWER_DEST), 2.1)
    ack = sip_only(done)
    assert (
        len(ack) == 1 and isinstance(ack[0], Ack) and ack[0].leg is C and same_media(ack[0].sdp, ANSWER_DEST)
    )
    assert s.phase(D) is s.phase(C) is Phase.BRIDGED
    assert reports(done)[-1].leg is None and reports(done)[-1].state is LegState.BRIDGED


def test_origin_versions_increase_per_leg() -> None:
    s = CallbackSession(make_spec())
    s.start(0.0)
    hold = sip_only(_answer_first(s))[0]
    reoffer = sip_only(s.receive(ev.Answered(leg=C, sdp=OFFER_BACK), 2.0))[0]
    assert isinstance(hold, Ack) and isinstance(reoffer, Reoffer)
    o1, o2 = (next(ln for ln in lines(c.sdp) if ln.startswith("o=")).split() for c in (hold, reoffer))
    assert o1[1] == o2[1] and int(o2[2]) == int(o1[2]) + 1


def test_callback_first_dials_the_user_first() -> None:
    s = CallbackSession(make_spec(leg_order=LegOrder.CALLBACK_FIRST))
    first = sip_only(s.start(0.0))
    assert [c.leg for c in first if isinstance(c, Originate)] == [C]
    assert [c.leg for c in sip_only(_answer_first(s, C, OFFER_BACK)) if isinstance(c, Originate)] == [D]


def test_parallel_rings_both_and_holds_the_first_to_answer() -> None:
    s = CallbackSession(make_spec(leg_order=LegOrder.PARALLEL), flow=Flow.I)
    assert s.flow is Flow.III
    assert [c.leg for c in sip_only(s.start(0.0)) if isinstance(c, Originate)] == [D, C]
    assert [type(c) for c in sip_only(s.receive(ev.Answered(leg=C, sdp=OFFER_BACK), 1.0))] == [Ack]
    reoffer = sip_only(s.receive(ev.Answered(leg=D, sdp=OFFER_DEST), 2.0))
    assert isinstance(reoffer[0], Reoffer) and reoffer[0].leg is C
    ack = sip_only(s.receive(ev.ReofferAnswered(leg=C, sdp=ANSWER_BACK), 2.1))
    assert isinstance(ack[0], Ack) and ack[0].leg is D
    assert outcome_of(s.receive(ev.RemoteHangup(leg=D), 5.1)).completed


def test_flow_i_puts_first_offer_in_second_invite() -> None:
    s = CallbackSession(make_spec(), flow=Flow.I)
    s.start(0.0)
    dial = sip_only(_answer_first(s))
    assert len(dial) == 1 and isinstance(dial[0], Originate) and dial[0].leg is C
    assert dial[0].sdp is not None and same_media(dial[0].sdp, OFFER_DEST)
    ack = sip_only(s.receive(ev.Answered(leg=C, sdp=ANSWER_BACK), 2.0))
    assert (
        len(ack) == 1 and isinstance(ack[0], Ack) and ack[0].leg is D and same_media(ack[0].sdp, ANSWER_BACK)
    )
    assert s.phase(D) is s.phase(C) is Phase.BRIDGED


def test_flow_i_second_leg_fails_first_is_acked_then_byed() -> None:
    s = CallbackSession(make_spec(), flow=Flow.I)
    s.start(0.0)
    _answer_first(s)
    out = s.receive(ev.Failed(leg=C, code=486, reason="Busy Here"), 3.0)
    assert [(type(c), c.leg) for c in sip_only(out)] == [(Ack, D), (Bye, D)]
    assert outcome_of(out).reason == "callback-busy"


@pytest.mark.parametrize(
    ("code", "reason"),
    [(486, "destination-busy"), (603, "destination-declined"), (404, "destination-failed")],
)
def test_first_leg_fails_second_never_dialled(code: int, reason: str) -> None:
    s = CallbackSession(make_spec())
    s.start(0.0)
    out = s.receive(ev.Failed(leg=D, code=code, reason="x"), 1.0)
    assert sip_only(out) == []
    outcome = outcome_of(out)
    assert (outcome.completed, outcome.reason) == (False, reason)
    assert outcome.legs[D].sip_code == code and outcome.legs[D].ended_by is EndedBy.REMOTE
    assert outcome.legs[C].final_state is LegState.IDLE and outcome.legs[C].started_at is None


def test_callback_declines_destination_is_hung_up() -> None:
    s = CallbackSession(make_spec())
    s.start(0.0)
    _answer_first(s)
    out = s.receive(ev.Failed(leg=C, code=603, reason="Decline"), 3.0)
    assert sip_only(out) == [Bye(leg=D)]
    outcome = outcome_of(out)
    assert outcome.reason == "callback-declined"
    assert outcome.legs[D].ended_by is EndedBy.PEER_LEG and outcome.legs[D].final_state is LegState.ANSWERED


def test_ring_timeout_cancels_and_ends_the_other_leg() -> None:
    s = CallbackSession(make_spec(ring_timeout=5.0))
    s.start(0.0)
    _answer_first(s)
    s.receive(ev.Ringing(leg=C), 1.2)
    assert s.next_deadline() == 6.0
    assert s.handle_timer(5.9) == []
    out = s.handle_timer(6.0)
    assert sip_only(out) == [Cancel(leg=C), Bye(leg=D)]
    outcome = outcome_of(out)
    assert outcome.reason == "callback-no-answer" and outcome.legs[C].ended_by is EndedBy.TIMEOUT
    assert outcome.legs[C].ring_s == pytest.approx(4.8) and outcome.legs[C].setup_s == pytest.approx(0.2)
    assert s.next_deadline() is None
    assert s.receive(ev.Failed(leg=C, code=487, reason="Request Terminated"), 6.1) == []


@pytest.mark.parametrize(("who", "other"), [(D, C), (C, D)])
def test_either_side_hangs_up_first(who: LegRole, other: LegRole) -> None:
    s = CallbackSession(make_spec())
    _bridge_iii(s)
    out = s.receive(ev.RemoteHangup(leg=who), 12.1)
    assert sip_only(out) == [Bye(leg=other)]
    outcome = outcome_of(out)
    assert outcome.completed and outcome.reason == "completed" and outcome.bridged_s == pytest.approx(10.0)
    assert outcome.legs[who].ended_by is EndedBy.REMOTE and outcome.legs[other].ended_by is EndedBy.PEER_LEG
    assert outcome.legs[D].talk_s == pytest.approx(11.1) and outcome.legs[C].talk_s == pytest.approx(10.1)


def test_max_duration_cuts_the_bridged_call() -> None:
    s = CallbackSession(make_spec(max_duration=60.0))
    _bridge_iii(s)
    assert s.next_deadline() == pytest.approx(62.1)
    out = s.handle_timer(62.1)
    assert sip_only(out) == [Bye(leg=D), Bye(leg=C)]
    outcome = outcome_of(out)
    assert outcome.bridged_s == pytest.approx(60.0)
    assert {r.ended_by for r in outcome.legs.values()} == {EndedBy.MAX_DURATION}


def test_a_late_max_duration_timer_does_not_lengthen_the_bridged_time() -> None:
    """Billing reserved exactly max_duration seconds: a timer handled 40 ms late must still report
    max_duration, or per-second billing rounds it up to a second the credit does not cover."""
    s = CallbackSession(make_spec(max_duration=6.0))
    _bridge_iii(s)
    out = s.handle_timer(8.1 + 0.04)
    assert sip_only(out) == [Bye(leg=D), Bye(leg=C)]
    assert outcome_of(out).bridged_s == 6.0


def test_early_media_is_reoffered_and_the_200_reuses_the_answer() -> None:
    s = CallbackSession(make_spec())
    s.start(0.0)
    _answer_first(s)
    early = sip_only(s.receive(ev.Ringing(leg=C, code=183, reason="Session Progress", sdp=OFFER_BACK), 1.5))
    assert len(early) == 1 and isinstance(early[0], Reoffer) and same_media(early[0].sdp, OFFER_BACK)
    assert sip_only(s.receive(ev.Ringing(leg=C, code=183, sdp=OFFER_BACK), 1.6)) == []  # no second re-INVITE
    assert sip_only(s.receive(ev.ReofferAnswered(leg=D, sdp=ANSWER_DEST), 1.7)) == []
    assert s.phase(D) is Phase.LINKED
    ack = sip_only(s.receive(ev.Answered(leg=C, sdp=OFFER_BACK), 4.0))
    assert len(ack) == 1 and isinstance(ack[0], Ack) and same_media(ack[0].sdp, ANSWER_DEST)
    assert s.phase(C) is Phase.BRIDGED


def test_early_media_then_different_200_is_reoffered_again() -> None:
    s = CallbackSession(make_spec())
    s.start(0.0)
    _answer_first(s)
    s.receive(ev.Ringing(leg=C, code=183, sdp=OFFER_DEST), 1.5)
    # the 200 arrives while the early re-INVITE is still in flight: wait for its answer
    assert sip_only(s.receive(ev.Answered(leg=C, sdp=OFFER_BACK), 1.6)) == []
    again = sip_only(s.receive(ev.ReofferAnswered(leg=D, sdp=ANSWER_BACK), 1.7))
    assert len(again) == 1 and isinstance(again[0], Reoffer) and same_media(again[0].sdp, OFFER_BACK)
    ack = sip_only(s.receive(ev.ReofferAnswered(leg=D, sdp=ANSWER_DEST), 1.8))
    assert isinstance(ack[0], Ack) and same_media(ack[0].sdp, ANSWER_DEST)


def test_reoffer_rejected_ends_the_callback_as_error() -> None:
    s = CallbackSession(make_spec())
    s.start(0.0)
    _answer_first(s)
    s.receive(ev.Answered(leg=C, sdp=OFFER_BACK), 2.0)
    out = s.receive(ev.ReofferFailed(leg=D, code=488, reason="Not Acceptable Here"), 2.1)
    assert [(type(c), c.leg) for c in sip_only(out)] == [(Bye, D), (Ack, C), (Bye, C)]
    assert outcome_of(out).reason == "destination-error"


@pytest.mark.parametrize(("by", "reason"), [(EndedBy.LOCAL, "cancelled"), (EndedBy.SHUTDOWN, "shutdown")])
def test_hangup_requested_while_ringing(by: EndedBy, reason: str) -> None:
    s = CallbackSession(make_spec())
    s.start(0.0)
    s.receive(ev.Ringing(leg=D), 0.5)
    out = s.receive(ev.HangupRequested(ended_by=by), 1.0)
    assert sip_only(out) == [Cancel(leg=D)]
    assert outcome_of(out).reason == reason
    assert s.receive(ev.HangupRequested(), 2.0) == []


def test_progress_reports_carry_codes_and_time() -> None:
    s = CallbackSession(make_spec())
    s.start(0.0)
    got = reports(s.receive(ev.Ringing(leg=D, code=183, reason="Session Progress"), 0.7))
    assert [(p.leg, p.state, p.sip_code, p.at) for p in got] == [(D, LegState.RINGING, 183, 0.7)]


def test_illegal_event_names_leg_and_state_and_changes_nothing() -> None:
    s = CallbackSession(make_spec())
    s.start(0.0)
    with pytest.raises(IllegalTransition, match=r"leg callback: 'answer' is not allowed in state 'idle'"):
        s.receive(ev.Answered(leg=C, sdp=OFFER_BACK), 1.0)
    assert s.phase(C) is Phase.IDLE and s.phase(D) is Phase.CALLING
    with pytest.raises(RuntimeError):
        s.start(1.0)


def test_event_values_check_their_codes() -> None:
    with pytest.raises(ValueError):
        ev.Failed(leg=D, code=200)
    with pytest.raises(ValueError):
        ev.Ringing(leg=D, code=200)


def test_answered_then_hung_up_before_the_bridge() -> None:
    s = CallbackSession(make_spec())
    s.start(0.0)
    _answer_first(s)
    out = s.receive(ev.RemoteHangup(leg=D), 2.0)
    assert sip_only(out) == [Cancel(leg=C)]
    outcome = outcome_of(out)
    assert outcome.reason == "destination-hung-up" and not outcome.completed


def test_flow_i_limits_the_second_leg_ring_time() -> None:
    s = CallbackSession(make_spec(ring_timeout=60.0), flow=Flow.I)
    s.start(0.0)
    assert s.next_deadline() == 60.0
    _answer_first(s)
    assert s.next_deadline() == pytest.approx(31.0)  # answered at 1.0 + the 30 s limit
