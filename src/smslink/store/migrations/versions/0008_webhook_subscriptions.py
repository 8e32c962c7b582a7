"""Schema version 8: webhook subscriptions, where delivery events are posted.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-13
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

#: The schema version this revision leaves behind (older smslink releases read it).
SCHEMA_VERSION = 8


def upgrade() -> None:
    # A new table only: no subscription exists before this version.
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("touchpoint", sa.String(200)),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200)),
        sa.Column("last_event_id", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("failing_since", sa.DateTime(timezone=True)),
        sa.Column("disabled_at", sa.DateTime(timezone=True)),
        sa.Column("disabled_reason", sa.Text()),
        sa.Column("last_error", sa.Text()),
        sqlite_autoincrement=True,
    )
    _set_schema_version(SCHEMA_VERSION)


def downgrade() -> None:
    op.drop_table("webhook_subscriptions")
    _set_schema_version(SCHEMA_VERSION - 1)


def _set_schema_version(version: int) -> None:
    """meta.schema_version, which older smslink releases read to refuse a newer database."""
    op.execute(
        sa.text("UPDATE meta SET value = :v WHERE key = 'schema_version'").bindparams(
            v=str(version)
        )
    )
