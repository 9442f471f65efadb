"""Join the two branches that both grew from 0001_initial: telephony records (0002) and billing
(0003). No schema change; a database at either head, or at both, upgrades to this one.

Revision ID: 0004_merge_telephony_billing
Revises: 0002_telephony, 0003_billing
"""

revision = "0004_merge_telephony_billing"
down_revision = ("0002_telephony", "0003_billing")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
