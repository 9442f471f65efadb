"""The pure rating arithmetic: increments, charges, what a budget affords, longest-prefix lookup,
and how money is shown."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.billing.conftest import DECK
from webcallback.billing.display import balance_string, combined_rate_string, format_money, format_rate
from webcallback.billing.rating import (
    Rate,
    RateDeck,
    affordable_seconds,
    billable_seconds,
    call_cost,
    leg_charge,
)

D = Decimal


@pytest.mark.parametrize(
    ("duration", "first", "nxt", "billed"),
    [
        (0, 60, 60, 0),
        (0.4, 60, 60, 60),
        (1, 60, 60, 60),
        (60, 60, 60, 60),
        (60.2, 60, 60, 120),
        (61, 60, 60, 120),
        (120, 60, 60, 120),
        (121, 60, 60, 180),
        (1, 30, 6, 30),
        (30, 30, 6, 30),
        (31, 30, 6, 36),
        (36, 30, 6, 36),
        (37, 30, 6, 42),
        (95, 30, 6, 96),
        (0.4, 1, 1, 1),
        (59.1, 1, 1, 60),
        (61, 1, 1, 61),
        (7, 0, 6, 12),
        (6, 0, 6, 6),
    ],
)
def test_billable_seconds_follow_the_increments(duration: float, first: int, nxt: int, billed: int) -> None:
    assert billable_seconds(duration, first, nxt) == billed


UK = Rate(prefix="44", price_per_minute=D("0.02"))
UK_MOBILE = Rate(
    prefix="447", price_per_minute=D("0.10"), connection_fee=D("0.05"), first_increment=30, next_increment=6
)
US = Rate(prefix="1", price_per_minute=D("0.01"), first_increment=1, next_increment=1)


@pytest.mark.parametrize(
    ("rate", "duration", "charge"),
    [
        (UK, 0, D("0")),
        (UK, 1, D("0.02")),
        (UK, 60, D("0.02")),
        (UK, 61, D("0.04")),
        (UK_MOBILE, 0, D("0.05")),  # answered, no billable time: the connection fee alone
        (UK_MOBILE, 10, D("0.10")),  # 0.05 + 30 s of 0.10/min
        (UK_MOBILE, 45, D("0.13")),  # 0.05 + 48 s
        (US, 61, D("0.010167")),  # 61/60 of a cent, to 6 decimals
        (US, 3600, D("0.60")),
    ],
)
def test_leg_charge(rate: Rate, duration: float, charge: Decimal) -> None:
    assert leg_charge(rate, duration) == charge


def test_call_cost_adds_both_legs() -> None:
    assert call_cost([UK_MOBILE, US], 45) == D("0.13") + D("0.0075")


@pytest.mark.parametrize(
    ("legs", "budget", "ceiling", "seconds"),
    [
        ([UK, US], D("0.03"), 3600, 60),  # one UK minute + 60 s of US
        ([UK, US], D("0.0299"), 3600, 59),  # 0.02 + 59/60 of a cent
        ([UK, US], D("0.0201"), 3600, 0),  # not even one second of both legs
        ([UK_MOBILE], D("0.10"), 3600, 30),
        ([UK_MOBILE], D("0.11"), 3600, 36),
        ([US], D("100"), 3600, 3600),  # capped by the ceiling
        ([Rate(prefix="9", price_per_minute=D(0))], D(0), 600, 600),  # free calls
    ],
)
def test_affordable_seconds(legs: list[Rate], budget: Decimal, ceiling: int, seconds: int) -> None:
    assert affordable_seconds(legs, budget, ceiling) == seconds
    if 0 < seconds < ceiling:
        assert call_cost(legs, seconds) <= budget < call_cost(legs, seconds + 1)


def test_longest_prefix_wins() -> None:
    deck = RateDeck("default", "USD", {r.prefix: r for r in DECK})
    assert deck.lookup("+447700900123").prefix == "447"  # type: ignore[union-attr]  # None fails the test
    assert deck.lookup("442071234567").prefix == "44"  # type: ignore[union-attr]  # None fails the test
    assert deck.lookup("+12125551234").prefix == "1"  # type: ignore[union-attr]  # None fails the test
    assert deck.lookup("+33142000000") is None
    assert deck.lookup("") is None


@pytest.mark.parametrize(
    ("bad", "kw"),
    [("4a", {}), ("", {}), ("44", {"price_per_minute": D(-1)}), ("44", {"next_increment": 0})],
)
def test_a_rate_checks_itself(bad: str, kw: dict[str, object]) -> None:
    values: dict[str, object] = {"prefix": bad, "price_per_minute": D("0.01"), **kw}
    with pytest.raises(ValueError):
        Rate(**values)  # type: ignore[arg-type]  # deliberately bad values, taken as objects


def test_display() -> None:
    assert format_money(D("12.345"), "USD") == "$12.35"
    assert format_money(D("-3"), "EUR") == "-€3.00"
    assert format_money(D("12.3"), "CZK") == "12.30 CZK"
    assert format_rate(D("0.02"), D(0), "USD") == "$0.02/min"
    assert format_rate(D("0.0125"), D("0.1"), "GBP") == "£0.0125/min + £0.10"
    assert combined_rate_string([UK, US], "USD") == "$0.03/min"
    assert balance_string(D("12.34"), D(0), "USD") == "$12.34"
    assert balance_string(D("12.34"), D("1.5"), "USD") == "$12.34 ($1.50 reserved)"


@settings(max_examples=300, deadline=None)
@given(
    price=st.decimals(min_value=0, max_value=2, places=4),
    fee=st.decimals(min_value=0, max_value=1, places=2),
    first=st.integers(min_value=0, max_value=120),
    nxt=st.integers(min_value=1, max_value=60),
    budget=st.decimals(min_value=0, max_value=50, places=6),
)
def test_the_affordable_duration_is_the_longest_that_fits(
    price: Decimal, fee: Decimal, first: int, nxt: int, budget: Decimal
) -> None:
    legs = [
        Rate(
            prefix="1", price_per_minute=price, connection_fee=fee, first_increment=first, next_increment=nxt
        ),
        US,
    ]
    seconds = affordable_seconds(legs, budget, 3600)
    if seconds == 0:
        assert call_cost(legs, 1) > budget
    else:
        assert call_cost(legs, seconds) <= budget
        assert seconds == 3600 or call_cost(legs, seconds + 1) > budget
