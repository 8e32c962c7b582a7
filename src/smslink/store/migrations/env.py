"""Alembic's environment for smslink's migrations.

At runtime the store passes the connection it holds the schema lock on (see
`smslink.store.migrations.ensure_schema`): the migrations run in its transaction, which it
commits. From the command line (`alembic revision --autogenerate`, run at the repository's
root, configured by `[tool.alembic]` in pyproject.toml) they run against
SMSLINK_DATABASE_URL, or the SQLite file in SMSLINK_HOME.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from smslink.store.database import Database
from smslink.store.location import database_url
from smslink.store.schema import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # Autogenerate writes ALTERs as batch operations, which SQLite needs to change or
        # drop a column (it copies the table); PostgreSQL runs them as plain ALTERs.
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    # The first revisions inspect the database before they change it.
    raise SystemExit("smslink's migrations run against a database, not as --sql scripts")

held = config.attributes.get("connection")
if held is not None:
    _run(held)
else:
    db = Database(database_url())
    try:
        with db.engine.connect() as conn:
            _run(conn)
    finally:
        db.dispose()
