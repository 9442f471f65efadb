"""Every request a far end sends inside a leg's dialog gets a final response (RFC 3261 §8.2.1),
with `Allow` where a method is refused; and our INVITEs carry `Allow` and `Supported`."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.sip.conftest import EngineFactory
from tests.sip.phones import TEST_SCENARIOS, Phone
from tests.sip.test_calls import run, spec_for, verdicts
from webcallback.domain import FailureReason

pytestmark = pytest.mark.sip

Phones = Callable[..., Phone]
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE"


async def test_in_dialog_requests_are_all_answered(make_engine: EngineFactory, phones: Phones) -> None:
    engine = await make_engine()  # session timers at their defaults: 1800 s, no refresh in the test
    dest, back = phones("uas_answer.xml"), phones(str(TEST_SCENARIOS / "uas_in_dialog.xml"))
    outcome, _ = await run(engine, spec_for(dest, back, max_duration=4.0))
    assert outcome.reason is FailureReason.COMPLETED
    await verdicts(dest, back)  # the scenario required each final response code in turn
    answers = {
        (m.cseq_method, m.status): m for m in back.messages() if m.direction == "received" and m.status
    }
    assert {k for k in answers if k[0] != "INVITE"} == {
        ("UPDATE", 200), ("UPDATE", 488), ("INFO", 200), ("OPTIONS", 200), ("MESSAGE", 405), ("NOTIFY", 405)
    }  # fmt: skip
    for refused in (answers["MESSAGE", 405], answers["NOTIFY", 405], answers["UPDATE", 488]):
        assert refused.headers("Allow") == [ALLOW], refused.text
    refresh = answers["UPDATE", 200]  # an UPDATE without SDP is a session refresh
    assert refresh.headers("Session-Expires") == ["1800;refresher=uas"] and not refresh.body.strip()
    (invite,) = [m for m in back.received("INVITE")]
    assert invite.headers("Allow") == [ALLOW] and "timer" in invite.headers("Supported")[0]
