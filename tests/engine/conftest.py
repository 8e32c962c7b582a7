"""Fixtures shared by the engine tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from smslink.store import Store, open_store
from smslink.store.secrets import SecretBox


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh SQLite store in the test's own folder."""
    s = open_store(
        f"sqlite:///{tmp_path / 'smslink.db'}", secret_box=SecretBox(Fernet.generate_key())
    )
    yield s
    s.close()
