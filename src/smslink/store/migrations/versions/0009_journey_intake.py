"""Schema version 9: journey intake (the identity of each record, remembered requests).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

#: The schema version this revision leaves behind (older smslink releases read it).
SCHEMA_VERSION = 9


def upgrade() -> None:
    # Nullable: every delivery stored before this version is a campaign's, with no identity.
    op.add_column("deliveries", sa.Column("identity_json", sa.Text()))
    op.create_table(
        "intake_keys",
        sa.Column("touchpoint", sa.String(200), primary_key=True),
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_sha256", sa.String(64)),
        sa.Column("answer_json", sa.Text(), nullable=False),
    )
    op.create_index("ix_intake_keys_created_at", "intake_keys", ["created_at"])
    _set_schema_version(SCHEMA_VERSION)


def downgrade() -> None:
    op.drop_index("ix_intake_keys_created_at", table_name="intake_keys")
    op.drop_table("intake_keys")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("identity_json")
    _set_schema_version(SCHEMA_VERSION - 1)


def _set_schema_version(version: int) -> None:
    """meta.schema_version, which older smslink releases read to refuse a newer database."""
    op.execute(
        sa.text("UPDATE meta SET value = :v WHERE key = 'schema_version'").bindparams(
            v=str(version)
        )
    )
