"""Schema upgrades in place: a database written by an older smslink opens with its data.

Databases of the releases before Alembic are made the way they were left: today's tables
(which the hand-written code created with create_all, exactly as revision 0002 does; a test
below checks they match), without `alembic_version`, with `meta.schema_version` 2; and for
version 1 also without what version 2 added (the optouts table, two connections columns) and
with `schema_version` 1.
"""

from __future__ import annotations

import importlib
import json
import multiprocessing
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect, select, text, update
from sqlalchemy.exc import DBAPIError

from smslink.domain.models import (
    Connection,
    Delivery,
    OptOut,
    Progress,
    RunSnapshot,
    Stage,
    Touchpoint,
)
from smslink.store import SchemaTooNew, Store, open_store
from smslink.store.database import Database
from smslink.store.migrations import HEAD, VERSION_TABLE, runner
from smslink.store.schema import SCHEMA_VERSION, connections, meta, metadata
from smslink.store.secrets import SecretBox

TOKEN = "9d2c5e1f0a7b4c3d8e6f1a2b3c4d5e6f"
V2_COLUMNS = ("max_segments_per_second", "request_timeout_s")
V3_COLUMNS = ("stop_requested_at", "origin")
V4_CONNECTION_COLUMNS = ("last_test_at", "last_test_ok", "last_test_message")
#: Added to connections by version 6.
V6_CONNECTION_COLUMNS = ("callback_base_url",)


def _filled_database(url: str, key: bytes) -> int:
    """A database with a connection, touchpoint, run and delivery; returns the run's id."""
    with open_store(url, secret_box=SecretBox(key)) as store:
        store.catalogue.add_connection(
            Connection(
                name="main",
                account_sid="AC" + "0" * 32,
                auth_token=TOKEN,
                from_number="+15005550006",
                poll_attempts=7,
            )
        )
        store.catalogue.add_touchpoint(
            Touchpoint("welcome", "main", "Hi <N>", "mobile", {"N": "name"})
        )
        run_id = store.runs.create_run(
            touchpoint="welcome",
            connection="main",
            input_path="in.csv",
            output_path="out.csv",
            snapshot=RunSnapshot("Hi <N>", "phone"),
        ).id
        store.deliveries.add_deliveries(
            run_id,
            [Delivery(run_id, 0, {"mobile": "+12125550101", "name": "Zoë"}, "+12125550101")],
            ["mobile", "name"],
        )
    return run_id


def _v2_database(url: str, key: bytes) -> int:
    """A filled database as the hand-written version 2 left it: no alembic_version."""
    run_id = _filled_database(url, key)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE {VERSION_TABLE}")
            for column in V3_COLUMNS:  # versions 3 and 4 came after the hand-written era
                conn.exec_driver_sql(f"ALTER TABLE runs DROP COLUMN {column}")
            for column in V4_CONNECTION_COLUMNS + V6_CONNECTION_COLUMNS:
                conn.exec_driver_sql(f"ALTER TABLE connections DROP COLUMN {column}")
            conn.exec_driver_sql("DROP TABLE api_tokens")
            conn.exec_driver_sql("DROP TABLE users")
            conn.exec_driver_sql("DROP TABLE optout_removals")  # version 5
            conn.exec_driver_sql("DROP TABLE callback_tokens")  # version 6
            conn.exec_driver_sql("DROP TABLE events")  # version 7
            conn.exec_driver_sql("DROP TABLE webhook_subscriptions")  # version 8
            conn.exec_driver_sql("DROP TABLE intake_keys")  # version 9
            conn.exec_driver_sql("ALTER TABLE deliveries DROP COLUMN identity_json")
            conn.exec_driver_sql("DROP TABLE run_parts")  # version 10
            conn.exec_driver_sql("DROP TABLE workers")
            conn.exec_driver_sql(f"DROP INDEX IF EXISTS {PART_INDEX}")  # SQLite: gone at 11
            conn.exec_driver_sql("ALTER TABLE deliveries DROP COLUMN part")
            conn.exec_driver_sql("ALTER TABLE runs DROP COLUMN queued")
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql(_DROP_JOB_QUEUE.replace("%", "%%"))
            conn.execute(update(meta).where(meta.c.key == "schema_version").values(value="2"))
        assert not inspect(engine).has_table(VERSION_TABLE)
        assert "stop_requested_at" not in _columns(engine, "runs")
    finally:
        engine.dispose()
    return run_id


