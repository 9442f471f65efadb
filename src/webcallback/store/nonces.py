"""Nonces already used in salted-hash logins. A nonce is accepted at most once per account within
the configured window; the table outlives restarts, so a restart does not reopen a replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError

from webcallback.store.db import Database
from webcallback.store.schema import used_nonces

# Built once; executed with a parameter dict it is compiled once (see accounts._FIND_BY_USERNAME).
_CLAIM = insert(used_nonces)


class NonceStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def claim(self, account_id: int, nonce: str, now: datetime | None = None) -> bool:
        """Record the nonce; False if it was used before (the primary key refuses it atomically,
        so two nodes racing on the same nonce cannot both win)."""
        now = now or datetime.now(UTC)
        try:
            with self._db.engine.begin() as conn:
                conn.execute(_CLAIM, {"account_id": account_id, "nonce": nonce, "seen_at": now})
        except IntegrityError:
            return False
        return True

    def forget_older_than(self, seconds: float, now: datetime | None = None) -> int:
        cutoff = (now or datetime.now(UTC)) - timedelta(seconds=seconds)
        with self._db.engine.begin() as conn:
            return conn.execute(delete(used_nonces).where(used_nonces.c.seen_at < cutoff)).rowcount
