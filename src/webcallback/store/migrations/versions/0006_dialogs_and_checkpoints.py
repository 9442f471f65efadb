"""Crash survival: each leg's SIP dialog (`callback_legs.dialog`, JSON) so a restart can BYE it, and
the bridged time checkpoint (`callbacks.talked_until`) so an interrupted call is charged for what
was talked.

Revision ID: 0006_dialogs_and_checkpoints
Revises: 0005_callbacks_by_account
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_dialogs_and_checkpoints"
down_revision = "0005_callbacks_by_account"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("callback_legs") as batch:
        batch.add_column(sa.Column("dialog", sa.Text(), nullable=True))
    with op.batch_alter_table("callbacks") as batch:
        batch.add_column(sa.Column("talked_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("callbacks") as batch:
        batch.drop_column("talked_until")
    with op.batch_alter_table("callback_legs") as batch:
        batch.drop_column("dialog")