def _v1_database(url: str, key: bytes) -> int:
    """A filled database taken back to version 1. Returns the run's id."""
    run_id = _v2_database(url, key)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE optouts")
            for column in V2_COLUMNS:
                conn.exec_driver_sql(f"ALTER TABLE connections DROP COLUMN {column}")
            conn.execute(update(meta).where(meta.c.key == "schema_version").values(value="1"))
        assert _columns(engine) == [
            c.name
            for c in connections.c
            if c.name not in V2_COLUMNS + V4_CONNECTION_COLUMNS + V6_CONNECTION_COLUMNS
        ]
    finally:
        engine.dispose()
    return run_id


def _columns(engine: Engine, table: str = "connections") -> list[str]:
    with engine.connect() as conn:
        return [c["name"] for c in inspect(conn).get_columns(table)]


def _version(url: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            found = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version"))
            return str(found.scalar())
    finally:
        engine.dispose()


def _revisions(url: str) -> list[str] | None:
    """What alembic_version holds; None when there is no such table."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table(VERSION_TABLE):
                return None
            return list(conn.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").scalars())
    finally:
        engine.dispose()


def _differences(url: str) -> list[object]:
    """How the database's tables differ from schema.py, as Alembic's autogenerate sees it."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return [
                d
                for d in compare_metadata(context, metadata)
                if not (d[0] == "remove_table" and d[1].name == VERSION_TABLE)
                and not _job_queue_table(d)
                and not _not_for_this_database(d, engine.dialect.name)
            ]
    finally:
        engine.dispose()


def _not_for_this_database(difference: Any, dialect: str) -> bool:
    """An index schema.py creates only on another database (its `ddl_if`, which Alembic's
    autogenerate does not read): missing here is right."""
    if not isinstance(difference, tuple) or difference[0] != "add_index":
        return False
    name = difference[1].name  # Alembic's copy of the index: look up schema.py's own
    [index] = [ix for table in metadata.tables.values() for ix in table.indexes if ix.name == name]
    only = index._ddl_if
    return only is not None and only.dialect is not None and only.dialect != dialect


def _job_queue_table(difference: Any) -> bool:
    """procrastinate's own tables and indexes (PostgreSQL), which schema.py leaves out."""
    if not isinstance(difference, tuple) or difference[0] not in ("remove_table", "remove_index"):
        return False
    table = difference[1] if difference[0] == "remove_table" else difference[1].table
    return str(table.name).startswith("procrastinate_")


PART_INDEX = "ix_deliveries_run_part_stage_seq"


#: What revision 0010 installs on PostgreSQL, dropped to make a database of before it:
#: the revision's own downgrade SQL (its module name starts with a digit: no import).
_DROP_JOB_QUEUE: str = importlib.import_module(
    "smslink.store.migrations.versions.0010_workers"
)._DROP_JOB_QUEUE


def test_schema_version_is_11():
    assert SCHEMA_VERSION == 11  # bumping it needs a migration and a test here


