"""Telephony records: each leg's progress and one CDR per callback (see `store/telephony.py`).

Revision ID: 0002_telephony
Revises: 0001_initial
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_telephony"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

_ROLES = ("destination", "callback")


def upgrade() -> None:
    op.create_table(
        "callback_legs",
        sa.Column(
            "callback_id", sa.String(32), sa.ForeignKey("callbacks.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("role", sa.String(16), primary_key=True),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("sip_code", sa.Integer),
        sa.Column("reason", sa.String(255)),
        sa.Column("ended_by", sa.String(16)),
        sa.Column("trying_at", sa.DateTime(timezone=True)),
        sa.Column("ringing_at", sa.DateTime(timezone=True)),
        sa.Column("answered_at", sa.DateTime(timezone=True)),
        sa.Column("bridged_at", sa.DateTime(timezone=True)),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    leg_columns = []
    for role in _ROLES:
        leg_columns += [
            sa.Column(f"{role}_setup_s", sa.Float),
            sa.Column(f"{role}_ring_s", sa.Float),
            sa.Column(f"{role}_talk_s", sa.Float),
            sa.Column(f"{role}_sip_code", sa.Integer),
        ]
    op.create_table(
        "callback_cdrs",
        sa.Column(
            "callback_id", sa.String(32), sa.ForeignKey("callbacks.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("completed", sa.Boolean, nullable=False),
        sa.Column("reason", sa.String(255), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("bridged_at", sa.DateTime(timezone=True)),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("bridged_s", sa.Float, nullable=False),
        *leg_columns,
    )


def downgrade() -> None:
    op.drop_table("callback_cdrs")
    op.drop_table("callback_legs")
