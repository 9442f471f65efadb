"""The SIP engine against real peers: SIPp phones (and Kamailio as a record-routing trunk).

Every test asserts three things: the engine's `CallOutcome`/progress, SIPp's verdict (exit code 0:
the phone saw a complete, correct dialog), and the SIP trace the phones recorded.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.sip.conftest import EngineFactory
from tests.sip.phones import Baresip, Phone, SipMessage
from webcallback.domain import (
    CallbackSpec,
    CallOutcome,
    EndedBy,
    EngineError,
    LegOrder,
    LegRole,
    LegState,
    ProgressEvent,
)
from webcallback.engines.sip import SipEngine

pytestmark = pytest.mark.sip

D, C = LegRole.DESTINATION, LegRole.CALLBACK
Phones = Callable[..., Phone]
UNUSED_NUMBER = "+15550000009"  # port 9: a leg that must never be dialled


def spec_for(dest: Phone | str, back: Phone | str, **kw: Any) -> CallbackSpec:
    d = dest if isinstance(dest, str) else dest.number
    c = back if isinstance(back, str) else back.number
    values: dict[str, Any] = {"ring_timeout": 5.0, "max_duration": None, **kw}
    return CallbackSpec(callback_id=f"t-{d[-5:]}-{c[-5:]}", destination=d, callback=c,
                        caller_id_to_destination=c, caller_id_to_callback=d, **values)  # fmt: skip


async def run(
    engine: SipEngine, spec: CallbackSpec, timeout: float = 30
) -> tuple[CallOutcome, list[ProgressEvent]]:
    progress: list[ProgressEvent] = []
    outcome = await asyncio.wait_for(engine.run_callback(spec, progress.append), timeout)
    return outcome, progress


async def verdicts(*phones: Phone) -> None:
    for phone in phones:
        assert await phone.verdict() == 0, phone.debug()


def sdp_port(message: SipMessage) -> int:
    line = next(ln for ln in message.body.splitlines() if ln.startswith("m=audio"))
    return int(line.split()[1])


def assert_routed(proxy_port: int | None, *phones: Phone) -> None:
    """Through a proxy, every request a phone received came via it (its Via on top)."""
    if proxy_port is None:
        return
    for phone in phones:
        for m in phone.messages():
            if m.direction == "received" and m.method:
                assert f"127.0.0.1:{proxy_port}" in m.headers("Via")[0], m.text


def digest_ok(header: str, method: str, user: str, password: str) -> bool:
    """RFC 2617 digest without qop, as sippy answers our scenarios' challenges."""
    f = dict(re.findall(r'(\w+)="?([^",]*)"?', header.removeprefix("Digest ")))

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1, ha2 = md5(f"{user}:{f['realm']}:{password}"), md5(f"{method}:{f['uri']}")
    return bool(f["username"] == user and f["response"] == md5(f"{ha1}:{f['nonce']}:{ha2}"))


def reinvites(phone: Phone) -> list[SipMessage]:
    """INVITEs inside the dialog (the To header has a tag)."""
    return [m for m in phone.received("INVITE") if ";tag=" in m.headers("To")[0]]


# ---- the basic matrix ------------------------------------------------------------------------


async def test_both_answer_flow_iii(
    routed_engine: EngineFactory, proxy_port: int | None, phones: Phones
) -> None:
    a, b = phones("uas_answer_hangup.xml", ring_ms=200, talk_ms=1000), phones("uas_answer.xml", ring_ms=400)
    outcome, progress = await run(await routed_engine(), spec_for(a, b))
    await verdicts(a, b)
    assert_routed(proxy_port, a, b)
    assert (outcome.completed, outcome.reason) == (True, "completed")
    assert 0.9 < outcome.bridged_s < 1.6
    assert outcome.legs[D].ended_by is EndedBy.REMOTE and outcome.legs[C].ended_by is EndedBy.PEER_LEG
    # late offer both ways, black-hole ACK to A, then A re-INVITEd with B's offer, B ACKed with A's answer
    invite_a, invite_b = a.received("INVITE")[0], b.received("INVITE")[0]
    assert invite_a.body.strip() == "" and invite_b.body.strip() == ""
    assert "a=inactive" in a.received("ACK")[0].body and "c=IN IP4 0.0.0.0" in a.received("ACK")[0].body
    (reinvite,) = reinvites(a)
    assert sdp_port(reinvite) == b.media_port
    assert sdp_port(b.received("ACK")[0]) == a.media_port
    assert reinvite.at >= b.sent_status(200)[0].at
    assert [p.state for p in progress if p.leg is None] == [LegState.BRIDGED, LegState.ENDED]
    # the Request-URI and From of each leg
    trunk_port = proxy_port or a.port
    assert invite_a.first_line.startswith(f"INVITE sip:{a.number}@127.0.0.1:{trunk_port} ")
    assert f"sip:{b.number}@" in invite_a.headers("From")[0] and b.number in invite_a.headers("From")[0]


