"""lead validation records for the pre-launch gate

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 20:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lead_validation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("validated_at", sa.DateTime(), nullable=False),
        sa.Column("source", sa.String(length=1000), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("enrolled", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaign.id"],
            name=op.f("fk_lead_validation_campaign_id_campaign"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_validation")),
    )
    with op.batch_alter_table("lead_validation", schema=None) as batch_op:
        batch_op.create_index(
            "ix_lead_validation_campaign", ["campaign_id", "validated_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("lead_validation", schema=None) as batch_op:
        batch_op.drop_index("ix_lead_validation_campaign")
    op.drop_table("lead_validation")
