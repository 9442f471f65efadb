"""An index on callbacks (account_id, created_at): the daily cap and duplicate suppression read an
account's recent callbacks on every request, and the single-column index on account_id made them
scan every callback the account ever had.

Revision ID: 0005_callbacks_by_account
Revises: 0004_security
"""

from alembic import op

revision = "0005_callbacks_by_account"
down_revision = "0004_security"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_callbacks_account_created", "callbacks", ["account_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_callbacks_account_created", table_name="callbacks")
