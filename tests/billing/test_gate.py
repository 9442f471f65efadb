"""The credit gate and settlement through the service layer, on SQLite and PostgreSQL: rates for both
legs, the minimum-credit check, reservation, settlement by the increments, release, idempotence,
the ledger."""

from __future__ import annotations

import asyncio
import base64
import os
from decimal import Decimal

import pytest

from tests.billing.conftest import (
    DECK,
    PASSWORD,
    UK_LANDLINE,
    UK_MOBILE,
    US_NUMBER,
    add_account,
    build,
    import_deck,
)
from webcallback.billing.rating import Rate
from webcallback.domain import CallOutcome, FailureReason, LegRecord, LegRole, LegState
from webcallback.errors import Forbidden
from webcallback.service.auth import Credentials
from webcallback.service.callbacks import CallbackRequest
from webcallback.service.container import Services
from webcallback.store.billing import CreditStore
from webcallback.store.callbacks import Callback

D = Decimal


async def request(
    svc: Services, target: str, callback: str | None = US_NUMBER, user: str = "alice"
) -> Callback:
    creds = Credentials(username=user, password=PASSWORD, nonce=None, hash=None, https=True)
    req = CallbackRequest(credentials=creds, target=target, callback=callback, client_ip="127.0.0.1")
    return await svc.callback_service.request_callback(req)


def outcome(
    cb: Callback, bridged_s: float, *, completed: bool = True, talk: tuple[float, float] = (0, 0)
) -> CallOutcome:
    legs = {
        LegRole.DESTINATION: LegRecord(
            role=LegRole.DESTINATION, number=cb.destination, final_state=LegState.ENDED, talk_s=talk[0]
        ),
        LegRole.CALLBACK: LegRecord(
            role=LegRole.CALLBACK, number=cb.callback, final_state=LegState.ENDED, talk_s=talk[1]
        ),
    }
    reason = "completed" if completed else "callback-no-answer"
    return CallOutcome(
        callback_id=cb.id, completed=completed, reason=FailureReason(reason), legs=legs, bridged_s=bridged_s
    )


async def finish(svc: Services, cb: Callback, result: CallOutcome) -> None:
    for hook in svc.on_callback_finished:
        await hook(cb, result)


def charge(svc: Services, callback_id: str) -> dict[str, object]:
    row = CreditStore(svc.db).charge_row(callback_id)
    assert row is not None
    return dict(row._mapping)


async def test_accepting_reserves_what_the_call_may_cost(services: Services) -> None:
    import_deck(services)
    add_account(services, credit="1.00")
    cb = await request(services, UK_LANDLINE)
    # Each second costs both legs; 1.00 affords 33 UK minutes (0.66) + 2000 s of US (0.3333...).
    # The reservation holds exactly the cost of the maximum duration.
    acct = services.accounts.get("alice")
    assert cb.max_duration is not None and 1900 < cb.max_duration < 2000
    row = charge(services, cb.id)
    assert row["state"] == "reserved" and D(str(row["reserved"])) == acct.reserved
    assert acct.balance == D("1.00") and acct.reserved <= D("1.00")
    assert row["dest_prefix"] == "44" and row["cb_prefix"] == "1"


async def test_the_reservation_is_capped_by_max_reservation(db_url: str) -> None:
    svc = build(db_url, billing__max_reservation="600")
    try:
        import_deck(svc)
        add_account(svc, credit="1000")
        cb = await request(svc, UK_LANDLINE)
        assert cb.max_duration == 600.0
        assert svc.accounts.get("alice").reserved == D("0.20") + D("0.10")  # 10 min UK + 10 min US
    finally:
        svc.close()


async def test_no_service_time_limit_leaves_the_reservation_to_max_reservation(db_url: str) -> None:
    """`calls.max_duration = 0` is "no limit of the service's own" (the dispatcher's reading), not
    a 1-second ceiling for every call."""
    svc = build(db_url, billing__max_reservation="600", calls__max_duration="0")
    try:
        import_deck(svc)
        add_account(svc, credit="1000")
        cb = await request(svc, UK_LANDLINE)
        assert cb.max_duration == 600.0
        assert svc.accounts.get("alice").reserved == D("0.20") + D("0.10")
    finally:
        svc.close()


@pytest.mark.parametrize(("target", "callback"), [("+33142000000", US_NUMBER), (UK_LANDLINE, "+33612345678")])
async def test_a_number_without_a_rate_is_refused(services: Services, target: str, callback: str) -> None:
    import_deck(services)
    add_account(services)
    with pytest.raises(Forbidden) as exc:
        await request(services, target, callback)
    assert exc.value.error_id == "no-rate"
    assert "+336" in exc.value.message or "+331" in exc.value.message
    assert services.accounts.get("alice").reserved == 0