def test_a_version_1_database_upgrades_in_place_and_keeps_its_data(url: str, key: bytes):
    run_id = _v1_database(url, key)
    assert _version(url) == "1"

    with open_store(url, secret_box=SecretBox(key)) as store:
        c = store.catalogue.get_connection("main")
        assert (c.auth_token, c.poll_attempts, c.from_number) == (TOKEN, 7, "+15005550006")
        assert (c.max_segments_per_second, c.request_timeout_s) == (None, 30.0)  # defaults
        assert store.catalogue.get_touchpoint("welcome").mapping == {"N": "name"}
        assert store.runs.get_run(run_id).snapshot == RunSnapshot("Hi <N>", "phone")
        [d] = store.deliveries.iter_deliveries(run_id)
        assert (d.to, d.row["name"]) == ("+12125550101", "Zoë")
        # What version 2 added works on the upgraded database.
        c.max_segments_per_second = 1.0
        store.catalogue.update_connection(c)
        assert store.catalogue.get_connection("main").max_segments_per_second == 1.0
        optout = OptOut("+15005550006", "+12125550101", datetime(2026, 11, 26, tzinfo=UTC))
        assert store.catalogue.add_optout(optout) is True
        assert store.catalogue.list_optouts() == [optout]

    assert _version(url) == str(SCHEMA_VERSION)
    engine = create_engine(url)
    try:
        assert _columns(engine) == [c.name for c in connections.c]  # same as a fresh database
        assert _columns(engine, "optouts") == [c.name for c in metadata.tables["optouts"].c]
        with engine.connect() as conn:
            nullable = {c["name"]: c["nullable"] for c in inspect(conn).get_columns("connections")}
            indexes = {ix["name"] for ix in inspect(conn).get_indexes("optouts")}
        assert (nullable["max_segments_per_second"], nullable["request_timeout_s"]) == (True, False)
        assert "ix_optouts_phone" in indexes
    finally:
        engine.dispose()


def test_a_connection_added_after_the_upgrade_gets_the_server_default(url: str, key: bytes):
    """Rows written without the new column (e.g. by SQL outside smslink) are still valid."""
    _v1_database(url, key)
    open_store(url, secret_box=SecretBox(key)).close()
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO connections (name, account_sid, auth_token_encrypted, base_url, "
                    "poll_interval_ms, poll_attempts, concurrency, region) "
                    "SELECT 'copy', account_sid, auth_token_encrypted, base_url, "
                    "poll_interval_ms, poll_attempts, concurrency, region "
                    "FROM connections WHERE name = 'main'"
                )
            )
    finally:
        engine.dispose()
    with open_store(url, secret_box=SecretBox(key)) as store:
        assert store.catalogue.get_connection("copy").request_timeout_s == 30.0


def test_a_half_finished_upgrade_is_completed(url: str, key: bytes):
    """One column already there (an upgrade cut short, or added by hand), version still 1."""
    _v1_database(url, key)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE connections ADD COLUMN max_segments_per_second FLOAT")
            conn.exec_driver_sql("UPDATE connections SET max_segments_per_second = 3")
    finally:
        engine.dispose()

    with open_store(url, secret_box=SecretBox(key)) as store:
        c = store.catalogue.get_connection("main")
        assert (c.max_segments_per_second, c.request_timeout_s) == (3.0, 30.0)
    assert _version(url) == str(SCHEMA_VERSION)


def test_processes_opening_a_version_1_database_at_once_all_succeed(url: str, key: bytes):
    _v1_database(url, key)
    opened: list[Store] = []
    failures: list[BaseException] = []
    start = threading.Barrier(4)

    def open_it() -> None:
        start.wait()
        try:
            opened.append(open_store(url, secret_box=SecretBox(key)))
        except BaseException as error:  # reported by the assertion below
            failures.append(error)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert failures == []
        assert all(s.catalogue.get_connection("main").request_timeout_s == 30.0 for s in opened)
    finally:
        for s in opened:
            s.close()
    assert _version(url) == str(SCHEMA_VERSION)


