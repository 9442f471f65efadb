"""200 requests at once from one account whose credit covers exactly one call, over real HTTP on
loopback against the real app, on SQLite and PostgreSQL: one is accepted, the others get 403 with
the message, and the balance never goes below zero."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx

from tests.billing.conftest import UK_LANDLINE, US_NUMBER, add_account, hash_params, import_deck, serve
from webcallback.domain import CallOutcome, FailureReason
from webcallback.service.container import Services
from webcallback.store.billing import CreditStore

REQUESTS = 200


async def test_only_one_of_200_concurrent_requests_gets_the_credit(services: Services) -> None:
    import_deck(services)
    add_account(services, credit="0.03")  # one UK minute + one US minute, exactly
    with serve(services) as base:
        limits = httpx.Limits(max_connections=REQUESTS, max_keepalive_connections=REQUESTS)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
            params = [
                {**hash_params(), "targetNumber": UK_LANDLINE, "callbackNumber": US_NUMBER}
                for _ in range(REQUESTS)
            ]
            responses = await asyncio.gather(*(client.post("/webcallback", json=p) for p in params))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [403] * (REQUESTS - 1)
    refusals = [r.json() for r in responses if r.status_code == 403]
    assert {(r["message"], r["error"]) for r in refusals} == {
        ("Not enough credit for this call.", "insufficient-credit")
    }
    acct = services.accounts.get("alice")
    assert (acct.balance, acct.reserved) == (Decimal("0.03"), Decimal("0.03"))
    assert acct.available == 0

    accepted = next(r.json()["id"] for r in responses if r.status_code == 200)
    cb = services.callbacks.get(accepted)
    assert cb.max_duration == 60.0
    assert services.billing is not None
    await services.billing.settle(
        cb, CallOutcome(callback_id=cb.id, completed=True, reason=FailureReason.COMPLETED, bridged_s=60)
    )
    acct = services.accounts.get("alice")
    assert (acct.balance, acct.reserved) == (Decimal(0), Decimal(0))
    assert [e.balance_after for e in CreditStore(services.db).ledger(acct.id)] == [
        Decimal("0.03"),
        Decimal(0),
    ]
