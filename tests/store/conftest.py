"""Store fixtures shared by its test modules: each test gets a database no other test uses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from smslink.store import Store, open_store
from smslink.store.secrets import SecretBox
from tests.pg import fresh_pg_schema


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL no other test uses: a new SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'smslink.db'}"
        return
    with fresh_pg_schema() as pg_url:
        yield pg_url


@pytest.fixture
def key() -> bytes:
    return Fernet.generate_key()


@pytest.fixture
def store(url: str, key: bytes) -> Iterator[Store]:
    s = open_store(url, secret_box=SecretBox(key))
    yield s
    s.close()
