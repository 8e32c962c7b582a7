"""Opening a database (store/database.py, and the schema check when a store opens): data
kept across openings, a schema newer than this smslink refused, the SQLite file private and
tuned as promised, and a URL that is safe to print."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, update
from sqlalchemy.engine import make_url

from smslink.store import SchemaTooNew, Store, open_store
from smslink.store.schema import SCHEMA_VERSION, meta
from smslink.store.secrets import SecretBox
from tests.pg import fresh_pg_schema
from tests.store.records import TOKEN, connection

# The url, key and store fixtures are in conftest.py.


def test_reopening_keeps_data_and_records_schema_version(store: Store, url: str, key: bytes):
    store.catalogue.add_connection(connection())
    store.close()
    again = open_store(url, secret_box=SecretBox(key))
    try:
        assert again.catalogue.get_connection("main").auth_token == TOKEN
    finally:
        again.close()
    engine = create_engine(url)
    with engine.connect() as conn:
        version = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version"))
        assert version.scalar() == str(SCHEMA_VERSION)
    with engine.begin() as conn:
        conn.execute(update(meta).values(value="999"))
    engine.dispose()
    with pytest.raises(SchemaTooNew, match="upgrade smslink"):
        open_store(url, secret_box=SecretBox(key))


def test_sqlite_file_is_private_and_tuned(tmp_path: Path, key: bytes):
    db = tmp_path / "deep" / "er" / "smslink.db"
    store = open_store(f"sqlite:///{db}", secret_box=SecretBox(key))
    try:
        assert stat.S_IMODE(db.stat().st_mode) == 0o600
        with store._engine.connect() as conn:  # the pragmas are what the docstring promises
            pragma = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
        assert pragma == {
            "journal_mode": "wal",
            "synchronous": 1,
            "foreign_keys": 1,
            "busy_timeout": 30000,
        }
    finally:
        store.close()


def test_a_stores_url_hides_the_database_password(key: bytes):
    with fresh_pg_schema() as pg_url:
        parsed = make_url(pg_url)
        password = parsed.password or "s3cret-pw"  # the test server trusts loopback
        with_password = parsed.set(password=password).render_as_string(hide_password=False)
        store = open_store(with_password, secret_box=SecretBox(key))
        try:
            shown = store.url
        finally:
            store.close()

    assert password not in shown and "***" in shown
    assert make_url(shown).host == parsed.host and make_url(shown).database == parsed.database
