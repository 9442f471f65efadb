"""Security limits against real calls (security ↔ dispatcher ↔ billing ↔ SIP engine), with the
shipped defaults: duplicate suppression (30 s), one callback in progress per account, 10 requests
a minute per user, the number policy.

- The same account asking for the same two numbers while its callback is in progress gets that
  callback's id, no new call on the wire and no second reservation; once it has ended, a repeat is
  a new callback.
- A second callback (other numbers) while the first real call is in flight is refused with the
  message; once the first has ended, it is accepted and placed. A request billing refuses gives
  its concurrency slot back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.dispatch.service_process import Service, running_service
from tests.e2e.conftest import (
    CALLBACK,
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

TALK_MS = 2000
OTHER = "+12025550102"
NO_RATE = "+33142000000"  # a valid number the plan has no rate for


def request_at_once(service: Service, username: str, target: str, count: int) -> list[httpx.Response]:
    barrier = threading.Barrier(count)
    answers: list[httpx.Response] = []

    def one() -> None:
        barrier.wait()
        answers.append(service.request_callback(username, PASSWORD, target))

    threads = [threading.Thread(target=one) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


async def test_a_repeat_while_the_call_is_in_progress_gets_the_same_callback_and_rings_once(
    sqlite_url: str, tmp_path: Path, lab_phones: Callable[..., TracedPhones]
) -> None:
    phones = lab_phones(talk_ms=TALK_MS)
    async with phones:
        lab = make_lab(sqlite_url, tmp_path, phones.uri, **SECURITY_DEFAULTS)
        lab.import_rates("minutes", ["1202555,0.30,0.05,60,60,test numbers"])
        lab.add_account("gina", "5", "minutes")
        with running_service(lab.env, lab.cwd) as service:
            first = service.request_callback("gina", PASSWORD, DESTINATION)
            assert first.status_code == 200, first.text
            callback_id = first.json()["id"]
            held = balance(service, "gina")
            service.wait_status(callback_id, ("bridged",))
            repeats = request_at_once(service, "gina", DESTINATION, 3)  # the app's user taps again
            held_after = balance(service, "gina")
            done = service.wait_status(callback_id, ("completed", "failed"))
            calls_before_retry = len(phones.calls())
            retry = service.request_callback("gina", PASSWORD, DESTINATION)  # ended: a new callback
            assert retry.status_code == 200, retry.text
            again = service.wait_status(retry.json()["id"], ("completed", "failed"))
            assert service.terminate()
        ledger = lab.ledger("gina")

    assert [(r.status_code, r.json()["id"]) for r in repeats] == [(200, callback_id)] * 3
    assert held["reserved"] > 0 and held_after["reserved"] == held["reserved"], (held, held_after)
    assert done["state"] == "completed" and again["state"] == "completed", (done, again)
    assert retry.json()["id"] != callback_id
    # on the wire: one callback (its two legs) for the first request and its three repeats
    assert calls_before_retry == 2, calls_before_retry
    assert len(phones.legs_to(DESTINATION)) == len(phones.legs_to(CALLBACK)) == 2
    # billing: charged once per real callback
    charged = [e["callback_id"] for e in ledger if e["kind"] == "call"]
    assert charged == [callback_id, retry.json()["id"]], ledger


async def test_a_second_callback_is_refused_while_the_first_call_is_up_and_accepted_after(
    sqlite_url: str, tmp_path: Path, lab_phones: Callable[..., TracedPhones]
) -> None:
    phones = lab_phones(talk_ms=TALK_MS)
    async with phones:
        lab = make_lab(sqlite_url, tmp_path, phones.uri, **SECURITY_DEFAULTS)
        lab.import_rates("minutes", ["1202555,0.30,0.05,60,60,test numbers"])
        lab.add_account("hank", "5", "minutes")
        with running_service(lab.env, lab.cwd) as service:
            no_rate = service.request_callback("hank", PASSWORD, NO_RATE)  # the slot goes back
            first = service.request_callback("hank", PASSWORD, DESTINATION)
            assert first.status_code == 200, first.text
            service.wait_status(first.json()["id"], ("bridged",))
            refused = service.request_callback("hank", PASSWORD, OTHER)
            done = service.wait_status(first.json()["id"], ("completed", "failed"))
            accepted = service.request_callback("hank", PASSWORD, OTHER)
            assert accepted.status_code == 200, accepted.text
            second = service.wait_status(accepted.json()["id"], ("completed", "failed"))
            after = settled_balance(service, "hank")
            assert service.terminate()

    assert (no_rate.status_code, no_rate.json()["error"]) == (403, "no-rate"), no_rate.text
    assert refused.status_code == 429, refused.text
    assert refused.json() == {
        "message": "A callback is already in progress. Please wait until it ends.",
        "error": "too-many-callbacks",
    }
    assert (done["state"], second["state"]) == ("completed", "completed"), (done, second)
    assert len(phones.legs_to(OTHER)) == 1  # rung once, after the first call ended
    first_bye = max(m.at for msgs in phones.legs_to(DESTINATION) for m in msgs if m.method == "BYE")
    assert phones.legs_to(OTHER)[0][0].at > first_bye
    assert money(after["reserved"]) == 0, after
