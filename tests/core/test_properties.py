"""Whatever the far ends do, in whatever order: the session stays consistent.

Hypothesis throws random sequences of far-end events and clock jumps at a session. Events the
table forbids must raise `IllegalTransition` and change nothing; everything else must keep the
SIP dialogs sane (one INVITE per leg, nothing after its CANCEL/BYE, ACK only for an answer), and a
final hang-up must always finish the callback exactly once.
"""

from __future__ import annotations

from hypothesis import event as note_event
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.core.core_helpers import ANSWER_DEST, OFFER_BACK, OFFER_DEST, make_spec
from webcallback.core import CallbackSession, Flow, IllegalTransition, Phase
from webcallback.core import events as ev
from webcallback.core.commands import Ack, Bye, Cancel, Command, Finished, Originate, Reoffer, Report
from webcallback.domain import CallOutcome, EndedBy, LegOrder, LegRole, LegState

ROLES = st.sampled_from([LegRole.DESTINATION, LegRole.CALLBACK])
SDPS = st.sampled_from([OFFER_DEST, OFFER_BACK])
ANSWERS = st.builds(ev.Answered, leg=ROLES, sdp=SDPS)
REOFFER_ANSWERS = st.builds(ev.ReofferAnswered, leg=ROLES, sdp=st.just(ANSWER_DEST))
LEG_EVENTS = st.one_of(  # answers listed thrice: random far ends should get to the bridge too
    ANSWERS,
    ANSWERS,
    ANSWERS,
    REOFFER_ANSWERS,
    REOFFER_ANSWERS,
    REOFFER_ANSWERS,
    st.builds(ev.Trying, leg=ROLES),
    st.builds(ev.Ringing, leg=ROLES, code=st.just(180)),
    st.builds(ev.Ringing, leg=ROLES, code=st.just(183), sdp=SDPS),
    st.builds(ev.Failed, leg=ROLES, code=st.sampled_from([404, 486, 487, 603])),
    st.builds(ev.ReofferFailed, leg=ROLES, code=st.just(488)),
    st.builds(ev.RemoteHangup, leg=ROLES),
)
STEPS = st.lists(st.tuples(st.one_of(LEG_EVENTS, st.none()), st.floats(0.0, 4.0)), max_size=25)


class DialogChecker:
    """Follows the SIP commands per leg and fails on anything a real dialog would not allow."""

    def __init__(self) -> None:
        self.invited: set[LegRole] = set()
        self.closed: set[LegRole] = set()
        self.finished = 0
        self.outcome: CallOutcome | None = None

    def check(self, commands: list[Command], answered: set[LegRole]) -> None:
        for c in commands:
            if isinstance(c, Finished):
                self.finished += 1
                self.outcome = c.outcome
            elif isinstance(c, Report):
                assert self.finished == 0 or c.progress.leg is None
            elif isinstance(c, Originate):
                assert c.leg not in self.invited
                self.invited.add(c.leg)
            else:
                assert c.leg in self.invited and c.leg not in self.closed, c
                if isinstance(c, Ack | Reoffer):
                    assert c.leg in answered, c
                if isinstance(c, Cancel | Bye):
                    self.closed.add(c.leg)


@settings(max_examples=400, deadline=None)
@given(
    steps=STEPS,
    order=st.sampled_from(list(LegOrder)),
    flow=st.sampled_from(list(Flow)),
    max_duration=st.one_of(st.none(), st.floats(1.0, 30.0)),
)
def test_random_far_ends_keep_the_session_consistent(
    steps: list[tuple[ev.LegEvent | None, float]], order: LegOrder, flow: Flow, max_duration: float | None
) -> None:
    s = CallbackSession(make_spec(leg_order=order, ring_timeout=10.0, max_duration=max_duration), flow=flow)
    checker, answered, now = DialogChecker(), set[LegRole](), 0.0
    checker.check(s.start(now), answered)
    for event, delay in steps:
        now += delay
        if event is None:
            checker.check(s.handle_timer(now), answered)
            continue
        before = (s.phase(LegRole.DESTINATION), s.phase(LegRole.CALLBACK), s.next_deadline())
        is_answer = isinstance(event, ev.Answered)
        try:
            checker.check(s.receive(event, now), answered | ({event.leg} if is_answer else set()))
        except IllegalTransition:
            assert (s.phase(LegRole.DESTINATION), s.phase(LegRole.CALLBACK), s.next_deadline()) == before
            continue
        if is_answer:
            answered.add(event.leg)
    checker.check(s.receive(ev.HangupRequested(ended_by=EndedBy.LOCAL), now + 1), answered)
    assert checker.finished == 1 and s.finished and s.next_deadline() is None
    assert checker.outcome is not None and checker.outcome.bridged_s >= 0
    note_event(f"outcome: {checker.outcome.reason}")
    for role in checker.invited - checker.closed:  # a dialog we did not close, the far end did
        assert checker.outcome.legs[role].ended_by is EndedBy.REMOTE
    assert all(leg.state is LegState.ENDED for leg in s.legs.values())


def _plausible(s: CallbackSession, role: LegRole, sdp: str) -> list[ev.LegEvent]:
    """What the far end of `role` could send now."""
    phase = s.phase(role)
    if phase in (Phase.CALLING, Phase.RINGING):
        return [
            ev.Ringing(leg=role),
            ev.Ringing(leg=role, code=183, sdp=sdp),
            ev.Answered(leg=role, sdp=sdp),
            ev.Answered(leg=role, sdp=sdp),
            ev.Failed(leg=role, code=486),
        ]
    if phase is Phase.REOFFERING:
        answer: list[ev.LegEvent] = [ev.ReofferAnswered(leg=role, sdp=ANSWER_DEST)] * 3
        return [*answer, ev.ReofferFailed(leg=role, code=488)]
    if phase is Phase.ENDED:
        return [ev.Failed(leg=role, code=487), ev.RemoteHangup(leg=role)]
    if phase is Phase.IDLE:
        return []
    return [ev.RemoteHangup(leg=role)]


@settings(max_examples=400, deadline=None)
@given(data=st.data(), order=st.sampled_from(list(LegOrder)), flow=st.sampled_from(list(Flow)))
def test_plausible_far_ends_always_finish_cleanly(data: st.DataObject, order: LegOrder, flow: Flow) -> None:
    s = CallbackSession(make_spec(leg_order=order, ring_timeout=10.0, max_duration=20.0), flow=flow)
    checker, answered, now = DialogChecker(), set[LegRole](), 0.0
    checker.check(s.start(now), answered)
    sdp = {LegRole.DESTINATION: OFFER_DEST, LegRole.CALLBACK: OFFER_BACK}
    for _ in range(30):
        if s.finished:
            break
        now += data.draw(st.floats(0.0, 3.0))
        choices = [e for role in LegRole for e in _plausible(s, role, sdp[role])]
        event = data.draw(st.sampled_from([*choices, None]))
        if event is None:
            checker.check(s.handle_timer(now), answered)
            continue
        if isinstance(event, ev.Answered):
            answered.add(event.leg)
        checker.check(s.receive(event, now), answered)  # plausible events are always legal
    checker.check(s.receive(ev.HangupRequested(), now + 1), answered)
    assert checker.finished == 1 and s.next_deadline() is None
    assert checker.outcome is not None
    note_event(f"outcome: {checker.outcome.reason}")
    if checker.outcome.completed:
        assert checker.outcome.bridged_at is not None and checker.outcome.bridged_s >= 0
