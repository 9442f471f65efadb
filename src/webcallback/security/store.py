"""Store access for the security controls. Synchronous SQLAlchemy Core, like the rest of `store/`;
callers go through `Database.run`. Every check that must hold across nodes is a single atomic
statement: an upsert that returns the new count, a conditional UPDATE, or a primary key refusing
a second row."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, desc, exists, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from webcallback.security.schema import (
    callback_slots,
    digest_nonces,
    registered_numbers,
    security_counters,
    security_events,
    security_lockouts,
)
from webcallback.store.callbacks import COMPLETED, FAILED, FINAL_STATES
from webcallback.store.db import Database
from webcallback.store.prepared import Prepared
from webcallback.store.schema import callbacks

# A slot whose callback row never appeared (the request failed between the two writes on a node
# that then died) is taken back after this many seconds.
ORPHAN_SLOT_GRACE = 120.0


MAX_SUBJECT = 120


# The statements run on every request, built once; executed with a parameter dict they are
# compiled once per engine (see store/accounts._FIND_BY_USERNAME).
def _increment_stmt(dialect: Any) -> Any:
    return dialect.insert(security_counters).on_conflict_do_update(
        index_elements=[security_counters.c.key, security_counters.c.window_start],
        set_={"count": security_counters.c.count + 1},
    )


_INCREMENT_SQLITE = _increment_stmt(sqlite)
_INCREMENT_POSTGRESQL = _increment_stmt(postgresql)
_ESTIMATE = select(security_counters.c.window_start, security_counters.c.count).where(
    security_counters.c.key == bindparam("key"),
    security_counters.c.window_start.in_(bindparam("starts", expanding=True)),
)
_RESET = Prepared(delete(security_counters).where(security_counters.c.key == bindparam("key")))
# One statement per number of keys (the request path asks with one or two): an expanding IN
# parameter is re-processed on every execution and cost more than the query itself.
_LOCKED_UNTIL = {
    n: Prepared(
        select(func.max(security_lockouts.c.until)).where(
            security_lockouts.c.key.in_([bindparam(f"key{i}") for i in range(n)]),
            security_lockouts.c.until > bindparam("now"),
        )
    )
    for n in (1, 2)
}
_RECENT_DUPLICATE = Prepared(
    select(callbacks.c.id)
    .where(
        callbacks.c.account_id == bindparam("account_id"),
        callbacks.c.destination == bindparam("destination"),
        callbacks.c.callback == bindparam("callback"),
        callbacks.c.created_at >= bindparam("since"),
        # not `not_in(FINAL_STATES)`: a Prepared statement takes no expanding IN list
        callbacks.c.state != COMPLETED,
        callbacks.c.state != FAILED,
    )
    .order_by(desc(callbacks.c.created_at))
    .limit(1)
)
assert set(FINAL_STATES) == {COMPLETED, FAILED}
# Counting stops at the cap: the answer only has to say whether the cap is reached, and an account
# with many callbacks today would otherwise cost a scan of all of them on every request.
_CALLBACKS_SINCE = Prepared(
    select(func.count()).select_from(
        select(callbacks.c.id)
        .where(
            callbacks.c.account_id == bindparam("account_id"),
            callbacks.c.created_at >= bindparam("since"),
        )
        .limit(bindparam("cap"))
        .subquery()
    )
)


def subject_key(kind: str, value: str) -> str:
    """`user:NAME` / `ip:ADDRESS` as stored; an overlong value (attacker-chosen usernames can be
    long) is replaced by its hash so the key fits its column on every database."""
    if len(value) > MAX_SUBJECT:
        value = "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return f"{kind}:{value}"


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


@dataclass(frozen=True)
class SecurityEvent:
    id: int
    at: datetime
    kind: str
    username: str | None
    client_ip: str | None
    reason: str
    detail: str | None

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "at": self.at.isoformat()}


class SecurityStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # ---- counters --------------------------------------------------------------------------

    def hit(self, key: str, window: int, now: float) -> float:
        """Count one event under `key`; return the sliding-window estimate including it."""
        start = int(now // window) * window
        self._increment(key, start)
        return self._estimate(key, window, now)

    def peek(self, key: str, window: int, now: float) -> float:
        return self._estimate(key, window, now)

    def _increment(self, key: str, start: int) -> None:
        stmt = _INCREMENT_SQLITE if self._db.is_sqlite else _INCREMENT_POSTGRESQL
        with self._db.begin() as conn:
            conn.execute(stmt, {"key": key, "window_start": start, "count": 1})

    def _estimate(self, key: str, window: int, now: float) -> float:
        start = int(now // window) * window
        with self._db.connect() as conn:
            rows = conn.execute(_ESTIMATE, {"key": key, "starts": [start, start - window]}).all()
        counts: dict[int, int] = {int(r[0]): int(r[1]) for r in rows}
        weight = 1.0 - (now - start) / window
        return counts.get(start, 0) + counts.get(start - window, 0) * weight

    def reset(self, key: str) -> None:
        with self._db.begin() as conn:
            _RESET.execute(conn, {"key": key})

    # ---- lockouts --------------------------------------------------------------------------

    def lock(self, key: str, until: float, reason: str, now: float) -> None:
        with self._db.begin() as conn:
            conn.execute(delete(security_lockouts).where(security_lockouts.c.key == key))
            conn.execute(
                insert(security_lockouts).values(
                    key=key, until=_at(until), reason=reason, created_at=_at(now)
                )
            )

    def locked_until(self, keys: Iterable[str], now: float) -> float | None:
        """The latest end of a lockout in force on any of `keys`, as epoch seconds."""
        keys = list(keys)
        params: dict[str, Any] = {"now": _at(now), **{f"key{i}": key for i, key in enumerate(keys)}}
        prepared = _LOCKED_UNTIL.get(len(keys))
        with self._db.connect() as conn:
            if prepared is not None:
                value = prepared.execute(conn, params).scalar()
            else:
                value = conn.execute(
                    select(func.max(security_lockouts.c.until)).where(
                        security_lockouts.c.key.in_(keys), security_lockouts.c.until > params["now"]
                    )
                ).scalar_one_or_none()
        return None if value is None else _aware(value).timestamp()

    def unlock(self, key: str) -> bool:
        """End a lockout and forget the failures that led to it. False if nothing was locked."""
        with self._db.begin() as conn:
            result = conn.execute(delete(security_lockouts).where(security_lockouts.c.key == key))
            conn.execute(delete(security_counters).where(security_counters.c.key == "fail:" + key))
        return result.rowcount > 0

    def lockouts(self, now: float) -> list[dict[str, Any]]:
        with self._db.connect() as conn:
            rows = conn.execute(
                select(security_lockouts).where(security_lockouts.c.until > _at(now)).order_by("key")
            ).all()
        return [{"key": r.key, "until": _aware(r.until).isoformat(), "reason": r.reason} for r in rows]

    # ---- Digest nonces ---------------------------------------------------------------------

    def use_nonce(self, nonce: str, nc: int, expires_at: float) -> bool:
        """Accept `nc` for `nonce` only if it is higher than every count seen before."""
        try:
            with self._db.begin() as conn:
                conn.execute(
                    insert(digest_nonces).values(nonce=nonce, last_nc=nc, expires_at=_at(expires_at))
                )
            return True
        except IntegrityError:
            pass
        with self._db.begin() as conn:
            result = conn.execute(
                update(digest_nonces)
                .where(digest_nonces.c.nonce == nonce, digest_nonces.c.last_nc < nc)
                .values(last_nc=nc)
            )
        return result.rowcount == 1

    # ---- callback slots (per-user concurrency) ---------------------------------------------

    def acquire_slot(
        self, account_id: int, limit: int, callback_id: str, destination: str, callback: str, now: float
    ) -> bool:
        self._reap_slots(account_id, now)
        for slot in range(limit):
            try:
                with self._db.begin() as conn:
                    conn.execute(
                        insert(callback_slots).values(
                            account_id=account_id,
                            slot=slot,
                            callback_id=callback_id,
                            destination=destination,
                            callback=callback,
                            acquired_at=_at(now),
                        )
                    )
                return True
            except IntegrityError:
                continue
        return False

    def release_slot(self, callback_id: str) -> None:
        with self._db.begin() as conn:
            conn.execute(delete(callback_slots).where(callback_slots.c.callback_id == callback_id))

    def _reap_slots(self, account_id: int, now: float) -> None:
        """Give back slots whose callback has ended (the finished hook may not have run, e.g. the
        node died) or never got its row."""
        finished = select(callbacks.c.id).where(callbacks.c.state.in_(FINAL_STATES))
        has_row = exists().where(callbacks.c.id == callback_slots.c.callback_id)
        orphan = and_(callback_slots.c.acquired_at < _at(now - ORPHAN_SLOT_GRACE), ~has_row)
        with self._db.begin() as conn:
            conn.execute(
                delete(callback_slots).where(
                    callback_slots.c.account_id == account_id,
                    or_(callback_slots.c.callback_id.in_(finished), orphan),
                )
            )

    def slot_for(self, account_id: int, destination: str, callback: str, since: float) -> str | None:
        """The callback id holding a slot for these two numbers since `since`, if any."""
        with self._db.connect() as conn:
            value = conn.execute(
                select(callback_slots.c.callback_id).where(
                    callback_slots.c.account_id == account_id,
                    callback_slots.c.destination == destination,
                    callback_slots.c.callback == callback,
                    callback_slots.c.acquired_at >= _at(since),
                )
            ).scalar_one_or_none()
        return None if value is None else str(value)

    # ---- callbacks table reads -------------------------------------------------------------

    def recent_duplicate(self, account_id: int, destination: str, callback: str, since: float) -> str | None:
        """The newest callback for these two numbers created since `since` and still in progress
        (one that already ended, e.g. busy, does not stop the user from trying again)."""
        with self._db.connect() as conn:
            value = _RECENT_DUPLICATE.execute(
                conn,
                {
                    "account_id": account_id,
                    "destination": destination,
                    "callback": callback,
                    "since": _at(since),
                },
            ).scalar()
        return None if value is None else str(value)

    def callback_exists(self, callback_id: str) -> bool:
        with self._db.connect() as conn:
            return (
                conn.execute(select(callbacks.c.id).where(callbacks.c.id == callback_id)).first() is not None
            )

    def callbacks_since(self, account_id: int, since: float, cap: int) -> int:
        """The account's callbacks created since `since`, counted up to `cap`."""
        params = {"account_id": account_id, "since": _at(since), "cap": cap}
        with self._db.connect() as conn:
            return int(_CALLBACKS_SINCE.execute(conn, params).scalar())

    # ---- registered callback numbers -------------------------------------------------------

    def register_number(self, account_id: int, number: str, now: float) -> bool:
        try:
            with self._db.begin() as conn:
                conn.execute(
                    insert(registered_numbers).values(
                        account_id=account_id, number=number, created_at=_at(now)
                    )
                )
        except IntegrityError:
            return False
        return True

    def unregister_number(self, account_id: int, number: str) -> bool:
        with self._db.begin() as conn:
            result = conn.execute(
                delete(registered_numbers).where(
                    registered_numbers.c.account_id == account_id, registered_numbers.c.number == number
                )
            )
        return result.rowcount > 0

    def registered(self, account_id: int) -> list[str]:
        with self._db.connect() as conn:
            rows = conn.execute(
                select(registered_numbers.c.number)
                .where(registered_numbers.c.account_id == account_id)
                .order_by(registered_numbers.c.number)
            ).scalars()
            return [str(n) for n in rows]

    def is_registered(self, account_id: int, number: str) -> bool:
        with self._db.connect() as conn:
            row = conn.execute(
                select(registered_numbers.c.number).where(
                    registered_numbers.c.account_id == account_id, registered_numbers.c.number == number
                )
            ).first()
        return row is not None

    # ---- events ----------------------------------------------------------------------------

    def add_event(
        self,
        kind: str,
        reason: str,
        *,
        username: str | None,
        client_ip: str | None,
        detail: str | None,
        now: float,
    ) -> None:
        with self._db.begin() as conn:
            conn.execute(
                insert(security_events).values(
                    at=_at(now),
                    kind=kind[:32],
                    reason=reason[:64],
                    username=(username or None) and username[:64],
                    client_ip=client_ip and client_ip[:64],
                    detail=detail and detail[:255],
                )
            )

    def events(
        self,
        *,
        limit: int = 50,
        kind: str | None = None,
        username: str | None = None,
        client_ip: str | None = None,
    ) -> list[SecurityEvent]:
        query = select(security_events).order_by(desc(security_events.c.id)).limit(limit)
        if kind:
            query = query.where(security_events.c.kind == kind)
        if username:
            query = query.where(security_events.c.username == username)
        if client_ip:
            query = query.where(security_events.c.client_ip == client_ip)
        with self._db.connect() as conn:
            rows = conn.execute(query).all()
        return [SecurityEvent(**{**r._mapping, "at": _aware(r.at)}) for r in rows]

    # ---- housekeeping ----------------------------------------------------------------------

    def purge(self, now: float, *, counter_age: int, event_age: float) -> None:
        """Forget counters older than `counter_age` seconds, ended lockouts, expired nonces and
        events older than `event_age` seconds."""
        with self._db.begin() as conn:
            conn.execute(
                delete(security_counters).where(security_counters.c.window_start < now - counter_age)
            )
            conn.execute(delete(security_lockouts).where(security_lockouts.c.until < _at(now)))
            conn.execute(delete(digest_nonces).where(digest_nonces.c.expires_at < _at(now)))
            conn.execute(delete(security_events).where(security_events.c.at < _at(now - event_age)))
