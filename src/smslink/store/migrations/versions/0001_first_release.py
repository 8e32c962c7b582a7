"""Schema version 1, as the first release created it: connections, touchpoints, runs (with
their lease) and deliveries, and the meta table holding the schema version.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

A database that hand-written code of an earlier release created at version 1 is stamped at
this revision rather than run through it. The tables are written out as they were then, not
imported from schema.py, which describes the newest revision. Each is created only if it is
missing, like the create_all() it replaces, so a database completed by hand is not failed on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

#: The schema version this revision leaves behind (older smslink releases read it).
SCHEMA_VERSION = 1


def upgrade() -> None:
    present = set(sa.inspect(op.get_bind()).get_table_names())
    if "meta" not in present:
        op.create_table(
            "meta",
            sa.Column("key", sa.String(64), primary_key=True),
            sa.Column("value", sa.Text(), nullable=False),
        )
    if "connections" not in present:
        op.create_table(
            "connections",
            sa.Column("name", sa.String(200), primary_key=True),
            sa.Column("account_sid", sa.String(64), nullable=False),
            sa.Column("auth_token_encrypted", sa.Text(), nullable=False),
            sa.Column("from_number", sa.String(32)),
            sa.Column("messaging_service_sid", sa.String(64)),
            sa.Column("api_key_sid", sa.String(64)),
            sa.Column("base_url", sa.Text(), nullable=False),
            sa.Column("poll_interval_ms", sa.Integer(), nullable=False),
            sa.Column("poll_attempts", sa.Integer(), nullable=False),
            sa.Column("concurrency", sa.Integer(), nullable=False),
            sa.Column("region", sa.String(8), nullable=False),
        )
    if "touchpoints" not in present:
        op.create_table(
            "touchpoints",
            sa.Column("name", sa.String(200), primary_key=True),
            sa.Column(
                "connection",
                sa.String(200),
                sa.ForeignKey("connections.name", ondelete="RESTRICT"),
                nullable=False,
            ),
            sa.Column("message", sa.Text(), nullable=False),
            sa.Column("phone_column", sa.Text(), nullable=False),
            sa.Column("mapping_json", sa.Text(), nullable=False),
        )
    if "runs" not in present:
        op.create_table(
            "runs",
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            sa.Column("touchpoint", sa.String(200), nullable=False),
            sa.Column("connection", sa.String(200), nullable=False),
            sa.Column("input_path", sa.Text(), nullable=False),
            sa.Column("output_path", sa.Text(), nullable=False),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("columns_json", sa.Text(), nullable=False),
            sa.Column("total", sa.Integer(), nullable=False),
            sa.Column("audience_complete", sa.Boolean(), nullable=False),
            sa.Column("error", sa.Text()),
            sa.Column("finished_at", sa.DateTime(timezone=True)),
            sa.Column("settings_json", sa.Text(), nullable=False),
            sa.Column("lease_owner", sa.String(200)),
            sa.Column("lease_expires", sa.DateTime(timezone=True)),
        )
    if "deliveries" not in present:
        op.create_table(
            "deliveries",
            sa.Column(
                "run_id",
                sa.Integer(),
                sa.ForeignKey("runs.id", ondelete="CASCADE"),
                primary_key=True,
                autoincrement=False,
            ),
            sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
            sa.Column("row_json", sa.Text(), nullable=False),
            sa.Column("to_number", sa.String(32)),
            sa.Column("body", sa.Text()),
            sa.Column("segments", sa.Integer(), nullable=False),
            sa.Column("stage", sa.String(16), nullable=False),
            sa.Column("status", sa.String(16)),
            sa.Column("twilio_status", sa.String(32)),
            sa.Column("message_sid", sa.String(64)),
            sa.Column("error_code", sa.Integer()),
            sa.Column("error_message", sa.Text()),
            sa.Column("polls", sa.Integer(), nullable=False),
            sa.Column("claimed_at", sa.DateTime(timezone=True)),
            sa.Column("updated_at", sa.DateTime(timezone=True)),
        )
        op.create_index("ix_deliveries_run_stage_seq", "deliveries", ["run_id", "stage", "seq"])
        op.create_index("ix_deliveries_message_sid", "deliveries", ["message_sid"])
    found = op.get_bind().execute(sa.text("SELECT value FROM meta WHERE key = 'schema_version'"))
    if found.first() is None:
        op.execute(
            sa.text("INSERT INTO meta (key, value) VALUES ('schema_version', :v)").bindparams(
                v=str(SCHEMA_VERSION)
            )
        )


def downgrade() -> None:
    op.drop_table("deliveries")
    op.drop_table("runs")
    op.drop_table("touchpoints")
    op.drop_table("connections")
    op.drop_table("meta")
