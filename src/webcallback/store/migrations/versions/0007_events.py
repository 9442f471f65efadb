"""Events and webhooks: the event log (`events`), the webhook outbox written with each event
(`webhook_outbox`), its delivery log (`webhook_attempts`), per-account webhooks
(`account_webhooks`) and a callback's own status URL (`callbacks.status_url`).

Revision ID: 0007_events
Revises: 0006_dialogs_and_checkpoints
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_events"
down_revision = "0006_dialogs_and_checkpoints"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("callback_id", sa.String(32), nullable=False, index=True),
        sa.Column("account", sa.String(64), index=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("data", sa.Text(), nullable=False),
    )
    op.create_table(
        "webhook_outbox",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("target", sa.String(16), nullable=False),
        sa.Column("account", sa.String(64)),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_status", sa.Integer()),
        sa.Column("last_error", sa.String(255)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
        sa.Index("ix_webhook_outbox_due", "state", "next_at"),
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "outbox_id",
            sa.Integer(),
            sa.ForeignKey("webhook_outbox.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Integer()),
        sa.Column("error", sa.String(255)),
        sa.Column("seconds", sa.Float(), nullable=False),
    )
    op.create_table(
        "account_webhooks",
        sa.Column(
            "account_id", sa.Integer(), sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret_enc", sa.LargeBinary()),
        sa.Column("key_id", sa.String(16)),
        sa.Column("events", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("callbacks") as batch:
        batch.add_column(sa.Column("status_url", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("callbacks") as batch:
        batch.drop_column("status_url")
    op.drop_table("account_webhooks")
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_outbox")
    op.drop_table("events")
