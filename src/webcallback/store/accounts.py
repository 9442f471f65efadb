"""Accounts: who may request callbacks, their callback number, region and credit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from webcallback.store.db import Database
from webcallback.store.prepared import Prepared
from webcallback.store.schema import accounts


class AccountExists(Exception):
    pass


class NoSuchAccount(Exception):
    pass


@dataclass(frozen=True, kw_only=True)
class Account:
    id: int
    username: str
    password_enc: bytes
    key_id: str
    callback_number: str | None
    region: str | None
    balance: Decimal
    reserved: Decimal
    currency: str
    enabled: bool
    created_at: datetime
    updated_at: datetime
    plan: str | None = None  # rate plan; None: the configured default plan

    @property
    def available(self) -> Decimal:
        """Balance not held by callbacks in progress."""
        return self.balance - self.reserved

    def public(self) -> dict[str, Any]:
        """The fields that may be shown (never the password)."""
        return {
            "username": self.username,
            "callback_number": self.callback_number,
            "region": self.region,
            "balance": str(self.balance.normalize()),
            "reserved": str(self.reserved.normalize()),
            "currency": self.currency,
            "enabled": self.enabled,
            "plan": self.plan,
            "created_at": self.created_at.isoformat(),
        }


def _now() -> datetime:
    return datetime.now(UTC)


def _row_to_account(row: Any) -> Account:
    data = dict(row) if isinstance(row, dict) else dict(row._mapping)
    for key in ("created_at", "updated_at"):
        if data[key].tzinfo is None:  # SQLite hands back naive datetimes
            data[key] = data[key].replace(tzinfo=UTC)
    data["balance"] = Decimal(data["balance"])
    data["reserved"] = Decimal(data["reserved"])
    return Account(**data)


# Every request looks its account up: prepared once, run on the driver (store/prepared.py).
_FIND_BY_USERNAME = Prepared(select(accounts).where(accounts.c.username == bindparam("username")))


class AccountStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(
        self,
        username: str,
        *,
        password_enc: bytes,
        key_id: str,
        callback_number: str | None = None,
        region: str | None = None,
        balance: Decimal = Decimal(0),
        currency: str = "USD",
        plan: str | None = None,
    ) -> Account:
        now = _now()
        values = dict(
            username=username,
            password_enc=password_enc,
            key_id=key_id,
            callback_number=callback_number,
            region=region,
            balance=balance,
            reserved=Decimal(0),
            currency=currency,
            enabled=True,
            plan=plan,
            created_at=now,
            updated_at=now,
        )
        try:
            with self._db.begin() as conn:
                conn.execute(insert(accounts).values(**values))
        except IntegrityError:
            raise AccountExists(username) from None
        return self.get(username)

    def find(self, username: str) -> Account | None:
        with self._db.connect() as conn:
            row = _FIND_BY_USERNAME.execute(conn, {"username": username}).first()
        return None if row is None else _row_to_account(row)

    def get(self, username: str) -> Account:
        account = self.find(username)
        if account is None:
            raise NoSuchAccount(username)
        return account

    def all(self) -> list[Account]:
        with self._db.connect() as conn:
            rows = conn.execute(select(accounts).order_by(accounts.c.username)).all()
        return [_row_to_account(r) for r in rows]

    def update(self, username: str, **values: Any) -> Account:
        allowed = {
            "password_enc",
            "key_id",
            "callback_number",
            "region",
            "balance",
            "currency",
            "enabled",
            "plan",
        }
        unknown = set(values) - allowed
        if unknown:
            raise ValueError(f"cannot set {sorted(unknown)}")
        with self._db.begin() as conn:
            result = conn.execute(
                update(accounts).where(accounts.c.username == username).values(**values, updated_at=_now())
            )
        if result.rowcount == 0:
            raise NoSuchAccount(username)
        return self.get(username)

    def delete(self, username: str) -> None:
        with self._db.begin() as conn:
            result = conn.execute(delete(accounts).where(accounts.c.username == username))
        if result.rowcount == 0:
            raise NoSuchAccount(username)
