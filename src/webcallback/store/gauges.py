"""What the metrics read from the store at scrape time: the queue's depth and the credit held by
reservations. Read at scrape time (not counted as it changes) because several nodes share the
queue and the accounts: the database is the only place that knows the whole of them."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from webcallback.store.billing_schema import charges
from webcallback.store.db import Database
from webcallback.store.schema import callbacks


class StoreGauges:
    def __init__(self, db: Database) -> None:
        self._db = db

    def queued(self) -> int:
        query = select(func.count()).select_from(callbacks).where(callbacks.c.state == "queued")
        with self._db.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def reserved(self) -> dict[str, Decimal]:
        """Credit held by open reservations, per currency."""
        query = (
            select(charges.c.currency, func.sum(charges.c.reserved))
            .where(charges.c.state == "reserved")
            .group_by(charges.c.currency)
        )
        with self._db.connect() as conn:
            return {str(cur): Decimal(str(total or 0)) for cur, total in conn.execute(query)}