def test_an_up_to_date_sqlite_database_opens_beside_a_writer(tmp_path: Path, key: bytes):
    """Opening is what every command does first: an up-to-date database needs no write lock,
    so `smslink runs list` does not queue behind a send that is writing."""
    url = f"sqlite:///{tmp_path / 'smslink.db'}"
    open_store(url, secret_box=SecretBox(key)).close()
    engine = create_engine(url)
    try:
        with engine.connect() as writer:
            writer.exec_driver_sql("BEGIN IMMEDIATE")  # another process in mid-write
            with open_store(url, secret_box=SecretBox(key)) as store:
                assert store.catalogue.list_connections() == []
            writer.exec_driver_sql("ROLLBACK")
    finally:
        engine.dispose()


def test_a_version_2_database_is_stamped_and_opens_with_its_data(url: str, key: bytes):
    """Written by the hand-written version 2: its tables are revision 0002's already."""
    run_id = _v2_database(url, key)
    assert _revisions(url) is None

    with open_store(url, secret_box=SecretBox(key)) as store:
        assert store.catalogue.get_connection("main").auth_token == TOKEN
        assert store.runs.get_run(run_id).snapshot == RunSnapshot("Hi <N>", "phone")
        [d] = store.deliveries.iter_deliveries(run_id)
        assert d.row["name"] == "Zoë"

    assert _revisions(url) == [HEAD]
    assert _version(url) == str(SCHEMA_VERSION)
    assert _differences(url) == []


def test_a_fresh_database_ends_at_head_with_alembic_version_set(url: str, key: bytes):
    open_store(url, secret_box=SecretBox(key)).close()
    assert _revisions(url) == [HEAD] == [f"{SCHEMA_VERSION:04d}"]
    assert _version(url) == str(SCHEMA_VERSION)


def test_the_revisions_build_exactly_the_tables_schema_py_describes(url: str, key: bytes):
    """From nothing, and from version 1: the migrations and schema.py must never drift."""
    open_store(url, secret_box=SecretBox(key)).close()
    assert _differences(url) == []


def test_a_version_1_database_upgrades_to_exactly_the_tables_of_schema_py(url: str, key: bytes):
    _v1_database(url, key)
    open_store(url, secret_box=SecretBox(key)).close()
    assert _differences(url) == []


def test_a_database_stamped_by_alembic_at_0001_upgrades(url: str, key: bytes):
    """Revision 0001 run by Alembic itself, version 1 data written, then opened."""
    db = Database(url)  # creates the SQLite file's folder, as the store would
    engine = db.engine
    try:
        with engine.begin() as conn:
            command.upgrade(runner.config(conn), "0001")
        with engine.begin() as conn:
            assert "optouts" not in inspect(conn).get_table_names()
            conn.execute(
                text(
                    "INSERT INTO connections (name, account_sid, auth_token_encrypted, base_url, "
                    "poll_interval_ms, poll_attempts, concurrency, region) VALUES ('main', "
                    ":sid, :token, 'https://api.twilio.com/2010-04-01', 1000, 7, 10, 'us')"
                ),
                {"sid": "AC" + "0" * 32, "token": SecretBox(key).encrypt(TOKEN)},
            )
    finally:
        db.dispose()
    assert (_revisions(url), _version(url)) == (["0001"], "1")

    with open_store(url, secret_box=SecretBox(key)) as store:
        c = store.catalogue.get_connection("main")
        assert (c.auth_token, c.poll_attempts) == (TOKEN, 7)
        assert (c.max_segments_per_second, c.request_timeout_s) == (None, 30.0)
        assert store.catalogue.list_optouts() == []

    assert (_revisions(url), _version(url)) == ([HEAD], str(SCHEMA_VERSION))
    assert _differences(url) == []


def test_a_revision_this_smslink_does_not_know_is_refused(url: str, key: bytes):
    """A newer smslink's revision: refused before anything is changed, schema lock or not."""
    _filled_database(url, key)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"UPDATE {VERSION_TABLE} SET version_num = '0099'")
    finally:
        engine.dispose()
    with pytest.raises(SchemaTooNew, match=r"revision 0099, this smslink knows up to .*upgrade"):
        open_store(url, secret_box=SecretBox(key))
    assert (_revisions(url), _version(url)) == (["0099"], str(SCHEMA_VERSION))


