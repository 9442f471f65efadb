"""The billing service: the credit gate of the callback endpoint, the settlement hook the dispatcher
calls when a callback ends, and the balance and rate checkers.

Rate plans are held in memory per node (`DeckCache`): a lookup is a few dict probes. A node trusts
its copy for `billing.deck_refresh` seconds, then asks the store for the plan's version (one
primary-key read) and reloads it when an import has bumped it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from webcallback.billing.display import balance_string, combined_rate_string
from webcallback.billing.rating import Rate, RateDeck, affordable_seconds, call_cost, money
from webcallback.billing.settlement import Settlement, release, settle
from webcallback.config import Settings
from webcallback.domain import Admission, CallOutcome
from webcallback.errors import Forbidden
from webcallback.numbers import InvalidNumber, to_e164
from webcallback.store.accounts import Account
from webcallback.store.billing import CreditStore, RateStore, Reservation, leg_rate
from webcallback.store.billing_schema import RESERVED
from webcallback.store.callbacks import COMPLETED, FINAL_STATES, Callback
from webcallback.store.db import Database

log = logging.getLogger(__name__)

RESERVE_ATTEMPTS = 5  # another request took the credit between our read and our reserve: re-read


class DeckCache:
    """Rate plans in memory, keyed by name; re-validated against the store's version."""

    def __init__(
        self, db: Database, store: RateStore, refresh: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._db = db
        self._store = store
        self._refresh = refresh
        self._clock = clock
        self._decks: dict[str, tuple[RateDeck | None, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, plan: str) -> RateDeck | None:
        cached = self._decks.get(plan)
        if cached is not None and self._clock() - cached[1] < self._refresh:
            return cached[0]
        async with self._locks.setdefault(plan, asyncio.Lock()):
            cached = self._decks.get(plan)
            if cached is not None and self._clock() - cached[1] < self._refresh:
                return cached[0]
            return await self._revalidate(plan, cached[0] if cached else None)

    async def _revalidate(self, plan: str, deck: RateDeck | None) -> RateDeck | None:
        version = await self._db.run(self._store.version, plan)
        if deck is None or version != deck.version:
            deck = None if version is None else await self._db.run(self._store.load_deck, plan)
            log.info("rate plan %s loaded: version %s, %d prefixes", plan, version, len(deck or ()))
        self._decks[plan] = (deck, self._clock())
        return deck

    def invalidate(self, plan: str | None = None) -> None:
        if plan is None:
            self._decks.clear()
        else:
            self._decks.pop(plan, None)


@dataclass(frozen=True)
class Balance:
    balance: Decimal
    reserved: Decimal
    currency: str

    def fields(self) -> dict[str, str | float]:
        return {
            "balanceString": balance_string(self.balance, self.reserved, self.currency),
            "balance": float(self.balance),
            "currency": self.currency,
            "reserved": float(self.reserved),
            "available": float(self.balance - self.reserved),
        }


class BillingService:
    """Implements `CreditGate` (`admit`) and the `on_callback_finished` hook (`settle`)."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = self._settings = settings
        self._cfg = settings.billing
        self._db = db
        self.rates = RateStore(db)
        self.credits = CreditStore(db)
        self.decks = DeckCache(db, self.rates, self._cfg.deck_refresh)

    # ---- the credit gate ---------------------------------------------------------------------

    async def admit(self, account: Account, destination: str, callback: str, callback_id: str) -> Admission:
        legs = await self._legs(account, destination, callback)
        ceiling = max(1, int(self._longest_call()))
        min_cost = call_cost(legs, min(self._cfg.min_duration, ceiling))
        cap_cost = call_cost(legs, ceiling)
        available: Decimal | None = account.available
        for _attempt in range(RESERVE_ATTEMPTS):
            if available is None or available < min_cost:
                break
            seconds = affordable_seconds(legs, min(available, cap_cost), ceiling)
            if seconds < 1:
                break
            reservation = self._reservation(account, callback_id, legs, seconds)
            if await self._db.run(self.credits.reserve, reservation):
                return Admission(max_duration=float(seconds))
            available = await self._db.run(self.credits.available, account.id)
        raise Forbidden(self._cfg.not_enough_credit_message, error_id="insufficient-credit")

    def _longest_call(self) -> float:
        """`billing.max_reservation`, capped by `calls.max_duration` unless that is 0 (the
        service's own limit is off: the dispatcher leaves the call to the credit)."""
        service_limit = self._settings.calls.max_duration
        if service_limit <= 0:
            return self._cfg.max_reservation
        return min(self._cfg.max_reservation, service_limit)

    async def _legs(self, account: Account, destination: str, callback: str) -> list[Rate]:
        deck = await self.deck_of(account)
        if deck is None:
            raise self._no_rate(destination)
        if deck.currency != account.currency:
            raise Forbidden(
                "This account's currency does not match its rate plan.", error_id="currency-mismatch"
            )
        numbers = [destination, callback] if self._cfg.bill_callback_leg else [destination]
        legs = []
        for number in numbers:
            rate = deck.lookup(number)
            if rate is None:
                raise self._no_rate(number)
            legs.append(rate)
        return legs

    def _no_rate(self, number: str) -> Forbidden:
        return Forbidden(self._cfg.no_rate_message.replace("{number}", number), error_id="no-rate")

    def plan_of(self, account: Account | None) -> str:
        return (account.plan if account else None) or self._cfg.default_plan

    async def deck_of(self, account: Account | None) -> RateDeck | None:
        return await self.decks.get(self.plan_of(account))

    def _reservation(self, account: Account, callback_id: str, legs: list[Rate], seconds: int) -> Reservation:
        return Reservation(
            callback_id=callback_id,
            account_id=account.id,
            username=account.username,
            plan=self.plan_of(account),
            currency=account.currency,
            amount=call_cost(legs, seconds),
            max_duration=float(seconds),
            destination=legs[0],
            callback=legs[1] if len(legs) > 1 else None,
        )

    # ---- settlement ----------------------------------------------------------------------------

    async def settle(self, callback: Callback, outcome: CallOutcome) -> None:
        """The `on_callback_finished` hook: charge from the outcome, or release. Idempotent."""
        row = await self._db.run(self.credits.charge_row, callback.id)
        if row is None or row.state != RESERVED:
            return
        dest = leg_rate(row, "dest")
        if dest is None:  # pragma: no cover - every reservation records the destination rate
            return
        result = settle(
            outcome,
            destination=dest,
            callback=leg_rate(row, "cb"),
            reserved=money(str(row.reserved)),
            leg_duration=self._cfg.leg_duration,
        )
        await self._finish(result)

    async def _finish(self, result: Settlement) -> None:
        if await self._db.run(self.credits.finish, result):
            log.info(
                "callback %s: charged %s%s",
                result.state,
                result.total,
                " (capped at the reservation)" if result.capped else "",
                extra={"callback_id": result.callback_id},
            )

    async def release_stale(self, older_than: float, now: datetime | None = None) -> int:
        """Release reservations of callbacks that failed (or were never stored) without their
        reservation being released, e.g. after a crash; only those older than `older_than`
        seconds. A completed callback whose settlement failed keeps its reservation (releasing it
        would make the call free): it is logged for the operator instead."""
        cutoff = (now or datetime.now(UTC)) - timedelta(seconds=older_than)
        count = 0
        for callback_id, state in await self._db.run(self.credits.stale, cutoff):
            if state == COMPLETED:
                log.warning("callback completed but was never settled; reservation kept",
                            extra={"callback_id": callback_id})  # fmt: skip
                continue
            ended = state is None or state in FINAL_STATES
            if ended and await self._db.run(self.credits.finish, release(callback_id, "stale")):
                count += 1
        return count

    # ---- the balance and rate checkers ---------------------------------------------------------

    def balance(self, account: Account) -> Balance:
        return Balance(balance=account.balance, reserved=account.reserved, currency=account.currency)

    async def rate_strings(self, account: Account | None, target: str) -> dict[str, str]:
        """`callRateString` for a call to `target`: the destination's price per minute, plus the
        callback leg's when the account has a callback number and that leg is billed."""
        deck = await self.deck_of(account)
        region = (account.region if account else None) or self._settings.numbers.default_region
        number = rating_number(target, region)
        rate = deck.lookup(number) if deck and number else None
        call = self._cfg.no_rate_string
        if deck is not None and rate is not None:
            legs = [rate]
            if account and account.callback_number and self._cfg.bill_callback_leg:
                cb = deck.lookup(account.callback_number)
                legs += [cb] if cb else []
            call = combined_rate_string(legs, deck.currency)
        return {"callRateString": call, "messageRateString": self._cfg.message_rate_string}


def rating_number(raw: str, region: str) -> str | None:
    """Digits to rate. While the user types, the app asks about incomplete numbers, so an
    international number ('+…' or '00…') is rated by its digits as they are; a national one is
    normalised with the account's region and rated only once it is a possible number."""
    text = raw.strip()
    if text.startswith(("+", "00")):
        digits = "".join(ch for ch in text.removeprefix("00") if ch.isdigit())
        return digits or None
    try:
        return to_e164(text, region).lstrip("+")
    except InvalidNumber:
        return None
