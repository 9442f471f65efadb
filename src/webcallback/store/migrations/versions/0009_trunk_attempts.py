"""Several trunks: each leg's attempts, one per trunk tried (`callback_legs.attempts`, JSON: trunk,
Request-URI user, start time, SIP code, result), as `calls show` and the status API show them.

Revision ID: 0009_trunk_attempts
Revises: 0007_events
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_trunk_attempts"
down_revision = "0007_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("callback_legs") as batch:
        batch.add_column(sa.Column("attempts", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("callback_legs") as batch:
        batch.drop_column("attempts")