async def test_destination_busy(make_engine: EngineFactory, phones: Phones) -> None:
    a = phones("uas_reject.xml", ring_ms=200)
    outcome, progress = await run(await make_engine(), spec_for(a, UNUSED_NUMBER))
    await verdicts(a)
    assert (outcome.completed, outcome.reason) == (False, "destination-busy")
    assert outcome.legs[D].sip_code == 486 and outcome.legs[C].final_state is LegState.IDLE
    assert all(p.leg is not C for p in progress)


async def test_callback_declines(
    routed_engine: EngineFactory, proxy_port: int | None, phones: Phones
) -> None:
    a, b = phones("uas_answer.xml", ring_ms=100), phones("uas_decline.xml", ring_ms=300)
    outcome, _ = await run(await routed_engine(), spec_for(a, b))
    await verdicts(a, b)
    assert_routed(proxy_port, a, b)
    assert outcome.reason == "callback-declined" and outcome.legs[C].sip_code == 603
    assert outcome.legs[D].ended_by is EndedBy.PEER_LEG
    assert len(a.received("BYE")) == 1 and reinvites(a) == []


async def test_no_answer_is_cancelled_at_ring_timeout(
    routed_engine: EngineFactory, proxy_port: int | None, phones: Phones
) -> None:
    a, b = phones("uas_answer.xml", ring_ms=100), phones("uas_noanswer.xml")
    outcome, _ = await run(await routed_engine(), spec_for(a, b, ring_timeout=1.0))
    await verdicts(a, b)
    assert_routed(proxy_port, a, b)
    assert outcome.reason == "callback-no-answer" and outcome.legs[C].ended_by is EndedBy.TIMEOUT
    (invite,), (cancel,) = b.received("INVITE"), b.received("CANCEL")
    assert 0.95 <= cancel.at - invite.at <= 1.3
    assert len(a.received("BYE")) == 1


@pytest.mark.parametrize("hangs_up", [D, C])
async def test_each_side_hangs_up_first(
    routed_engine: EngineFactory, proxy_port: int | None, phones: Phones, hangs_up: LegRole
) -> None:
    talker = phones("uas_answer_hangup.xml", ring_ms=100, talk_ms=800)
    other = phones("uas_answer.xml", ring_ms=100)
    a, b = (talker, other) if hangs_up is D else (other, talker)
    outcome, _ = await run(await routed_engine(), spec_for(a, b))
    await verdicts(a, b)
    assert_routed(proxy_port, a, b)
    assert outcome.completed
    assert outcome.legs[hangs_up].ended_by is EndedBy.REMOTE
    peer = C if hangs_up is D else D
    assert outcome.legs[peer].ended_by is EndedBy.PEER_LEG
    assert len(other.received("BYE")) == 1 and talker.received("BYE") == []


async def test_max_duration_cuts_the_call(make_engine: EngineFactory, phones: Phones) -> None:
    a, b = phones("uas_answer.xml", ring_ms=100), phones("uas_answer.xml", ring_ms=100)
    outcome, _ = await run(await make_engine(), spec_for(a, b, max_duration=1.0))
    await verdicts(a, b)
    assert outcome.completed and outcome.bridged_s == pytest.approx(1.0, abs=0.1)
    assert {r.ended_by for r in outcome.legs.values()} == {EndedBy.MAX_DURATION}
    assert len(a.received("BYE")) == len(b.received("BYE")) == 1


# ---- leg orders and flows --------------------------------------------------------------------


async def test_callback_first(routed_engine: EngineFactory, proxy_port: int | None, phones: Phones) -> None:
    a, b = phones("uas_answer.xml", ring_ms=100), phones("uas_answer.xml", ring_ms=100)
    outcome, _ = await run(
        await routed_engine(), spec_for(a, b, leg_order=LegOrder.CALLBACK_FIRST, max_duration=0.5)
    )
    await verdicts(a, b)
    assert_routed(proxy_port, a, b)
    assert outcome.completed
    assert b.received("INVITE")[0].at < a.received("INVITE")[0].at
    assert len(reinvites(b)) == 1 and reinvites(a) == []  # the user's phone was held, then re-INVITEd


