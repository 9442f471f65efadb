"""Nonces already used in salted-hash logins. A nonce is accepted at most once per account within
the configured window; the table outlives restarts, so a restart does not reopen a replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite

from webcallback.store.db import Database
from webcallback.store.prepared import Prepared
from webcallback.store.schema import used_nonces

# On every salted-hash request. ON CONFLICT DO NOTHING rather than catching the key violation: on
# PostgreSQL a violation aborts the whole transaction, and a request's writes share one.
_CLAIM = Prepared(
    {
        "sqlite": sqlite.insert(used_nonces).on_conflict_do_nothing(),
        "postgresql": postgresql.insert(used_nonces).on_conflict_do_nothing(),
    },
    column_keys=("account_id", "nonce", "seen_at"),
)


class NonceStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def claim(self, account_id: int, nonce: str, now: datetime | None = None) -> bool:
        """Record the nonce; False if it was used before (the primary key refuses it atomically,
        so two nodes racing on the same nonce cannot both win)."""
        now = now or datetime.now(UTC)
        with self._db.begin() as conn:
            claimed = _CLAIM.execute(conn, {"account_id": account_id, "nonce": nonce, "seen_at": now})
        return claimed.rowcount == 1

    def forget_older_than(self, seconds: float, now: datetime | None = None) -> int:
        cutoff = (now or datetime.now(UTC)) - timedelta(seconds=seconds)
        with self._db.begin() as conn:
            return conn.execute(delete(used_nonces).where(used_nonces.c.seen_at < cutoff)).rowcount
