"""Liveness and readiness, for load balancers and orchestrators (docs/operations.md, *Health*).

`/livez` says the process serves HTTP at all: restart it when that fails. `/readyz` says it should
be sent callbacks now: its database answers and takes writes, no store call failed with an outage
in the last `RECENT_OUTAGE_S` seconds (a full SQLite disk shows only on a write), its telephony
engine runs, and it is not refusing callbacks for overload (`calls.max_queue_wait`). A load
balancer takes a node that is not ready out of rotation until it is again."""

from __future__ import annotations

from collections.abc import Callable

from webcallback.service.shedding import LoadShedder
from webcallback.store.db import OUTAGE_ERRORS, Database, outage_summary

__all__ = ["OUTAGE_ERRORS", "Health", "outage_summary"]

RECENT_OUTAGE_S = 10.0


class Health:
    def __init__(self, db: Database, shedder: LoadShedder) -> None:
        self._db = db
        self._shedder = shedder
        # None: no engine runs in this process (`[engine] kind = "none"`, or before start).
        self._engine_up: Callable[[], bool] | None = None
        self._engine_expected = False

    def watch_engine(self, engine_up: Callable[[], bool] | None) -> None:
        """Called by the telephony lifespan: how to ask whether the engine runs (None: stopped)."""
        self._engine_up = engine_up
        self._engine_expected = True

    async def problems(self) -> list[str]:
        """What keeps this node from taking callbacks; empty when it is ready."""
        found: list[str] = []
        try:
            await self._db.run(self._db.probe)
        except OUTAGE_ERRORS:
            found.append("database unreachable")
        else:
            if self._db.outage_within(RECENT_OUTAGE_S):
                found.append("database writes failing")
        if self._engine_expected and (self._engine_up is None or not self._engine_up()):
            found.append("telephony engine down")
        if self._shedder.shedding:
            found.append("overloaded: refusing new callbacks")
        return found
