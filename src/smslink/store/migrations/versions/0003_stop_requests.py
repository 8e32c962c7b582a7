"""Schema version 3: runs.stop_requested_at, so a run can be asked to stop from another
process (a page's Stop button, `runs stop`) and the process sending it stops resumably.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

#: The schema version this revision leaves behind (older smslink releases read it).
SCHEMA_VERSION = 3


def upgrade() -> None:
    # Nullable: no run has been asked to stop. SQLite adds a nullable column in place.
    op.add_column("runs", sa.Column("stop_requested_at", sa.DateTime(timezone=True)))
    _set_schema_version(SCHEMA_VERSION)


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("stop_requested_at")
    _set_schema_version(SCHEMA_VERSION - 1)


def _set_schema_version(version: int) -> None:
    """meta.schema_version, which older smslink releases read to refuse a newer database."""
    op.execute(
        sa.text("UPDATE meta SET value = :v WHERE key = 'schema_version'").bindparams(
            v=str(version)
        )
    )
