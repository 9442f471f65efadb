"""Billing store: rate plans, reservations and settlements, the ledger. Synchronous SQLAlchemy Core,
called through `Database.run()` like the rest of the store.

Every money movement is a single transaction, and the ones that race are conditional statements
whose row count decides the winner, on SQLite and PostgreSQL alike:

- reserve: `UPDATE accounts SET reserved = reserved + :r WHERE id = :id AND balance - reserved >= :r`
  (PostgreSQL re-checks the condition on the newest row version after waiting for the row lock);
- settle / release: `UPDATE charges SET state = ... WHERE callback_id = :id AND state = 'reserved'`,
  so a settlement runs once however often it is asked for;
- a balance change and its ledger row are written in the same transaction.

SQLite stores Numeric as binary floating point, so sums are rounded to 6 decimals in SQL and the
credit condition allows half a micro-unit of float noise (`EPSILON`); on PostgreSQL (exact numeric)
that is the same as `>= :r`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, text, update

from webcallback.billing.rating import Rate, RateDeck, RawRate, money
from webcallback.billing.settlement import Settlement
from webcallback.store.billing_schema import RELEASED, RESERVED, SETTLED, charges, ledger, rate_plans, rates
from webcallback.store.db import Database
from webcallback.store.prepared import Prepared, PreparedInsert
from webcallback.store.schema import accounts, callbacks

EPSILON = Decimal("0.0000005")
IMPORT_CHUNK = 5000


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _money(value: Any) -> Decimal | None:
    return None if value is None else money(Decimal(str(value)))


@dataclass(frozen=True, kw_only=True)
class PlanInfo:
    name: str
    currency: str
    version: int
    rate_count: int
    updated_at: datetime


@dataclass(frozen=True, kw_only=True)
class LedgerEntry:
    id: int
    username: str
    kind: str
    amount: Decimal
    balance_after: Decimal
    currency: str
    callback_id: str | None
    note: str | None
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "kind": self.kind,
            "amount": str(self.amount),
            "balance_after": str(self.balance_after),
            "currency": self.currency,
            "callback_id": self.callback_id,
            "note": self.note,
            "created_at": self.created_at.isoformat(),
        }


def _leg_values(leg: str, rate: Rate | None) -> dict[str, Any]:
    if rate is None:
        return {}
    return {
        f"{leg}_prefix": rate.prefix,
        f"{leg}_price": rate.price_per_minute,
        f"{leg}_fee": rate.connection_fee,
        f"{leg}_first": rate.first_increment,
        f"{leg}_next": rate.next_increment,
    }


def leg_rate(row: Any, leg: str) -> Rate | None:
    """The rate a charge row recorded for one leg (None: the leg is not billed)."""
    m = row._mapping
    if m[f"{leg}_prefix"] is None:
        return None
    return Rate(
        prefix=m[f"{leg}_prefix"],
        price_per_minute=_money(m[f"{leg}_price"]) or Decimal(0),
        connection_fee=_money(m[f"{leg}_fee"]) or Decimal(0),
        first_increment=m[f"{leg}_first"],
        next_increment=m[f"{leg}_next"],
    )


_DECK_QUERY = text(
    "SELECT prefix, price_per_minute, connection_fee, first_increment, next_increment, description "
    "FROM rates WHERE plan = :plan"
)


class RateStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def import_plan(
        self,
        name: str,
        currency: str,
        deck: list[Rate],
        progress: Callable[[int], None] = lambda _n: None,
    ) -> PlanInfo:
        """Replace the plan's rates with `deck` in one transaction (all or nothing) and bump its
        version, which tells every node to reload it."""
        with self._db.begin() as conn:
            old = conn.execute(select(rate_plans.c.version).where(rate_plans.c.name == name)).scalar()
            values = dict(currency=currency, version=(old or 0) + 1, rate_count=len(deck), updated_at=_now())
            if old is None:
                conn.execute(insert(rate_plans).values(name=name, **values))
            else:
                conn.execute(update(rate_plans).where(rate_plans.c.name == name).values(**values))
                conn.execute(delete(rates).where(rates.c.plan == name))
            for chunk in _chunks(deck, IMPORT_CHUNK):
                conn.execute(insert(rates), [_rate_row(name, r) for r in chunk])
                progress(len(chunk))
        return self.get_plan(name)

    def find_plan(self, name: str) -> PlanInfo | None:
        with self._db.connect() as conn:
            row = conn.execute(select(rate_plans).where(rate_plans.c.name == name)).first()
        return None if row is None else _plan(row)

    def get_plan(self, name: str) -> PlanInfo:
        plan = self.find_plan(name)
        if plan is None:
            raise LookupError(name)
        return plan

    def plans(self) -> list[PlanInfo]:
        with self._db.connect() as conn:
            return [_plan(r) for r in conn.execute(select(rate_plans).order_by(rate_plans.c.name))]

    def version(self, name: str) -> int | None:
        with self._db.connect() as conn:
            v = conn.execute(select(rate_plans.c.version).where(rate_plans.c.name == name)).scalar()
        return None if v is None else int(v)

    def load_deck(self, name: str) -> RateDeck | None:
        """The whole plan in memory, for longest-prefix lookups."""
        with self._db.connect() as conn:
            plan = conn.execute(select(rate_plans).where(rate_plans.c.name == name)).first()
            if plan is None:
                return None
            # text(): raw driver values, no per-row Decimal processing (a third of the load time).
            rows = conn.execute(_DECK_QUERY, {"plan": name}).all()
        deck: dict[str, RawRate] = {r[0]: (r[1], r[2], r[3], r[4], r[5]) for r in rows}
        return RateDeck(name, plan.currency, deck, version=plan.version)

    def rates_of(self, name: str, limit: int | None = None) -> list[Rate]:
        query = select(rates).where(rates.c.plan == name).order_by(rates.c.prefix).limit(limit)
        with self._db.connect() as conn:
            return [_rate_from_row(r) for r in conn.execute(query)]


def _chunks(items: list[Rate], size: int) -> Iterator[list[Rate]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _rate_row(plan: str, r: Rate) -> dict[str, Any]:
    return dict(
        plan=plan,
        prefix=r.prefix,
        price_per_minute=r.price_per_minute,
        connection_fee=r.connection_fee,
        first_increment=r.first_increment,
        next_increment=r.next_increment,
        description=r.description,
    )


def _rate_from_row(row: Any) -> Rate:
    return Rate(
        prefix=row.prefix,
        price_per_minute=_money(row.price_per_minute) or Decimal(0),
        connection_fee=_money(row.connection_fee) or Decimal(0),
        first_increment=row.first_increment,
        next_increment=row.next_increment,
        description=row.description,
    )


def _plan(row: Any) -> PlanInfo:
    return PlanInfo(
        name=row.name,
        currency=row.currency,
        version=row.version,
        rate_count=row.rate_count,
        updated_at=_aware(row.updated_at) or _now(),
    )


@dataclass(frozen=True, kw_only=True)
class Reservation:
    callback_id: str
    account_id: int
    username: str
    plan: str
    currency: str
    amount: Decimal
    max_duration: float
    destination: Rate
    callback: Rate | None


# Built once; executed with a parameter dict they are compiled once (see accounts._FIND_BY_USERNAME).
# The UPDATE's parameters are not named after columns of `accounts` (SQLAlchemy reserves those).
_AVAILABLE = Prepared(
    select(accounts.c.balance, accounts.c.reserved).where(accounts.c.id == bindparam("account_id"))
)
_INSERT_CHARGE = PreparedInsert(charges)
_RESERVE = Prepared(
    update(accounts)
    .where(
        accounts.c.id == bindparam("r_account_id"),
        accounts.c.balance - accounts.c.reserved >= bindparam("r_minimum"),
    )
    .values(reserved=func.round(accounts.c.reserved + bindparam("r_amount"), 6))
)


class CreditStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # ---- reservations --------------------------------------------------------------------

    def available(self, account_id: int) -> Decimal | None:
        with self._db.connect() as conn:
            row = _AVAILABLE.execute(conn, {"account_id": account_id}).first()
        return None if row is None else money(Decimal(str(row["balance"])) - Decimal(str(row["reserved"])))

    def reserve(self, r: Reservation) -> bool:
        """Hold `r.amount` of the account's credit for the callback, if it is still available."""
        with self._db.begin() as conn:
            held = _RESERVE.execute(
                conn, {"r_account_id": r.account_id, "r_minimum": r.amount - EPSILON, "r_amount": r.amount}
            )
            if held.rowcount != 1:
                return False
            row = _reservation_row(r)
            _INSERT_CHARGE.execute(conn, row)
        return True

    def charge_row(self, callback_id: str) -> Any:
        with self._db.connect() as conn:
            return conn.execute(select(charges).where(charges.c.callback_id == callback_id)).first()

    def finish(self, s: Settlement) -> bool:
        """Settle or release a reservation, once: False if it was already finished (or never held)."""
        with self._db.begin() as conn:
            row = conn.execute(select(charges).where(charges.c.callback_id == s.callback_id)).first()
            if row is None or row.state != RESERVED:
                return False
            done = conn.execute(
                update(charges)
                .where(charges.c.callback_id == s.callback_id, charges.c.state == RESERVED)
                .values(**_settlement_values(s))
            )
            if done.rowcount != 1:
                return False
            self._unhold(conn, row, s)
        return True

    def _unhold(self, conn: Connection, row: Any, s: Settlement) -> None:
        if row.account_id is None:  # the account was deleted meanwhile
            return
        reserved = Decimal(str(row.reserved))
        conn.execute(
            update(accounts)
            .where(accounts.c.id == row.account_id)
            .values(
                reserved=func.round(accounts.c.reserved - reserved, 6),
                balance=func.round(accounts.c.balance - s.total, 6),
            )
        )
        if s.state == SETTLED and s.total > 0:
            _append(conn, row.account_id, "call", -s.total, callback_id=s.callback_id, note=s.reason)

    def stale(self, older_than: datetime) -> list[tuple[str, str | None]]:
        """Reservations held since before `older_than`, with their callback's state (None: no
        callback row was ever written)."""
        query = (
            select(charges.c.callback_id, callbacks.c.state)
            .select_from(charges.outerjoin(callbacks, callbacks.c.id == charges.c.callback_id))
            .where(charges.c.state == RESERVED, charges.c.created_at < older_than)
        )
        with self._db.connect() as conn:
            return [(r.callback_id, r.state) for r in conn.execute(query)]

    # ---- balance changes outside calls -------------------------------------------------------

    def topup(self, account_id: int, amount: Decimal, note: str | None = None) -> LedgerEntry:
        with self._db.begin() as conn:
            conn.execute(
                update(accounts)
                .where(accounts.c.id == account_id)
                .values(balance=func.round(accounts.c.balance + amount, 6), updated_at=_now())
            )
            return _append(conn, account_id, "topup", amount, note=note)

    def set_balance(self, account_id: int, balance: Decimal, note: str | None = None) -> LedgerEntry:
        """Set the balance to an amount (an adjustment: the ledger records the difference)."""
        with self._db.begin() as conn:
            old = conn.execute(select(accounts.c.balance).where(accounts.c.id == account_id)).scalar_one()
            conn.execute(
                update(accounts).where(accounts.c.id == account_id).values(balance=balance, updated_at=_now())
            )
            return _append(conn, account_id, "adjust", money(balance - Decimal(str(old))), note=note)

    def ledger(self, account_id: int, limit: int | None = None) -> list[LedgerEntry]:
        query = select(ledger).where(ledger.c.account_id == account_id).order_by(ledger.c.id).limit(limit)
        with self._db.connect() as conn:
            return [_entry(r) for r in conn.execute(query)]

    # ---- CDRs ------------------------------------------------------------------------------

    def cdrs(self, start: datetime | None, end: datetime | None) -> list[dict[str, Any]]:
        """Charge rows joined with their callback (its columns prefixed `call_`, None when the
        callback row is missing), oldest first, for `cdr export`."""
        call_columns = [c.label("call_" + c.name) for c in callbacks.c]
        query = select(charges, *call_columns).select_from(
            charges.outerjoin(callbacks, callbacks.c.id == charges.c.callback_id)
        )
        if start is not None:
            query = query.where(charges.c.created_at >= start)
        if end is not None:
            query = query.where(charges.c.created_at < end)
        with self._db.connect() as conn:
            rows = conn.execute(query.order_by(charges.c.created_at, charges.c.callback_id))
            return [dict(r._mapping) for r in rows]


