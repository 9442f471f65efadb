"""How a callback went, as plain JSON-ready data: for `GET /api/v1/callbacks/...` and `calls show`.

    {"id", "state", "reason", "destination", "callback", "username", "created_at", "started_at",
     "ended_at", ..., "legs": {"destination": {...} | null, "callback": {...} | null},
     "cdr": {"completed", "reason", "bridged_s", ..., "legs": {"destination": {...}, ...}} | null}

Synchronous, like the store: the web layer runs it through `Database.run`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from webcallback.domain import LegRole
from webcallback.store.callbacks import CallbackStore
from webcallback.store.db import Database
from webcallback.store.telephony import CallbackRecord, TelephonyStore

MAX_LIST = 500
_CDR_LEG_FIELDS = ("sip_code", "setup_s", "ring_s", "talk_s")


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in data.items()}


def record_view(record: CallbackRecord) -> dict[str, Any]:
    view = record.callback.as_dict()
    view["legs"] = {role.value: _leg_view(record.legs.get(role.value)) for role in LegRole}
    view["cdr"] = None if record.cdr is None else _cdr_view(record.cdr)
    return view


def _leg_view(row: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if row is None else _jsonable(row)


def _cdr_view(row: dict[str, Any]) -> dict[str, Any]:
    legs = {
        role.value: {name: row.pop(f"{role.value}_{name}") for name in _CDR_LEG_FIELDS} for role in LegRole
    }
    view = _jsonable(row)
    view.pop("callback_id")
    view["legs"] = legs
    return view


class StatusService:
    def __init__(self, db: Database) -> None:
        self._callbacks = CallbackStore(db)
        self._telephony = TelephonyStore(db)

    def show(self, callback_id: str) -> dict[str, Any] | None:
        callback = self._callbacks.find(callback_id)
        return None if callback is None else record_view(self._telephony.record(callback))

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest callbacks, with their legs and CDR."""
        rows = self._callbacks.recent(limit=min(limit, MAX_LIST))
        return [record_view(self._telephony.record(cb)) for cb in rows]
