"""The one place the environment is read for timings."""

from __future__ import annotations

from pathlib import Path

import pytest

from smslink.app import open_app
from smslink.app.config import Config
from smslink.domain.errors import ConfigurationRefused


def test_the_lease_length_comes_from_the_environment_with_a_floor_and_a_default() -> None:
    assert Config.from_environment({}).timings.lease_ttl_s == 60.0
    assert Config.from_environment({"SMSLINK_LEASE_TTL_S": "3"}).timings.lease_ttl_s == 3.0
    assert Config.from_environment({"SMSLINK_LEASE_TTL_S": "0.1"}).timings.lease_ttl_s == 1.0
    assert Config.from_environment({"SMSLINK_LEASE_TTL_S": "soon"}).timings.lease_ttl_s == 60.0


def test_workers_are_switched_on_or_off_and_anything_else_is_refused_by_name() -> None:
    assert Config.from_environment({}).workers is False
    for on in ("on", "1", "TRUE", " yes "):
        assert Config.from_environment({"SMSLINK_WORKERS": on}).workers is True
    for off in ("off", "0", "false", "no", ""):
        assert Config.from_environment({"SMSLINK_WORKERS": off}).workers is False
    for garbage in ("maybe", "on;rm -rf /", "\x1b[2J", "x" * 10_000):
        with pytest.raises(ConfigurationRefused, match="SMSLINK_WORKERS must be on or off") as e:
            Config.from_environment({"SMSLINK_WORKERS": garbage})
        assert len(str(e.value)) < 200  # a huge value is cut short in the message


def test_the_shared_pacing_redis_comes_from_the_environment() -> None:
    assert Config.from_environment({}).pacing_url is None
    assert Config.from_environment({"SMSLINK_REDIS_URL": ""}).pacing_url is None
    url = "redis://127.0.0.1:6379/0"
    assert Config.from_environment({"SMSLINK_REDIS_URL": url}).pacing_url == url


def test_workers_on_a_sqlite_store_are_refused_with_the_fix(tmp_path: Path) -> None:
    config = Config(database_url=f"sqlite:///{tmp_path / 'smslink.db'}", workers=True)
    with open_app(config) as app, pytest.raises(ConfigurationRefused, match="PostgreSQL"):
        assert app.work.enabled
