"""Toll-fraud policy, duplicate suppression, per-user concurrency and rate/daily limits, over real
HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal

import httpx
import pytest

from tests.security.conftest import CALLBACK, DEST, PREMIUM, MakeLab, params
from webcallback.domain import CallOutcome, FailureReason
from webcallback.store.accounts import Account
from webcallback.store.callbacks import COMPLETED, DIALING, QUEUED

HTTP = {"auth__allow_password_over_http": "true"}


@pytest.mark.parametrize(
    ("number", "words"),
    [(PREMIUM, "premium-rate"), ("+4918051234567", "shared-cost"), ("+15551231234", "unrecognised")],
)
def test_refused_number_types(make_lab: MakeLab, db_url: str, number: str, words: str) -> None:
    lab = make_lab(db_url, **HTTP)
    with lab.server() as url, httpx.Client(base_url=url) as http:
        for leg in ("targetNumber", "callbackNumber"):
            refused = http.get("/webcallback", params=params(**{leg: number}))
            assert refused.status_code == 403
            assert refused.json()["error"] == "number-refused"
            assert words in refused.json()["message"] and len(refused.json()["message"]) < 100
    assert lab.services.callbacks.recent() == []


def test_prefix_and_country_lists_per_leg(make_lab: MakeLab, db_url: str) -> None:
    lab = make_lab(
        db_url,
        **HTTP,
        security__policy__destination__deny_prefixes="+1202555019",
        security__policy__callback__allow_countries="US,CA",
        security__policy__destination__deny_countries="CU",
        security__limits__concurrent_callbacks_per_user="0",
    )
    with lab.server() as url, httpx.Client(base_url=url) as http:
        denied = http.get("/webcallback", params=params(targetNumber="+12025550199"))
        assert denied.status_code == 403
        assert denied.json()["message"] == "This destination number is not allowed."
        # The same number is fine as a callback number: the lists are per leg.
        assert http.get("/webcallback", params=params(callbackNumber="+12025550199")).status_code == 200
        foreign = http.get("/webcallback", params=params(callbackNumber="+33612345678"))
        assert foreign.status_code == 403 and "country" in foreign.json()["message"]
        cuba = http.get("/webcallback", params=params(targetNumber="+5372345678"))
        assert cuba.status_code == 403 and "country" in cuba.json()["message"]
    events = lab.cli("security", "events", "--kind", "policy-refused").output
    assert "+12025550199" in events and "+33612345678" in events


def test_callback_number_must_be_registered(make_lab: MakeLab, db_url: str) -> None:
    lab = make_lab(
        db_url,
        **HTTP,
        security__policy__callback_must_be_registered="true",
        security__limits__concurrent_callbacks_per_user="0",
    )
    other = "+12025550177"
    with lab.server() as url, httpx.Client(base_url=url) as http:
        refused = http.get("/webcallback", params=params(callbackNumber=other))
        assert refused.status_code == 403 and refused.json()["error"] == "callback-not-registered"
        # The account's own callback number is always allowed.
        assert http.get("/webcallback", params=params(callbackNumber=CALLBACK)).status_code == 200
        assert lab.cli("security", "numbers", "add", "alice", "(202) 555-0177").exit_code == 0
        assert lab.cli("security", "numbers", "list", "alice").output.split() == [other]
        assert http.get("/webcallback", params=params(callbackNumber=other)).status_code == 200


def test_client_country_refused_behind_trusted_proxy(make_lab: MakeLab, db_url: str) -> None:
    lab = make_lab(
        db_url,
        **HTTP,
        numbers__geoip="true",
        server__trusted_proxies="127.0.0.1",
        security__policy__deny_client_countries="US",
    )
    with lab.server() as url, httpx.Client(base_url=url) as http:
        refused = http.get("/webcallback", params=params(), headers={"X-Forwarded-For": "8.8.8.8"})
        assert refused.status_code == 403 and refused.json()["error"] == "country-refused"
        assert (
            http.get("/webcallback", params=params(), headers={"X-Forwarded-For": "10.1.2.3"}).status_code
            == 200
        )


def test_duplicate_returns_the_same_id(make_lab: MakeLab, db_url: str) -> None:
    lab = make_lab(db_url, **HTTP)
    with lab.server() as url, httpx.Client(base_url=url) as http:
        first = http.get("/webcallback", params=params())
        second = http.post("/webcallback", data=params())  # same request, another body format
        assert first.status_code == second.status_code == 200
        from urllib.parse import parse_qs

        assert parse_qs(second.text)["id"] == [first.json()["id"]]
    assert len(lab.services.callbacks.recent()) == 1


def test_simultaneous_duplicates_make_one_callback(make_lab: MakeLab, db_url: str) -> None:
    lab = make_lab(db_url, **HTTP)
    with lab.server() as url, ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: httpx.get(url + "/webcallback", params=params()), range(8)))
    assert {r.status_code for r in replies} == {200}, [r.text for r in replies]
    assert len({r.json()["id"] for r in replies}) == 1
    assert len(lab.services.callbacks.recent()) == 1


def test_concurrency_refuses_the_second_while_the_first_is_in_flight(make_lab: MakeLab, db_url: str) -> None:
    lab = make_lab(db_url, **HTTP)
    services = lab.services
    with lab.server() as url, httpx.Client(base_url=url) as http:
        first = http.get("/webcallback", params=params())
        assert first.status_code == 200
        services.callbacks.transition(first.json()["id"], QUEUED, DIALING, node="test")
        second = http.get("/webcallback", params=params(targetNumber="+12025550155"))
        assert second.status_code == 429
        assert second.json()["error"] == "too-many-callbacks" and "retry-after" in second.headers
        # The dispatcher records the end and calls the finished hooks: the slot is free again.
        services.callbacks.transition(first.json()["id"], DIALING, COMPLETED)
        import asyncio

        record = services.callbacks.get(first.json()["id"])
        outcome = CallOutcome(callback_id=record.id, completed=True, reason=FailureReason.COMPLETED)

        async def finished() -> None:
            for hook in services.on_callback_finished:
                await hook(record, outcome)

        asyncio.run(finished())
        assert http.get("/webcallback", params=params(targetNumber="+12025550155")).status_code == 200


def test_concurrency_slot_freed_by_final_state_without_hook(make_lab: MakeLab, db_url: str) -> None:
    lab = make_lab(db_url, **HTTP)
    with lab.server() as url, httpx.Client(base_url=url) as http:
        first = http.get("/webcallback", params=params()).json()["id"]
        assert http.get("/webcallback", params=params(targetNumber="+12025550155")).status_code == 429
        lab.services.callbacks.transition(first, QUEUED, "failed", reason="node crashed")
        assert http.get("/webcallback", params=params(targetNumber="+12025550155")).status_code == 200


def test_simultaneous_different_callbacks_admit_exactly_one(make_lab: MakeLab, db_url: str) -> None:
    lab = make_lab(db_url, **HTTP)
    targets = [f"+120255501{n:02d}" for n in range(10, 18)]
    with lab.server() as url, ThreadPoolExecutor(8) as pool:
        replies = list(
            pool.map(lambda t: httpx.get(url + "/webcallback", params=params(targetNumber=t)), targets)
        )
    codes = sorted(r.status_code for r in replies)
    assert codes == [200] + [429] * 7, [r.text for r in replies]
    assert len(lab.services.callbacks.recent()) == 1


def test_refused_admission_gives_the_slot_back(make_lab: MakeLab, db_url: str) -> None:
    lab = make_lab(db_url, **HTTP)
    lab.services.accounts.update("alice", balance=0)
    with lab.server() as url, httpx.Client(base_url=url) as http:
        assert http.get("/webcallback", params=params()).status_code == 403
        lab.services.accounts.update("alice", balance=5)
        assert http.get("/webcallback", params=params()).status_code == 200


def test_rate_limits_per_user_and_per_address(make_lab: MakeLab, db_url: str) -> None:
    lab = make_lab(
        db_url,
        **HTTP,
        security__limits__requests_per_minute_per_user="3",
        security__limits__requests_per_minute_per_ip="5",
    )
    with lab.server() as url, httpx.Client(base_url=url) as http:
        alice = [http.get("/webcallback", params=params()).status_code for _ in range(4)]
        assert alice == [200, 200, 200, 429]
        limited = http.get("/webcallback", params=params(user="bob"))  # 5th from this address: bob is fine
        assert limited.status_code == 200
        refused = http.get("/webcallback", params=params(user="bob"))
        assert refused.status_code == 429 and refused.json()["error"] == "rate-limited"
        assert refused.headers["retry-after"] == "60"


def test_daily_callback_cap(make_lab: MakeLab, db_url: str) -> None:
    lab = make_lab(
        db_url,
        **HTTP,
        security__limits__callbacks_per_day="2",
        security__limits__concurrent_callbacks_per_user="0",
    )
    with lab.server() as url, httpx.Client(base_url=url) as http:
        for target in ("+12025550111", "+12025550112"):
            assert http.get("/webcallback", params=params(targetNumber=target)).status_code == 200
        capped = http.get("/webcallback", params=params(targetNumber="+12025550113"))
        assert capped.status_code == 429 and capped.json()["error"] == "daily-limit"
        # A duplicate of an existing callback is still answered with its id.
        assert http.get("/webcallback", params=params(targetNumber="+12025550111")).status_code == 200


def test_daily_spend_cap_with_a_meter(make_lab: MakeLab, db_url: str) -> None:
    lab = make_lab(db_url, **HTTP, security__limits__spend_per_day="5")

    class Meter:
        async def spent_since(self, account: Account, since: datetime) -> Decimal:
            return Decimal("5.01") if account.username == "alice" else Decimal(0)

    lab.services.callback_service.guard.spend_meter = Meter()
    with lab.server() as url, httpx.Client(base_url=url) as http:
        capped = http.get("/webcallback", params=params())
        assert capped.status_code == 429 and capped.json()["error"] == "spend-limit"
        assert http.get("/webcallback", params=params(user="bob")).status_code == 200


def test_unused_numbers_are_fine(make_lab: MakeLab, db_url: str) -> None:
    """The defaults let an ordinary request through (guards against over-eager policy)."""
    lab = make_lab(db_url, **HTTP)
    with lab.server() as url:
        reply = httpx.get(url + "/webcallback", params={"u": "alice", "p": "s3cret-Pa55word", "to": DEST})
        assert reply.status_code == 200, reply.text


def test_a_finished_callback_does_not_block_a_retry(make_lab: MakeLab, db_url: str) -> None:
    lab = make_lab(db_url, **HTTP)
    with lab.server() as url, httpx.Client(base_url=url) as http:
        first = http.get("/webcallback", params=params()).json()["id"]
        lab.services.callbacks.transition(first, QUEUED, "failed", reason="destination-busy")
        retry = http.get("/webcallback", params=params())
        assert retry.status_code == 200 and retry.json()["id"] != first
