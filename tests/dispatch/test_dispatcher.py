"""The dispatcher against the fake engine: spec building, concurrency, records, failures, hooks,
restart recovery and shutdown. Each test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import make_settings
from tests.dispatch.conftest import Harness
from tests.dispatch.fake_engine import Script
from webcallback.config import ConfigError
from webcallback.domain import EndedBy, FailureReason, LegOrder
from webcallback.service.auth import Credentials
from webcallback.service.callbacks import CallbackRequest
from webcallback.service.dispatcher import Dispatcher, build_spec, check_templates
from webcallback.store.callbacks import BRIDGED, DIALING, QUEUED
from webcallback.store.telephony import TelephonyStore

FAST: dict[str, Any] = {"poll_interval": 0.05, "node": "node-a"}


def records(h: Harness, callback_id: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    store = TelephonyStore(h.services.db)
    return store.legs(callback_id), store.cdr(callback_id)


async def test_completed_callback_records_progress_cdr_and_calls_hooks_once(harness: Harness) -> None:
    queued = harness.queue()
    async with Dispatcher(harness.services, harness.engine, **FAST):
        done = await harness.wait_final(queued.id)
    assert (done.state, done.reason, done.node) == ("completed", "completed", "node-a")
    legs, cdr = records(harness, queued.id)
    for role, number in (("destination", "+15551230001"), ("callback", "+15559870001")):
        leg = legs[role]
        assert (leg["number"], leg["state"], leg["sip_code"], leg["ended_by"]) == (
            number,
            "ended",
            200,
            "remote",
        )
        assert (
            leg["trying_at"]
            <= leg["ringing_at"]
            <= leg["answered_at"]
            <= leg["bridged_at"]
            <= leg["ended_at"]
        )
    assert cdr is not None and cdr["completed"] and cdr["reason"] == "completed"
    assert cdr["bridged_s"] > 0 and cdr["bridged_at"] is not None
    assert cdr["destination_sip_code"] == 200 and cdr["callback_talk_s"] is not None
    assert cdr["destination_ring_s"] > 0 and cdr["destination_setup_s"] is not None
    assert [(c.id, c.state, o.reason) for c, o in harness.finished] == [(queued.id, "completed", "completed")]


@pytest.mark.parametrize(
    "settings_env",
    [
        {
            "CALLS__CALLER_ID_TO_DESTINATION": "{username} {callback}",
            "CALLS__CALLER_ID_TO_CALLBACK": "+1800{destination}",
            "CALLS__LEG_ORDER": "callback-first",
            "CALLS__RING_TIMEOUT": "12",
            "CALLS__MAX_DURATION": "600",
        }
    ],
)
async def test_spec_is_built_from_settings_and_the_callbacks_own_limit(harness: Harness) -> None:
    short = harness.queue(max_duration=90.0)
    long = harness.queue(destination="+15551230002", max_duration=7200.0)
    unlimited = harness.queue(destination="+15551230003")
    async with Dispatcher(harness.services, harness.engine, **FAST):
        for cb in (short, long, unlimited):
            await harness.wait_final(cb.id)
    specs = {s.callback_id: s for s in harness.engine.specs}
    spec = specs[short.id]
    assert spec.caller_id_to_destination == "alice +15559870001"
    assert spec.caller_id_to_callback == "+1800+15551230001"
    assert (spec.leg_order, spec.ring_timeout) == (LegOrder.CALLBACK_FIRST, 12.0)
    assert [specs[c.id].max_duration for c in (short, long, unlimited)] == [90.0, 600.0, 600.0]


def test_max_duration_zero_in_settings_means_only_the_callbacks_limit(sqlite_url: str) -> None:
    settings = make_settings(sqlite_url, CALLS__MAX_DURATION="0")
    from webcallback.store.callbacks import Callback

    now = datetime.now(UTC)
    fields: dict[str, Any] = dict(
        account_id=None, username="u", destination="+1", callback="+2", client_ip=None, country=None
    )
    fields |= dict(state="dialing", reason=None, node=None, created_at=now, updated_at=now)
    cb = Callback(id="x", max_duration=None, started_at=None, ended_at=None, **fields)
    assert build_spec(settings.calls, cb).max_duration is None
    cb = Callback(id="x", max_duration=30.0, started_at=None, ended_at=None, **fields)
    assert build_spec(settings.calls, cb).max_duration == 30.0


def test_a_bad_caller_id_template_is_refused_at_start(sqlite_url: str) -> None:
    settings = make_settings(sqlite_url, CALLS__CALLER_ID_TO_CALLBACK="{number}")
    with pytest.raises(ConfigError, match=r"calls\.caller_id_to_callback"):
        check_templates(settings.calls)


@pytest.mark.parametrize("settings_env", [{"CALLS__CONCURRENCY": "3"}])
async def test_no_more_than_concurrency_callbacks_run_at_once(harness: Harness) -> None:
    harness.engine.default = Script(talk_s=0.1)
    queued = [harness.queue(destination=f"+1555123{i:04d}") for i in range(10)]
    async with Dispatcher(harness.services, harness.engine, **FAST):
        for cb in queued:
            assert (await harness.wait_final(cb.id)).state == "completed"
    assert harness.engine.max_running == 3
    assert len(harness.finished) == 10


@pytest.mark.parametrize(
    ("kind", "reason", "destination_leg"),
    [
        ("busy", "destination-busy", {"state": "ended", "sip_code": 486, "ended_by": "remote"}),
        ("engine-error", "engine-error", None),
        ("crash", "internal-error", {"state": "ended", "reason": "internal-error", "ended_by": "error"}),
    ],
)
async def test_every_failure_ends_in_a_final_state_with_a_reason(
    harness: Harness,
    kind: str,
    reason: str,
    destination_leg: dict[str, Any] | None,
) -> None:
    harness.engine.default = Script(kind=kind)
    queued = harness.queue()
    async with Dispatcher(harness.services, harness.engine, **FAST):
        done = await harness.wait_final(queued.id)
    assert (done.state, done.reason) == ("failed", reason)
    legs, cdr = records(harness, queued.id)
    if destination_leg is None:
        assert legs == {}
    else:
        assert {k: legs["destination"][k] for k in destination_leg} == destination_leg
    assert cdr is not None and not cdr["completed"] and cdr["reason"] == reason and cdr["bridged_s"] == 0
    assert [(c.state, o.reason) for c, o in harness.finished] == [("failed", reason)]


async def test_restart_fails_what_this_node_left_in_flight_and_runs_what_is_queued(harness: Harness) -> None:
    store = harness.services.callbacks
    dialing, bridged, elsewhere = harness.queue(), harness.queue(), harness.queue()
    for cb, node in ((dialing, "node-a"), (bridged, "node-a"), (elsewhere, "node-b")):
        assert store.transition(cb.id, QUEUED, DIALING, node=node)
    assert store.transition(bridged.id, DIALING, BRIDGED)
    queued = harness.queue()
    async with Dispatcher(harness.services, harness.engine, **FAST):
        for cb in (dialing, bridged):  # ended in the background: the node serves meanwhile
            done = await harness.wait_final(cb.id)
            assert (done.state, done.reason) == ("failed", "interrupted")
            assert records(harness, cb.id)[1]["reason"] == "interrupted"  # type: ignore[index]  # None fails
        assert (await harness.wait_final(queued.id)).state == "completed"
    assert store.get(elsewhere.id).state == DIALING  # another node's call is not ours to end
    reasons = sorted((c.id, o.reason) for c, o in harness.finished)
    assert reasons == sorted(
        [(dialing.id, "interrupted"), (bridged.id, "interrupted"), (queued.id, "completed")]
    )


async def test_a_queued_callback_wakes_the_dispatcher_without_waiting_for_the_poll(harness: Harness) -> None:
    services = harness.services
    enc, kid = services.cipher.encrypt("alice", "pw")
    services.accounts.add("alice", password_enc=enc, key_id=kid, balance=__import__("decimal").Decimal(5))
    request = CallbackRequest(
        credentials=Credentials(username="alice", password="pw", nonce=None, hash=None, https=True),
        target="+15551230001",
        callback="+15559870001",
        client_ip="127.0.0.1",
    )
    before = services.callback_service.subscribers
    async with Dispatcher(services, harness.engine, poll_interval=3600, node="node-a"):
        await asyncio.sleep(0.05)  # the first poll has happened; only a wake can start the next
        queued = await services.callback_service.request_callback(request)
        assert (await harness.wait_final(queued.id, timeout=2)).state == "completed"
        assert services.callback_service.subscribers == before + 1
    assert services.callback_service.subscribers == before  # stopped: unsubscribed


async def test_the_poll_finds_callbacks_queued_by_another_node(harness: Harness) -> None:
    async with Dispatcher(harness.services, harness.engine, **FAST):
        await asyncio.sleep(0.1)
        queued = harness.queue()  # straight into the store: no subscriber is told
        assert (await harness.wait_final(queued.id, timeout=2)).state == "completed"


@pytest.mark.parametrize("settings_env", [{"CALLS__SHUTDOWN": "drain", "CALLS__DRAIN_TIMEOUT": "5"}])
async def test_drain_lets_calls_in_progress_finish(harness: Harness) -> None:
    harness.engine.default = Script(talk_s=0.3)
    queued = harness.queue()
    async with Dispatcher(harness.services, harness.engine, **FAST) as dispatcher:
        await harness.wait_for(queued.id, lambda cb: cb.state == BRIDGED)
        later = harness.queue(destination="+15551230009")
    assert dispatcher.in_flight == 0
    done = harness.services.callbacks.get(queued.id)
    assert (done.state, done.reason) == ("completed", "completed")
    assert records(harness, queued.id)[0]["destination"]["ended_by"] == "remote"
    assert harness.engine.hangups == []
    assert harness.services.callbacks.get(later.id).state == QUEUED  # stopped taking work


@pytest.mark.parametrize("settings_env", [{"CALLS__SHUTDOWN": "drain", "CALLS__DRAIN_TIMEOUT": "0.2"}])
async def test_drain_hangs_up_what_outlasts_the_drain_timeout(harness: Harness) -> None:
    harness.engine.default = Script(kind="forever")
    queued = harness.queue()
    async with Dispatcher(harness.services, harness.engine, **FAST):
        await harness.wait_for(queued.id, lambda cb: cb.state == BRIDGED)
    assert harness.engine.hangups == [(queued.id, EndedBy.SHUTDOWN)]
    legs, cdr = records(harness, queued.id)
    assert legs["callback"]["ended_by"] == "shutdown"
    assert cdr is not None and cdr["bridged_s"] >= 0.2


@pytest.mark.parametrize("settings_env", [{"CALLS__SHUTDOWN": "hangup"}])
async def test_hangup_ends_calls_in_progress_and_records_them(harness: Harness) -> None:
    harness.engine.default = Script(kind="forever")
    calls = [harness.queue(destination=f"+1555123000{i}") for i in range(3)]
    async with Dispatcher(harness.services, harness.engine, **FAST):
        for cb in calls:
            await harness.wait_for(cb.id, lambda c: c.state == BRIDGED)
        started = asyncio.get_running_loop().time()
    assert asyncio.get_running_loop().time() - started < 1
    assert sorted(harness.engine.hangups) == sorted((cb.id, EndedBy.SHUTDOWN) for cb in calls)
    for cb in calls:
        assert harness.services.callbacks.get(cb.id).state == "completed"
        assert records(harness, cb.id)[0]["destination"]["ended_by"] == "shutdown"
    assert len(harness.finished) == 3


@pytest.mark.parametrize("settings_env", [{"CALLS__SHUTDOWN": "hangup"}])
async def test_a_call_the_engine_does_not_end_is_cancelled_and_failed(harness: Harness) -> None:
    harness.engine.default = Script(kind="deaf")
    queued = harness.queue()
    async with Dispatcher(harness.services, harness.engine, hangup_grace=0.1, **FAST):
        await harness.wait_for(queued.id, lambda cb: cb.state == BRIDGED)
    done = harness.services.callbacks.get(queued.id)
    assert (done.state, done.reason) == ("failed", "shutdown")
    legs, _ = records(harness, queued.id)
    assert {leg["state"] for leg in legs.values()} == {"ended"}
    assert [o.reason for _, o in harness.finished] == ["shutdown"]


async def test_a_hook_that_raises_is_logged_and_the_next_hook_still_runs(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*_args: object) -> None:
        raise RuntimeError("billing is down")

    harness.services.on_callback_finished.insert(0, broken)
    queued = harness.queue()
    with caplog.at_level(logging.ERROR):
        async with Dispatcher(harness.services, harness.engine, **FAST):
            await harness.wait_final(queued.id)
            await asyncio.sleep(0.05)
    assert len(harness.finished) == 1
    assert "finished-hook" in caplog.text and "billing is down" in caplog.text


async def test_a_dispatcher_runs_once(harness: Harness) -> None:
    dispatcher = Dispatcher(harness.services, harness.engine, **FAST)
    async with dispatcher:
        pass
    with pytest.raises(RuntimeError, match="closed"):
        async with dispatcher:
            pass


async def test_progress_reported_from_another_thread_is_written_in_order(harness: Harness) -> None:
    import threading

    from webcallback.domain import LegRole, LegState, ProgressEvent
    from webcallback.service.records import CallRecorder, ProgressLog

    queued = harness.queue()
    assert harness.services.callbacks.transition(queued.id, QUEUED, DIALING, node="n")
    log = ProgressLog(CallRecorder(harness.services), harness.services.callbacks.get(queued.id))
    steps = [(LegState.TRYING, None), (LegState.RINGING, 180), (LegState.ANSWERED, 200)]

    def engine_thread() -> None:
        for i, (state, code) in enumerate(steps):
            log(
                ProgressEvent(
                    callback_id=queued.id, leg=LegRole.DESTINATION, state=state, at=1e9 + i, sip_code=code
                )
            )

    thread = threading.Thread(target=engine_thread)
    thread.start()
    thread.join()
    await log.close()
    leg = records(harness, queued.id)[0]["destination"]
    assert (leg["state"], leg["sip_code"], leg["number"]) == ("answered", 200, "+15551230001")
    assert leg["trying_at"] < leg["ringing_at"] < leg["answered_at"]


async def test_a_callback_is_finished_once_and_its_hooks_run_once(harness: Harness) -> None:
    from webcallback.service.records import CallRecorder

    queued = harness.queue()
    assert harness.services.callbacks.transition(queued.id, QUEUED, DIALING, node="n")
    recorder = CallRecorder(harness.services)
    callback = harness.services.callbacks.get(queued.id)
    await recorder.fail(callback, FailureReason.ENGINE_ERROR)
    await recorder.fail(callback, FailureReason.SHUTDOWN)  # too late: it has ended
    done = harness.services.callbacks.get(queued.id)
    assert (done.state, done.reason) == ("failed", "engine-error")
    assert [o.reason for _, o in harness.finished] == ["engine-error"]


@pytest.mark.parametrize("settings_env", [{"CALLS__RING_TIMEOUT": "0.05", "CALLS__MAX_DURATION": "0.05"}])
async def test_an_engine_that_overruns_the_longest_possible_call_is_stopped(harness: Harness) -> None:
    harness.engine.default = Script(kind="deaf")  # never returns, even when hung up
    queued = harness.queue()
    async with Dispatcher(harness.services, harness.engine, watchdog_grace=0.2, **FAST):
        done = await harness.wait_final(queued.id)
    assert (done.state, done.reason) == ("failed", "engine-timeout")
    assert harness.engine.running == 0  # the engine's run_callback was cancelled (it hangs up)
    legs, cdr = records(harness, queued.id)
    assert {leg["state"] for leg in legs.values()} == {"ended"} and cdr["reason"] == "engine-timeout"  # type: ignore[index]  # None fails
