"""planner indexes and a mailbox revision for change detection

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 20:40:00

- ``enrollment(status, next_step, next_due_at)``: the due query asks for first steps
  (``next_step = 1``) and follow-ups (``next_step IN (2, …)``) oldest first;
- ``enrollment(mailbox_id, status, next_due_at)``: due follow-ups of the mailboxes
  ready to send;
- ``send(claimed_at)``: the usage ledger's re-sync reads the sends of the last day;
- ``mailbox.revision``: bumped by every update of the row, so the engine can keep
  mailboxes in memory and notice a change with one cheap aggregate.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mailbox") as batch:
        batch.add_column(sa.Column("revision", sa.Integer(), server_default="0", nullable=False))
    op.create_index("ix_enrollment_step_due", "enrollment", ["status", "next_step", "next_due_at"])
    op.create_index(
        "ix_enrollment_mailbox_due", "enrollment", ["mailbox_id", "status", "next_due_at"]
    )
    op.create_index("ix_send_claimed_at", "send", ["claimed_at"])


def downgrade() -> None:
    op.drop_index("ix_send_claimed_at", table_name="send")
    op.drop_index("ix_enrollment_mailbox_due", table_name="enrollment")
    op.drop_index("ix_enrollment_step_due", table_name="enrollment")
    with op.batch_alter_table("mailbox") as batch:
        batch.drop_column("revision")
