"""Several trunks (issue 13, item 1) against SIPp playing the trunks: failover when the first one
is down (503, silence, ICMP) and the second answers, none after a busy, `max_cps` pacing read from
SIPp's own trace timestamps, P-Asserted-Identity / Privacy and number rewriting as SIPp saw them.

Each test routes by prefix: the destination's number to the trunks under test, the callback's
to a trunk of its own (a SIPp phone that answers).
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import pytest

from tests.sip.conftest import EngineFactory
from tests.sip.phones import Phone, SipMessage, free_udp_port
from tests.sip.test_calls import UNUSED_NUMBER, Phones, run, spec_for, verdicts
from webcallback.config import TrunkSettings
from webcallback.domain import EngineError, LegRole, LegState

pytestmark = pytest.mark.sip

D, C = LegRole.DESTINATION, LegRole.CALLBACK
NOBODY = "sip:127.0.0.1:7"  # a loopback port where nothing listens: ICMP port unreachable


def trunk(uri: str | Phone, carries: str | Phone, **kw: Any) -> TrunkSettings:
    target = uri if isinstance(uri, str) else f"sip:127.0.0.1:{uri.port}"
    number = carries if isinstance(carries, str) else carries.number
    return TrunkSettings(uri=target, prefixes=(number,), **kw)


def initial_invites(phone: Phone) -> list[SipMessage]:
    return [m for m in phone.received("INVITE") if "tag=" not in m.headers("To")[0]]


async def engine_with(make_engine: EngineFactory, *trunks: TrunkSettings, **kw: Any) -> Any:
    return await make_engine(direct=False, trunks=trunks, **kw)


@pytest.mark.parametrize("first", ["uas_unavailable.xml", "uas_drop.xml", "icmp"])
async def test_fail_over_to_the_second_trunk(make_engine: EngineFactory, phones: Phones, first: str) -> None:
    down = None if first == "icmp" else phones(first, ring_ms=4000 if first == "uas_drop.xml" else 100)
    a, b = phones("uas_answer.xml", ring_ms=100), phones("uas_answer.xml", ring_ms=100)
    engine = await engine_with(
        make_engine,
        trunk(down or NOBODY, a, priority=1, name="one"),
        trunk(a, a, priority=2, name="two"),
        trunk(b, b, name="back"),
        trunk_silence=0.5,
    )
    outcome, progress = await run(engine, spec_for(a, b, max_duration=1.0))
    await verdicts(a, b, *([down] if down else []))
    assert outcome.completed, outcome
    assert len(initial_invites(a)) == 1 and len(initial_invites(b)) == 1
    if down is not None:
        assert down.received("INVITE")
        assert down.received("CANCEL") == []  # 503: a final answer; silence: nothing to CANCEL
    (ended,) = [p for p in progress if p.leg is D and p.state is LegState.ENDED]
    assert [(t.trunk, t.result is not None and t.result.split(":")[0]) for t in ended.attempts] == [
        ("one", "failed over"),
        ("two", "answered"),
    ]
    one, two = (engine.trunks.by_name(n) for n in ("one", "two"))
    assert (one.counters.attempts, one.counters.failed, two.counters.answered) == (1, 1, 1)
    assert one.channels == two.channels == 0


async def test_no_failover_after_busy(make_engine: EngineFactory, phones: Phones) -> None:
    a = phones("uas_reject.xml", ring_ms=100)
    engine = await engine_with(make_engine, trunk(a, a, priority=1), trunk(NOBODY, a, priority=2))
    outcome, _ = await run(engine, spec_for(a, UNUSED_NUMBER))
    await verdicts(a)
    assert outcome.reason == "destination-busy"  # not "unreachable": the second was not tried


async def test_no_failover_after_ringing(make_engine: EngineFactory, phones: Phones) -> None:
    a = phones("uas_reject.xml", ring_ms=300)  # 100, 180, then 486 — ringing first
    engine = await engine_with(make_engine, trunk(a, a, priority=1), trunk(NOBODY, a, priority=2))
    outcome, _ = await run(engine, spec_for(a, UNUSED_NUMBER))
    assert outcome.reason == "destination-busy"


async def test_max_cps_paces_invites(make_engine: EngineFactory, tmp_path: Path) -> None:
    calls = 4
    a = Phone("uas_reject.xml", free_udp_port(), free_udp_port(), tmp_path).start(ring_ms=50, calls=calls)
    try:
        engine = await engine_with(make_engine, trunk(a, a, max_cps=4.0))
        specs = [spec_for(a, UNUSED_NUMBER) for _ in range(calls)]
        specs = [type(s)(**{**s.__dict__, "callback_id": f"cps-{i}"}) for i, s in enumerate(specs)]
        outcomes = await asyncio.gather(*(run(engine, s) for s in specs))
        await verdicts(a)
    finally:
        a.kill()
    assert [o.reason for o, _ in outcomes] == ["destination-busy"] * calls
    invites = sorted(m.at for m in a.received("INVITE"))
    assert len(invites) == calls
    gaps = [later - earlier for earlier, later in itertools.pairwise(invites)]
    assert all(gap >= 0.25 - 0.02 for gap in gaps), gaps  # 1 / max_cps apart, SIPp's clock
    assert engine.trunks.trunks[0].counters.paced == calls - 1


async def test_pai_and_privacy(make_engine: EngineFactory, phones: Phones) -> None:
    a = phones("uas_reject.xml", ring_ms=50)
    engine = await engine_with(make_engine, trunk(a, a, caller_id="pai", privacy=True))
    await run(engine, spec_for(a, "+15557654321"))
    await verdicts(a)
    (invite,) = a.received("INVITE")
    assert invite.headers("P-Asserted-Identity") == ['"+15557654321" <sip:+15557654321@127.0.0.1>']
    assert invite.headers("Privacy") == ["id"]
    assert "anonymous@anonymous.invalid" in invite.headers("From")[0]
    assert "5557654321" not in invite.headers("From")[0]


async def test_pai_without_privacy_keeps_from(make_engine: EngineFactory, phones: Phones) -> None:
    a = phones("uas_reject.xml", ring_ms=50)
    engine = await engine_with(make_engine, trunk(a, a, caller_id="pai"))
    await run(engine, spec_for(a, "+15557654321"))
    await verdicts(a)
    (invite,) = a.received("INVITE")
    assert "+15557654321" in invite.headers("P-Asserted-Identity")[0] and invite.headers("Privacy") == []
    assert "+15557654321" in invite.headers("From")[0]


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ({"number_format": "e164"}, "+1555{rest}"),
        ({"number_format": "e164-digits"}, "1555{rest}"),
        ({"number_format": "national", "country_code": "1", "tech_prefix": "777#"}, "777#555{rest}"),
        ({"number_format": "e164-digits", "strip_digits": 1, "tech_prefix": "9"}, "9555{rest}"),
    ],
)
async def test_number_format_in_the_request_uri(
    make_engine: EngineFactory, phones: Phones, fmt: dict[str, Any], expected: str
) -> None:
    a = phones("uas_reject.xml", ring_ms=50)
    engine = await engine_with(make_engine, trunk(a, a, **fmt))
    await run(engine, spec_for(a, UNUSED_NUMBER))
    await verdicts(a)
    (invite,) = a.received("INVITE")
    user = expected.format(rest=a.number.removeprefix("+1555"))
    assert invite.first_line.startswith(f"INVITE sip:{user}@127.0.0.1:{a.port} "), invite.first_line


@pytest.mark.parametrize(
    ("trunks", "key"),
    [
        ({"trunk": "sip:127.0.0.1:5999;transport=tcp"}, "engine.sip.trunk: transport tcp"),
        (
            {"trunks": (TrunkSettings(uri="sip:127.0.0.1;transport=TLS"),)},
            "engine.sip.trunks[0].uri: transport tls",
        ),
        (
            {"trunks": (TrunkSettings(uri="sip:h"), TrunkSettings(uri="sip:[::1]:5060"))},
            "engine.sip.trunks[1].uri: IPv6",
        ),
        ({"trunks": (TrunkSettings(uri="sip:h"),), "username": "u"}, "engine.sip.username: not with"),
    ],
)
async def test_what_the_engine_cannot_carry_is_refused(
    make_engine: EngineFactory, trunks: dict[str, Any], key: str
) -> None:
    with pytest.raises(EngineError, match=key.replace("[", r"\[").replace("]", r"\]")):
        await make_engine(direct=False, **trunks)


async def test_options_keepalive_takes_a_dead_trunk_out(make_engine: EngineFactory, phones: Phones) -> None:
    """The first trunk does not listen: its OPTIONS get ICMP, it is down, and legs go straight to
    the second (which never sees an OPTIONS: no `options_interval` on it)."""
    a = phones("uas_reject.xml", ring_ms=50)
    engine = await engine_with(
        make_engine, trunk(NOBODY, a, priority=1, name="dead", options_interval=0.2), trunk(a, a, priority=2)
    )
    dead = engine.trunks.by_name("dead")
    while dead.up:  # the keep-alive's first OPTIONS is sent at start; no fixed wait
        await asyncio.sleep(0.05)
    assert "ECONNREFUSED" in dead.last_probe
    outcome, _ = await run(engine, spec_for(a, UNUSED_NUMBER))
    await verdicts(a)
    assert outcome.reason == "destination-busy"
    assert dead.counters.attempts == 0  # skipped, not tried and failed over
