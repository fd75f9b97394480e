"""Mail: the outbox (messages, each queued once under a unique key, and every attempt to send
one; append-only) and each user's mail address as their logins gave it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08

Self-contained like 0001: the schema as it is at this revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

MESSAGES = "hpchub_mail_messages"
ATTEMPTS = "hpchub_mail_attempts"
CONTACTS = "hpchub_user_contacts"


def upgrade() -> None:
    op.create_table(
        MESSAGES,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("to_address", sa.String(length=254), nullable=False),
        sa.Column("to_user", sa.String(length=32), nullable=True),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("queued_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=f"pk_{MESSAGES}"),
        sa.UniqueConstraint("key", name=f"uq_{MESSAGES}_key"),
    )
    op.create_table(
        ATTEMPTS,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["message_id"], [f"{MESSAGES}.id"], name=f"fk_{ATTEMPTS}_message_id_{MESSAGES}"),
        sa.PrimaryKeyConstraint("id", name=f"pk_{ATTEMPTS}"),
    )
    op.create_index(f"ix_{ATTEMPTS}_message_id_ok", ATTEMPTS, ["message_id", "ok"])
    op.create_table(
        CONTACTS,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user", sa.String(length=32), nullable=False),
        sa.Column("address", sa.String(length=254), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=f"pk_{CONTACTS}"),
    )
    op.create_index(f"ix_{CONTACTS}_user_id", CONTACTS, ["user", "id"])


def downgrade() -> None:
    op.drop_table(CONTACTS)
    op.drop_table(ATTEMPTS)
    op.drop_table(MESSAGES)
