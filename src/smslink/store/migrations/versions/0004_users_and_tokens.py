"""Schema version 4: users and API tokens for the web face, runs.origin, and the last
connection test's outcome.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

#: The schema version this revision leaves behind (older smslink releases read it).
SCHEMA_VERSION = 4


def upgrade() -> None:
    # Runs from before the web face were all started from the command line.
    op.add_column(
        "runs",
        sa.Column("origin", sa.String(16), nullable=False, server_default=sa.text("'cli'")),
    )
    op.add_column("connections", sa.Column("last_test_at", sa.DateTime(timezone=True)))
    op.add_column("connections", sa.Column("last_test_ok", sa.Boolean()))
    op.add_column("connections", sa.Column("last_test_message", sa.Text()))
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locale", sa.String(16)),
        sa.Column("time_zone", sa.String(64)),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    _set_schema_version(SCHEMA_VERSION)


def downgrade() -> None:
    op.drop_table("api_tokens")
    op.drop_table("users")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("origin")
    with op.batch_alter_table("connections") as batch:
        for column in ("last_test_message", "last_test_ok", "last_test_at"):
            batch.drop_column(column)
    _set_schema_version(SCHEMA_VERSION - 1)


def _set_schema_version(version: int) -> None:
    """meta.schema_version, which older smslink releases read to refuse a newer database."""
    op.execute(
        sa.text("UPDATE meta SET value = :v WHERE key = 'schema_version'").bindparams(
            v=str(version)
        )
    )
