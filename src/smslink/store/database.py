"""Opening a database, and what the rest of the store needs to know about its dialect.

One place decides how smslink talks to SQLite and to PostgreSQL: the engine and its
per-connection settings, the checks that refuse a SQLite file another user could have
written, the placeholder and datetime form the driver-level statements use, and the one
write lock that serialises run creation and schema upgrades. Everything above this module
(`Catalogue`, `RunStore`, `DeliveryStore`, the migrations) stays backend-neutral apart from
asking `Database.postgres`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from smslink.store.location import normalise_database_url
from smslink.store.rows import sqlite_datetime_of, sqlite_datetime_text, utc_or_none
from smslink.store.secrets import check_folder, check_private_file

#: How long a SQLite writer waits for another process's write to finish before failing.
#: Writes are short batches, so anything near this means something is badly wrong.
SQLITE_BUSY_TIMEOUT_S = 30.0


class Database:
    """The engine for one database URL, and the dialect facts the store's statements use."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = _create_engine(normalise_database_url(url))
        self.postgres: bool = self.engine.dialect.name == "postgresql"
        #: The driver's parameter placeholder, for SQL written as text on the hot paths.
        self.placeholder = "%s" if self.postgres else "?"
        #: How a datetime goes to the driver: psycopg takes aware datetimes as they are;
        #: SQLite gets the text SQLAlchemy's own DateTime type writes, so reads agree.
        self.bind_time: Callable[[datetime], object] = (
            _aware if self.postgres else sqlite_datetime_text
        )
        #: How a datetime comes back from a driver-level read (the reverse of bind_time):
        #: psycopg gives it in the session's time zone, SQLite as SQLAlchemy's text.
        self.read_time: Callable[[Any], datetime | None] = (
            utc_or_none if self.postgres else sqlite_datetime_of
        )

    @property
    def dialect_insert(self) -> Callable[..., Any]:
        """The database's own INSERT construct (with ON CONFLICT), imported for the
        database in use only: the PostgreSQL dialect's modules cost a SQLite process
        ~20 ms to import."""
        if self.postgres:
            from sqlalchemy.dialects import postgresql

            return postgresql.insert
        from sqlalchemy.dialects import sqlite

        return sqlite.insert

    @property
    def url(self) -> str:
        """Where the database is, with any password hidden (safe to print)."""
        return self.engine.url.render_as_string(hide_password=True)

    def hold_write_lock(self, conn: Connection, name: str) -> None:
        """Hold the right named `name` until `conn`'s transaction ends, so that a check and
        the write it allows are one step across processes.

        PostgreSQL: an advisory lock keyed by `name` and the current schema (tests and
        tenants with their own schemas do not wait on each other; current_schema() is NULL
        when the search_path names no existing schema). SQLite has one writer at a time
        anyway: BEGIN IMMEDIATE takes the database's write lock at once, rather than at the
        first write, and (since Python's sqlite3 runs DDL outside a transaction unless one is
        open) makes any DDL that follows part of the transaction.
        """
        if self.postgres:
            conn.execute(text(_PG_LOCK), {"name": name})
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    def commit_in_order(self, conn: Connection, name: str) -> None:
        """Make the transactions that call this with `name` commit in the order they call
        it, until `conn`'s transaction ends: what the events table needs so that a reader
        that has seen id N never later finds a smaller id committed (a gap it skipped).

        PostgreSQL: the advisory lock of `hold_write_lock`, taken late (just before the
        rows whose order matters), so only the end of the transaction is serialised.
        SQLite: nothing to do, it runs one writer at a time.
        """
        if self.postgres:
            conn.execute(text(_PG_LOCK), {"name": name})

    def copy_rows(
        self,
        conn: Connection,
        table: str,
        columns: Sequence[str],
        rows: Iterable[Sequence[object]],
    ) -> None:
        """Insert `rows` (values in the order of `columns`) with PostgreSQL's COPY, inside
        `conn`'s transaction: ~5 us a row, where psycopg's executemany of an INSERT costs
        ~35 (bench/RESULTS.md section 18). The driver's errors are raised as SQLAlchemy
        raises them for its own statements (IntegrityError, OperationalError, ...), so
        callers handle a failed COPY as they handle a failed INSERT, and a connection the
        server dropped is invalidated, as SQLAlchemy does when its own statements meet one."""
        if not self.postgres:
            raise RuntimeError("COPY is PostgreSQL's: insert with executemany on SQLite")
        import psycopg
        from sqlalchemy.exc import DBAPIError

        sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        driver = conn.connection.driver_connection
        try:
            with driver.cursor() as cursor, cursor.copy(sql) as copy:  # type: ignore[union-attr]
                for row in rows:
                    copy.write_row(row)
        except psycopg.Error as error:
            # As SQLAlchemy does for its own statements: a lost server invalidates the
            # connection at once (the pool never hands it out again), and the error says so.
            lost = conn.dialect.is_disconnect(error, driver, None)  # type: ignore[arg-type]
            if lost:
                conn.invalidate(error)
            raise DBAPIError.instance(
                sql, None, error, psycopg.Error, connection_invalidated=lost, dialect=conn.dialect
            ) from error

    def dispose(self) -> None:
        self.engine.dispose()


