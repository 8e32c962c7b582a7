"""Schema version 10: workers (runs sent by workers, each delivery's part, part leases,
live workers, and on PostgreSQL procrastinate's job tables).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

#: The schema version this revision leaves behind (older smslink releases read it).
SCHEMA_VERSION = 10


def upgrade() -> None:
    # Deliveries stored before this version are all in part 0: a run resumed on workers
    # then goes out as one part, exactly as it would have in one process.
    # Runs before this version were all sent by the process that started them.
    op.add_column(
        "runs",
        sa.Column("queued", sa.Boolean(), nullable=False, server_default=sa.text("false")),
    )
    op.add_column(
        "deliveries",
        sa.Column("part", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )
    op.create_index(
        "ix_deliveries_run_part_stage_seq", "deliveries", ["run_id", "part", "stage", "seq"]
    )
    op.create_table(
        "run_parts",
        sa.Column(
            "run_id", sa.Integer(), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("part", sa.Integer(), primary_key=True),
        sa.Column("lease_owner", sa.String(200)),
        sa.Column("lease_expires", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "workers",
        sa.Column("owner", sa.String(200), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("queues", sa.Text(), nullable=False),
        sa.Column("posted", sa.Integer(), nullable=False),
        sa.Column("rate", sa.Float(), nullable=False),
        sa.Column("runs_json", sa.Text(), nullable=False),
    )
    op.create_index("ix_workers_seen_at", "workers", ["seen_at"])
    if op.get_bind().dialect.name == "postgresql":
        _install_job_queue()
    _set_schema_version(SCHEMA_VERSION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.get_bind().exec_driver_sql(_escaped(_DROP_JOB_QUEUE))
    op.drop_index("ix_workers_seen_at", table_name="workers")
    op.drop_table("workers")
    op.drop_table("run_parts")
    op.drop_index("ix_deliveries_run_part_stage_seq", table_name="deliveries")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("part")
    # Not a batch: SQLite would copy `runs` and drop the old table, and the foreign key's
    # cascade would take every delivery with it. Both databases drop a plain column.
    op.get_bind().exec_driver_sql("ALTER TABLE runs DROP COLUMN queued")
    _set_schema_version(SCHEMA_VERSION - 1)


def _install_job_queue() -> None:
    """procrastinate's schema, as the installed procrastinate ships it (pinned in
    pyproject.toml: a newer procrastinate's migrations become a later revision here)."""
    from procrastinate.schema import SchemaManager

    op.get_bind().exec_driver_sql(_escaped(SchemaManager.get_schema()))


def _escaped(sql: str) -> str:
    """SQL for psycopg's `execute`, which reads every `%` as a placeholder."""
    return sql.replace("%", "%%")


#: Everything procrastinate's schema creates, for the downgrade.
_DROP_JOB_QUEUE = """
DO $$ DECLARE f record; BEGIN
  FOR f IN SELECT p.oid::regprocedure AS sig FROM pg_proc p
             JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE p.proname LIKE 'procrastinate%' AND n.nspname = current_schema() LOOP
    EXECUTE 'DROP FUNCTION ' || f.sig || ' CASCADE';
  END LOOP;
END $$;
DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers,
    procrastinate_jobs, procrastinate_workers CASCADE;
DROP TYPE IF EXISTS procrastinate_job_to_defer_v1, procrastinate_job_event_type,
    procrastinate_job_status CASCADE;
"""


def _set_schema_version(version: int) -> None:
    """meta.schema_version, which older smslink releases read to refuse a newer database."""
    op.execute(
        sa.text("UPDATE meta SET value = :v WHERE key = 'schema_version'").bindparams(
            v=str(version)
        )
    )
