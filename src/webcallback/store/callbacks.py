"""Callbacks: one row per accepted request, from `queued` to a final state.

States: queued → dialing → (bridged) → completed | failed. The API writes `queued`; the dispatcher
claims rows (`queued` → `dialing`, stamped with its node name) and records how they end.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, func, select, update
from sqlalchemy.exc import CompileError

from webcallback.domain.events import NewEvent
from webcallback.store.db import Database
from webcallback.store.prepared import Prepared, PreparedInsert
from webcallback.store.schema import callbacks

if TYPE_CHECKING:
    from webcallback.store.events import EventWriter

QUEUED = "queued"
DIALING = "dialing"
BRIDGED = "bridged"
COMPLETED = "completed"
FAILED = "failed"
FINAL_STATES = (COMPLETED, FAILED)


@dataclass(frozen=True, kw_only=True)
class Callback:
    id: str
    account_id: int | None
    username: str
    destination: str
    callback: str
    client_ip: str | None
    country: str | None
    state: str
    reason: str | None
    node: str | None
    max_duration: float | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    talked_until: datetime | None = None  # the last checkpoint of a bridged call (talk proven)
    status_url: str | None = None  # where this callback's events are POSTed (the app's request named it)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            out[key] = value.isoformat() if isinstance(value, datetime) else value
        return out


QUEUED_EVENT = "callback.queued"


_USERNAME = Prepared(select(callbacks.c.username).where(callbacks.c.id == bindparam("k_id")))


def username_of(conn: Connection, callback_id: str) -> str | None:
    """The account (username) of a callback, for its events."""
    found: str | None = _USERNAME.execute(conn, {"k_id": callback_id}).scalar()
    return found


def new_callback_id() -> str:
    return secrets.token_hex(8)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _row_to_callback(row: Any) -> Callback:
    data = dict(row._mapping)
    for key in ("created_at", "updated_at", "started_at", "ended_at", "talked_until"):
        data[key] = _aware(data[key])
    return Callback(**data)


# Prepared once per set of columns given (store/prepared.py). Unlike `.values(**row)` it would ignore
# a key that names no column, so create() refuses those itself.
_INSERT = PreparedInsert(callbacks)
_COLUMN_NAMES = frozenset(callbacks.columns.keys())


def _as_stored(row: dict[str, Any]) -> Callback:
    """The Callback a SELECT of the freshly inserted `row` would give: absent columns are NULL,
    datetimes are aware, and the Float column holds a float."""
    data: dict[str, Any] = {column.name: row.get(column.name) for column in callbacks.columns}
    for key in ("created_at", "updated_at", "started_at", "ended_at", "talked_until"):
        data[key] = _aware(data[key])
    if data["max_duration"] is not None:
        data["max_duration"] = float(data["max_duration"])
    return Callback(**data)


class CallbackStore:
    """`events`: writes `callback.<state>` with each change (store/events.py; imported late, as
    that module reads this one)."""

    def __init__(self, db: Database, events: EventWriter | None = None) -> None:
        from webcallback.store.events import EventWriter

        self._db = db
        self.events = events or EventWriter()

    def create(self, **values: Any) -> Callback:
        """Insert a queued callback and return it as stored. The row is built here, so it is not
        read back (that SELECT was a third of this method's cost on the API's hot path)."""
        now = datetime.now(UTC)
        row = {"state": QUEUED, "created_at": now, "updated_at": now, **values}
        row.setdefault("id", new_callback_id())
        if unknown := row.keys() - _COLUMN_NAMES:
            raise CompileError(f"Unconsumed column names: {', '.join(sorted(unknown))}")
        data = {"destination": row.get("destination"), "callback": row.get("callback")}
        with self._db.begin() as conn:
            _INSERT.execute(conn, row)
            self.events.write(conn, [NewEvent(QUEUED_EVENT, row["id"], row.get("username"), data)])
        self.events.written()  # inside a `Database.unit` the commit comes later: the service tells again
        return _as_stored(row)

    def find(self, callback_id: str) -> Callback | None:
        with self._db.connect() as conn:
            row = conn.execute(select(callbacks).where(callbacks.c.id == callback_id)).first()
        return None if row is None else _row_to_callback(row)

    def get(self, callback_id: str) -> Callback:
        found = self.find(callback_id)
        if found is None:
            raise LookupError(callback_id)
        return found

    def recent(
        self, *, limit: int = 50, state: str | None = None, username: str | None = None
    ) -> list[Callback]:
        query = select(callbacks).order_by(callbacks.c.created_at.desc()).limit(limit)
        if state:
            query = query.where(callbacks.c.state == state)
        if username:
            query = query.where(callbacks.c.username == username)
        with self._db.connect() as conn:
            return [_row_to_callback(r) for r in conn.execute(query).all()]

    def claim_queued(self, node: str, limit: int) -> list[Callback]:
        """Move up to `limit` queued callbacks to `dialing` for this node. The conditional UPDATE
        per row makes two nodes racing for one callback agree on a single winner."""
        with self._db.connect() as conn:
            ids = (
                conn.execute(
                    select(callbacks.c.id)
                    .where(callbacks.c.state == QUEUED)
                    .order_by(callbacks.c.created_at)
                    .limit(limit)
                )
                .scalars()
                .all()
            )
        claimed = [cid for cid in ids if self.transition(cid, QUEUED, DIALING, node=node)]
        return [self.get(cid) for cid in claimed]

    def transition(self, callback_id: str, from_state: str, to_state: str, **values: Any) -> bool:
        now = datetime.now(UTC)
        extra: dict[str, Any] = {"updated_at": now, **values}
        if to_state == DIALING:
            extra.setdefault("started_at", now)
        if to_state in FINAL_STATES:
            extra.setdefault("ended_at", now)
        with self._db.begin() as conn:
            result = conn.execute(
                update(callbacks)
                .where(callbacks.c.id == callback_id, callbacks.c.state == from_state)
                .values(state=to_state, **extra)
            )
            moved = result.rowcount == 1
            if moved:
                data = {k: v for k, v in values.items() if k in ("node", "reason")}
                event = NewEvent(f"callback.{to_state}", callback_id, username_of(conn, callback_id), data)
                self.events.write(conn, [event])
        if moved:
            self.events.written()
        return moved

    def count_in_flight(self, account_id: int) -> int:
        with self._db.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(callbacks)
                    .where(callbacks.c.account_id == account_id, callbacks.c.state.not_in(FINAL_STATES))
                ).scalar_one()
            )