async def test_no_plan_at_all_is_refused(services: Services) -> None:
    add_account(services)
    with pytest.raises(Forbidden) as exc:
        await request(services, UK_LANDLINE)
    assert exc.value.error_id == "no-rate"


async def test_the_callback_leg_may_go_unbilled(db_url: str) -> None:
    svc = build(db_url, billing__bill_callback_leg="false")
    try:
        import_deck(svc)
        add_account(svc, credit="0.02", callback_number="+33612345678")  # no rate for France: not needed
        cb = await request(svc, UK_LANDLINE, callback=None)
        assert cb.max_duration == 60.0
        assert charge(svc, cb.id)["cb_prefix"] is None
    finally:
        svc.close()


@pytest.mark.parametrize(
    ("credit", "accepted"),
    [("0.03", True), ("0.029999", False), ("0", False)],  # a UK minute + a US minute cost 0.03
)
async def test_the_account_must_afford_the_minimum_of_both_legs(
    services: Services, credit: str, accepted: bool
) -> None:
    import_deck(services)
    add_account(services, credit=credit)
    if accepted:
        cb = await request(services, UK_LANDLINE)
        assert cb.max_duration == 60.0
        return
    with pytest.raises(Forbidden) as exc:
        await request(services, UK_LANDLINE)
    assert (exc.value.status_code, exc.value.error_id) == (403, "insufficient-credit")
    assert exc.value.message == "Not enough credit for this call."


async def test_the_minimum_and_the_message_are_configurable(db_url: str) -> None:
    svc = build(db_url, billing__min_duration="300", billing__not_enough_credit_message="Top up first.")
    try:
        import_deck(svc)
        add_account(svc, credit="0.10")  # 4 UK minutes + 4 US minutes = 0.12 < 5 minutes
        with pytest.raises(Forbidden, match=r"Top up first\."):
            await request(svc, UK_LANDLINE)
    finally:
        svc.close()


# dest, callback, bridged seconds, destination charge, callback charge
SETTLEMENTS = [
    (UK_LANDLINE, US_NUMBER, 1, "0.02", "0.000167"),  # 60/60 and 1/1
    (UK_LANDLINE, US_NUMBER, 60, "0.02", "0.01"),
    (UK_LANDLINE, US_NUMBER, 61, "0.04", "0.010167"),
    (UK_LANDLINE, US_NUMBER, 125.5, "0.06", "0.021"),  # 180 s; 126 s
    (UK_MOBILE, US_NUMBER, 10, "0.10", "0.001667"),  # 30/6: fee 0.05 + 30 s
    (UK_MOBILE, US_NUMBER, 31, "0.11", "0.005167"),  # fee + 36 s
    (UK_MOBILE, US_NUMBER, 95, "0.21", "0.015833"),  # fee + 96 s
    (US_NUMBER, UK_MOBILE, 7, "0.001167", "0.10"),  # the callback leg at the callback number's rate
]


@pytest.mark.parametrize(("dest", "cbnum", "bridged", "dest_charge", "cb_charge"), SETTLEMENTS)
async def test_settlement_follows_the_increments_of_both_legs(
    services: Services, dest: str, cbnum: str, bridged: float, dest_charge: str, cb_charge: str
) -> None:
    import_deck(services)
    add_account(services, credit="5")
    cb = await request(services, dest, cbnum)
    await finish(services, cb, outcome(cb, bridged))
    row = charge(services, cb.id)
    total = D(dest_charge) + D(cb_charge)
    assert (row["state"], D(str(row["dest_charge"])), D(str(row["cb_charge"]))) == (
        "settled",
        D(dest_charge),
        D(cb_charge),
    )
    assert D(str(row["total"])) == total
    acct = services.accounts.get("alice")
    assert (acct.balance, acct.reserved) == (D("5") - total, D(0))
    entries = CreditStore(services.db).ledger(acct.id)
    assert [(e.kind, e.amount, e.balance_after) for e in entries] == [
        ("topup", D("5"), D("5")),
        ("call", -total, D("5") - total),
    ]
    assert entries[-1].callback_id == cb.id


async def test_talk_mode_charges_each_leg_from_its_own_answer(db_url: str) -> None:
    svc = build(db_url, billing__leg_duration="talk")
    try:
        import_deck(svc)
        add_account(svc, credit="5")
        cb = await request(svc, UK_LANDLINE)
        await finish(svc, cb, outcome(cb, 50, talk=(65, 50)))  # destination waited 15 s for the user
        row = charge(svc, cb.id)
        assert (row["dest_billed_s"], row["cb_billed_s"]) == (120, 50)
    finally:
        svc.close()


