"""Rating arithmetic, pure: rates, billing increments, charges, and what a budget affords.

No I/O and no clock here. Money is `Decimal`, quantised to `MONEY_QUANTUM` (the store keeps
Numeric(18, 6)); durations are seconds. Increments follow the usual "first/next" notation: 30/6
bills the first 30 seconds as a block, then every started 6 seconds. A leg that was never answered
costs nothing; an answered leg pays its connection fee even if it lasted no billable time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

MONEY_QUANTUM = Decimal("0.000001")
SIXTY = Decimal(60)


def money(value: Decimal | int | str) -> Decimal:
    """Round to the store's precision (half up, like a till)."""
    return Decimal(value).quantize(MONEY_QUANTUM, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, kw_only=True)
class Rate:
    """One line of a rate deck: what calls to numbers starting with `prefix` cost."""

    prefix: str  # digits of the E.164 number without '+', e.g. "44" or "4475"
    price_per_minute: Decimal
    connection_fee: Decimal = Decimal(0)
    first_increment: int = 60  # seconds billed as soon as the leg is answered
    next_increment: int = 60  # then each started block of this many seconds
    description: str = ""

    def __post_init__(self) -> None:
        if not self.prefix.isdigit():
            raise ValueError(f"prefix {self.prefix!r} must be digits")
        if self.price_per_minute < 0 or self.connection_fee < 0:
            raise ValueError("prices must not be negative")
        if self.first_increment < 0 or self.next_increment < 1:
            raise ValueError("first_increment must be >= 0 and next_increment >= 1")

    @property
    def increments(self) -> str:
        return f"{self.first_increment}/{self.next_increment}"


def billable_seconds(duration: float, first: int, nxt: int) -> int:
    """Seconds billed for `duration` seconds of an answered leg. Whole seconds are rounded up
    first (60.2 s is 61 s), then the increments apply."""
    seconds = math.ceil(duration - 1e-9) if duration > 0 else 0
    if seconds <= first:
        return first if seconds > 0 else 0
    return first + math.ceil((seconds - first) / nxt) * nxt


def leg_charge(rate: Rate, duration: float) -> Decimal:
    """Connection fee plus the billable seconds at the per-minute price."""
    seconds = billable_seconds(duration, rate.first_increment, rate.next_increment)
    return money(rate.connection_fee + rate.price_per_minute * seconds / SIXTY)


@dataclass(frozen=True, kw_only=True)
class LegCharge:
    rate: Rate
    duration: float  # seconds the leg is charged for (before increments)
    billed_seconds: int
    charge: Decimal


def rate_leg(rate: Rate, duration: float) -> LegCharge:
    return LegCharge(
        rate=rate,
        duration=duration,
        billed_seconds=billable_seconds(duration, rate.first_increment, rate.next_increment),
        charge=leg_charge(rate, duration),
    )


def call_cost(rates: Iterable[Rate], duration: float) -> Decimal:
    """What `duration` seconds of every leg in `rates` costs together."""
    return sum((leg_charge(r, duration) for r in rates), Decimal(0))


def affordable_seconds(rates: list[Rate], budget: Decimal, ceiling: int) -> int:
    """The longest whole-second duration (at most `ceiling`) whose cost over all legs fits in
    `budget`; 0 when not even the connection fees fit. Cost never falls as time grows, so a binary
    search over seconds is exact."""
    if call_cost(rates, 1) > budget:
        return 0
    low, high = 1, max(ceiling, 1)
    if call_cost(rates, high) <= budget:
        return high
    while high - low > 1:  # invariant: cost(low) fits, cost(high) does not
        mid = (low + high) // 2
        if call_cost(rates, mid) <= budget:
            low = mid
        else:
            high = mid
    return low


def number_digits(e164: str) -> str:
    """ "+4420..." -> "4420..."."""
    return e164.lstrip("+")


# A rate as the store hands it over: (price_per_minute, connection_fee, first, next, description),
# numbers as the driver returns them. Turned into a `Rate` on first lookup, so loading a big plan
# costs one tuple per prefix instead of one validated dataclass and two Decimals.
RawRate = tuple[object, object, int, int, str]


def rate_from_raw(prefix: str, raw: RawRate) -> Rate:
    price, fee, first, nxt, description = raw
    return Rate(
        prefix=prefix,
        price_per_minute=money(str(price)),
        connection_fee=money(str(fee)),
        first_increment=int(first),
        next_increment=int(nxt),
        description=description or "",
    )


class RateDeck:
    """A plan's rates in memory: a dict keyed by prefix, probed from the longest possible prefix to
    the shortest, so a lookup costs at most ~15 dict probes whatever the deck's size."""

    def __init__(
        self, name: str, currency: str, rates: Mapping[str, Rate | RawRate], version: int = 0
    ) -> None:
        self.name = name
        self.currency = currency
        self.version = version
        self._rates: dict[str, Rate | RawRate] = dict(rates)
        self._longest = max((len(p) for p in self._rates), default=0)

    def __len__(self) -> int:
        return len(self._rates)

    def lookup(self, number: str) -> Rate | None:
        """The rate of the longest prefix of `number` (E.164, with or without '+')."""
        digits = number_digits(number)
        rates = self._rates
        for end in range(min(len(digits), self._longest), 0, -1):
            found = rates.get(digits[:end])
            if found is None:
                continue
            if isinstance(found, tuple):
                found = rates[digits[:end]] = rate_from_raw(digits[:end], found)
            return found
        return None
