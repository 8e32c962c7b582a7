"""Schema upgrades in place: a database written by an older smslink opens with its data.

A version 1 database is made the way version 1 left it: today's tables without what version 2
added (the optouts table, two connections columns), and schema_version 1.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, create_engine, inspect, select, text, update

from smslink.models import Connection, Delivery, OptOut, Touchpoint
from smslink.secrets import SecretBox
from smslink.store import Store, open_store
from smslink.store.schema import SCHEMA_VERSION, connections, meta, metadata

TOKEN = "9d2c5e1f0a7b4c3d8e6f1a2b3c4d5e6f"
V2_COLUMNS = ("max_segments_per_second", "request_timeout_s")


def _v1_database(url: str, key: bytes) -> int:
    """Fill a database with a connection, touchpoint and run, then take it back to version 1.

    Returns the run's id.
    """
    with open_store(url, secret_box=SecretBox(key)) as store:
        store.add_connection(
            Connection(
                name="main",
                account_sid="AC" + "0" * 32,
                auth_token=TOKEN,
                from_number="+15005550006",
                poll_attempts=7,
            )
        )
        store.add_touchpoint(Touchpoint("welcome", "main", "Hi <N>", "mobile", {"N": "name"}))
        run_id = store.create_run(
            touchpoint="welcome",
            connection="main",
            input_path="in.csv",
            output_path="out.csv",
            settings={"message": "Hi <N>"},
        ).id
        store.add_deliveries(
            run_id,
            [Delivery(run_id, 0, {"mobile": "+12125550101", "name": "Zoë"}, "+12125550101")],
            ["mobile", "name"],
        )
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE optouts")
            for column in V2_COLUMNS:
                conn.exec_driver_sql(f"ALTER TABLE connections DROP COLUMN {column}")
            conn.execute(update(meta).where(meta.c.key == "schema_version").values(value="1"))
        assert _columns(engine) == [c.name for c in connections.c if c.name not in V2_COLUMNS]
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


def test_schema_version_is_2():
    assert SCHEMA_VERSION == 2  # bumping it needs a migration and a test here


def test_a_version_1_database_upgrades_in_place_and_keeps_its_data(url: str, key: bytes):
    run_id = _v1_database(url, key)
    assert _version(url) == "1"

    with open_store(url, secret_box=SecretBox(key)) as store:
        c = store.get_connection("main")
        assert (c.auth_token, c.poll_attempts, c.from_number) == (TOKEN, 7, "+15005550006")
        assert (c.max_segments_per_second, c.request_timeout_s) == (None, 30.0)  # defaults
        assert store.get_touchpoint("welcome").mapping == {"N": "name"}
        assert store.get_run(run_id).settings == {"message": "Hi <N>"}
        [d] = store.iter_deliveries(run_id)
        assert (d.to, d.row["name"]) == ("+12125550101", "Zoë")
        # What version 2 added works on the upgraded database.
        c.max_segments_per_second = 1.0
        store.update_connection(c)
        assert store.get_connection("main").max_segments_per_second == 1.0
        optout = OptOut("+15005550006", "+12125550101", datetime(2026, 11, 26, tzinfo=UTC))
        assert store.add_optout(optout) is True
        assert store.list_optouts() == [optout]

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
        assert store.get_connection("copy").request_timeout_s == 30.0


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
        c = store.get_connection("main")
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
        assert all(s.get_connection("main").request_timeout_s == 30.0 for s in opened)
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
                assert store.list_connections() == []
            writer.exec_driver_sql("ROLLBACK")
    finally:
        engine.dispose()