def test_an_upgrade_that_fails_changes_nothing(url: str, key: bytes):
    """The stamp and every revision run in one transaction: all of it, or none of it."""
    _v1_database(url, key)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:  # revision 0002's index name, taken: its last step fails
            conn.exec_driver_sql("CREATE INDEX ix_optouts_phone ON connections (name)")
    finally:
        engine.dispose()

    with pytest.raises(DBAPIError, match="ix_optouts_phone"):
        open_store(url, secret_box=SecretBox(key))

    assert (_revisions(url), _version(url)) == (None, "1")
    engine = create_engine(url)
    try:
        assert _columns(engine) == [
            c.name
            for c in connections.c
            if c.name not in V2_COLUMNS + V4_CONNECTION_COLUMNS + V6_CONNECTION_COLUMNS
        ]
        assert not inspect(engine).has_table("optouts")
    finally:
        engine.dispose()


def test_the_revisions_are_named_after_the_schema_versions_they_leave():
    """The fast path at open knows the revisions without Alembic; this keeps it honest."""
    scripts = ScriptDirectory(runner.config().get_main_option("script_location"))
    assert scripts.get_heads() == [HEAD]
    chain = [s.revision for s in scripts.walk_revisions(base="base", head="heads")][::-1]
    assert chain == [f"{v:04d}" for v in range(1, SCHEMA_VERSION + 1)]
    for script in scripts.walk_revisions():
        assert int(script.revision) == script.module.SCHEMA_VERSION


def _open_at_the_barrier(barrier: Any, url: str, key: bytes) -> None:
    barrier.wait(timeout=60)  # every process has imported everything: they open at once
    open_store(url, secret_box=SecretBox(key)).close()


@pytest.mark.parametrize("start", ["fresh", "version 1"])
def test_processes_opening_a_database_at_once_one_upgrades_and_the_others_wait(
    url: str, key: bytes, start: str
):
    """Real processes (the test above uses threads of one), so nothing they share in
    memory can stand in for the schema lock in the database."""
    run_id = _v1_database(url, key) if start == "version 1" else None
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(4)
    processes = [
        spawn.Process(target=_open_at_the_barrier, args=(barrier, url, key)) for _ in range(4)
    ]
    for p in processes:
        p.start()
    for p in processes:
        p.join(timeout=120)
    assert [p.exitcode for p in processes] == [0, 0, 0, 0]
    assert (_revisions(url), _version(url)) == ([HEAD], str(SCHEMA_VERSION))
    if run_id is not None:
        with open_store(url, secret_box=SecretBox(key)) as store:
            assert store.catalogue.get_connection("main").auth_token == TOKEN
            assert [d.seq for d in store.deliveries.iter_deliveries(run_id)] == [0]


#: Opens the store in a fresh interpreter; prints whether Alembic was imported.
_OPEN_AND_REPORT = """
import json, sys
from smslink.store.secrets import SecretBox
from smslink.store import open_store
with open_store(sys.argv[1], secret_box=SecretBox(sys.argv[2].encode())) as store:
    store.catalogue.list_connections()
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "alembic")))
"""


def _alembic_modules_when_opening(url: str, key: bytes) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _OPEN_AND_REPORT, url, key.decode()],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def test_an_up_to_date_database_opens_without_importing_alembic(url: str, key: bytes):
    assert _alembic_modules_when_opening(url, key) != []  # creating it needs Alembic ...
    assert _alembic_modules_when_opening(url, key) == []  # ... opening it afterwards does not


def test_an_up_to_date_database_costs_one_statement_to_open(url: str, key: bytes):
    open_store(url, secret_box=SecretBox(key)).close()
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        open_store(url, secret_box=SecretBox(key)).close()
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    assert len(statements) == 1, statements


