"""Settlement through the real dispatcher: what `/balance` and `webcallback account ledger` show
after a real SIP call equals the CDR's connected time billed by the plan's increments, connection
fees included; a busy destination releases the reservation and charges nothing.

The expected charge is computed here from the CDR's `bridged_s`, independently of billing's code.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.dispatch.service_process import Service, running_service
from tests.e2e.conftest import (
    BUSY,
    DESTINATION,
    PASSWORD,
    SECURITY_DEFAULTS,
    TracedPhones,
    balance,
    make_lab,
    money,
    settled_balance,
)

pytestmark = pytest.mark.sip

CREDIT = Decimal("5")
TALK_MS = 2500  # long enough for 2/3 to bill past its first increment

# plan -> (first, next); the destination leg costs 0.30/min + 0.05, the callback leg 0.12/min + 0.01
INCREMENTS = {"minutes": (60, 60), "thirty-six": (30, 6), "two-three": (2, 3)}
DEST_PRICE, DEST_FEE = Decimal("0.30"), Decimal("0.05")
CB_PRICE, CB_FEE = Decimal("0.12"), Decimal("0.01")


def billed(duration: float, first: int, nxt: int) -> int:
    seconds = math.ceil(round(duration, 6))
    if seconds == 0:
        return 0
    return first if seconds <= first else first + math.ceil((seconds - first) / nxt) * nxt


def expected_charge(bridged_s: float, first: int, nxt: int) -> Decimal:
    minutes = Decimal(billed(bridged_s, first, nxt)) / 60
    return money(DEST_FEE + DEST_PRICE * minutes) + money(CB_FEE + CB_PRICE * minutes)


def place_all(service: Service, usernames: list[str]) -> dict[str, str]:
    """One callback per account, requested at the same time; username -> callback id."""
    ids: dict[str, str] = {}

    def one(username: str) -> None:
        r = service.request_callback(username, PASSWORD, DESTINATION)
        assert r.status_code == 200, r.text
        ids[username] = r.json()["id"]

    threads = [threading.Thread(target=one, args=(u,)) for u in usernames]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == len(usernames)
    return ids


async def test_the_charge_equals_the_cdr_by_each_plans_increments(
    sqlite_url: str, tmp_path: Path, lab_phones: Callable[..., TracedPhones]
) -> None:
    phones = lab_phones(talk_ms=TALK_MS)
    async with phones:
        lab = make_lab(sqlite_url, tmp_path, phones.uri)
        for plan, (first, nxt) in INCREMENTS.items():
            lab.import_rates(plan, [f"12025550100,{DEST_PRICE},{DEST_FEE},{first},{nxt},destination",
                                    f"12025550101,{CB_PRICE},{CB_FEE},{first},{nxt},callback"])  # fmt: skip
            lab.add_account(plan, str(CREDIT), plan)
        with running_service(lab.env, lab.cwd) as service:
            ids = place_all(service, list(INCREMENTS))
            bodies = {u: service.wait_status(cid, ("completed", "failed")) for u, cid in ids.items()}
            balances = {u: settled_balance(service, u) for u in ids}
            assert service.terminate()
        ledgers = {u: lab.ledger(u) for u in ids}
        cdrs = {r["username"]: r for r in lab.cdrs()}

    for plan, (first, nxt) in INCREMENTS.items():
        body, shown, ledger, cdr = bodies[plan], balances[plan], ledgers[plan], cdrs[plan]
        assert (body["state"], body["reason"]) == ("completed", "completed"), body
        bridged_s = body["cdr"]["bridged_s"]
        assert TALK_MS / 1000 - 0.2 < bridged_s < TALK_MS / 1000 + 1.5, body["cdr"]
        charge = expected_charge(bridged_s, first, nxt)
        context: dict[str, Any] = {"plan": plan, "bridged_s": bridged_s, "charge": charge, "cdr": cdr}
        # the charge record: both legs on the connected time, by the increments
        assert cdr["charge_state"] == "settled" and cdr["capped"] is False, context
        assert cdr["dest_billed_s"] == cdr["cb_billed_s"] == billed(bridged_s, first, nxt), context
        assert cdr["dest_increments"] == cdr["cb_increments"] == f"{first}/{nxt}", context
        assert money(cdr["total"]) == charge, context
        # /balance over HTTP
        assert money(shown["balance"]) == CREDIT - charge and shown["reserved"] == 0, (shown, context)
        # the ledger: the top-up, then the call
        assert [e["kind"] for e in ledger] == ["topup", "call"], ledger
        assert ledger[1]["callback_id"] == ids[plan], ledger
        assert money(ledger[1]["amount"]) == -charge, (ledger, context)
        assert money(ledger[1]["balance_after"]) == CREDIT - charge, (ledger, context)
    assert billed(bodies["two-three"]["cdr"]["bridged_s"], 2, 3) > 2  # past the first increment


async def test_a_busy_destination_releases_the_reservation(
    sqlite_url: str, tmp_path: Path, lab_phones: Callable[..., TracedPhones]
) -> None:
    phones = lab_phones(scenario=BUSY)
    async with phones:
        lab = make_lab(sqlite_url, tmp_path, phones.uri)
        lab.import_rates("minutes", ["1202555,0.30,0.05,60,60,test numbers"])
        lab.add_account("dave", str(CREDIT), "minutes")
        with running_service(lab.env, lab.cwd) as service:
            r = service.request_callback("dave", PASSWORD, DESTINATION)
            assert r.status_code == 200, r.text
            held = balance(service, "dave")
            body = service.wait_status(r.json()["id"], ("completed", "failed"))
            after = settled_balance(service, "dave")
            assert service.terminate()
        ledger = lab.ledger("dave")
        (cdr,) = lab.cdrs()
        invites = [m for m in phones.messages() if m.direction == "received" and m.method == "INVITE"]

    assert held["reserved"] > 0, held  # credit was held while it rang
    assert (body["state"], body["reason"]) == ("failed", "destination-busy"), body
    assert body["legs"]["destination"]["sip_code"] == 486 and body["legs"]["callback"] is None
    assert [m.first_line.split()[1] for m in invites] == [f"sip:{DESTINATION}@127.0.0.1:{phones.port}"]
    assert cdr["charge_state"] == "released" and money(cdr["total"]) == 0, cdr
    assert money(after["balance"]) == CREDIT and after["reserved"] == 0, after
    assert [e["kind"] for e in ledger] == ["topup"], ledger


async def test_no_service_time_limit_leaves_the_call_to_the_credit(
    sqlite_url: str, tmp_path: Path, lab_phones: Callable[..., TracedPhones]
) -> None:
    """`calls.max_duration = 0` means no limit of the service's own (docs/operations.md): with
    billing on, the credit (up to `billing.max_reservation`) limits the call, not 1 second."""
    phones = lab_phones(talk_ms=1500)
    async with phones:
        lab = make_lab(sqlite_url, tmp_path, phones.uri, CALLS__MAX_DURATION="0",
                       BILLING__MAX_RESERVATION="600")  # fmt: skip
        lab.import_rates("minutes", ["1202555,0.30,0.05,60,60,test numbers"])
        lab.add_account("frank", "10", "minutes")  # pays for more than 600 s
        with running_service(lab.env, lab.cwd) as service:
            r = service.request_callback("frank", PASSWORD, DESTINATION)
            assert r.status_code == 200, r.text
            body = service.wait_status(r.json()["id"], ("completed", "failed"))
            assert service.terminate()

    assert body["max_duration"] == 600, body
    assert (body["state"], body["reason"]) == ("completed", "completed"), body
    assert {leg["ended_by"] for leg in body["legs"].values()} == {"remote", "peer-leg"}, body["legs"]
    assert body["cdr"]["bridged_s"] > 1.3, body["cdr"]


async def test_a_killed_service_settles_the_talk_its_checkpoints_proved_when_it_restarts(
    sqlite_url: str, tmp_path: Path, lab_phones: Callable[..., TracedPhones]
) -> None:
    """SIGKILL mid-call: at the next start the dispatcher hangs the legs up from their stored
    dialogs and fails the callback as `interrupted`; billing settles the talk up to the last
    checkpoint (SIPp answers the BYE to the dead process's port, so its answer proves nothing
    more), releases the rest of the reservation, and the account's slot is free again."""
    phones = lab_phones(talk_ms=30_000)
    async with phones:
        lab = make_lab(sqlite_url, tmp_path, phones.uri, CALLS__SHUTDOWN="hangup",
                       CALLS__CHECKPOINT_INTERVAL="0.5", **SECURITY_DEFAULTS)  # fmt: skip
        lab.import_rates("minutes", ["1202555,0.30,0.05,60,60,test numbers"])
        lab.add_account("ivan", str(CREDIT), "minutes")
        with running_service(lab.env, lab.cwd) as service:
            r = service.request_callback("ivan", PASSWORD, DESTINATION)
            assert r.status_code == 200, r.text
            callback_id = r.json()["id"]
            service.wait_status(callback_id, ("bridged",))
            held = balance(service, "ivan")
            time.sleep(1.5)  # checkpoints every 0.5 s
            service.proc.kill()
            service.proc.wait(10)
        with running_service(lab.env, lab.cwd) as again:
            body = again.wait_status(callback_id, ("completed", "failed"), timeout=120)
            after = settled_balance(again, "ivan")
            retry = again.request_callback("ivan", PASSWORD, DESTINATION)
            assert again.terminate()
        cdr = next(r for r in lab.cdrs() if r["callback_id"] == callback_id)

    assert held["reserved"] > 0, held
    assert (body["state"], body["reason"]) == ("failed", "interrupted"), body
    assert cdr["charge_state"] == "settled" and money(cdr["total"]) > 0, cdr
    assert money(after["balance"]) == CREDIT - money(cdr["total"]) and after["reserved"] == 0, after
    assert retry.status_code == 200 and retry.json()["id"] != callback_id, retry.text
