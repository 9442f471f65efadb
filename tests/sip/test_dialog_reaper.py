"""Ending a leg from its stored dialog alone, as a restart does after a crash (engines/sip/reaper.py).

A live engine places a call; the test takes the `LegDialog` the engine reported for a leg (what the
dispatcher stores) and hands it to a `SipReaper`, which has nothing else: no sippy, another socket.
The far end must take the BYE as part of its dialog (baresip, a real softphone, answers 200 to
where the BYE came from; directly and through Kamailio record-routing, so the route set matters),
and a ringing SIPp must take the CANCEL as cancelling its INVITE (it answers 487).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable

import pytest

from tests.sip.conftest import EngineFactory
from tests.sip.phones import Baresip, Phone
from tests.sip.test_calls import spec_for, verdicts
from webcallback.domain import EndedBy, LegDialog, LegRole, LegState, ProgressEvent, ReapResult
from webcallback.engines.sip.reaper import SipReaper

pytestmark = [
    pytest.mark.sip,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="SIPp (sip-tester) is not installed"),
]
PhoneFactory = Callable[..., Phone]


async def _dialog_when(progress: list[ProgressEvent], role: LegRole, state: LegState) -> LegDialog:
    """The dialog the engine reported with the leg's `state` (waits for it)."""
    async with asyncio.timeout(30):
        while True:
            for event in progress:
                if event.leg is role and event.state is state and event.dialog is not None:
                    return event.dialog
            await asyncio.sleep(0.02)


async def test_a_stored_dialog_is_byed_and_the_far_end_answers_the_reaper(
    routed_engine: EngineFactory, phones: PhoneFactory, baresip: Baresip, proxy_port: int | None
) -> None:
    engine = await routed_engine()
    back: Phone = phones("uas_answer.xml", ring_ms=200)
    progress: list[ProgressEvent] = []
    call = asyncio.create_task(engine.run_callback(spec_for(baresip.number, back), progress.append))
    dialog = await _dialog_when(progress, LegRole.DESTINATION, LegState.BRIDGED)
    assert dialog.confirmed and dialog.to.count("tag=") == 1
    if proxy_port is not None:  # through Kamailio the BYE must follow the dialog's route set
        assert dialog.routes and f"127.0.0.1:{proxy_port}" in dialog.routes[0]
        assert dialog.next_hop == ("127.0.0.1", proxy_port)

    [reaped] = await SipReaper("127.0.0.1").end([dialog], "interrupted")

    assert (reaped.result, reaped.sip_code) == (ReapResult.ENDED, 200), baresip.log()[-3000:]
    log = baresip.log()
    bye = log[log.index("BYE sip:") :]
    assert dialog.call_id in bye and 'Reason: Q.850;cause=41;text="interrupted"' in bye
    await engine.hangup(spec_for(baresip.number, back).callback_id, EndedBy.LOCAL)
    await asyncio.wait_for(call, 30)
    await verdicts(back)


async def test_a_ringing_leg_is_cancelled_from_its_stored_invite(
    make_engine: EngineFactory, phones: PhoneFactory
) -> None:
    engine = await make_engine()
    ringing: Phone = phones("uas_noanswer.xml")
    progress: list[ProgressEvent] = []
    spec = spec_for(ringing, "+15550000001", ring_timeout=20.0)  # never dialled: A is not answered
    call = asyncio.create_task(engine.run_callback(spec, progress.append))
    dialog = await _dialog_when(progress, LegRole.DESTINATION, LegState.RINGING)
    assert not dialog.confirmed and dialog.invite_branch.startswith("z9hG4bK")

    # One transmission: SIPp would take a retransmitted CANCEL for an error.
    [reaped] = await SipReaper("127.0.0.1", timer_f=0.4).end([dialog], "interrupted")

    # SIPp answers the CANCEL (200) and the INVITE (487) to the INVITE's Via: the live engine,
    # whose leg then fails as cancelled by the far end's 487, long before its ring timeout
    outcome = await asyncio.wait_for(call, 30)
    assert await ringing.verdict() == 0, ringing.debug()
    assert outcome.legs[LegRole.DESTINATION].sip_code == 487, outcome
    cancel = next(m for m in ringing.messages() if m.method == "CANCEL")
    assert cancel.headers("Via")[0].split(";branch=")[1].startswith(dialog.invite_branch)
    assert reaped.result in (ReapResult.CANCELLED, ReapResult.NO_RESPONSE)
