"""What an account has spent, read from billing's `charges` table, for the daily spend cap
(`security.limits.spend_per_day`). A settled charge counts its total; a reservation still open
counts what it holds (a call in progress may cost that much); a released one counts nothing."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import case, func, select

from webcallback.billing.settlement import RELEASED
from webcallback.store.accounts import Account
from webcallback.store.billing_schema import charges
from webcallback.store.db import Database


class ChargesSpendMeter:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def spent_since(self, account: Account, since: datetime) -> Decimal:
        return await self._db.run(self._sum, account.id, since)

    def _sum(self, account_id: int, since: datetime) -> Decimal:
        amount = case((charges.c.total.is_not(None), charges.c.total), else_=charges.c.reserved)
        query = select(func.coalesce(func.sum(amount), 0)).where(
            charges.c.account_id == account_id,
            charges.c.created_at >= since,
            charges.c.state != RELEASED,
        )
        with self._db.connect() as conn:
            return Decimal(conn.execute(query).scalar_one())