def _reservation_row(r: Reservation) -> dict[str, Any]:
    return dict(
        callback_id=r.callback_id,
        account_id=r.account_id,
        username=r.username,
        plan=r.plan,
        currency=r.currency,
        state=RESERVED,
        reserved=r.amount,
        max_duration=r.max_duration,
        capped=False,
        created_at=_now(),
        **_leg_values("dest", r.destination),
        **_leg_values("cb", r.callback),
    )


def _settlement_values(s: Settlement) -> dict[str, Any]:
    return dict(
        state=s.state,
        reason=s.reason[:64],
        dest_duration=s.dest_duration,
        dest_billed_s=s.dest_billed_s,
        dest_charge=s.dest_charge,
        cb_duration=s.cb_duration,
        cb_billed_s=s.cb_billed_s,
        cb_charge=s.cb_charge,
        total=s.total,
        capped=s.capped,
        settled_at=_now(),
    )


def _append(
    conn: Connection,
    account_id: int,
    kind: str,
    amount: Decimal,
    *,
    callback_id: str | None = None,
    note: str | None = None,
) -> LedgerEntry:
    acct = conn.execute(
        select(accounts.c.username, accounts.c.balance, accounts.c.currency).where(
            accounts.c.id == account_id
        )
    ).one()
    values = dict(
        account_id=account_id,
        username=acct.username,
        kind=kind,
        amount=amount,
        balance_after=money(Decimal(str(acct.balance))),
        currency=acct.currency,
        callback_id=callback_id,
        note=note,
        created_at=_now(),
    )
    new_id = conn.execute(insert(ledger).values(**values)).inserted_primary_key
    return _entry_from(dict(values, id=new_id[0] if new_id else 0))


def _entry(row: Any) -> LedgerEntry:
    return _entry_from(dict(row._mapping))


def _entry_from(data: dict[str, Any]) -> LedgerEntry:
    data.pop("account_id", None)
    data["amount"] = _money(data["amount"])
    data["balance_after"] = _money(data["balance_after"])
    data["created_at"] = _aware(data["created_at"])
    return LedgerEntry(**data)


__all__ = [
    "RELEASED",
    "RESERVED",
    "SETTLED",
    "CreditStore",
    "LedgerEntry",
    "PlanInfo",
    "RateStore",
    "Reservation",
]
