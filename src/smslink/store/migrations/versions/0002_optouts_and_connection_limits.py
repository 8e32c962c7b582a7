"""Schema version 2: the optouts table; connections.max_segments_per_second and
connections.request_timeout_s.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

Each change is made only if it is missing, as the hand-written upgrade this replaces did, so
a database changed part of the way (a column added by hand) is completed, not failed on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

#: The schema version this revision leaves behind (older smslink releases read it).
SCHEMA_VERSION = 2


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    present = {c["name"] for c in inspector.get_columns("connections")}
    if "max_segments_per_second" not in present:
        # NULL: no cap, as before.
        op.add_column("connections", sa.Column("max_segments_per_second", sa.Float()))
    if "request_timeout_s" not in present:
        # The server default fills the rows the table already holds (the default of
        # smslink.domain.models.DEFAULT_REQUEST_TIMEOUT_S when this revision was written).
        op.add_column(
            "connections",
            sa.Column(
                "request_timeout_s", sa.Float(), nullable=False, server_default=sa.text("30.0")
            ),
        )
    if not inspector.has_table("optouts"):
        op.create_table(
            "optouts",
            sa.Column("sender", sa.String(64), primary_key=True),
            sa.Column("phone", sa.String(32), primary_key=True),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("run_id", sa.Integer()),
            sa.Column("source", sa.String(32), nullable=False),
            sa.Column("message", sa.Text()),
        )
        op.create_index("ix_optouts_phone", "optouts", ["phone"])
    _set_schema_version(SCHEMA_VERSION)


def downgrade() -> None:
    op.drop_table("optouts")
    op.drop_column("connections", "request_timeout_s")
    op.drop_column("connections", "max_segments_per_second")
    _set_schema_version(SCHEMA_VERSION - 1)


def _set_schema_version(version: int) -> None:
    """meta.schema_version, which older smslink releases read to refuse a newer database."""
    op.execute(
        sa.text("UPDATE meta SET value = :v WHERE key = 'schema_version'").bindparams(
            v=str(version)
        )
    )
