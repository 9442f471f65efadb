"""Session timers (RFC 4028) against SIPp far ends: we ask to refresh both legs, and do; a far end
that lost the dialog (481) or, as the refresher, stops refreshing ends the callback as
`session-expired` with a BYE to both legs; a far end's own refreshes are answered.

The engine asks for a 4 s (or 3 s) session with `session_min_se` 2: below RFC 4028's 90 s, which
the setting allows for tests only, so that refreshes happen within a test.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.sip.conftest import EngineFactory
from tests.sip.phones import TEST_SCENARIOS, Phone, SipMessage
from tests.sip.test_calls import run, spec_for, verdicts
from webcallback.domain import EndedBy, FailureReason, LegRole

pytestmark = pytest.mark.sip

D, C = LegRole.DESTINATION, LegRole.CALLBACK
Phones = Callable[..., Phone]
NO_UPDATE = {"ALLOW": "INVITE, ACK, BYE, CANCEL, OPTIONS"}
WITH_UPDATE = {"ALLOW": "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE"}
TIMER = str(TEST_SCENARIOS / "uas_timer.xml")
LOST = str(TEST_SCENARIOS / "uas_timer_481.xml")
REFRESHER = str(TEST_SCENARIOS / "uas_timer_refresher.xml")


def in_dialog(phone: Phone, method: str) -> list[SipMessage]:
    """Requests of `method` the phone received inside the dialog (To has a tag)."""
    return [m for m in phone.received(method) if "tag=" in m.headers("To")[0]]


def assert_asked_for_timer(phone: Phone, expires: int, min_se: int) -> None:
    (invite,) = [m for m in phone.received("INVITE") if "tag=" not in m.headers("To")[0]]
    assert invite.headers("Session-Expires") == [f"{expires};refresher=uac"], invite.text
    assert invite.headers("Min-SE") == [str(min_se)]
    assert "timer" in ",".join(invite.headers("Supported"))
    assert "UPDATE" in invite.headers("Allow")[0]


@pytest.mark.parametrize("knobs", [NO_UPDATE, WITH_UPDATE], ids=["re-invite", "update"])
async def test_both_legs_are_refreshed(
    make_engine: EngineFactory, phones: Phones, knobs: dict[str, str]
) -> None:
    engine = await make_engine(session_expires=4, session_min_se=2)
    dest, back = phones(TIMER, knobs=knobs), phones(TIMER, knobs=knobs)
    outcome, _ = await run(engine, spec_for(dest, back, max_duration=7.0))
    assert outcome.reason is FailureReason.COMPLETED and outcome.legs[C].ended_by is EndedBy.MAX_DURATION
    await verdicts(dest, back)
    for phone in (dest, back):
        assert_asked_for_timer(phone, 4, 2)
    # The callback leg gets no re-offer in flow III: every in-dialog request to it is a refresh.
    (ack,) = [m for m in back.received("ACK") if m.body.strip()]
    if knobs is WITH_UPDATE:
        refreshes = in_dialog(back, "UPDATE")
        assert refreshes and not in_dialog(back, "INVITE")
        assert all(not m.body.strip() for m in refreshes)
    else:
        refreshes = in_dialog(back, "INVITE")
        assert refreshes and not in_dialog(back, "UPDATE")
        assert all(m.body == ack.body for m in refreshes)  # the SDP last sent, its version unchanged
    assert all(m.headers("Session-Expires") == ["4;refresher=uac"] for m in refreshes)
    # The destination was re-offered the callback's SDP (a re-INVITE), then refreshed too.
    refreshed_dest = in_dialog(dest, "UPDATE" if knobs is WITH_UPDATE else "INVITE")
    assert len(refreshed_dest) >= (1 if knobs is WITH_UPDATE else 2)


async def test_a_far_end_that_lost_the_dialog_ends_the_callback(
    make_engine: EngineFactory, phones: Phones
) -> None:
    engine = await make_engine(session_expires=4, session_min_se=2)
    dest, back = phones(TIMER, knobs=NO_UPDATE), phones(LOST, knobs=NO_UPDATE)
    outcome, progress = await run(engine, spec_for(dest, back))  # no max_duration: only the timer ends it
    assert outcome.reason is FailureReason.SESSION_EXPIRED and outcome.completed  # it had talked
    assert outcome.legs[C].ended_by is EndedBy.SESSION_EXPIRED and outcome.legs[C].sip_code == 481
    assert outcome.legs[D].ended_by is EndedBy.PEER_LEG
    assert any(p.leg is C and p.ended_by is EndedBy.SESSION_EXPIRED for p in progress)
    await verdicts(dest, back)
    assert back.sent_status(481) and back.received("BYE") and dest.received("BYE")


async def test_a_far_end_refresher_is_answered(make_engine: EngineFactory, phones: Phones) -> None:
    engine = await make_engine(session_expires=3, session_min_se=2)
    dest = phones(TIMER, knobs=NO_UPDATE)
    back = phones(REFRESHER, talk_ms=500, knobs={"SE": "3"})  # it refreshes every 0.5 s of quiet
    outcome, _ = await run(engine, spec_for(dest, back, max_duration=5.0))
    assert outcome.reason is FailureReason.COMPLETED and outcome.legs[C].ended_by is EndedBy.MAX_DURATION
    await verdicts(back, dest)  # every refresh of the far end was answered 200
    answers = [m for m in back.messages() if m.direction == "received" and m.status == 200]
    assert answers and all(m.headers("Session-Expires") == ["3;refresher=uac"] for m in answers)
    assert all(m.body.strip() for m in answers)  # the SDP we last sent it answers its unchanged offer
    assert not in_dialog(back, "INVITE") and not in_dialog(back, "UPDATE")  # it refreshes, not we


async def test_a_far_end_refresher_that_stops_ends_the_callback(
    make_engine: EngineFactory, phones: Phones
) -> None:
    engine = await make_engine(session_expires=3, session_min_se=2)
    dest = phones(TIMER, knobs=NO_UPDATE)
    back = phones(REFRESHER, talk_ms=30000, knobs={"SE": "3"})  # would refresh after 30 s
    outcome, _ = await run(engine, spec_for(dest, back))
    assert outcome.reason is FailureReason.SESSION_EXPIRED
    assert outcome.legs[C].ended_by is EndedBy.SESSION_EXPIRED
    await verdicts(back, dest)
    assert back.received("BYE") and dest.received("BYE")
    assert not [m for m in back.messages() if m.direction == "sent" and m.method == "INVITE"]


async def test_a_422_is_retried_with_the_far_ends_min_se(make_engine: EngineFactory, phones: Phones) -> None:
    engine = await make_engine(session_expires=100, session_min_se=90)
    dest, back = phones("uas_answer.xml"), phones(str(TEST_SCENARIOS / "uas_422.xml"))
    outcome, _ = await run(engine, spec_for(dest, back, max_duration=1.0))
    assert outcome.reason is FailureReason.COMPLETED
    await verdicts(dest, back)
    first, retry = [m for m in back.received("INVITE") if "tag=" not in m.headers("To")[0]]
    assert first.headers("Session-Expires") == ["100;refresher=uac"] and first.headers("Min-SE") == ["90"]
    assert retry.headers("Session-Expires") == ["120;refresher=uac"] and retry.headers("Min-SE") == ["120"]
    assert retry.headers("Call-ID") == first.headers("Call-ID")
    assert int(retry.headers("CSeq")[0].split()[0]) > int(first.headers("CSeq")[0].split()[0])
