"""Bringing a database to the schema this smslink expects, every time the store opens.

The schema's history is a chain of Alembic revisions in `versions/`, named after the schema
version each leaves behind: revision "0001" is version 1, "0002" version 2, and so on. Every
revision also writes that number to `meta.schema_version`, which older smslink releases read
to refuse a newer database ("upgrade smslink").

Opening must stay cheap, because every command opens the store first: an up-to-date database
costs one read of `alembic_version` and `meta`, and Alembic (a third of a second to import)
is imported only when there is something to upgrade. Everything else happens under the
schema lock (`Database.hold_write_lock`; SQLite: BEGIN IMMEDIATE, PostgreSQL: an advisory
lock per schema, the same key the hand-written upgrades of older releases took) in one
transaction, so when several processes open a database at once one upgrades it and the
others then find it done, and an upgrade cut short leaves the database as it was:

- no `alembic_version`, no `meta`: a fresh database; upgraded from nothing to head;
- no `alembic_version`, `meta.schema_version` N: written by the hand-written upgrades of an
  earlier release; stamped at revision N (its tables are exactly that revision's), then
  upgraded to head in place, data kept;
- a revision this smslink does not know, or a `meta.schema_version` above its own: written
  by a newer smslink; refused with SchemaTooNew before anything is changed.

See README.md here for how to add a revision.
"""

from __future__ import annotations

from sqlalchemy import Connection, inspect, select
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from smslink.store.database import Database
from smslink.store.errors import SchemaTooNew, StoreError
from smslink.store.schema import SCHEMA_VERSION, meta

#: The revision that gives the tables in schema.py.
HEAD = f"{SCHEMA_VERSION:04d}"

#: Serialises schema changes per PostgreSQL schema; older releases used the same key.
_SCHEMA_LOCK = "smslink:"

#: Alembic's bookkeeping table (its default name), one row: the revision the database is at.
VERSION_TABLE = "alembic_version"

#: The fast path's one read. Fails (no such table) on a fresh or hand-written database.
_READ_VERSIONS = (
    f"SELECT v.version_num, m.value FROM {VERSION_TABLE} v "
    "LEFT JOIN meta m ON m.key = 'schema_version'"
)


def revision_for(version: int) -> str:
    """The revision that leaves schema version `version` behind."""
    return f"{version:04d}"


def ensure_schema(db: Database) -> None:
    """Create a fresh database, or upgrade an older one in place; SchemaTooNew for a newer
    one. See the module docstring."""
    if _is_current(db):
        return
    for attempt in range(3):
        try:
            with db.engine.begin() as conn:
                db.hold_write_lock(conn, _SCHEMA_LOCK)
                revision, version = _read_under_lock(conn)  # again: another process may have won
                if (revision, version) == (HEAD, SCHEMA_VERSION):
                    return
                # Hand-written databases have no revision yet: their version names it.
                stamp = revision_for(version) if revision is None and version else None
                from smslink.store.migrations.runner import upgrade  # imports Alembic

                upgrade(conn, stamp=stamp)
            return
        except DBAPIError:  # any other loser of a race just tries again
            if attempt == 2:
                raise


def _is_current(db: Database) -> bool:
    """True when the database is at HEAD, from one read without any lock (so opening does
    not queue behind a writer); SchemaTooNew when a newer smslink wrote it."""
    # The error a missing table raises; anything else (the server is down) is not caught.
    missing_table = ProgrammingError if db.postgres else OperationalError
    try:
        with db.engine.connect() as conn:
            rows = conn.exec_driver_sql(_READ_VERSIONS).all()
    except missing_table:
        return False  # fresh, or hand-written: the locked path looks closer
    revisions = [r[0] for r in rows]
    version = _parse_version(rows[0][1]) if rows else None
    _refuse_newer(revisions, version)
    return revisions == [HEAD] and version == SCHEMA_VERSION


def _read_under_lock(conn: Connection) -> tuple[str | None, int | None]:
    """The database's revision and schema version (None for none), whichever tables exist."""
    inspector = inspect(conn)
    revisions: list[str] = []
    if inspector.has_table(VERSION_TABLE):
        revisions = list(conn.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").scalars())
    version = None
    if inspector.has_table(meta.name):
        found = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
        version = _parse_version(found)
    _refuse_newer(revisions, version)
    return (revisions[0] if revisions else None), version


def _parse_version(found: str | None) -> int | None:
    if found is None:
        return None
    try:
        version = int(found)
    except ValueError:
        version = 0
    if version < 1:
        raise StoreError(f"the database's schema version {found!r} is not one smslink wrote")
    return version


def _refuse_newer(revisions: list[str], version: int | None) -> None:
    """SchemaTooNew when a newer smslink wrote the database, which this one must not touch."""
    known = {revision_for(v) for v in range(1, SCHEMA_VERSION + 1)}
    unknown = [r for r in revisions if r not in known]
    if unknown:
        raise SchemaTooNew(
            f"the database is at schema revision {', '.join(unknown)}, this smslink knows "
            f"up to {HEAD}: upgrade smslink"
        )
    if version is not None and version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"the database has schema version {version}, this smslink knows "
            f"up to {SCHEMA_VERSION}: upgrade smslink"
        )
