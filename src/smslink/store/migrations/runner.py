"""Alembic driven from code, on a connection the caller holds: no alembic.ini at runtime.

A module of its own so that importing the store never imports Alembic: `ensure_schema`
imports this only when a database needs upgrading.
"""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

#: Alembic's `op` and `context` are module-level proxies to the migration in progress, so two
#: threads of one process must not run migrations at once (say, on two databases).
_ONE_AT_A_TIME = threading.Lock()

#: This package: env.py and versions/ (ConfigParser would read a % in it as interpolation).
_SCRIPT_LOCATION = str(Path(__file__).parent).replace("%", "%%")


def config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for smslink's migrations; with `connection`, env.py runs them
    on it, inside the transaction it is in (so the caller commits, or nothing happened)."""
    cfg = Config()
    cfg.set_main_option("script_location", _SCRIPT_LOCATION)
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(connection: Connection, *, stamp: str | None = None) -> None:
    """Upgrade the database on `connection` to head; first record it as being at revision
    `stamp` when its tables are that revision's but it has no alembic_version yet."""
    cfg = config(connection)
    with _ONE_AT_A_TIME:
        if stamp is not None:
            command.stamp(cfg, stamp)
        command.upgrade(cfg, "head")
