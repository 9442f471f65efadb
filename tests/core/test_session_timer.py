"""Session timers (RFC 4028) in the core: the pure arithmetic, then whole callbacks by hand."""

from __future__ import annotations

import pytest

from tests.core.core_helpers import ANSWER_DEST, OFFER_BACK, OFFER_DEST, make_spec, outcome_of, sip_only
from webcallback.core import CallbackSession
from webcallback.core import events as ev
from webcallback.core.commands import Ack, Bye, Originate, Refresh, Reoffer
from webcallback.core.session_timer import (
    Due,
    Refresher,
    SessionTimer,
    TimerPolicy,
    TimerTerms,
    agreed_in_response,
    answer_refresh,
    parse_session_expires,
)
from webcallback.domain import EndedBy, FailureReason, LegRole

D, C = LegRole.DESTINATION, LegRole.CALLBACK
POLICY = TimerPolicy(expires=1800, min_se=90)
HEADERS = (("Session-Expires", "1800;refresher=uac"), ("Min-SE", "90"), ("Supported", "timer"))


# ---- the arithmetic ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("1800;refresher=uac", (1800, "uac")),
        (" 90 ; Refresher = UAS ", (90, "uas")),
        ("4000", (4000, None)),
        ("4000;foo=bar", (4000, None)),
        ("", None),
        ("-5;refresher=uac", None),
        ("soon", None),
        (None, None),
    ],
)
def test_session_expires_is_read(value: str | None, parsed: tuple[int, str | None] | None) -> None:
    assert parse_session_expires(value) == parsed


def test_we_ask_to_refresh_and_a_422_raises_the_interval() -> None:
    assert POLICY.request_headers() == HEADERS
    assert TimerPolicy(expires=100, min_se=90).after_422("300") == TimerPolicy(expires=300, min_se=300)
    assert POLICY.after_422("600") == TimerPolicy(expires=1800, min_se=600)
    assert POLICY.after_422("90") is None and POLICY.after_422(None) is None and POLICY.after_422("x") is None
    with pytest.raises(ValueError, match="expires"):
        TimerPolicy(expires=60, min_se=90)


@pytest.mark.parametrize(
    ("value", "terms"),
    [
        ("1200;refresher=uac", TimerTerms(interval=1200, refresher=Refresher.US)),
        ("1200;refresher=uas", TimerTerms(interval=1200, refresher=Refresher.PEER)),
        ("1200", TimerTerms(interval=1200, refresher=Refresher.US)),
        (None, TimerTerms(interval=1800, refresher=Refresher.US)),  # no timers there: liveness
    ],
)
def test_the_2xx_says_what_was_agreed(value: str | None, terms: TimerTerms) -> None:
    assert agreed_in_response(POLICY, value) == terms


def test_a_far_end_refresh_is_answered_as_it_asked() -> None:
    theirs = answer_refresh(POLICY, "600;refresher=uac", supports_timer=True)
    assert (theirs.code, theirs.headers) == (
        200,
        (("Session-Expires", "600;refresher=uac"), ("Require", "timer")),
    )
    assert theirs.terms == TimerTerms(interval=600, refresher=Refresher.PEER)
    ours = answer_refresh(POLICY, "600", supports_timer=False)  # no preference: we refresh
    assert ours.headers == (("Session-Expires", "600;refresher=uas"),)
    assert ours.terms == TimerTerms(interval=600, refresher=Refresher.US)
    bare = answer_refresh(POLICY, None, supports_timer=False)
    assert bare.headers == (("Session-Expires", "1800;refresher=uas"),)
    small = answer_refresh(POLICY, "30;refresher=uac", supports_timer=True)
    assert (small.code, small.headers, small.terms) == (422, (("Min-SE", "90"),), None)


def test_the_refresher_refreshes_at_half_and_expires_when_unanswered() -> None:
    timer = SessionTimer.start(TimerTerms(interval=100, refresher=Refresher.US), 10.0)
    assert timer.next_deadline() == 60.0 and timer.due(59.9) is None and timer.due(60.0) is Due.REFRESH
    sent = timer.sent()
    assert sent.next_deadline() == 110.0 and sent.due(109.0) is None and sent.due(110.0) is Due.EXPIRED
    again = sent.refreshed(TimerTerms(interval=200, refresher=Refresher.US), 70.0)
    assert again.next_deadline() == 170.0 and not again.in_flight
    retry = sent.failed(70.0)  # a 491: halfway to the expiry
    assert retry.next_deadline() == 90.0 and retry.due(90.0) is Due.REFRESH
    assert sent.failed(70.0, at_once=True).due(70.0) is Due.REFRESH


def test_a_peer_refresher_is_waited_for_until_just_before_expiry() -> None:
    long = SessionTimer.start(TimerTerms(interval=1800, refresher=Refresher.PEER), 0.0)
    assert long.next_deadline() == 1800 - 32 and long.due(1767.0) is None and long.due(1768.0) is Due.EXPIRED
    short = SessionTimer.start(TimerTerms(interval=90, refresher=Refresher.PEER), 0.0)
    assert short.next_deadline() == 60.0  # min(32, 90 / 3) before expiry


# ---- whole callbacks -------------------------------------------------------------------------------


def _bridged(
    policy: TimerPolicy = POLICY, dest_se: str | None = None, back_se: str | None = None
) -> CallbackSession:
    s = CallbackSession(make_spec(), timers=policy)
    start = sip_only(s.start(0.0))
    headers = policy.request_headers()
    assert start == [Originate(leg=D, number="+15551230001", caller_id="+15551230002", headers=headers)]
    s.receive(ev.Answered(leg=D, sdp=OFFER_DEST, session_expires=dest_se), 1.0)
    s.receive(ev.Answered(leg=C, sdp=OFFER_BACK, session_expires=back_se), 2.0)
    s.receive(ev.ReofferAnswered(leg=D, sdp=ANSWER_DEST, session_expires=dest_se), 2.5)
    return s


