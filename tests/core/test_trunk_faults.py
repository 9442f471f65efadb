"""Trunk faults in the core, without sockets: which reason each way of not getting anywhere gives."""

from __future__ import annotations

import pytest

from tests.core.core_helpers import make_spec, outcome_of, sip_only
from webcallback.core import CallbackSession
from webcallback.core import events as ev
from webcallback.core.commands import Cancel
from webcallback.domain import EndedBy, LegRole

D = LegRole.DESTINATION


def test_unreachable_names_the_leg() -> None:
    s = CallbackSession(make_spec())
    s.start(0.0)
    out = s.receive(ev.Failed(leg=D, code=None, reason="unreachable: ECONNREFUSED", by=EndedBy.NETWORK), 0.1)
    outcome = outcome_of(out)
    assert outcome.reason == "destination-unreachable"
    assert (
        outcome.legs[D].ended_by is EndedBy.NETWORK and outcome.legs[D].reason == "unreachable: ECONNREFUSED"
    )
    assert sip_only(out) == []  # the INVITE failed: nothing to CANCEL


def test_timer_b_is_no_response() -> None:
    s = CallbackSession(make_spec())
    s.start(0.0)
    out = s.receive(ev.Failed(leg=D, code=408, reason="no response (Timer B)", by=EndedBy.TIMEOUT), 32.0)
    assert outcome_of(out).reason == "destination-no-response" and outcome_of(out).legs[D].sip_code == 408


def test_a_far_ends_408_is_no_answer() -> None:
    s = CallbackSession(make_spec())
    s.start(0.0)
    s.receive(ev.Trying(leg=D), 0.1)
    assert outcome_of(s.receive(ev.Failed(leg=D, code=408, reason="Request Timeout"), 5.0)).reason == (
        "destination-no-answer"
    )


@pytest.mark.parametrize(
    ("replies", "deadline", "reason"),
    [
        ([], 2.0, "destination-no-response"),  # the progress timer, nothing came back
        ([ev.Trying(leg=D)], 2.0, "destination-no-progress"),  # 100 Trying only
        ([ev.Trying(leg=D), ev.Ringing(leg=D)], 30.0, "destination-no-answer"),  # it rang: ring timeout
    ],
)
def test_timeouts_by_how_far_the_leg_got(replies: list[ev.Event], deadline: float, reason: str) -> None:
    s = CallbackSession(make_spec(progress_timeout=2.0))
    s.start(0.0)
    for reply in replies:
        s.receive(reply, 0.1)
    assert s.next_deadline() == deadline
    out = s.handle_timer(deadline)
    assert sip_only(out) == [Cancel(leg=D)]
    assert outcome_of(out).reason == reason and outcome_of(out).legs[D].ended_by is EndedBy.TIMEOUT


def test_without_progress_timeout_trying_only_ends_at_ring_timeout() -> None:
    s = CallbackSession(make_spec(ring_timeout=10.0))
    s.start(0.0)
    s.receive(ev.Trying(leg=D), 0.1)
    assert s.next_deadline() == 10.0
    assert outcome_of(s.handle_timer(10.0)).reason == "destination-no-progress"
