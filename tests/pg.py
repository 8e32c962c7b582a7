"""The local PostgreSQL server for tests: a fresh schema per test, selected by URL.

A schema chosen through libpq's `options` means the code under test needs no test hooks:
it gets an ordinary database URL, exactly as a user's SMSLINK_DATABASE_URL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import pytest
from sqlalchemy import create_engine, make_url, text

PG_URL = os.environ.get("SMSLINK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@cache
def pg_unreachable() -> str | None:
    """Why PostgreSQL cannot be used, or None when it can."""
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as e:
        return f"PostgreSQL at {PG_URL} unreachable: {type(e).__name__}: {e}".splitlines()[0]
    return None


@contextmanager
def fresh_pg_schema() -> Iterator[str]:
    """A URL to a new, empty schema, dropped afterwards; skips the test without a server."""
    reason = pg_unreachable()
    if reason:
        print(reason)
        pytest.skip(reason)
    schema = f"smslink_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield (
            make_url(PG_URL)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