def test_both_legs_are_refreshed_at_half_the_agreed_interval() -> None:
    s = _bridged(dest_se="1800;refresher=uac", back_se="600;refresher=uac")
    assert s.next_deadline() == 302.0  # the callback leg: 2.0 + 600 / 2
    assert sip_only(s.handle_timer(302.0)) == [Refresh(leg=C, headers=HEADERS)]
    assert s.next_deadline() == 602.0  # in flight: the callback leg expires unless answered
    s.receive(ev.RefreshAnswered(leg=C, session_expires="600;refresher=uac"), 302.1)
    assert s.next_deadline() == 602.1  # its next refresh
    dest = s.legs[D].timer
    assert dest is not None and dest.next_deadline() == 902.5  # refreshed by the re-offer at 2.5


@pytest.mark.parametrize("code", [408, 481, None])
def test_a_refresh_that_fails_ends_the_callback_as_session_expired(code: int | None) -> None:
    s = _bridged()
    s.handle_timer(902.0)  # the callback leg's refresh
    out = s.receive(ev.RefreshFailed(leg=C, code=code, reason="gone"), 903.0)
    assert sip_only(out) == [Bye(leg=C), Bye(leg=D)]
    outcome = outcome_of(out)
    assert outcome.reason is FailureReason.SESSION_EXPIRED and outcome.completed
    assert (
        outcome.legs[C].ended_by is EndedBy.SESSION_EXPIRED and outcome.legs[D].ended_by is EndedBy.PEER_LEG
    )
    assert outcome.bridged_s == pytest.approx(903.0 - 2.5)


def test_an_unanswered_refresh_expires_the_session() -> None:
    s = _bridged(TimerPolicy(expires=4, min_se=2))
    s.handle_timer(4.0)  # the callback leg: 2.0 + 2
    assert s.next_deadline() == 4.5  # the destination's refresh, before the callback's expiry at 6
    assert sip_only(s.handle_timer(4.5)) == [
        Refresh(leg=D, headers=TimerPolicy(expires=4, min_se=2).request_headers())
    ]
    s.receive(ev.RefreshAnswered(leg=D), 4.6)
    out = s.handle_timer(6.0)
    assert sip_only(out) == [Bye(leg=C), Bye(leg=D)]
    assert outcome_of(out).reason is FailureReason.SESSION_EXPIRED


def test_other_failures_retry_and_a_422_retries_at_once_with_its_min_se() -> None:
    s = _bridged(dest_se="7200;refresher=uac")
    s.handle_timer(902.0)
    assert sip_only(s.receive(ev.RefreshFailed(leg=C, code=491), 903.0)) == []
    timer = s.legs[C].timer
    assert timer is not None and timer.next_deadline() == pytest.approx((903.0 + 1802.0) / 2)
    assert sip_only(s.handle_timer(1352.5)) == [Refresh(leg=C, headers=HEADERS)]
    s.receive(ev.RefreshFailed(leg=C, code=422, min_se="3600"), 1400.0)
    assert sip_only(s.handle_timer(1400.0)) == [
        Refresh(
            leg=C,
            headers=(("Session-Expires", "3600;refresher=uac"), ("Min-SE", "3600"), ("Supported", "timer")),
        )
    ]


def test_a_peer_refresher_that_stops_ends_the_callback() -> None:
    s = _bridged(back_se="90;refresher=uas")
    assert s.next_deadline() == 62.0
    s.receive(ev.RefreshReceived(leg=C, terms=TimerTerms(interval=90, refresher=Refresher.PEER)), 50.0)
    assert s.next_deadline() == 110.0 and sip_only(s.handle_timer(62.0)) == []
    out = s.handle_timer(110.0)
    assert sip_only(out) == [Bye(leg=C), Bye(leg=D)]
    assert outcome_of(out).legs[C].ended_by is EndedBy.SESSION_EXPIRED


def test_a_reoffer_waits_for_the_refresh_in_flight() -> None:
    s = CallbackSession(make_spec(), timers=TimerPolicy(expires=4, min_se=2))
    s.start(0.0)
    held = sip_only(s.receive(ev.Answered(leg=D, sdp=OFFER_DEST), 1.0))
    assert isinstance(held[0], Ack)
    assert sip_only(s.handle_timer(3.0)) == [
        Refresh(leg=D, headers=TimerPolicy(expires=4, min_se=2).request_headers())
    ]
    assert sip_only(s.receive(ev.Answered(leg=C, sdp=OFFER_BACK), 3.1)) == []  # held back
    released = sip_only(s.receive(ev.RefreshAnswered(leg=D), 3.2))
    assert len(released) == 1 and isinstance(released[0], Reoffer) and released[0].leg is D


def test_timers_off_sends_no_headers_and_sets_no_deadline() -> None:
    s = CallbackSession(make_spec())
    assert sip_only(s.start(0.0))[0] == Originate(leg=D, number="+15551230001", caller_id="+15551230002")
    s.receive(ev.Answered(leg=D, sdp=OFFER_DEST), 1.0)
    s.receive(ev.Answered(leg=C, sdp=OFFER_BACK), 2.0)
    s.receive(ev.ReofferAnswered(leg=D, sdp=ANSWER_DEST), 2.5)
    assert s.next_deadline() is None
