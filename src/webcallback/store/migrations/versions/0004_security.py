"""Security: counters, lockouts, Digest nonces, callback slots, registered numbers, events.

Revision ID: 0004_security
Revises: 0004_merge_telephony_billing
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_security"
down_revision = "0004_merge_telephony_billing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    tz = sa.DateTime(timezone=True)
    op.create_table(
        "security_counters",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("window_start", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.create_table(
        "security_lockouts",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("until", tz, nullable=False),
        sa.Column("reason", sa.String(255), nullable=False),
        sa.Column("created_at", tz, nullable=False),
    )
    op.create_table(
        "digest_nonces",
        sa.Column("nonce", sa.String(128), primary_key=True),
        sa.Column("last_nc", sa.BigInteger, nullable=False),
        sa.Column("expires_at", tz, nullable=False, index=True),
    )
    account_fk = sa.ForeignKey("accounts.id", ondelete="CASCADE")
    op.create_table(
        "callback_slots",
        sa.Column("account_id", sa.Integer, account_fk, primary_key=True),
        sa.Column("slot", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("callback_id", sa.String(32), nullable=False, unique=True),
        sa.Column("destination", sa.String(32), nullable=False),
        sa.Column("callback", sa.String(32), nullable=False),
        sa.Column("acquired_at", tz, nullable=False),
    )
    op.create_table(
        "registered_numbers",
        sa.Column(
            "account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("number", sa.String(32), primary_key=True),
        sa.Column("created_at", tz, nullable=False),
    )
    op.create_table(
        "security_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", tz, nullable=False, index=True),
        sa.Column("kind", sa.String(32), nullable=False, index=True),
        sa.Column("username", sa.String(64), index=True),
        sa.Column("client_ip", sa.String(64), index=True),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("detail", sa.String(255)),
    )


def downgrade() -> None:
    for table in (
        "security_events",
        "registered_numbers",
        "callback_slots",
        "digest_nonces",
        "security_lockouts",
        "security_counters",
    ):
        op.drop_table(table)
