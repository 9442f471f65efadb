"""Call detail records for export: one flat record per charged (or released) callback, both legs'
durations, rates and charges side by side. Pure: rows in (from `CreditStore.cdrs`), records out."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

FIELDS = (
    "callback_id",
    "created_at",
    "ended_at",
    "username",
    "destination",
    "callback",
    "call_state",
    "call_reason",
    "plan",
    "currency",
    "charge_state",
    "reserved",
    "max_duration",
    *(
        f"{leg}_{what}"
        for leg in ("dest", "cb")
        for what in ("prefix", "rate", "fee", "increments", "duration", "billed_s", "charge")
    ),
    "total",
    "capped",
)


def _text(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def _money(value: Any) -> str | None:
    return None if value is None else str(Decimal(str(value)).quantize(Decimal("0.000001")))


def record(row: Mapping[str, Any]) -> dict[str, Any]:
    """One CDR from a charge row joined with its callback (`call_*` columns)."""
    out: dict[str, Any] = {
        "callback_id": row["callback_id"],
        "created_at": _text(row["created_at"]),
        "ended_at": _text(row.get("call_ended_at")),
        "username": row["username"],
        "destination": row.get("call_destination"),
        "callback": row.get("call_callback"),
        "call_state": row.get("call_state"),
        "call_reason": row.get("call_reason"),
        "plan": row["plan"],
        "currency": row["currency"],
        "charge_state": row["state"],
        "reserved": _money(row["reserved"]),
        "max_duration": row["max_duration"],
    }
    for leg in ("dest", "cb"):
        billed = row[f"{leg}_prefix"] is not None
        out[f"{leg}_prefix"] = row[f"{leg}_prefix"]
        out[f"{leg}_rate"] = _money(row[f"{leg}_price"])
        out[f"{leg}_fee"] = _money(row[f"{leg}_fee"])
        out[f"{leg}_increments"] = f"{row[f'{leg}_first']}/{row[f'{leg}_next']}" if billed else None
        out[f"{leg}_duration"] = row[f"{leg}_duration"]
        out[f"{leg}_billed_s"] = row[f"{leg}_billed_s"]
        out[f"{leg}_charge"] = _money(row[f"{leg}_charge"])
    out["total"] = _money(row["total"])
    out["capped"] = bool(row["capped"])
    return out


def render(records: Iterable[Mapping[str, Any]], fmt: str) -> str:
    """CSV with a header line, or a JSON array."""
    if fmt == "json":
        return json.dumps(list(records), indent=2) + "\n"
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in records:
        writer.writerow({k: "" if v is None else v for k, v in r.items()})
    return buf.getvalue()
