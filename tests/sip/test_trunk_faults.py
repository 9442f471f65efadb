"""Trunk faults told apart (issue 11, item 8), each against a real peer: SIPp playing a trunk that
drops INVITEs, one that sends only 100 Trying, one that rejects with 503, one that rings and is not
answered, and a port where nothing listens (the kernel's ICMP port unreachable).
"""

from __future__ import annotations

import pytest

from tests.sip.conftest import EngineFactory
from tests.sip.test_calls import UNUSED_NUMBER, Phones, run, spec_for, verdicts
from webcallback.domain import EndedBy, LegRole, LegState

pytestmark = pytest.mark.sip

D = LegRole.DESTINATION
NOTHING_LISTENS = "+15550000007"  # loopback port 7 (echo): privileged, not bound here


async def test_nothing_listens_is_unreachable(make_engine: EngineFactory) -> None:
    outcome, progress = await run(await make_engine(), spec_for(NOTHING_LISTENS, UNUSED_NUMBER))
    assert outcome.reason == "destination-unreachable", outcome
    leg = outcome.legs[D]
    assert leg.ended_by is EndedBy.NETWORK and leg.sip_code is None
    assert leg.reason is not None and "ECONNREFUSED" in leg.reason and "127.0.0.1:7" in leg.reason
    assert leg.final_state is LegState.TRYING  # INVITE sent; nothing came back but the ICMP error
    ended = [p for p in progress if p.leg is D and p.state is LegState.ENDED]
    assert ended and ended[0].ended_by is EndedBy.NETWORK


async def test_dropped_invite_is_no_response(make_engine: EngineFactory, phones: Phones) -> None:
    a = phones("uas_drop.xml", ring_ms=3000)
    outcome, _ = await run(await make_engine(), spec_for(a, UNUSED_NUMBER, progress_timeout=1.0))
    await verdicts(a)
    assert outcome.reason == "destination-no-response", outcome
    assert outcome.legs[D].ended_by is EndedBy.TIMEOUT and outcome.legs[D].final_state is LegState.TRYING
    assert len(a.received("INVITE")) >= 2  # retransmitted: nothing came back
    assert a.received("CANCEL") == []  # nothing provisional: no CANCEL may be sent (RFC 3261 §9.1)


async def test_timer_b_is_no_response_with_408(make_engine: EngineFactory, phones: Phones) -> None:
    """No progress timer: sippy's Timer B (64*T1 = 32 s) fires and its own 408 is told apart."""
    a = phones("uas_drop.xml", ring_ms=34000)
    outcome, _ = await run(await make_engine(), spec_for(a, UNUSED_NUMBER, ring_timeout=60.0), timeout=60)
    await verdicts(a)
    assert outcome.reason == "destination-no-response", outcome
    leg = outcome.legs[D]
    assert (leg.sip_code, leg.ended_by) == (408, EndedBy.TIMEOUT)
    assert leg.reason == "no response (Timer B)"


async def test_trying_only_is_no_progress(make_engine: EngineFactory, phones: Phones) -> None:
    a = phones("uas_trying_only.xml")
    outcome, _ = await run(await make_engine(), spec_for(a, UNUSED_NUMBER, progress_timeout=1.0))
    await verdicts(a)
    assert outcome.reason == "destination-no-progress", outcome
    assert outcome.legs[D].final_state is LegState.TRYING and outcome.legs[D].ended_by is EndedBy.TIMEOUT
    (invite,), (cancel,) = a.received("INVITE"), a.received("CANCEL")
    # The progress timer (1 s), not the 5 s ring timeout. SIPp stamps each message when it reads
    # it, so the INVITE's stamp can trail its sending by a scheduling delay: not a sharp 1.0.
    assert 0.5 <= cancel.at - invite.at < 5.0


async def test_trying_only_at_ring_timeout_is_no_progress(make_engine: EngineFactory, phones: Phones) -> None:
    a = phones("uas_trying_only.xml")
    outcome, _ = await run(await make_engine(), spec_for(a, UNUSED_NUMBER, ring_timeout=1.0))
    await verdicts(a)
    assert outcome.reason == "destination-no-progress", outcome


async def test_503_is_failed_with_its_code(make_engine: EngineFactory, phones: Phones) -> None:
    a = phones("uas_unavailable.xml", ring_ms=100)
    outcome, _ = await run(await make_engine(), spec_for(a, UNUSED_NUMBER))
    await verdicts(a)
    assert outcome.reason == "destination-failed"
    assert (outcome.legs[D].sip_code, outcome.legs[D].reason) == (503, "Service Unavailable")
    assert outcome.legs[D].ended_by is EndedBy.REMOTE


async def test_ringing_not_answered_is_no_answer(make_engine: EngineFactory, phones: Phones) -> None:
    a = phones("uas_noanswer.xml")
    outcome, _ = await run(
        await make_engine(), spec_for(a, UNUSED_NUMBER, ring_timeout=1.0, progress_timeout=0.5)
    )
    await verdicts(a)
    assert outcome.reason == "destination-no-answer"  # it rang: the progress timer stopped counting
    assert outcome.legs[D].final_state is LegState.RINGING and outcome.legs[D].ended_by is EndedBy.TIMEOUT