async def test_parallel_rings_both(
    routed_engine: EngineFactory, proxy_port: int | None, phones: Phones
) -> None:
    a, b = phones("uas_answer.xml", ring_ms=800), phones("uas_answer.xml", ring_ms=200)
    outcome, _ = await run(
        await routed_engine(), spec_for(a, b, leg_order=LegOrder.PARALLEL, max_duration=0.5)
    )
    await verdicts(a, b)
    assert_routed(proxy_port, a, b)
    assert outcome.completed
    assert abs(a.received("INVITE")[0].at - b.received("INVITE")[0].at) < 0.1
    assert len(reinvites(b)) == 1 and reinvites(a) == []  # b answered first: b was held


async def test_flow_i(routed_engine: EngineFactory, proxy_port: int | None, phones: Phones) -> None:
    a, b = phones("uas_answer.xml", ring_ms=100), phones("uas_answer.xml", ring_ms=300)
    engine = await routed_engine(flow="I", from_domain="voip.example.net")
    outcome, _ = await run(engine, spec_for(a, b, max_duration=0.5))
    await verdicts(a, b)
    assert_routed(proxy_port, a, b)
    assert outcome.completed
    assert f"<sip:{a.number}@voip.example.net>" in b.received("INVITE")[0].headers("From")[0]
    assert sdp_port(b.received("INVITE")[0]) == a.media_port  # A's offer in B's INVITE
    assert sdp_port(a.received("ACK")[0]) == b.media_port  # B's answer in A's ACK
    assert reinvites(a) == reinvites(b) == []


async def test_early_media_is_reoffered_for_ringback(
    routed_engine: EngineFactory, proxy_port: int | None, phones: Phones
) -> None:
    a, b = phones("uas_answer.xml", ring_ms=100), phones("uas_early_media.xml", ring_ms=800)
    outcome, progress = await run(await routed_engine(), spec_for(a, b, max_duration=0.5))
    await verdicts(a, b)
    assert_routed(proxy_port, a, b)
    assert outcome.completed
    (reinvite,) = reinvites(a)  # one re-INVITE, sent on the 183, not again on the identical 200
    assert sdp_port(reinvite) == b.media_port
    assert reinvite.at < b.sent_status(200)[0].at
    assert sdp_port(b.received("ACK")[0]) == a.media_port
    assert any(p.leg is C and p.sip_code == 183 for p in progress)


# ---- trunk features: digest auth, a record-routing proxy ------------------------------------