#: An advisory lock held until the transaction ends, per lock name and PostgreSQL schema.
#: The key is hashtext(name || schema): processes of older smslink releases computed the
#: same key, so they and this one still take turns.
_PG_LOCK = (
    "SELECT pg_advisory_xact_lock(hashtext(CAST(:name AS text) || coalesce(current_schema(), '')))"
)


def _aware(moment: datetime) -> datetime:
    """Datetimes for psycopg: aware UTC (a naive one is taken to be UTC already)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _create_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # pre_ping: a long-lived worker survives a PostgreSQL restart between batches.
        return create_engine(url, pool_pre_ping=True)
    _prepare_sqlite_file(parsed.database)
    engine = create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
    )
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    """Per connection: WAL lets readers (a progress page) run beside the writer;
    synchronous=NORMAL is durable across application crashes under WAL and skips an fsync
    per commit; SQLite leaves foreign keys off unless asked."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
    finally:
        cursor.close()


def _prepare_sqlite_file(database: str | None) -> None:
    """Create the parent directory (owner-only if it is new), and the file itself
    owner-only: it holds phone numbers and message bodies (SQLite gives its -wal and -shm
    files the same mode). Refuse it, before SQLite opens it, if another user could have
    written it: a database of theirs could send the auth token to a base URL of theirs.
    """
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    _check_sqlite_folders(path)
    with contextlib.suppress(FileExistsError):  # O_EXCL: never follows a planted symlink
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    _check_sqlite_files(path)


#: SQLite's side files: replayed into the database when it opens, so as trusted as it.
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
_SQLITE_WHAT = "the SQLite database"


def _check_sqlite_folders(path: Path) -> None:
    """ssh's rule (see `smslink.store.secrets`) for the database's folder: owned by this user or
    root, and writable by others only with the sticky bit (like /tmp), where they cannot
    swap the file. A symlinked database is judged in its link's folder and its real one."""
    check_folder(path.parent, _SQLITE_WHAT)
    real = path.resolve()
    if real.parent != path.parent.resolve():
        check_folder(real.parent, _SQLITE_WHAT)


def _check_sqlite_files(path: Path) -> None:
    """The database and its side files: owned by this user or root, writable by nobody
    else. Side files under both the given and the real name (SQLite may resolve links)."""
    check_private_file(path, _SQLITE_WHAT)
    for base in dict.fromkeys((path, path.resolve())):
        for suffix in _SQLITE_SIDE_FILES:
            side = base.with_name(base.name + suffix)
            if side.exists():
                check_private_file(side, f"the SQLite database's {suffix} file")
