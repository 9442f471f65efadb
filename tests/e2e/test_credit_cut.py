"""Credit cuts a real call at the second it runs out (billing ↔ dispatcher ↔ SIP engine).

A rate plan imported with `webcallback rates import` (per second, 1/1, both legs rated), an
account whose credit pays for exactly CREDIT_S seconds of both legs, a callback requested over real
HTTP, and SIPp phones that would talk for 30 s: the engine must BYE both legs CREDIT_S seconds after
it connected them, the settlement must equal the CDR by the increments, and the balance must end at
exactly 0 with nothing left reserved.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.dispatch.service_process import running_service
from tests.e2e.conftest import (
    CALLBACK,
    DESTINATION,
    PASSWORD,
    TracedPhones,
    balance,
    make_lab,
    money,
    settled_balance,
)

pytestmark = pytest.mark.sip

CREDIT_S = 5  # seconds of both legs the account can pay for
PER_SECOND = Decimal("0.01")  # each leg, 1/1 increments: 0.60 a minute
TOLERANCE_S = 1.0  # how late a BYE may be on a loaded 2-core CI machine (the reactor ticks at 10 ms)


async def test_credit_runs_out_and_the_engine_hangs_both_legs_up_on_time(
    db_url: str, tmp_path: Path, lab_phones: Callable[..., TracedPhones]
) -> None:
    phones = lab_phones(talk_ms=30_000)
    async with phones:
        lab = make_lab(db_url, tmp_path, phones.uri, BILLING__MIN_DURATION=str(CREDIT_S))
        lab.import_rates("persecond", ["1202555,0.60,0,1,1,test numbers per second"])
        credit = 2 * PER_SECOND * CREDIT_S
        lab.add_account("carol", str(credit), "persecond")
        with running_service(lab.env, lab.cwd) as service:
            r = service.request_callback("carol", PASSWORD, DESTINATION)
            assert r.status_code == 200, r.text
            callback_id = r.json()["id"]
            held = balance(service, "carol")
            body = service.wait_status(callback_id, ("completed", "failed"), timeout=CREDIT_S + 20)
            after = settled_balance(service, "carol")
            assert service.terminate()
        ledger = lab.ledger("carol")
        account = lab.account("carol")
        (cdr_export,) = lab.cdrs()
        legs = {number: phones.legs_to(number) for number in (DESTINATION, CALLBACK)}

    # the whole credit was reserved while the call ran, and the call was limited to it
    assert money(held["reserved"]) == credit and money(held["available"]) == 0, held
    assert body["max_duration"] == CREDIT_S, body
    assert (body["state"], body["reason"]) == ("completed", "completed"), body
    assert {leg["ended_by"] for leg in body["legs"].values()} == {"max-duration"}, body["legs"]

    # the engine cut the connected call at CREDIT_S seconds: in its own CDR...
    bridged_s = body["cdr"]["bridged_s"]
    assert CREDIT_S - 0.05 <= bridged_s <= CREDIT_S + TOLERANCE_S, body["cdr"]
    # ...and on the wire: each phone got its BYE CREDIT_S s after the ACK that connected it
    for number, calls in legs.items():
        assert len(calls) == 1, f"{number}: {len(calls)} calls"
        msgs = calls[0]
        byes = [m for m in msgs if m.direction == "received" and m.method == "BYE"]
        assert len(byes) == 1 and not [m for m in msgs if m.direction == "sent" and m.method == "BYE"]
        acks = [m for m in msgs if m.direction == "received" and m.method == "ACK" and m.at <= byes[0].at]
        talk = byes[0].at - acks[-1].at  # the last ACK before the BYE connected this leg
        assert CREDIT_S - 0.3 <= talk <= CREDIT_S + TOLERANCE_S, (number, talk)

    # settlement equals the CDR by the increments (1/1: whole seconds, rounded up)
    billed = math.ceil(bridged_s - 1e-9)
    charge = 2 * PER_SECOND * billed
    assert cdr_export["charge_state"] == "settled", cdr_export
    assert (cdr_export["dest_billed_s"], cdr_export["cb_billed_s"]) == (billed, billed), cdr_export
    assert money(cdr_export["total"]) == charge == credit, cdr_export
    assert cdr_export["capped"] is False, cdr_export

    # the ledger has the charge; the balance is exactly 0, nothing held
    call = [e for e in ledger if e["kind"] == "call"]
    assert len(call) == 1 and call[0]["callback_id"] == callback_id, ledger
    assert money(call[0]["amount"]) == -charge and money(call[0]["balance_after"]) == 0, ledger
    assert money(account["balance"]) == 0 and money(account["reserved"]) == 0, account
    assert money(after["balance"]) == 0 and money(after["reserved"]) == 0, after
    assert after["available"] == 0, after


async def test_concurrent_requests_for_one_calls_credit_place_exactly_one_sip_call(
    sqlite_url: str, tmp_path: Path, lab_phones: Callable[..., TracedPhones]
) -> None:
    """5 requests at once, credit for one 3 s call: one accepted, one callback on the wire. The
    security limits that would otherwise decide first (the same numbers are a duplicate; one
    callback per account) are off, so the credit gate is what refuses."""
    seconds, requests = 3, 5
    phones = lab_phones(talk_ms=30_000)
    async with phones:
        lab = make_lab(sqlite_url, tmp_path, phones.uri, BILLING__MIN_DURATION=str(seconds),
                       SECURITY__LIMITS__DUPLICATE_WINDOW="0",
                       SECURITY__LIMITS__CONCURRENT_CALLBACKS_PER_USER="0")  # fmt: skip
        lab.import_rates("persecond", ["1202555,0.60,0,1,1,test numbers per second"])
        lab.add_account("erin", str(2 * PER_SECOND * seconds), "persecond")
        with running_service(lab.env, lab.cwd) as service:
            barrier = threading.Barrier(requests)
            answers: list[httpx.Response] = []

            def one() -> None:
                barrier.wait()
                answers.append(service.request_callback("erin", PASSWORD, DESTINATION))

            threads = [threading.Thread(target=one) for _ in range(requests)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            (accepted,) = [r for r in answers if r.status_code == 200]
            body = service.wait_status(accepted.json()["id"], ("completed", "failed"), timeout=seconds + 20)
            after = settled_balance(service, "erin")
            assert service.terminate()
        calls = phones.calls()

    refused = [r for r in answers if r.status_code != 200]
    assert len(refused) == requests - 1, [r.text for r in answers]
    assert {(r.status_code, r.json()["error"]) for r in refused} == {(403, "insufficient-credit")}
    assert (body["state"], body["max_duration"]) == ("completed", seconds), body
    # on the wire: one callback = two SIP calls (destination, then callback), nothing more
    firsts = sorted(msgs[0].first_line.split()[1].split("@")[0] for msgs in calls.values())
    assert firsts == sorted([f"sip:{DESTINATION}", f"sip:{CALLBACK}"]), firsts
    assert money(after["balance"]) == 0 and after["reserved"] == 0, after