async def test_digest_auth_401_and_407(
    make_engine: EngineFactory, phones: Phones, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = phones("uas_auth_401.xml", ring_ms=100), phones("uas_auth_407.xml", ring_ms=100)
    engine = await make_engine(username="webcb", password="s3cret")
    with caplog.at_level(logging.DEBUG, logger="webcallback"):
        outcome, _ = await run(engine, spec_for(a, b, max_duration=0.5))
    assert "Proxy-Authorization" in caplog.text  # the SIP trace was logged...
    assert "s3cret" not in caplog.text  # ...but never the password
    await verdicts(a, b)
    assert outcome.completed
    assert a.received("INVITE")[1].headers("Authorization")  # SIPp's <verifyauth> checked it
    (proxy_auth,) = b.received("INVITE")[1].headers("Proxy-Authorization")
    assert digest_ok(proxy_auth, "INVITE", "webcb", "s3cret")  # SIPp cannot check this one


async def test_wrong_password_fails_the_leg(make_engine: EngineFactory, phones: Phones) -> None:
    a = phones("uas_auth_401.xml", ring_ms=100)
    outcome, _ = await run(await make_engine(username="webcb", password="wrong"), spec_for(a, UNUSED_NUMBER))
    assert await a.verdict() == 1  # the phone refused the credentials, as it should
    assert outcome.reason == "destination-failed" and outcome.legs[D].sip_code == 403


async def test_through_record_routing_kamailio(
    make_engine: EngineFactory, phones: Phones, kamailio_port: int
) -> None:
    a, b = phones("uas_answer_hangup.xml", ring_ms=100, talk_ms=800), phones("uas_answer.xml", ring_ms=300)
    engine = await make_engine(direct=False, trunk=f"sip:127.0.0.1:{kamailio_port}")
    outcome, _ = await run(engine, spec_for(a, b))
    await verdicts(a, b)
    assert outcome.completed and outcome.legs[D].ended_by is EndedBy.REMOTE
    proxy = f"127.0.0.1:{kamailio_port}"
    for phone in (a, b):
        requests = [m for m in phone.messages() if m.direction == "received" and m.method]
        assert {m.method for m in requests} >= {"INVITE", "ACK"}
        for m in requests:  # every request, incl. the ACK to the re-INVITE, came through the proxy
            assert proxy in m.headers("Via")[0], m.text
    (reinvite,) = reinvites(a)
    reinvite_ack = [m for m in a.received("ACK") if m.at >= reinvite.at]
    assert reinvite_ack and proxy in reinvite_ack[0].headers("Via")[0]
    # A's BYE went back through the proxy to the engine, and B's BYE from us went out through it
    assert proxy in b.received("BYE")[0].headers("Via")[0]


# ---- the API around a call ------------------------------------------------------------------


async def test_hangup_by_id_and_unknown_id(make_engine: EngineFactory, phones: Phones) -> None:
    a, b = phones("uas_answer.xml", ring_ms=100), phones("uas_answer.xml", ring_ms=100)
    engine = await make_engine()
    spec = spec_for(a, b)
    bridged = asyncio.Event()

    def on_progress(p: ProgressEvent) -> None:
        if p.leg is None and p.state is LegState.BRIDGED:
            bridged.set()

    task = asyncio.create_task(engine.run_callback(spec, on_progress))
    await asyncio.wait_for(bridged.wait(), 10)
    assert await engine.hangup(spec.callback_id) is True
    outcome = await asyncio.wait_for(task, 10)
    await verdicts(a, b)
    assert outcome.completed and {r.ended_by for r in outcome.legs.values()} == {EndedBy.LOCAL}
    assert await engine.hangup(spec.callback_id) is False


async def test_cancelling_the_task_hangs_up(make_engine: EngineFactory, phones: Phones) -> None:
    a = phones("uas_noanswer.xml")
    engine = await make_engine()
    spec = spec_for(a, UNUSED_NUMBER)
    task = asyncio.create_task(engine.run_callback(spec, lambda p: None))
    await asyncio.sleep(0.5)
    with pytest.raises(EngineError, match="already running"):
        await engine.run_callback(spec, lambda p: None)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await verdicts(a)  # the phone got its CANCEL
    assert len(a.received("CANCEL")) == 1


async def test_stop_hangs_up_running_callbacks(make_engine: EngineFactory, phones: Phones) -> None:
    a = phones("uas_noanswer.xml")
    engine = await make_engine()
    task = asyncio.create_task(engine.run_callback(spec_for(a, UNUSED_NUMBER), lambda p: None))
    await asyncio.sleep(0.5)
    await engine.stop()
    outcome = await asyncio.wait_for(task, 5)
    await verdicts(a)
    assert outcome.reason == "shutdown" and outcome.legs[D].ended_by is EndedBy.SHUTDOWN


async def test_far_end_reinvite_is_refused_and_the_call_goes_on(
    make_engine: EngineFactory, phones: Phones
) -> None:
    a, b = phones("uas_answer_hold.xml", ring_ms=100), phones("uas_answer.xml", ring_ms=100)
    outcome, _ = await run(await make_engine(), spec_for(a, b, max_duration=1.5))
    await verdicts(a, b)
    refusals = [m for m in a.messages() if m.direction == "received" and m.status == 488]
    assert len(refusals) == 1
    assert outcome.completed and {r.ended_by for r in outcome.legs.values()} == {EndedBy.MAX_DURATION}


async def test_baresip_softphone_is_held_then_bridged(
    make_engine: EngineFactory, phones: Phones, baresip: Baresip
) -> None:
    b = phones("uas_answer.xml", ring_ms=200)
    outcome, _ = await run(await make_engine(), spec_for(baresip.number, b, max_duration=1.0))
    await verdicts(b)
    assert outcome.completed and outcome.bridged_s == pytest.approx(1.0, abs=0.1)
    log = baresip.log()
    assert "Call established" in log and "terminated" in log
    # baresip got the black-hole ACK, then a re-INVITE with B's SDP; B's ACK carries baresip's
    reinvite = log[log.index("Call established") :]
    assert f"m=audio {b.media_port} " in reinvite
    baresip_port = int(log.split("m=audio ", 1)[1].split()[0])  # from baresip's 200 OK offer
    assert sdp_port(b.received("ACK")[0]) == baresip_port
