"""A 100,000-prefix deck imports (through the CLI, one transaction) and answers longest-prefix
lookups. Timing lives in bench/rates.py and BENCHMARKS.md, not here."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.billing.bigdeck import make_deck_csv, make_prefixes, numbers_for
from tests.billing.conftest import build, invoke
from webcallback.store.billing import RateStore

COUNT = 100_000


@pytest.mark.long
async def test_a_100k_prefix_deck_imports_and_looks_up(cli: CliRunner, db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text(make_deck_csv(COUNT), encoding="utf-8")
    r = invoke(cli, "rates", "import", str(path), "--plan", "big")
    assert r.exit_code == 0, r.output
    assert f"imported {COUNT} rates" in r.output
    svc = build(db_url)
    try:
        assert svc.billing is not None
        deck = await svc.billing.decks.get("big")
        assert deck is not None and len(deck) == COUNT
        prefixes = make_prefixes(COUNT)
        known = set(prefixes)
        for number in numbers_for(prefixes, 2000):
            rate = deck.lookup(number)
            assert rate is not None
            digits = number[1:]
            longest = max((digits[:n] for n in range(1, len(digits) + 1) if digits[:n] in known), key=len)
            assert rate.prefix == longest
        assert RateStore(svc.db).get_plan("big").rate_count == COUNT
    finally:
        svc.close()
