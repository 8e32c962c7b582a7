"""Where smslink keeps its state: the home directory and the database URL."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from smslink.store.location import database_url, normalise_database_url, smslink_home


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMSLINK_HOME", raising=False)
    monkeypatch.delenv("SMSLINK_DATABASE_URL", raising=False)


def test_home_from_env_is_created_owner_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path / "nested" / "home"
    monkeypatch.setenv("SMSLINK_HOME", str(home))
    assert smslink_home() == home
    assert home.is_dir()
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_existing_home_keeps_its_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path / "home"
    home.mkdir(mode=0o750)
    home.chmod(0o750)
    monkeypatch.setenv("SMSLINK_HOME", str(home))
    assert smslink_home() == home
    assert stat.S_IMODE(home.stat().st_mode) == 0o750


def test_home_defaults_to_platform_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # platformdirs follows the XDG spec on Linux; pointing it at tmp_path keeps ~ untouched.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    home = smslink_home()
    assert home.is_dir()
    assert home.name == "smslink"
    assert home.is_relative_to(tmp_path)


def test_database_url_defaults_to_sqlite_in_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SMSLINK_HOME", str(tmp_path))
    assert database_url() == f"sqlite:///{tmp_path}/smslink.db"


def test_database_url_from_env_maps_postgres_to_psycopg(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SMSLINK_DATABASE_URL", "postgresql://u:p@db:5432/sms")
    assert database_url() == "postgresql+psycopg://u:p@db:5432/sms"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://h/db", "postgresql+psycopg://h/db"),
        ("postgres://h/db", "postgresql+psycopg://h/db"),
        ("postgresql+psycopg://h/db", "postgresql+psycopg://h/db"),
        ("postgresql+psycopg2://h/db", "postgresql+psycopg2://h/db"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_normalise_database_url(given: str, expected: str):
    assert normalise_database_url(given) == expected
