"""The event log and the webhook outbox.

- `events`: one row per state change of a callback or a leg, inserted by the store in the
  transaction of that change (`EventWriter.write`), so an event exists exactly when its change
  was committed. Ids grow in commit order: on PostgreSQL a transaction-scoped advisory lock is
  taken before the insert, so a transaction that got a smaller id has committed before a larger
  one becomes visible, and a reader resuming after id N never skips one.
- `webhook_outbox`: one row per (event, webhook that wants it), written with the event; the
  deliverer (service/webhooks.py) POSTs it until a 2xx, and records each try in
  `webhook_attempts` (the delivery log).
- `account_webhooks`: an account's own webhook (URL, secret encrypted like passwords, types).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)

from webcallback.domain.events import Event, EventFilter, NewEvent
from webcallback.store.callbacks import _aware
from webcallback.store.db import Database
from webcallback.store.prepared import PreparedInsert
from webcallback.store.schema import accounts, callbacks, metadata

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("callback_id", String(32), nullable=False, index=True),
    Column("account", String(64), index=True),
    Column("type", String(32), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("data", Text, nullable=False),
)

webhook_outbox = Table(
    "webhook_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", Integer, ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
    Column("target", String(16), nullable=False),  # global | account | callback
    Column("account", String(64)),
    Column("url", Text, nullable=False),
    Column("state", String(16), nullable=False),  # pending | delivered | dead
    Column("attempts", Integer, nullable=False),
    Column("next_at", DateTime(timezone=True), nullable=False),
    Column("last_status", Integer),
    Column("last_error", String(255)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True)),
    Index("ix_webhook_outbox_due", "state", "next_at"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "outbox_id", Integer, ForeignKey("webhook_outbox.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("status", Integer),
    Column("error", String(255)),
    Column("seconds", Float, nullable=False),
)

account_webhooks = Table(
    "account_webhooks",
    metadata,
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("url", Text, nullable=False),
    Column("secret_enc", LargeBinary),
    Column("key_id", String(16)),
    Column("events", Text, nullable=False),  # JSON list of types; [] = all
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

ALL = EventFilter()
PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
GLOBAL, ACCOUNT, CALLBACK = "global", "account", "callback"
_ORDER_LOCK = 7_007_007  # the PostgreSQL advisory lock key that orders event ids by commit
ACCOUNT_CACHE_SECONDS = 5.0  # how stale the writer's copy of `account_webhooks` may be


# Written with every state change (up to ten per callback): prepared once (store/prepared.py).
_INSERT_EVENT = PreparedInsert(events)
_INSERT_BOX = PreparedInsert(webhook_outbox)


def wants(types: Sequence[str], event_type: str) -> bool:
    return not types or any(event_type == t or (t.endswith(".") and event_type.startswith(t)) for t in types)


@dataclass(frozen=True)
class Routing:
    """Which webhooks get which events (the settings' global one; a callback's own URL if allowed)."""

    global_url: str | None = None
    global_types: tuple[str, ...] = ()
    callback_urls: bool = False


class EventWriter:
    """Inserts events (and their outbox rows) on the connection of the caller's transaction.
    `on_written` listeners are told after the store's commit (`written`), from any thread."""

    def __init__(self, routing: Routing | None = None) -> None:
        self.routing = routing or Routing()
        self.on_written: list[Callable[[], None]] = []
        self.on_outbox: list[Callable[[], None]] = []  # told when the write queued deliveries
        self._outbox_written = False
        self._accounts: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._accounts_read = -ACCOUNT_CACHE_SECONDS

    def write(self, conn: Connection, new: Sequence[NewEvent]) -> None:
        if not new:
            return
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ORDER_LOCK})
        now = datetime.now(UTC)
        hooks = self._account_hooks(conn)
        status_urls = self._status_urls(conn, {e.callback_id for e in new})
        for event in new:
            row = {"callback_id": event.callback_id, "account": event.account, "type": event.type, "at": now,
                   "data": json.dumps(event.data, separators=(",", ":"), default=str)}  # fmt: skip
            event_id = self._insert_event(conn, row)
            rows = []
            routing = self.routing
            if routing.global_url and wants(routing.global_types, event.type):
                rows.append((GLOBAL, routing.global_url))
            hook = hooks.get(event.account or "")
            if hook is not None and wants(hook[1], event.type):
                rows.append((ACCOUNT, hook[0]))
            if url := status_urls.get(event.callback_id):
                rows.append((CALLBACK, url))
            for target, url in rows:
                self._outbox_written = True
                box = {"event_id": event_id, "target": target, "account": event.account, "url": url,
                       "state": PENDING, "attempts": 0, "next_at": now, "created_at": now}  # fmt: skip
                _INSERT_BOX.execute(conn, box)

    @staticmethod
    def _insert_event(conn: Connection, row: dict[str, Any]) -> int:
        if conn.dialect.name == "sqlite":  # on the event loop: the prepared path (~5x cheaper)
            event_id = _INSERT_EVENT.execute(conn, row).lastrowid
        else:
            event_id = conn.execute(insert(events).values(row).returning(events.c.id)).scalar_one()
        assert event_id is not None
        return int(event_id)

    def written(self) -> None:
        outbox, self._outbox_written = self._outbox_written, False
        for listener in [*self.on_written, *(self.on_outbox if outbox else ())]:
            listener()

    def _account_hooks(self, conn: Connection) -> dict[str, tuple[str, tuple[str, ...]]]:
        if time.monotonic() - self._accounts_read >= ACCOUNT_CACHE_SECONDS:
            query = select(accounts.c.username, account_webhooks.c.url, account_webhooks.c.events).join(
                accounts, accounts.c.id == account_webhooks.c.account_id
            )
            self._accounts = {u: (url, tuple(json.loads(t))) for u, url, t in conn.execute(query).all()}
            self._accounts_read = time.monotonic()
        return self._accounts

    def forget_accounts(self) -> None:
        """Read `account_webhooks` again at the next write (after a change in this process)."""
        self._accounts_read = -ACCOUNT_CACHE_SECONDS

    def _status_urls(self, conn: Connection, callback_ids: set[str]) -> dict[str, str]:
        if not self.routing.callback_urls:
            return {}
        query = select(callbacks.c.id, callbacks.c.status_url).where(
            callbacks.c.id.in_(callback_ids), callbacks.c.status_url.is_not(None)
        )
        return {cid: url for cid, url in conn.execute(query).all()}


