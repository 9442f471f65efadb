"""The billing commands: rates import/lookup/list, account --plan/topup/ledger, cdr export."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.billing.conftest import UK_LANDLINE, UK_MOBILE, US_NUMBER, add_account, build, import_deck, invoke
from tests.billing.test_gate import finish, outcome, request
from webcallback.store.billing import RateStore

GOOD = """prefix,price_per_minute,connection_fee,first_increment,next_increment,description
44,0.02,0,60,60,United Kingdom
+447,0.10,0.05,30,6,United Kingdom mobile
1,0.01,,1,1,NANP
"""


def deck_file(tmp_path: Path, text: str, name: str = "deck.csv") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_import_lookup_and_list(cli: CliRunner, tmp_path: Path) -> None:
    r = invoke(cli, "rates", "import", deck_file(tmp_path, GOOD), "--plan", "retail")
    assert r.exit_code == 0, r.output
    assert "imported 3 rates into plan retail (USD, version 1)" in r.output
    r = invoke(cli, "rates", "lookup", "+44 7700 900123", "--plan", "retail")
    assert r.exit_code == 0 and "prefix 447 $0.10/min + $0.05 billed 30/6 United Kingdom mobile" in r.output
    r = invoke(cli, "rates", "lookup", "+33142000000", "--plan", "retail")
    assert r.exit_code == 1 and "no rate for +33142000000" in r.output
    r = invoke(cli, "rates", "list")
    header, row = r.output.splitlines()
    assert header.split() == ["PLAN", "CURRENCY", "RATES", "VERSION", "UPDATED"]
    assert row.split()[:4] == ["retail", "USD", "3", "1"]
    r = invoke(cli, "rates", "list", "--plan", "retail", "--json")
    assert [x["prefix"] for x in json.loads(r.output)] == ["1", "44", "447"]


BAD = [
    ("prefix,price\n44,0.1\n", 1, "unknown column 'price'"),
    ("price_per_minute\n0.1\n", 1, "the header lacks the column 'prefix'"),
    (GOOD + "33,abc,0,60,60,France\n", 5, "price_per_minute 'abc' is not a number"),
    (GOOD + "\n33,0.1,0,60,0,France\n", 6, "first_increment must be >= 0 and next_increment >= 1"),
    (GOOD + "3a,0.1\n", 5, "prefix '3a' must be 1 to 15 digits"),
    (GOOD + "44,0.03\n", 5, "prefix 44 already given on line 2"),
    (GOOD + "33,0.1,-1\n", 5, "connection_fee '-1' must be a number, zero or more"),
    (GOOD + "33,0.1,0,1.5\n", 5, "first_increment '1.5' must be a whole number"),
    (GOOD + "33,0.1,0,60,60,France,extra\n", 5, "7 fields, but the header has 6"),
    (GOOD + "33,0.0000001\n", 5, "price_per_minute '0.0000001' has more than 6 decimals"),
]


@pytest.mark.parametrize(("text", "line", "message"), BAD)
def test_a_bad_row_is_reported_by_line_and_nothing_is_imported(
    cli: CliRunner, db_url: str, tmp_path: Path, text: str, line: int, message: str
) -> None:
    assert (
        invoke(
            cli, "rates", "import", deck_file(tmp_path, "prefix,price_per_minute\n9,1\n"), "--plan", "p"
        ).exit_code
        == 0
    )
    r = invoke(cli, "rates", "import", deck_file(tmp_path, text, "bad.csv"), "--plan", "p")
    assert r.exit_code == 1
    assert f"line {line}: {message}" in r.output and "nothing imported" in r.output
    svc = build(db_url)
    try:  # the plan still holds the earlier deck, untouched
        assert [x.prefix for x in RateStore(svc.db).rates_of("p")] == ["9"]
        assert RateStore(svc.db).get_plan("p").version == 1
    finally:
        svc.close()


def test_an_import_failing_midway_leaves_the_plan_as_it_was(db_url: str) -> None:
    svc = build(db_url)
    try:
        import_deck(svc)
        store = RateStore(svc.db)

        def progress(_n: int) -> None:
            raise RuntimeError("disk full")

        with pytest.raises(RuntimeError):
            store.import_plan("default", "USD", store.rates_of("default")[:1], progress=progress)
        assert len(store.rates_of("default")) == 3
        assert (store.get_plan("default").rate_count, store.get_plan("default").version) == (3, 1)
    finally:
        svc.close()


def test_account_plan_topup_set_and_ledger(cli: CliRunner, tmp_path: Path) -> None:
    invoke(cli, "rates", "import", deck_file(tmp_path, GOOD), "--plan", "retail")
    r = invoke(cli, "account", "add", "bob", "--password", "pw123456", "--credit", "5", "--plan", "retail")
    assert r.exit_code == 0, r.output
    r = invoke(cli, "account", "topup", "bob", "2.50", "--note", "card")
    assert "bob: +2.5 USD, balance 7.5" in r.output
    assert invoke(cli, "account", "set", "bob", "--credit", "7", "--plan", "nosuch").exit_code == 0
    r = invoke(cli, "account", "show", "bob")
    assert json.loads(r.output)["plan"] == "nosuch" and json.loads(r.output)["balance"] == "7"
    r = invoke(cli, "account", "ledger", "bob", "--json")
    entries = [(e["kind"], e["amount"], e["balance_after"], e["note"]) for e in json.loads(r.output)]
    assert entries == [
        ("topup", "5.000000", "5.000000", "opening balance"),
        ("topup", "2.500000", "7.500000", "card"),
        ("adjust", "-0.500000", "7.000000", "account set --credit"),
    ]
    assert invoke(cli, "account", "topup", "bob", "-1").exit_code == 2
    assert invoke(cli, "account", "ledger", "nobody").exit_code == 1


async def test_cdr_export_has_both_legs(cli: CliRunner, db_url: str) -> None:
    svc = build(db_url)
    try:
        import_deck(svc)
        add_account(svc, credit="5")
        talked = await request(svc, UK_MOBILE, US_NUMBER)
        await finish(svc, talked, outcome(talked, 95))
        failed = await request(svc, UK_LANDLINE, US_NUMBER)
        await finish(svc, failed, outcome(failed, 0, completed=False))
        svc.callbacks.transition(talked.id, "queued", "completed")
    finally:
        svc.close()
    r = invoke(cli, "cdr", "export", "--format", "csv", "--from", "2000-01-01")
    rows = list(csv.DictReader(io.StringIO(r.output)))
    assert [row["callback_id"] for row in rows] == [talked.id, failed.id]
    first = rows[0]
    assert (first["destination"], first["callback"], first["call_state"], first["charge_state"]) == (
        UK_MOBILE,
        US_NUMBER,
        "completed",
        "settled",
    )
    assert (first["dest_prefix"], first["dest_rate"], first["dest_fee"], first["dest_increments"]) == (
        "447",
        "0.100000",
        "0.050000",
        "30/6",
    )
    assert (first["dest_billed_s"], first["dest_charge"], first["cb_billed_s"], first["cb_charge"]) == (
        "96",
        "0.210000",
        "95",
        "0.015833",
    )
    assert Decimal(first["total"]) == Decimal("0.225833")
    assert (rows[1]["charge_state"], rows[1]["total"]) == ("released", "0.000000")
    r = invoke(cli, "cdr", "export", "--format", "json", "--to", "2000-01-01")
    assert json.loads(r.output) == []
    r = invoke(cli, "cdr", "export", "--format", "json")
    assert json.loads(r.output)[0]["cb_increments"] == "1/1"


def test_release_stale_from_the_cli(cli: CliRunner, db_url: str) -> None:
    svc = build(db_url)
    try:
        import_deck(svc)
        add_account(svc, credit="5")
        cb = asyncio.run(request(svc, UK_LANDLINE, US_NUMBER))
        svc.callbacks.transition(cb.id, "queued", "failed", reason="node died")
    finally:
        svc.close()
    assert "released 0 reservations" in invoke(cli, "billing", "release-stale").output
    assert "released 1 reservation" in invoke(cli, "billing", "release-stale", "--older-than", "0").output
