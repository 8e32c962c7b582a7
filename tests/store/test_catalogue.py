"""The catalogue (store/catalogue.py): connections with their encrypted tokens, and
touchpoints, on a real SQLite file and a real PostgreSQL schema. Opt-outs, the catalogue's
third part, are in test_optouts.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url

from smslink.store import AlreadyExists, InUse, NotFound, Store, open_store
from smslink.store.schema import connections
from smslink.store.secrets import SecretBox, SecretError
from tests.store.records import TOKEN, connection, touchpoint

# The url, key and store fixtures are in conftest.py.


# -- connections ---------------------------------------------------------------------------


def test_a_connection_reads_back_as_written_and_as_updated(store: Store):
    c = connection(messaging_service_sid="MG1", api_key_sid="SK1", poll_attempts=3)
    store.catalogue.add_connection(c)
    assert store.catalogue.get_connection("main") == c
    assert (c.max_segments_per_second, c.request_timeout_s) == (None, 30.0)  # the defaults
    c.auth_token = "rotated-token"
    c.poll_interval_ms = 500
    c.max_segments_per_second = 0.5  # fractions too: one segment every two seconds
    c.request_timeout_s = 12.5
    store.catalogue.update_connection(c)
    assert store.catalogue.get_connection("main") == c
    c.max_segments_per_second = None  # the cap can be taken away again
    store.catalogue.update_connection(c)
    assert store.catalogue.get_connection("main").max_segments_per_second is None
    store.catalogue.add_connection(connection("b-second"))
    assert [x.name for x in store.catalogue.list_connections()] == ["b-second", "main"]


def test_a_duplicate_or_missing_connection_is_refused_by_name(store: Store):
    store.catalogue.add_connection(connection())
    with pytest.raises(AlreadyExists, match="main"):
        store.catalogue.add_connection(connection())
    with pytest.raises(NotFound):
        store.catalogue.get_connection("nope")
    with pytest.raises(NotFound):
        store.catalogue.update_connection(connection("nope"))
    with pytest.raises(NotFound):
        store.catalogue.remove_connection("nope")
    store.catalogue.remove_connection("main")
    assert store.catalogue.list_connections() == []


def test_auth_token_is_never_stored_in_clear(store: Store, url: str):
    store.catalogue.add_connection(connection())
    engine = create_engine(url)
    with engine.connect() as conn:
        raw = conn.execute(select(connections)).one()
    engine.dispose()
    assert all(TOKEN not in str(value) for value in raw)
    assert raw.auth_token_encrypted
    if url.startswith("sqlite"):  # nor anywhere in the database's files
        store.close()
        db = Path(make_url(url).database or "")
        for path in db.parent.iterdir():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_wrong_key_gives_secret_error(store: Store, url: str):
    store.catalogue.add_connection(connection())
    other = open_store(url, secret_box=SecretBox(Fernet.generate_key()))
    try:
        with pytest.raises(SecretError, match=r"was SMSLINK_SECRET_KEY or secret\.key changed"):
            other.catalogue.get_connection("main")
    finally:
        other.close()


def test_removing_a_used_connection_names_its_touchpoints(store: Store):
    store.catalogue.add_connection(connection())
    store.catalogue.add_touchpoint(touchpoint("welcome"))
    store.catalogue.add_touchpoint(touchpoint("reminder"))
    with pytest.raises(InUse, match="reminder, welcome"):
        store.catalogue.remove_connection("main")
    assert store.catalogue.get_connection("main").name == "main"
    store.catalogue.remove_touchpoint("welcome")
    store.catalogue.remove_touchpoint("reminder")
    store.catalogue.remove_connection("main")


# -- touchpoints ---------------------------------------------------------------------------


def test_a_touchpoint_needs_its_connection_and_a_unique_name(store: Store):
    with pytest.raises(NotFound, match="no connection named 'main'"):
        store.catalogue.add_touchpoint(touchpoint())
    store.catalogue.add_connection(connection())
    t = touchpoint()
    store.catalogue.add_touchpoint(t)
    assert store.catalogue.get_touchpoint("welcome") == t
    with pytest.raises(AlreadyExists):
        store.catalogue.add_touchpoint(t)
    store.catalogue.add_touchpoint(touchpoint("another"))
    assert [x.name for x in store.catalogue.list_touchpoints()] == ["another", "welcome"]
    store.catalogue.remove_touchpoint("welcome")
    with pytest.raises(NotFound):
        store.catalogue.get_touchpoint("welcome")
    with pytest.raises(NotFound):
        store.catalogue.remove_touchpoint("welcome")