def _event(row: Any) -> Event:
    return Event(
        id=row.id,
        type=row.type,
        callback_id=row.callback_id,
        account=row.account,
        at=_aware(row.at) or datetime.now(UTC),
        data=json.loads(row.data),
    )


@dataclass(frozen=True)
class Delivery:
    """An outbox row with its event, due for an attempt."""

    id: int
    target: str
    account: str | None
    url: str
    attempts: int
    event: Event


@dataclass(frozen=True)
class OutboxRow:
    id: int
    event_id: int
    event_type: str
    callback_id: str
    target: str
    url: str
    state: str
    attempts: int
    next_at: datetime
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None


@dataclass(frozen=True)
class AccountWebhook:
    url: str
    secret_enc: bytes | None
    key_id: str | None
    events: tuple[str, ...]


class EventStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # ---- the log ---------------------------------------------------------------------------

    def after(self, last_id: int, wanted: EventFilter = ALL, limit: int = 500) -> list[Event]:
        query = select(events).where(events.c.id > last_id).order_by(events.c.id).limit(limit)
        if wanted.callback_ids:
            query = query.where(events.c.callback_id.in_(wanted.callback_ids))
        if wanted.accounts:
            query = query.where(events.c.account.in_(wanted.accounts))
        if wanted.types:
            exact = [t for t in wanted.types if not t.endswith(".")]
            prefixes = [t for t in wanted.types if t.endswith(".")]
            query = query.where(
                or_(events.c.type.in_(exact), *(events.c.type.startswith(p) for p in prefixes))
            )
        with self._db.connect() as conn:
            return [_event(r) for r in conn.execute(query).all()]

    def last_id(self) -> int:
        with self._db.connect() as conn:
            return int(conn.execute(select(func.coalesce(func.max(events.c.id), 0))).scalar_one())

    def purge(self, days: float) -> int:
        """Forget events older than `days` (with their outbox rows and delivery log)."""
        cutoff = datetime.now(UTC) - timedelta(days=days)
        old = select(events.c.id).where(events.c.at < cutoff)
        boxes = select(webhook_outbox.c.id).where(webhook_outbox.c.event_id.in_(old))
        with self._db.begin() as conn:
            conn.execute(delete(webhook_attempts).where(webhook_attempts.c.outbox_id.in_(boxes)))
            conn.execute(delete(webhook_outbox).where(webhook_outbox.c.event_id.in_(old)))
            return int(conn.execute(delete(events).where(events.c.at < cutoff)).rowcount)

    # ---- the outbox ------------------------------------------------------------------------

    def due(self, limit: int) -> list[Delivery]:
        now = datetime.now(UTC)
        query = (
            select(
                webhook_outbox.c.id.label("box_id"),
                webhook_outbox.c.target,
                webhook_outbox.c.url,
                webhook_outbox.c.attempts,
                events,
            )
            .join(events, events.c.id == webhook_outbox.c.event_id)
            .where(webhook_outbox.c.state == PENDING, webhook_outbox.c.next_at <= now)
            .order_by(webhook_outbox.c.next_at, webhook_outbox.c.id)
            .limit(limit)
        )
        with self._db.connect() as conn:
            rows = conn.execute(query).all()
        return [
            Delivery(
                id=r.box_id,
                target=r.target,
                account=r.account,
                url=r.url,
                attempts=r.attempts,
                event=_event(r),
            )
            for r in rows
        ]

    def next_due(self) -> datetime | None:
        query = select(func.min(webhook_outbox.c.next_at)).where(webhook_outbox.c.state == PENDING)
        with self._db.connect() as conn:
            return _aware(conn.execute(query).scalar_one())

    def lease(self, delivery: Delivery, seconds: float) -> bool:
        """Take the delivery for `seconds` (another node racing for it gets False): its `next_at`
        moves past the attempt, so a crash mid-attempt only delays it."""
        until = datetime.now(UTC) + timedelta(seconds=seconds)
        with self._db.begin() as conn:
            moved = conn.execute(
                update(webhook_outbox)
                .where(
                    webhook_outbox.c.id == delivery.id,
                    webhook_outbox.c.state == PENDING,
                    webhook_outbox.c.attempts == delivery.attempts,
                )
                .values(attempts=delivery.attempts + 1, next_at=until)
            )
        return moved.rowcount == 1

    def attempted(
        self,
        box_id: int,
        status: int | None,
        error: str | None,
        seconds: float,
        *,
        state: str,
        retry_in: float,
    ) -> None:
        """Log one attempt and move the row: `delivered`, `dead`, or `pending` again in `retry_in` s."""
        now = datetime.now(UTC)
        values: dict[str, Any] = {"state": state, "last_status": status, "last_error": error}
        if state == DELIVERED:
            values["delivered_at"] = now
        else:
            values["next_at"] = now + timedelta(seconds=retry_in)
        with self._db.begin() as conn:
            conn.execute(
                insert(webhook_attempts).values(
                    outbox_id=box_id, at=now, status=status, error=error, seconds=seconds
                )
            )
            conn.execute(update(webhook_outbox).where(webhook_outbox.c.id == box_id).values(**values))

    def outbox(self, state: str | None = None, limit: int = 50) -> list[OutboxRow]:
        query = (
            select(webhook_outbox, events.c.type.label("event_type"), events.c.callback_id)
            .join(events, events.c.id == webhook_outbox.c.event_id)
            .order_by(webhook_outbox.c.id.desc())
            .limit(limit)
        )
        if state:
            query = query.where(webhook_outbox.c.state == state)
        with self._db.connect() as conn:
            rows = conn.execute(query).all()
        return [
            OutboxRow(
                id=r.id,
                event_id=r.event_id,
                event_type=r.event_type,
                callback_id=r.callback_id,
                target=r.target,
                url=r.url,
                state=r.state,
                attempts=r.attempts,
                next_at=_aware(r.next_at) or datetime.now(UTC),
                last_status=r.last_status,
                last_error=r.last_error,
                delivered_at=_aware(r.delivered_at),
            )
            for r in rows
        ]

    def attempts(self, box_id: int) -> list[dict[str, Any]]:
        query = (
            select(webhook_attempts)
            .where(webhook_attempts.c.outbox_id == box_id)
            .order_by(webhook_attempts.c.id)
        )
        with self._db.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query).all()]

    def retry(self, box_ids: Sequence[int] = (), *, dead: bool = False) -> int:
        """Queue these deliveries (or every dead one) for an attempt now, with a fresh count."""
        query = update(webhook_outbox).where(webhook_outbox.c.state != DELIVERED)
        if box_ids:
            query = query.where(webhook_outbox.c.id.in_(box_ids))
        elif dead:
            query = query.where(webhook_outbox.c.state == DEAD)
        else:
            return 0
        with self._db.begin() as conn:
            return int(
                conn.execute(query.values(state=PENDING, attempts=0, next_at=datetime.now(UTC))).rowcount
            )

    # ---- account webhooks ------------------------------------------------------------------

    def set_account_webhook(self, account_id: int, hook: AccountWebhook) -> None:
        values = {
            "url": hook.url,
            "secret_enc": hook.secret_enc,
            "key_id": hook.key_id,
            "events": json.dumps(list(hook.events)),
            "updated_at": datetime.now(UTC),
        }
        with self._db.begin() as conn:
            found = conn.execute(
                update(account_webhooks).where(account_webhooks.c.account_id == account_id).values(**values)
            )
            if found.rowcount == 0:
                conn.execute(insert(account_webhooks).values(account_id=account_id, **values))

    def clear_account_webhook(self, account_id: int) -> bool:
        with self._db.begin() as conn:
            gone = conn.execute(delete(account_webhooks).where(account_webhooks.c.account_id == account_id))
        return gone.rowcount == 1

    def account_webhook(self, username: str) -> AccountWebhook | None:
        query = (
            select(account_webhooks)
            .join(accounts, accounts.c.id == account_webhooks.c.account_id)
            .where(accounts.c.username == username)
        )
        with self._db.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return AccountWebhook(
            url=row.url, secret_enc=row.secret_enc, key_id=row.key_id, events=tuple(json.loads(row.events))
        )
