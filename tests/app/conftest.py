"""The application layer over a real SQLite store and the simulator on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from smslink.app import Smslink
from smslink.domain.models import Connection, Touchpoint
from smslink.engine import Timings
from smslink.simulator import SimulatorConfig, run_in_thread
from smslink.store import open_store
from smslink.store.secrets import SecretBox

ACCOUNT = "AC" + "a9900000000000000000000000000001"
TOKEN = "app-token"


@pytest.fixture
def base_url() -> Iterator[str]:
    config = SimulatorConfig(auth_token=TOKEN, queued_s=0.02, sending_s=0.02, sent_s=0.02)
    with run_in_thread(config) as url:
        yield url


@pytest.fixture
def smslink(tmp_path: Path) -> Iterator[Smslink]:
    store = open_store(
        f"sqlite:///{tmp_path / 'smslink.db'}", secret_box=SecretBox(Fernet.generate_key())
    )
    yield Smslink(store, timings=Timings(reconcile_grace_s=0.05))
    store.close()


def connection(base_url: str, name: str = "sim", **overrides: object) -> Connection:
    fields: dict[str, object] = {
        "name": name,
        "account_sid": ACCOUNT,
        "auth_token": TOKEN,
        "from_number": "+15005550006",
        "base_url": base_url,
        "poll_interval_ms": 100,
    }
    fields.update(overrides)
    return Connection(**fields)  # type: ignore[arg-type]


def touchpoint(name: str = "hello", connection: str = "sim") -> Touchpoint:
    return Touchpoint(name, connection, "Hi <Name>!", "phone", {"Name": "name"})