def test_a_version_2_database_gains_stop_requests_with_none_pending(url: str, key: bytes):
    """Revision 0003 on a filled version 2 database: the column arrives empty, so no run
    of before is taken for one asked to stop."""
    run_id = _v2_database(url, key)

    with open_store(url, secret_box=SecretBox(key)) as store:
        assert store.runs.stop_requested(run_id) is False
        store.runs.request_stop(run_id, at=datetime.now(UTC))
        assert store.runs.stop_requested(run_id) is True

    assert _version(url) == str(SCHEMA_VERSION) and _revisions(url) == [HEAD]


def _v4_database(url: str, key: bytes) -> None:
    """A filled database as version 4 left it, with an opt-out: revision 0005 undone."""
    _filled_database(url, key)
    with open_store(url, secret_box=SecretBox(key)) as store:
        optout = OptOut("+15005550006", "+12125550101", datetime(2026, 11, 26, tzinfo=UTC), 1)
        store.catalogue.add_optout(optout)
    db = Database(url)
    try:
        with db.engine.begin() as conn:
            command.downgrade(runner.config(conn), "0004")
    finally:
        db.dispose()
    assert (_revisions(url), _version(url)) == (["0004"], "4")


def test_a_version_4_database_gains_the_removal_history_and_keeps_its_optouts(url: str, key: bytes):
    """Revision 0005 on a filled version 4 database: the opt-outs stay, the history starts
    empty, and a removal is kept with who, when and why."""
    _v4_database(url, key)

    with open_store(url, secret_box=SecretBox(key)) as store:
        [optout] = store.catalogue.list_optouts()
        assert store.catalogue.list_optout_removals() == []
        removed = store.catalogue.remove_optouts(optout.phone, removed_by="ada", reason="START")
        [removal] = store.catalogue.list_optout_removals()

    assert removed == 1
    assert (removal.phone, removal.sender, removal.run_id) == (optout.phone, optout.sender, 1)
    assert (removal.removed_by, removal.reason, removal.opted_out_at) == (
        "ada",
        "START",
        optout.created_at,
    )
    assert (_revisions(url), _version(url)) == ([HEAD], str(SCHEMA_VERSION))
    assert _differences(url) == []


def test_a_version_5_database_gains_callbacks_off_and_keeps_its_connections(url: str, key: bytes):
    """Revision 0006 on a filled version 5 database: every connection keeps its settings
    with callbacks off (polling only, as before), and callback tokens start empty."""
    _filled_database(url, key)
    db = Database(url)
    try:
        with db.engine.begin() as conn:
            command.downgrade(runner.config(conn), "0005")
    finally:
        db.dispose()
    assert (_revisions(url), _version(url)) == (["0005"], "5")

    with open_store(url, secret_box=SecretBox(key)) as store:
        before = store.catalogue.list_connections()
        assert before and all(c.callback_base_url is None for c in before)
        first = before[0]
        first.callback_base_url = "https://sms.example.com"
        store.catalogue.update_connection(first)
        assert store.catalogue.get_connection(first.name).callback_base_url == (
            "https://sms.example.com"
        )
        assert store.callbacks.prune_tokens(datetime.now(UTC)) == 0
    assert (_revisions(url), _version(url)) == ([HEAD], str(SCHEMA_VERSION))
    assert _differences(url) == []


