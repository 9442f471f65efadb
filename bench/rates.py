"""Rate deck and credit benchmark: a 100,000-prefix deck parsed, imported (SQLite and PostgreSQL),
loaded into memory and looked up; then the credit gate (reserve) and settlement per callback.

    PYTHONPATH=src:. python bench/rates.py [--count 100000] [--no-postgres]

Prints medians; BENCHMARKS.md records a run. PostgreSQL is started like the tests do
(tests/pgserver.py, Debian's postgresql binaries).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from decimal import Decimal
from typing import Any

from tests.billing.bigdeck import make_deck_csv, make_prefixes, numbers_for

from webcallback.billing.deckfile import parse_deck
from webcallback.billing.rating import Rate
from webcallback.config import load_settings
from webcallback.domain import CallOutcome, FailureReason
from webcallback.service.container import build_services
from webcallback.store.billing import CreditStore, RateStore


def median_s(fn: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def settings(url: str) -> Any:
    env = {
        "WEBCALLBACK_DATABASE__URL": url,
        "WEBCALLBACK_SECRETS__KEY": base64.b64encode(os.urandom(32)).decode(),
        "WEBCALLBACK_ENGINE__KIND": "none",
    }
    return load_settings(path=os.devnull, environ=env)


def bench_store(name: str, url: str, deck: list[Rate], numbers: list[str], runs: int) -> None:
    svc = build_services(settings(url))
    store = RateStore(svc.db)
    took = median_s(lambda: store.import_plan("big", "USD", deck), runs)
    print(f"[{name}] import {len(deck)} rates (one transaction): {took:.2f} s")
    print(f"[{name}] load the plan into memory: {median_s(lambda: store.load_deck('big'), runs):.2f} s")
    loaded = store.load_deck("big")
    assert loaded is not None
    asyncio.run(bench_gate(name, svc, numbers))
    svc.close()


async def bench_gate(name: str, svc: Any, numbers: list[str]) -> None:
    """Per callback: admit (deck lookup of both legs, one conditional UPDATE + INSERT), then settle."""
    enc, kid = svc.cipher.encrypt("bench", "pw")
    acct = svc.accounts.add("bench", password_enc=enc, key_id=kid, plan="big")
    CreditStore(svc.db).topup(acct.id, Decimal(1_000_000))
    billing = svc.billing
    await billing.decks.get("big")
    admit, settle = [], []
    for i, number in enumerate(numbers[:500]):
        account = svc.accounts.get("bench")
        start = time.perf_counter()
        await billing.admit(account, number, numbers[-1 - i], f"bench{i}")
        admit.append(time.perf_counter() - start)
        cb = type("CB", (), {"id": f"bench{i}"})()
        start = time.perf_counter()
        await billing.settle(
            cb,
            CallOutcome(
                callback_id=f"bench{i}", completed=True, reason=FailureReason.COMPLETED, bridged_s=61
            ),
        )
        settle.append(time.perf_counter() - start)
    print(f"[{name}] admit (rate both legs + reserve): median {statistics.median(admit) * 1e6:.0f} µs")
    print(f"[{name}] settle (charge + ledger row): median {statistics.median(settle) * 1e6:.0f} µs")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()

    text = make_deck_csv(args.count)
    lines = text.splitlines(keepends=True)
    print(f"deck: {args.count} prefixes, {len(text) / 1e6:.1f} MB CSV")
    print(f"parse + check CSV: {median_s(lambda: parse_deck(lines), args.runs):.2f} s")
    deck = parse_deck(lines)

    prefixes = make_prefixes(args.count)
    numbers = numbers_for(prefixes, 100_000)
    from webcallback.billing.rating import RateDeck

    memory = RateDeck("big", "USD", {r.prefix: r for r in deck})
    per = [median_s(lambda: [memory.lookup(n) for n in numbers], 1) / len(numbers) for _ in range(5)]
    print(f"longest-prefix lookup in memory: median {statistics.median(per) * 1e9:.0f} ns per number")
    miss = ["+0" + n[1:] for n in numbers]  # no prefix starts with 0: the worst case, every probe misses
    per = [median_s(lambda: [memory.lookup(n) for n in miss], 1) / len(miss) for _ in range(5)]
    print(f"lookup of a number with no rate (all probes miss): median {statistics.median(per) * 1e9:.0f} ns")

    with ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        bench_store("sqlite", f"sqlite:///{tmp}/bench.db", deck, numbers, args.runs)
        if not args.no_postgres:
            from tests.pgserver import postgres_server

            server = stack.enter_context(postgres_server())
            bench_store("postgres", server.create_database(), deck, numbers, args.runs)


if __name__ == "__main__":
    main()
