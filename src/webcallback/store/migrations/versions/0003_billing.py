"""Billing: accounts.plan, rate plans and rates, charges (reservations and settlements), ledger.

Revision ID: 0003_billing
Revises: 0001_initial
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_billing"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(18, 6)


def _leg(leg: str) -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column(f"{leg}_prefix", sa.String(16)),
        sa.Column(f"{leg}_price", MONEY),
        sa.Column(f"{leg}_fee", MONEY),
        sa.Column(f"{leg}_first", sa.Integer),
        sa.Column(f"{leg}_next", sa.Integer),
        sa.Column(f"{leg}_duration", sa.Float),
        sa.Column(f"{leg}_billed_s", sa.Integer),
        sa.Column(f"{leg}_charge", MONEY),
    ]


def upgrade() -> None:
    op.add_column("accounts", sa.Column("plan", sa.String(64)))
    op.create_table(
        "rate_plans",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("rate_count", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "rates",
        sa.Column(
            "plan", sa.String(64), sa.ForeignKey("rate_plans.name", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("prefix", sa.String(16), primary_key=True),
        sa.Column("price_per_minute", MONEY, nullable=False),
        sa.Column("connection_fee", MONEY, nullable=False),
        sa.Column("first_increment", sa.Integer, nullable=False),
        sa.Column("next_increment", sa.Integer, nullable=False),
        sa.Column("description", sa.String(255), nullable=False),
    )
    op.create_table(
        "charges",
        sa.Column("callback_id", sa.String(32), primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="SET NULL"), index=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("plan", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("reserved", MONEY, nullable=False),
        sa.Column("max_duration", sa.Float, nullable=False),
        *_leg("dest"),
        *_leg("cb"),
        sa.Column("total", MONEY),
        sa.Column("capped", sa.Boolean, nullable=False),
        sa.Column("reason", sa.String(64)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("settled_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "ledger",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="SET NULL"), index=True),
        sa.Column("username", sa.String(64), nullable=False, index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("balance_after", MONEY, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("callback_id", sa.String(32)),
        sa.Column("note", sa.String(255)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("callback_id", "kind", name="uq_ledger_callback_kind"),
    )


def downgrade() -> None:
    op.drop_table("ledger")
    op.drop_table("charges")
    op.drop_table("rates")
    op.drop_table("rate_plans")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("plan")
