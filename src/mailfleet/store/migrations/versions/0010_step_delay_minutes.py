"""a step's delay in hours and minutes beside its days

``step.delay_minutes`` is added to ``delay_days`` (calendar or business days): a
follow-up 4 hours after the first message, or 2 days and 6 hours later.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 02:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("step") as batch:
        batch.add_column(
            sa.Column("delay_minutes", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("step") as batch:
        batch.drop_column("delay_minutes")
