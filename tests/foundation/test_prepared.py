"""`store.prepared.Prepared` gives what `Connection.execute` gives, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import BindParameter, Dialect, bindparam, func, insert, select, update
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeEngine

from webcallback.store import _sqlalchemy
from webcallback.store.accounts import AccountStore
from webcallback.store.db import Database
from webcallback.store.prepared import NotPreparable, Prepared, PreparedInsert
from webcallback.store.schema import accounts, callbacks


def test_select_rows_equal_sqlalchemys(db: Database) -> None:
    AccountStore(db).add("alice", password_enc=b"\x00\xffkey", key_id="k1", balance=Decimal("12.345678"))
    stmt = select(accounts).where(accounts.c.username == bindparam("username"))
    with db.connect() as conn:
        expected = dict(conn.execute(stmt, {"username": "alice"}).one()._mapping)
        got = Prepared(stmt).execute(conn, {"username": "alice"}).first()
        missing = Prepared(stmt).execute(conn, {"username": "bob"}).first()
    assert got == expected and missing is None
    assert isinstance(got["balance"], Decimal) and got["password_enc"] == b"\x00\xffkey"
    assert got["enabled"] is True and isinstance(got["created_at"], datetime)


def test_insert_stores_what_sqlalchemy_would_store(db: Database) -> None:
    now = datetime(2026, 11, 29, 3, 4, 5, 678901, tzinfo=UTC)
    row = {
        "id": "p1", "account_id": None, "username": "alice", "destination": "+16502530000",
        "callback": "+12025550143", "state": "queued", "max_duration": 61.5, "created_at": now,
        "updated_at": now,
    }  # fmt: skip
    with db.begin() as conn:
        Prepared(insert(callbacks), column_keys=tuple(row)).execute(conn, row)
        conn.execute(insert(callbacks), {**row, "id": "s1"})
    with db.connect() as conn:
        rows = conn.execute(select(callbacks).order_by(callbacks.c.id)).all()
        # Stored identically, so comparisons in SQL (created_at >= ...) agree too.
        since = Prepared(select(func.count()).where(callbacks.c.created_at >= bindparam("since")))
        assert since.execute(conn, {"since": now}).scalar() == 2
    prepared, plain = (dict(r._mapping) for r in rows)
    assert {**prepared, "id": "s1"} == plain


def test_update_with_literals_in_the_statement_and_rowcount(db: Database) -> None:
    AccountStore(db).add("alice", password_enc=b"x", key_id="k", balance=Decimal(10))
    reserve = Prepared(
        update(accounts)
        .where(
            accounts.c.username == bindparam("name"),
            accounts.c.balance - accounts.c.reserved >= bindparam("need"),
        )
        .values(reserved=func.round(accounts.c.reserved + bindparam("amount"), 6))  # 6: a literal bind
    )
    with db.begin() as conn:
        first = {"name": "alice", "need": Decimal(4), "amount": Decimal("3.3333333")}
        assert reserve.execute(conn, first).rowcount == 1
        second = {"name": "alice", "need": Decimal(7), "amount": Decimal(7)}
        assert reserve.execute(conn, second).rowcount == 0
    assert AccountStore(db).get("alice").reserved == Decimal("3.333333")


def test_writes_follow_the_surrounding_transaction(db: Database) -> None:
    AccountStore(db).add("alice", password_enc=b"x", key_id="k", balance=Decimal(10))
    credit = Prepared(update(accounts).where(accounts.c.username == "alice").values(balance=bindparam("b")))
    with pytest.raises(RuntimeError), db.begin() as conn:
        credit.execute(conn, {"b": Decimal(99)})
        raise RuntimeError("roll back")
    assert AccountStore(db).get("alice").balance == Decimal(10)


def test_what_it_does_not_handle_is_refused_early(db: Database) -> None:
    names: BindParameter[str] = bindparam("names", expanding=True)
    expanding = Prepared(select(accounts.c.id).where(accounts.c.username.in_(names)))
    with db.connect() as conn, pytest.raises(NotPreparable):
        expanding.execute(conn, {"names": ["alice"]})
    by_name = Prepared(select(accounts.c.id).where(accounts.c.username == bindparam("username")))
    with db.connect() as conn, pytest.raises(KeyError, match="username"):
        by_name.execute(conn, {})


def test_prepared_insert_takes_rows_with_different_columns(db: Database) -> None:
    now = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)
    base = {"username": "alice", "destination": "+16502530000", "callback": "+12025550143",
            "state": "queued", "created_at": now, "updated_at": now}  # fmt: skip
    inserts = PreparedInsert(callbacks)
    with db.begin() as conn:
        inserts.execute(conn, {"id": "a", **base})
        inserts.execute(conn, {"id": "b", **base, "max_duration": 90.0, "country": "US"})
    with db.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(callbacks)).all()}
    assert rows["a"].max_duration is None and rows["a"].country is None
    assert rows["b"].max_duration == 90.0 and rows["b"].country == "US"


def test_the_installed_sqlalchemy_has_the_shape_prepared_reads() -> None:
    assert _sqlalchemy.problems() == []


def test_a_processor_with_another_signature_fails_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    def bind_processor(self: TypeEngine[Any], dialect: Dialect, *, literal: bool = False) -> None:
        """What an upgrade might do: the processor asked for differently."""

    monkeypatch.setattr(TypeEngine, "bind_processor", bind_processor)
    with pytest.raises(_sqlalchemy.SqlAlchemyChanged, match=r"TypeEngine\.bind_processor now takes"):
        _sqlalchemy.check()


def test_a_compiler_without_positiontup_fails_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SQLCompiler, "positiontup", None)  # the class default; set by compiling
    original = SQLCompiler.__init__

    def init(self: SQLCompiler, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.__dict__.pop("positiontup", None)  # what a release that renamed it would leave

    monkeypatch.setattr(SQLCompiler, "__init__", init)
    assert _sqlalchemy.problems() == ["sqlite: SQLCompiler.positiontup is None"]
