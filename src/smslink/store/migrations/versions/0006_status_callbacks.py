"""Schema version 6: connections.callback_base_url and callback_tokens, for status callbacks.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

#: The schema version this revision leaves behind (older smslink releases read it).
SCHEMA_VERSION = 6


def upgrade() -> None:
    # A nullable column: ADD COLUMN on both backends, no table copy; NULL is "polling only".
    op.add_column("connections", sa.Column("callback_base_url", sa.Text()))
    op.create_table(
        "callback_tokens",
        sa.Column("token", sa.String(128), primary_key=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_callback_tokens_received_at", "callback_tokens", ["received_at"])
    _set_schema_version(SCHEMA_VERSION)


def downgrade() -> None:
    op.drop_index("ix_callback_tokens_received_at", table_name="callback_tokens")
    op.drop_table("callback_tokens")
    # A plain DROP COLUMN (SQLite 3.35+, as in 0002): a batch copy of connections would
    # drop the table its touchpoints' foreign keys point at.
    op.drop_column("connections", "callback_base_url")
    _set_schema_version(SCHEMA_VERSION - 1)


def _set_schema_version(version: int) -> None:
    """meta.schema_version, which older smslink releases read to refuse a newer database."""
    op.execute(
        sa.text("UPDATE meta SET value = :v WHERE key = 'schema_version'").bindparams(
            v=str(version)
        )
    )
