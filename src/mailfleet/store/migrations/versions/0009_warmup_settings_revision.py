"""a revision on warmup settings for change detection; replies to send by index

- ``warmup_settings.revision`` is bumped by every update of the row (as
  ``mailbox.revision`` is), so the warmup sender keeps the settings in memory and
  re-reads them only when a person or another process changed them.
- ``ix_warmup_message_reply_due`` becomes ``(reply_send_id, reply_due_at)``: the
  replies still to send are a range of it, however many were sent before.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 23:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("warmup_settings") as batch:
        batch.add_column(sa.Column("revision", sa.Integer(), server_default="0", nullable=False))
    op.drop_index("ix_warmup_message_reply_due", table_name="warmup_message")
    op.create_index(
        "ix_warmup_message_reply_due", "warmup_message", ["reply_send_id", "reply_due_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_warmup_message_reply_due", table_name="warmup_message")
    op.create_index("ix_warmup_message_reply_due", "warmup_message", ["reply_due_at"])
    with op.batch_alter_table("warmup_settings") as batch:
        batch.drop_column("revision")
