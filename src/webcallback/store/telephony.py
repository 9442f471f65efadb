"""What the telephony side records: each leg's progress as it happens, and one CDR per callback.

- `callback_legs`: one row per (callback, leg), created at the first progress event and updated in
  place: the current state, the time each step was reached (trying, ringing, answered, bridged,
  ended), the last SIP code and reason, and who ended the leg.
- `callback_cdrs`: one flat row per finished callback, written with its final state: the reason,
  the bridged time (what billing settles on) and, per leg, the final SIP code, setup, ring and talk
  seconds. Flat on purpose, so a CDR export is one SELECT.

The dispatcher is the only writer; the status API and `calls show` read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    select,
    update,
)

from webcallback.domain import CallOutcome, LegDialog, LegRecord, LegRole, LegState, ProgressEvent
from webcallback.domain.events import NewEvent
from webcallback.store.callbacks import BRIDGED, DIALING, Callback, _aware, _row_to_callback, username_of
from webcallback.store.db import Database
from webcallback.store.events import EventWriter
from webcallback.store.prepared import Prepared, PreparedInsert
from webcallback.store.schema import callbacks, metadata

callback_legs = Table(
    "callback_legs",
    metadata,
    Column("callback_id", String(32), ForeignKey("callbacks.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(16), primary_key=True),
    Column("number", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("sip_code", Integer),
    Column("reason", String(255)),
    Column("ended_by", String(16)),
    Column("trying_at", DateTime(timezone=True)),
    Column("ringing_at", DateTime(timezone=True)),
    Column("answered_at", DateTime(timezone=True)),
    Column("bridged_at", DateTime(timezone=True)),
    Column("ended_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # What a BYE (or CANCEL) of the leg needs while it is up, as JSON (`domain.LegDialog`);
    # cleared when the leg ends. A restart ends the dialogs a crash left (migration 0006).
    Column("dialog", Text),
    # The trunks the leg was tried on, in order, as JSON (`domain.TrunkAttempt`; migration 0009).
    Column("attempts", Text),
)

_LEG_COLUMNS = ("setup_s", "ring_s", "talk_s", "sip_code")

callback_cdrs = Table(
    "callback_cdrs",
    metadata,
    Column("callback_id", String(32), ForeignKey("callbacks.id", ondelete="CASCADE"), primary_key=True),
    Column("completed", Boolean, nullable=False),
    Column("reason", String(255), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("bridged_at", DateTime(timezone=True)),
    Column("ended_at", DateTime(timezone=True), nullable=False),
    Column("bridged_s", Float, nullable=False),
    *(
        Column(f"{role.value}_{name}", Integer if name == "sip_code" else Float)
        for role in LegRole
        for name in _LEG_COLUMNS
    ),
)

# The column that remembers when a leg reached each state.
_STEP_COLUMN = {
    LegState.TRYING: "trying_at",
    LegState.RINGING: "ringing_at",
    LegState.ANSWERED: "answered_at",
    LegState.BRIDGED: "bridged_at",
    LegState.ENDED: "ended_at",
}
_TIME_COLUMNS = ("trying_at", "ringing_at", "answered_at", "bridged_at", "ended_at", "updated_at")
_CDR_TIME_COLUMNS = ("started_at", "bridged_at", "ended_at")


# The dispatcher records up to ten steps per callback and finishes each one: on SQLite that runs on
# the event loop, where building these statements per call was most of the node's CPU at high
# rates (BENCHMARKS.md, "Whole node"). Prepared per set of columns (store/prepared.py).
_leg_updates: dict[tuple[str, ...], Prepared] = {}
_INSERT_LEG = PreparedInsert(callback_legs)
_INSERT_CDR = PreparedInsert(callback_cdrs)
_FINISH = Prepared(
    update(callbacks)
    .where(
        callbacks.c.id == bindparam("k_id"),
        (callbacks.c.state == DIALING) | (callbacks.c.state == BRIDGED),
    )
    .values(
        state=bindparam("v_state"),
        reason=bindparam("v_reason"),
        updated_at=bindparam("v_now"),
        ended_at=bindparam("v_now"),
    )
)


_LEG_STATE = Prepared(
    select(callback_legs.c.state).where(
        callback_legs.c.callback_id == bindparam("k_callback_id"), callback_legs.c.role == bindparam("k_role")
    )
)


def _leg_update(columns: tuple[str, ...]) -> Prepared:
    prepared = _leg_updates.get(columns)
    if prepared is None:
        stmt = (
            update(callback_legs)
            .where(
                callback_legs.c.callback_id == bindparam("k_callback_id"),
                callback_legs.c.role == bindparam("k_role"),
            )
            .values({name: bindparam("v_" + name) for name in columns})
        )
        prepared = _leg_updates[columns] = Prepared(stmt)
    return prepared


def from_epoch(at: float | None) -> datetime | None:
    return None if at is None else datetime.fromtimestamp(at, UTC)


def _plain(row: Any, time_columns: tuple[str, ...]) -> dict[str, Any]:
    data = dict(row._mapping)
    for key in time_columns:
        data[key] = _aware(data[key])
    return data


@dataclass(frozen=True)
class CallbackRecord:
    """A callback with what the telephony side recorded about it."""

    callback: Callback
    legs: dict[str, dict[str, Any]]  # role -> leg row
    cdr: dict[str, Any] | None


def _leg_data(role: str, values: dict[str, Any]) -> dict[str, Any]:
    data = {"leg": role}
    keys = ("number", "sip_code", "reason", "ended_by")
    data.update({k: values[k] for k in keys if values.get(k) is not None})
    return data


class TelephonyStore:
    """`events`: writes `leg.<state>` when a leg's state changes and `callback.<state>` when the
    callback ends, in the transaction of the change."""

    def __init__(self, db: Database, events: EventWriter | None = None) -> None:
        self._db = db
        self.events = events or EventWriter()

    # ---- progress --------------------------------------------------------------------------

    def record_progress(self, event: ProgressEvent, number: str, account: str | None = None) -> None:
        """Create or update the leg's row with one step. Events about the whole callback
        (`leg is None`) are not leg rows; the dispatcher handles them."""
        if event.leg is None:
            return
        at = from_epoch(event.at)
        values: dict[str, Any] = {"state": event.state.value, "updated_at": datetime.now(UTC)}
        if event.sip_code is not None:
            values["sip_code"] = event.sip_code
        if event.reason is not None:
            values["reason"] = event.reason
        if event.ended_by is not None:
            values["ended_by"] = event.ended_by.value
        step = _STEP_COLUMN.get(event.state)
        if step is not None:
            values[step] = at
        if event.refresh:  # only the dialog changed (a re-INVITE took a CSeq)
            values = {"updated_at": values["updated_at"]}
        if event.attempts:
            values["attempts"] = json.dumps([a.to_json() for a in event.attempts])
        if event.dialog is not None:
            values["dialog"] = json.dumps(event.dialog.to_json())
        elif event.state is LegState.ENDED:
            values["dialog"] = None  # nothing left to hang up
        params = {"k_callback_id": event.callback_id, "k_role": event.leg.value}
        params.update({"v_" + name: value for name, value in values.items()})
        with self._db.begin() as conn:
            before = None if event.refresh else self._leg_state(conn, event.callback_id, event.leg.value)
            if _leg_update(tuple(values)).execute(conn, params).rowcount == 0:
                row = {"callback_id": event.callback_id, "role": event.leg.value, "number": number, **values}
                _INSERT_LEG.execute(conn, row)
            changed = not event.refresh and before != event.state.value
            if changed:
                who = account or username_of(conn, event.callback_id)
                data = _leg_data(event.leg.value, {"number": number, **values})
                self.events.write(conn, [NewEvent(f"leg.{event.state.value}", event.callback_id, who, data)])
        if changed:
            self.events.written()

    @staticmethod
    def _leg_state(conn: Any, callback_id: str, role: str) -> str | None:
        found: str | None = _LEG_STATE.execute(conn, {"k_callback_id": callback_id, "k_role": role}).scalar()
        return found

    def record_final_legs(
        self, callback_id: str, legs: dict[LegRole, LegRecord], account: str | None = None
    ) -> None:
        """Close each dialled leg's row with the engine's final account (it wins over a lost
        event). `LegRecord.final_state` may name the furthest state reached (e.g. `bridged`); the
        row's state becomes `ended` and the steps keep their times. Legs never dialled get no row."""
        for role, leg in legs.items():
            if leg.started_at is None and leg.final_state is LegState.IDLE:
                continue
            event = ProgressEvent(
                callback_id=callback_id,
                leg=role,
                state=LegState.ENDED,
                at=leg.ended_at or datetime.now(UTC).timestamp(),
                sip_code=leg.sip_code,
                reason=leg.reason,
                ended_by=leg.ended_by,
            )
            self.record_progress(event, leg.number, account)

    def close_open_legs(self, callback_id: str, reason: str) -> None:
        """Mark legs that never reported an end as ended (after a crash or an engine error)."""
        now = datetime.now(UTC)
        open_legs = select(callback_legs.c.role, callback_legs.c.number).where(
            callback_legs.c.callback_id == callback_id, callback_legs.c.state != "ended"
        )
        with self._db.begin() as conn:
            legs = conn.execute(open_legs).all()
            if not legs:
                return
            conn.execute(
                update(callback_legs)
                .where(callback_legs.c.callback_id == callback_id, callback_legs.c.state != "ended")
                .values(
                    state="ended", reason=reason, ended_by="error", ended_at=now, updated_at=now, dialog=None
                )
            )
            who = username_of(conn, callback_id)
            values = {"reason": reason, "ended_by": "error"}
            ended = [
                NewEvent("leg.ended", callback_id, who, _leg_data(role, {"number": number, **values}))
                for role, number in legs
            ]
            self.events.write(conn, ended)
        self.events.written()

    def open_dialogs(self, callback_id: str) -> dict[LegRole, LegDialog]:
        """The dialogs of the callback's legs that have not ended, as last stored."""
        query = select(callback_legs.c.role, callback_legs.c.dialog).where(
            callback_legs.c.callback_id == callback_id,
            callback_legs.c.state != "ended",
            callback_legs.c.dialog.is_not(None),
        )
        with self._db.connect() as conn:
            rows = conn.execute(query).all()
        return {LegRole(role): LegDialog.from_json(json.loads(text)) for role, text in rows}

    def checkpoint(self, callback_ids: list[str], at: float) -> None:
        """Note that these bridged callbacks were still talking at `at` (one statement)."""
        if not callback_ids:
            return
        with self._db.begin() as conn:
            conn.execute(
                update(callbacks)
                .where(callbacks.c.id.in_(callback_ids), callbacks.c.state == BRIDGED)
                .values(talked_until=from_epoch(at))
            )

    # ---- CDR -------------------------------------------------------------------------------

    def finish(self, callback: Callback, state: str, outcome: CallOutcome) -> bool:
        """Move the callback from in flight to `state` and write its CDR, in one transaction.
        False (nothing written) when it was not in flight: someone else already ended it."""
        now = datetime.now(UTC)
        with self._db.begin() as conn:
            moved = _FINISH.execute(
                conn, {"k_id": callback.id, "v_state": state, "v_reason": outcome.reason, "v_now": now}
            )
            if moved.rowcount != 1:
                return False
            row = _cdr_row(callback, outcome, now)
            _INSERT_CDR.execute(conn, row)
            data = {"reason": str(outcome.reason), "bridged_s": outcome.bridged_s}
            self.events.write(conn, [NewEvent(f"callback.{state}", callback.id, callback.username, data)])
        self.events.written()
        return True

    # ---- reading ---------------------------------------------------------------------------

    def legs(self, callback_id: str) -> dict[str, dict[str, Any]]:
        shown = [c for c in callback_legs.c if c.name != "dialog"]  # SIP internals, not for the API
        query = select(*shown).where(callback_legs.c.callback_id == callback_id)
        with self._db.connect() as conn:
            rows = [_plain(r, _TIME_COLUMNS) for r in conn.execute(query).all()]
        out: dict[str, dict[str, Any]] = {}
        for row in rows:
            del row["callback_id"]
            row["attempts"] = json.loads(row["attempts"]) if row.get("attempts") else []
            out[row.pop("role")] = row
        return out

    def cdr(self, callback_id: str) -> dict[str, Any] | None:
        query = select(callback_cdrs).where(callback_cdrs.c.callback_id == callback_id)
        with self._db.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _plain(row, _CDR_TIME_COLUMNS)

    def record(self, callback: Callback) -> CallbackRecord:
        return CallbackRecord(callback=callback, legs=self.legs(callback.id), cdr=self.cdr(callback.id))

    def in_flight(self, node: str) -> list[Callback]:
        """Callbacks this node was dialling or had bridged: after a restart, nobody is running them."""
        query = select(callbacks).where(callbacks.c.node == node, callbacks.c.state.in_((DIALING, BRIDGED)))
        with self._db.connect() as conn:
            return [_row_to_callback(r) for r in conn.execute(query).all()]


def _cdr_row(callback: Callback, outcome: CallOutcome, now: datetime) -> dict[str, Any]:
    ended = max((leg.ended_at for leg in outcome.legs.values() if leg.ended_at), default=None)
    row: dict[str, Any] = {
        "callback_id": callback.id,
        "completed": outcome.completed,
        "reason": outcome.reason,
        "started_at": callback.started_at,
        "bridged_at": from_epoch(outcome.bridged_at),
        "ended_at": from_epoch(ended) or now,
        "bridged_s": outcome.bridged_s,
    }
    for role, leg in outcome.legs.items():
        for name in _LEG_COLUMNS:
            row[f"{role.value}_{name}"] = getattr(leg, name)
    return row
