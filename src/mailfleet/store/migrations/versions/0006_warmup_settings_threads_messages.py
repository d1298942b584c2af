"""warmup settings, threads and messages

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 20:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "warmup_settings",
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("started_on", sa.Date(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("paused_reason", sa.Text(), nullable=True),
        sa.Column("ramp_start", sa.Integer(), nullable=True),
        sa.Column("ramp_step", sa.Integer(), nullable=True),
        sa.Column("ramp_ceiling", sa.Integer(), nullable=True),
        sa.Column("weekdays_only", sa.Boolean(), nullable=False),
        sa.Column("shared_pool", sa.Boolean(), nullable=False),
        sa.Column("cold_cap_factor", sa.Float(), nullable=False),
        sa.Column("cap_changed_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailbox.id"],
            name=op.f("fk_warmup_settings_mailbox_id_mailbox"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("mailbox_id", name=op.f("pk_warmup_settings")),
    )
    op.create_table(
        "warmup_thread",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("opener_mailbox_id", sa.Integer(), nullable=False),
        sa.Column("peer_mailbox_id", sa.Integer(), nullable=False),
        sa.Column("topic", sa.Integer(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("root_message_id", sa.String(length=998), nullable=False),
        sa.Column("last_message_id", sa.String(length=998), nullable=False),
        sa.Column("references", sa.JSON(), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("last_at", sa.DateTime(), nullable=False),
        sa.Column("opener_cleaned_at", sa.DateTime(), nullable=True),
        sa.Column("peer_cleaned_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["opener_mailbox_id"],
            ["mailbox.id"],
            name=op.f("fk_warmup_thread_opener_mailbox_id_mailbox"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["peer_mailbox_id"],
            ["mailbox.id"],
            name=op.f("fk_warmup_thread_peer_mailbox_id_mailbox"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_warmup_thread_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warmup_thread")),
    )
    op.create_index(
        "ix_warmup_thread_pair", "warmup_thread", ["opener_mailbox_id", "peer_mailbox_id"]
    )
    op.create_table(
        "warmup_message",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("send_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("thread_id", sa.Integer(), nullable=False),
        sa.Column("sender_mailbox_id", sa.Integer(), nullable=False),
        sa.Column("peer_mailbox_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=998), nullable=False),
        sa.Column("token", sa.String(length=40), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("plan_day", sa.Date(), nullable=True),
        sa.Column("slot", sa.Integer(), nullable=True),
        sa.Column("planned_at", sa.DateTime(), nullable=False),
        sa.Column("placement", sa.String(length=16), nullable=True),
        sa.Column("observed_at", sa.DateTime(), nullable=True),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("reply_due_at", sa.DateTime(), nullable=True),
        sa.Column(
            "reply_send_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("cleaned_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["peer_mailbox_id"],
            ["mailbox.id"],
            name=op.f("fk_warmup_message_peer_mailbox_id_mailbox"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reply_send_id"],
            ["send.id"],
            name=op.f("fk_warmup_message_reply_send_id_send"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["send_id"],
            ["send.id"],
            name=op.f("fk_warmup_message_send_id_send"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sender_mailbox_id"],
            ["mailbox.id"],
            name=op.f("fk_warmup_message_sender_mailbox_id_mailbox"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["thread_id"],
            ["warmup_thread.id"],
            name=op.f("fk_warmup_message_thread_id_warmup_thread"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warmup_message")),
        sa.UniqueConstraint("message_id", name=op.f("uq_warmup_message_message_id")),
        sa.UniqueConstraint("send_id", name=op.f("uq_warmup_message_send_id")),
        sa.UniqueConstraint("sender_mailbox_id", "plan_day", "slot", name="uq_warmup_message_slot"),
    )
    op.create_index("ix_warmup_message_peer", "warmup_message", ["peer_mailbox_id", "placement"])
    op.create_index("ix_warmup_message_reply_due", "warmup_message", ["reply_due_at"])
    op.create_index(
        "ix_warmup_message_sender_time", "warmup_message", ["sender_mailbox_id", "planned_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_warmup_message_sender_time", table_name="warmup_message")
    op.drop_index("ix_warmup_message_reply_due", table_name="warmup_message")
    op.drop_index("ix_warmup_message_peer", table_name="warmup_message")
    op.drop_table("warmup_message")
    op.drop_index("ix_warmup_thread_pair", table_name="warmup_thread")
    op.drop_table("warmup_thread")
    op.drop_table("warmup_settings")
