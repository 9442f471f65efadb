"""Billing tables: rate plans and their rates, the per-callback charge record (reservation, then
settlement), and the append-only ledger of balance changes. Migration `0003_billing` creates them
(and the `accounts.plan` column, declared in `schema.py` with the rest of `accounts`).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Table,
    UniqueConstraint,
)

from webcallback.billing.settlement import RELEASED, SETTLED
from webcallback.store.schema import MONEY, metadata

__all__ = ["RELEASED", "RESERVED", "SETTLED", "charges", "ledger", "rate_plans", "rates"]

# Charge states: a reservation is held from acceptance until the callback ends, then either
# settled (charged from the outcome) or released (nothing charged).
RESERVED = "reserved"

rate_plans = Table(
    "rate_plans",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("currency", String(3), nullable=False),
    # Bumped by every import: nodes compare it with their in-memory copy (billing.deck_refresh).
    Column("version", Integer, nullable=False),
    Column("rate_count", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

rates = Table(
    "rates",
    metadata,
    Column("plan", String(64), ForeignKey("rate_plans.name", ondelete="CASCADE"), primary_key=True),
    Column("prefix", String(16), primary_key=True),
    Column("price_per_minute", MONEY, nullable=False),
    Column("connection_fee", MONEY, nullable=False),
    Column("first_increment", Integer, nullable=False),
    Column("next_increment", Integer, nullable=False),
    Column("description", String(255), nullable=False),
)


def _leg_columns(leg: str) -> list[Column[object]]:
    """The rate a leg was priced at (copied, so later imports do not rewrite history) and, once
    settled, what it was charged."""
    return [
        Column(f"{leg}_prefix", String(16)),
        Column(f"{leg}_price", MONEY),
        Column(f"{leg}_fee", MONEY),
        Column(f"{leg}_first", Integer),
        Column(f"{leg}_next", Integer),
        Column(f"{leg}_duration", Float),
        Column(f"{leg}_billed_s", Integer),
        Column(f"{leg}_charge", MONEY),
    ]


charges = Table(
    "charges",
    metadata,
    # No foreign key to callbacks: the reservation is taken before the callback row is written.
    Column("callback_id", String(32), primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="SET NULL"), index=True),
    Column("username", String(64), nullable=False),
    Column("plan", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("state", String(16), nullable=False, index=True),
    Column("reserved", MONEY, nullable=False),
    Column("max_duration", Float, nullable=False),
    *_leg_columns("dest"),
    *_leg_columns("cb"),
    Column("total", MONEY),
    Column("capped", Boolean, nullable=False, default=False),  # the rated cost exceeded the reserve
    Column("reason", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("settled_at", DateTime(timezone=True)),
)

ledger = Table(
    "ledger",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="SET NULL"), index=True),
    Column("username", String(64), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # topup, call, adjust
    Column("amount", MONEY, nullable=False),  # signed: + credit, - debit
    Column("balance_after", MONEY, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("callback_id", String(32)),
    Column("note", String(255)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # At most one call charge per callback, whatever happens to the settlement hook.
    UniqueConstraint("callback_id", "kind", name="uq_ledger_callback_kind"),
)
