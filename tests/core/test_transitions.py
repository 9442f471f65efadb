"""The leg table: every legal step, every illegal one (which must raise and change nothing)."""

from __future__ import annotations

import pytest

from webcallback.core import TRANSITIONS, IllegalTransition, Phase, Trigger
from webcallback.core.leg import Leg
from webcallback.core.sdp import Origin
from webcallback.domain import LegRole, LegState

LEGAL = [(p, t, n) for p, row in TRANSITIONS.items() for t, n in row.items()]
ILLEGAL = [(p, t) for p in Phase for t in Trigger if t not in TRANSITIONS[p]]


def _leg(phase: Phase) -> Leg:
    leg = Leg(LegRole.CALLBACK, "+1555", "+1666", Origin(1, 1, "127.0.0.1"))
    leg.phase = phase
    return leg


def test_every_phase_has_a_row() -> None:
    assert set(TRANSITIONS) == set(Phase)


@pytest.mark.parametrize(("phase", "trigger", "expected"), LEGAL)
def test_legal_transition(phase: Phase, trigger: Trigger, expected: Phase) -> None:
    leg = _leg(phase)
    assert leg.apply(trigger) is expected
    assert leg.phase is expected


@pytest.mark.parametrize(("phase", "trigger"), ILLEGAL)
def test_illegal_transition_raises_and_keeps_state(phase: Phase, trigger: Trigger) -> None:
    leg = _leg(phase)
    with pytest.raises(IllegalTransition) as info:
        leg.apply(trigger)
    assert leg.phase is phase
    assert (
        "callback" in str(info.value) and phase.value in str(info.value) and trigger.value in str(info.value)
    )


@pytest.mark.parametrize(
    ("path", "furthest"),
    [
        ([Trigger.DIAL, Trigger.RING, Trigger.CANCEL], LegState.RINGING),
        ([Trigger.DIAL, Trigger.ANSWER, Trigger.BRIDGE, Trigger.BYE], LegState.BRIDGED),
        ([Trigger.SKIP], LegState.IDLE),
    ],
)
def test_furthest_state_is_remembered(path: list[Trigger], furthest: LegState) -> None:
    leg = _leg(Phase.IDLE)
    for trigger in path:
        leg.apply(trigger)
    assert leg.furthest is furthest


def test_ended_absorbs_late_far_end_news_but_not_our_actions() -> None:
    for trigger in (Trigger.FAIL, Trigger.ANSWER, Trigger.REMOTE_BYE):
        assert _leg(Phase.ENDED).apply(trigger) is Phase.ENDED
    for trigger in (Trigger.DIAL, Trigger.BYE, Trigger.CANCEL, Trigger.REOFFER):
        with pytest.raises(IllegalTransition):
            _leg(Phase.ENDED).apply(trigger)
