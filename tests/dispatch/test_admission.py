"""Admission control (`calls.max_queue_wait`): a node refuses, at once and before storing
anything, a callback it could not start dialling within the allowed wait."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from tests.dispatch.conftest import Harness
from tests.dispatch.fake_engine import Script
from webcallback.config import CallSettings
from webcallback.errors import ServiceUnavailable
from webcallback.service.auth import Credentials
from webcallback.service.callbacks import CallbackRequest
from webcallback.service.dispatcher import Dispatcher
from webcallback.service.shedding import LoadShedder


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_free_slots_admit_and_a_full_node_refuses_by_its_start_rate() -> None:
    clock = Clock()
    shedder = LoadShedder(CallSettings(concurrency=2, max_queue_wait=5.0), clock)
    shedder.check()  # no dispatcher here: nothing to estimate, accepted
    running = [0]
    shedder.attach(lambda: running[0])
    shedder.queued()
    shedder.queued()
    assert shedder.expected_wait() > 0  # two queued fill the two free slots: a third waits
    shedder.claimed(2)
    running[0] = 2
    # Full, and 2 starts in the last 10 s: 0.2 starts/s, so one queued callback waits 5 s.
    assert shedder.expected_wait() == pytest.approx(5.0)
    shedder.check()
    shedder.queued()
    with pytest.raises(ServiceUnavailable) as refused:
        shedder.check()  # two ahead: 10 s
    assert refused.value.status_code == 503 and refused.value.retry_after == 5
    assert shedder.shedding and shedder.refused == 1
    clock.now += 11  # the starts age out of the window: no rate, nothing in sight
    with pytest.raises(ServiceUnavailable):
        shedder.check()


def test_zero_turns_it_off() -> None:
    shedder = LoadShedder(CallSettings(concurrency=1, max_queue_wait=0))
    shedder.attach(lambda: 1)
    for _ in range(100):
        shedder.queued()
    shedder.check()
    assert not shedder.shedding


@pytest.fixture
def settings_env() -> dict[str, str]:
    return {"calls__concurrency": "2", "calls__max_queue_wait": "1", "auth__allow_password_over_http": "true"}


async def test_overload_is_refused_and_no_call_placed_for_it(harness: Harness) -> None:
    services = harness.services
    enc, kid = services.cipher.encrypt("alice", "pw")
    services.accounts.add("alice", password_enc=enc, key_id=kid, balance=Decimal(50))
    harness.engine.default = Script(kind="forever")  # every call holds its slot until hung up
    asked = [f"+1555123{n:04d}" for n in range(12)]
    accepted: list[str] = []
    async with Dispatcher(services, harness.engine, poll_interval=0.05, node="node-a"):
        for number in asked:
            try:
                callback = await services.callback_service.request_callback(request(number))
            except ServiceUnavailable as exc:
                assert exc.error_id == "overloaded" and exc.retry_after >= 1
            else:
                accepted.append(callback.destination)
            await asyncio.sleep(0.02)  # the dispatcher claims what it can meanwhile
        refused = set(asked) - set(accepted)
        assert len(accepted) >= 2 and refused  # the two slots, then refusals
        stored = {cb.destination for cb in services.callbacks.recent(limit=100)}
        assert stored == set(accepted)  # nothing stored for a refused request
        assert not {spec.destination for spec in harness.engine.specs} & refused  # nor dialled
        for spec in list(harness.engine.specs):
            await harness.engine.hangup(spec.callback_id)


def request(number: str) -> CallbackRequest:
    return CallbackRequest(
        credentials=Credentials(username="alice", password="pw", nonce=None, hash=None, https=True),
        target=number,
        callback="+15559870001",
        client_ip="127.0.0.1",
    )