def test_a_version_6_database_gains_events_and_its_deliveries_go_on(url: str, key: bytes):
    """Revision 0007 on a filled version 6 database: its deliveries stay, their history
    starts empty, and the next change of one is its first event."""
    run_id = _filled_database(url, key)
    db = Database(url)
    try:
        with db.engine.begin() as conn:
            command.downgrade(runner.config(conn), "0006")
    finally:
        db.dispose()
    assert (_revisions(url), _version(url)) == (["0006"], "6")

    with open_store(url, secret_box=SecretBox(key)) as store:
        [d] = store.deliveries.iter_deliveries(run_id)
        assert d.row["name"] == "Zoë" and store.events.after(0, 10) == []
        store.deliveries.claim_pending(run_id, 1, datetime.now(UTC))
        store.deliveries.save_progress(
            [Progress(run_id, 0, Stage.TRACKING, twilio_status="queued", message_sid="SM1")]
        )
        [event] = store.events.after(0, 10)
        assert (event.run_id, event.seq, event.twilio_status, event.status) == (
            run_id,
            0,
            "queued",
            None,
        )
    assert (_revisions(url), _version(url)) == ([HEAD], str(SCHEMA_VERSION))
    assert _differences(url) == []


def test_a_version_7_database_gains_webhook_subscriptions_that_start_at_its_newest_event(
    url: str, key: bytes
):
    """Revision 0008 on a filled version 7 database with events: no subscription yet, and a
    new one's cursor is the newest event (it gets what happens from then on), its secret
    kept encrypted."""
    run_id = _filled_database(url, key)
    with open_store(url, secret_box=SecretBox(key)) as store:
        store.deliveries.claim_pending(run_id, 1, datetime.now(UTC))
        store.deliveries.save_progress(
            [Progress(run_id, 0, Stage.TRACKING, twilio_status="queued", message_sid="SM1")]
        )
        [event] = store.events.after(0, 10)
    db = Database(url)
    try:
        with db.engine.begin() as conn:
            command.downgrade(runner.config(conn), "0007")
    finally:
        db.dispose()
    assert (_revisions(url), _version(url)) == (["0007"], "7")

    with open_store(url, secret_box=SecretBox(key)) as store:
        assert store.webhooks.list() == []
        added = store.webhooks.add(
            url="https://hooks.example.com/sms",
            touchpoint=None,
            secret="whsec_c2VjcmV0",
            created_by="ada",
            now=datetime.now(UTC),
        )
        assert (added.last_event_id, added.attempts, added.enabled) == (event.id, 0, True)
        assert store.webhooks.due(datetime.now(UTC)) == []
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            stored = conn.exec_driver_sql("SELECT secret_encrypted FROM webhook_subscriptions")
            assert "c2VjcmV0" not in stored.scalar_one()
    finally:
        engine.dispose()
    assert (_revisions(url), _version(url)) == ([HEAD], str(SCHEMA_VERSION))
    assert _differences(url) == []


def _indexes(url: str, table: str) -> set[str]:
    engine = create_engine(url)
    try:
        return {str(ix["name"]) for ix in inspect(engine).get_indexes(table)}
    finally:
        engine.dispose()


def test_a_version_10_database_keeps_the_part_index_only_on_postgresql(url: str, key: bytes):
    """Revision 0011 on a filled version 10 database: on SQLite (where no worker ever
    reads by part) the deliveries lose the part index, on PostgreSQL they keep it; the
    run's records stay and go on. Downgrading puts the index back."""
    run_id = _filled_database(url, key)
    postgres = url.startswith("postgresql")
    db = Database(url)
    try:
        with db.engine.begin() as conn:
            command.downgrade(runner.config(conn), "0010")
    finally:
        db.dispose()
    assert (_revisions(url), _version(url)) == (["0010"], "10")
    assert PART_INDEX in _indexes(url, "deliveries")

    with open_store(url, secret_box=SecretBox(key)) as store:
        [claimed] = store.deliveries.claim_pending(run_id, 1, datetime.now(UTC))
        assert claimed.seq == 0
    assert (_revisions(url), _version(url)) == ([HEAD], str(SCHEMA_VERSION))
    assert (PART_INDEX in _indexes(url, "deliveries")) is postgres
    assert "ix_deliveries_run_stage_seq" in _indexes(url, "deliveries")
    assert _differences(url) == []
