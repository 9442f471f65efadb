"""What a finished callback costs, pure: from the rates recorded at reservation and the outcome.

Policy: only a callback whose legs were connected is charged, for the time they were (what the
trunk bills too), whatever ended it — a completed one, or one interrupted by a crash, settled on
the talk its restart could prove (`service/records.py`); a failed or unanswered one releases its
reservation whole, even if one leg was answered (the user never got a conversation).
With `leg_duration = "bridged"` both legs are charged for the connected time (what
the maximum duration cuts); with `"talk"` each leg from its own answer, waiting for the other leg
included. The charge never exceeds the reservation: what the reserve could not cover is dropped
and the settlement is marked `capped`, so a balance never goes below zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from webcallback.billing.rating import LegCharge, Rate, rate_leg
from webcallback.domain import CallOutcome, LegRole

SETTLED = "settled"
RELEASED = "released"


@dataclass(frozen=True, kw_only=True)
class Settlement:
    """How a reservation ends; no durations and a zero total for a release."""

    callback_id: str
    state: str  # SETTLED or RELEASED
    reason: str
    dest_duration: float | None = None
    dest_billed_s: int | None = None
    dest_charge: Decimal | None = None
    cb_duration: float | None = None
    cb_billed_s: int | None = None
    cb_charge: Decimal | None = None
    total: Decimal = Decimal(0)
    capped: bool = False


def leg_durations(outcome: CallOutcome, leg_duration: str) -> tuple[float, float]:
    """(destination, callback) seconds to charge."""
    if leg_duration == "bridged":
        return outcome.bridged_s, outcome.bridged_s
    dest = outcome.legs.get(LegRole.DESTINATION)
    cb = outcome.legs.get(LegRole.CALLBACK)
    return (dest.talk_s or 0.0) if dest else 0.0, (cb.talk_s or 0.0) if cb else 0.0


def settle(
    outcome: CallOutcome,
    *,
    destination: Rate,
    callback: Rate | None,
    reserved: Decimal,
    leg_duration: str = "bridged",
) -> Settlement:
    connected = outcome.completed or outcome.bridged_at is not None  # an interrupted call talked too
    if not connected or outcome.bridged_s <= 0:
        return Settlement(callback_id=outcome.callback_id, state=RELEASED, reason=outcome.reason)
    dest_s, cb_s = leg_durations(outcome, leg_duration)
    dest = rate_leg(destination, dest_s)
    cb: LegCharge | None = rate_leg(callback, cb_s) if callback is not None else None
    total = dest.charge + (cb.charge if cb else Decimal(0))
    return Settlement(
        callback_id=outcome.callback_id,
        state=SETTLED,
        reason=outcome.reason,
        dest_duration=dest_s,
        dest_billed_s=dest.billed_seconds,
        dest_charge=dest.charge,
        cb_duration=cb_s if cb else None,
        cb_billed_s=cb.billed_seconds if cb else None,
        cb_charge=cb.charge if cb else None,
        total=min(total, reserved),
        capped=total > reserved,
    )


def release(callback_id: str, reason: str) -> Settlement:
    return Settlement(callback_id=callback_id, state=RELEASED, reason=reason)
