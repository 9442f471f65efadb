"""The balance checker and the rate checker, in JSON and XML, through the real app (in process)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from xml.etree import ElementTree

import httpx
import pytest

from tests.billing.conftest import DECK, UK_LANDLINE, UK_MOBILE, add_account, build, hash_params, import_deck
from webcallback.billing.rating import Rate
from webcallback.domain import CallOutcome, FailureReason
from webcallback.service.container import Services
from webcallback.web.app import create_app


@pytest.fixture
async def client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://cb.test") as c:
        yield c


def xml_fields(body: bytes) -> dict[str, str]:
    root = ElementTree.fromstring(body)
    assert root.tag == "response"
    return {child.tag: child.text or "" for child in root}


async def test_balance_in_json(services: Services, client: httpx.AsyncClient) -> None:
    add_account(services, credit="12.34")
    r = await client.get("/balance", params=hash_params(), headers={"Accept": "application/json"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.json() == {
        "balanceString": "$12.34",
        "balance": 12.34,
        "currency": "USD",
        "reserved": 0.0,
        "available": 12.34,
    }


async def test_balance_in_xml_shows_reserved_credit(services: Services, client: httpx.AsyncClient) -> None:
    import_deck(services)
    add_account(services, credit="12.34")
    accepted = await client.post("/webcallback", json={**hash_params(), "targetNumber": UK_LANDLINE})
    assert accepted.status_code == 200
    reserved = services.accounts.get("alice").reserved
    body = "<request>" + "".join(f"<{k}>{v}</{k}>" for k, v in hash_params().items()) + "</request>"
    r = await client.post("/balance/", content=body, headers={"Content-Type": "application/xml"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    fields = xml_fields(r.content)
    assert fields["error"] == "0"
    assert fields["balanceString"] == f"$12.34 (${reserved:.2f} reserved)"
    assert (fields["balance"], fields["currency"], float(fields["reserved"])) == (
        "12.34",
        "USD",
        float(reserved),
    )


@pytest.mark.parametrize(
    ("params", "status", "error"),
    [
        ({"username": "alice"}, 401, "missing-credentials"),
        ({"username": "alice", "password": "s3cret-pass"}, 403, "password-needs-https"),
        ({"username": "mallory", "nonce": "0123456789", "hash": "00"}, 401, "authentication-failed"),
    ],
)
async def test_balance_needs_the_same_credentials_as_a_callback(
    services: Services, client: httpx.AsyncClient, params: dict[str, str], status: int, error: str
) -> None:
    add_account(services)
    r = await client.get("/balance", params=params)
    assert (r.status_code, r.json()["error"]) == (status, error)


async def test_balance_without_credentials_asks_to_log_in_to_see_the_balance(
    services: Services, client: httpx.AsyncClient
) -> None:
    add_account(services)
    r = await client.get("/balance")
    assert (r.status_code, r.json()["error"]) == (401, "missing-credentials")
    assert r.json()["message"] == "Log in to see your balance."  # not "... to request a callback."
    assert r.headers["www-authenticate"].startswith("Digest ")


async def test_rate_without_credentials_uses_the_default_plan(
    services: Services, client: httpx.AsyncClient
) -> None:
    import_deck(services)
    r = await client.get("/rate", params={"targetNumber": UK_MOBILE, "smartUri": ""})
    assert r.status_code == 200
    assert r.json() == {"callRateString": "$0.10/min + $0.05", "messageRateString": ""}


async def test_rate_with_credentials_uses_the_accounts_plan_and_both_legs(
    services: Services, client: httpx.AsyncClient
) -> None:
    import_deck(services)
    gold = [Rate(prefix="44", price_per_minute=Decimal("0.015")), *DECK[2:]]
    import_deck(services, plan="gold", deck=gold)
    add_account(services, plan="gold")  # callback number in the US: 0.01/min
    r = await client.post(
        "/rate",
        content=f"<r><targetNumber>{UK_LANDLINE}</targetNumber>"
        + "".join(f"<{k}>{v}</{k}>" for k, v in hash_params().items())
        + "</r>",
        headers={"Content-Type": "text/xml"},
    )
    assert r.status_code == 200
    assert xml_fields(r.content) == {"error": "0", "callRateString": "$0.025/min", "messageRateString": ""}


@pytest.mark.parametrize(
    ("number", "shown"), [("+4477", "$0.10/min + $0.05"), ("+33", "No rate"), ("12", "No rate")]
)
async def test_rate_of_a_partly_typed_number(
    services: Services, client: httpx.AsyncClient, number: str, shown: str
) -> None:
    import_deck(services)
    r = await client.get("/rate", params={"targetNumber": number})
    assert r.json()["callRateString"] == shown


async def test_rate_needs_a_number(services: Services, client: httpx.AsyncClient) -> None:
    r = await client.get("/rate")
    assert (r.status_code, r.json()["error"]) == (400, "missing-parameter")


async def test_rate_auth_can_be_required(db_url: str) -> None:
    svc = build(db_url, billing__rate_auth="required")
    try:
        import_deck(svc)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(svc)), base_url="http://t"
        ) as c:
            r = await c.get("/rate", params={"targetNumber": UK_LANDLINE})
        assert r.status_code == 401
    finally:
        svc.close()


async def test_no_billing_routes_when_billing_is_off(db_url: str) -> None:
    svc = build(db_url, billing__enabled="false")
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(svc)), base_url="http://t"
        ) as c:
            assert (await c.get("/balance")).status_code == 404
    finally:
        svc.close()


async def test_accept_settle_then_the_balance_shows_the_charge(
    services: Services, client: httpx.AsyncClient
) -> None:
    import_deck(services)
    add_account(services, credit="1")
    r = await client.post("/webcallback", json={**hash_params(), "targetNumber": UK_MOBILE})
    assert r.status_code == 200
    cb = services.callbacks.get(r.json()["id"])
    before = (
        await client.get("/balance", params=hash_params(), headers={"Accept": "application/json"})
    ).json()
    assert before["reserved"] > 0 and before["balanceString"].startswith("$1.00 (")
    for hook in services.on_callback_finished:  # what the dispatcher does when the call ends
        await hook(
            cb, CallOutcome(callback_id=cb.id, completed=True, reason=FailureReason.COMPLETED, bridged_s=31)
        )
    after = (
        await client.get("/balance", params=hash_params(), headers={"Accept": "application/json"})
    ).json()
    # UK mobile: 0.05 + 36 s at 0.10/min = 0.11; US callback leg: 31 s at 0.01/min = 0.005167
    assert after == {
        "balanceString": "$0.88",
        "balance": 0.884833,
        "currency": "USD",
        "reserved": 0.0,
        "available": 0.884833,
    }