@pytest.mark.parametrize("completed", [False, True])
async def test_a_failed_or_unanswered_callback_releases_the_reservation(
    services: Services, completed: bool
) -> None:
    import_deck(services)
    add_account(services, credit="5")
    cb = await request(services, UK_LANDLINE)
    assert services.accounts.get("alice").reserved > 0
    await finish(services, cb, outcome(cb, 0, completed=completed))
    acct = services.accounts.get("alice")
    assert (acct.balance, acct.reserved) == (D(5), D(0))
    assert charge(services, cb.id)["state"] == "released"
    assert [e.kind for e in CreditStore(services.db).ledger(acct.id)] == ["topup"]


async def test_settlement_is_idempotent(services: Services) -> None:
    import_deck(services)
    add_account(services, credit="5")
    cb = await request(services, UK_LANDLINE)
    done = outcome(cb, 61)
    await asyncio.gather(*(finish(services, cb, done) for _ in range(5)))
    await finish(services, cb, done)
    acct = services.accounts.get("alice")
    assert (acct.balance, acct.reserved) == (D(5) - D("0.050167"), D(0))
    assert [e.kind for e in CreditStore(services.db).ledger(acct.id)] == ["topup", "call"]


async def test_the_charge_never_exceeds_the_reservation(services: Services) -> None:
    import_deck(services)
    add_account(services, credit="0.03")
    cb = await request(services, UK_LANDLINE)
    assert cb.max_duration == 60.0
    await finish(services, cb, outcome(cb, 60.4))  # the engine hung up a little late
    acct = services.accounts.get("alice")
    assert (acct.balance, acct.reserved) == (D(0), D(0))
    row = charge(services, cb.id)
    assert row["capped"] is True and D(str(row["total"])) == D("0.03")


async def test_stale_reservations_are_released(services: Services) -> None:
    import_deck(services)
    add_account(services, credit="5")
    ended = await request(services, UK_LANDLINE)
    services.callbacks.transition(ended.id, "queued", "failed", reason="crash")
    running = await request(services, UK_LANDLINE)
    unsettled = await request(services, UK_LANDLINE)
    services.callbacks.transition(unsettled.id, "queued", "completed")
    assert services.billing is not None
    assert await services.billing.release_stale(3600) == 0  # too recent
    assert await services.billing.release_stale(0) == 1  # only the ended one
    assert charge(services, ended.id)["state"] == "released"
    assert charge(services, running.id)["state"] == "reserved"
    assert charge(services, unsettled.id)["state"] == "reserved"  # never given away for free


async def test_a_reimported_plan_reaches_other_nodes(db_url: str) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    node_a = build(db_url, billing__deck_refresh="0", secrets__key=key)
    node_b = build(db_url, billing__deck_refresh="0", secrets__key=key)
    try:
        import_deck(node_a)
        add_account(node_a, credit="5")
        with pytest.raises(Forbidden):
            await request(node_b, "+33142000000")
        import_deck(node_a, deck=[*DECK, Rate(prefix="33", price_per_minute=D("0.03"))])
        cb = await request(node_b, "+33142000000")
        assert charge(node_b, cb.id)["dest_prefix"] == "33"
    finally:
        node_a.close()
        node_b.close()


async def test_currency_must_match_the_plan(services: Services) -> None:
    import_deck(services)
    add_account(services, currency="EUR")
    with pytest.raises(Forbidden) as exc:
        await request(services, UK_LANDLINE)
    assert exc.value.error_id == "currency-mismatch"


async def test_an_interrupted_callback_is_charged_for_the_talk_its_last_checkpoint_proves(
    services: Services,
) -> None:
    """A crash 61 s into a bridged call, found at the next start (no dialog stored, nothing to
    BYE): settled for the 61 s up to the last checkpoint, not for 0 s; failed as interrupted."""
    import time

    from webcallback.domain import ProgressEvent
    from webcallback.service.records import CallRecorder
    from webcallback.store.callbacks import BRIDGED, DIALING
    from webcallback.store.telephony import TelephonyStore

    import_deck(services)
    add_account(services, credit="5")
    cb = await request(services, UK_LANDLINE)
    assert [c.id for c in services.callbacks.claim_queued("node-a", 1)] == [cb.id]
    store, bridged_at = TelephonyStore(services.db), time.time() - 100
    for role, number in ((LegRole.DESTINATION, cb.destination), (LegRole.CALLBACK, cb.callback)):
        for state in (LegState.TRYING, LegState.ANSWERED, LegState.BRIDGED):
            step = ProgressEvent(callback_id=cb.id, leg=role, state=state, at=bridged_at)
            store.record_progress(step, number)
    assert services.callbacks.transition(cb.id, DIALING, BRIDGED)
    store.checkpoint([cb.id], bridged_at + 61)

    assert await CallRecorder(services).recover("node-a") == 1

    final = services.callbacks.get(cb.id)
    assert (final.state, final.reason) == ("failed", FailureReason.INTERRUPTED)
    row = charge(services, cb.id)
    assert row["state"] == "settled" and row["dest_duration"] == pytest.approx(61, abs=0.01)
    assert services.accounts.get("alice").reserved == 0
