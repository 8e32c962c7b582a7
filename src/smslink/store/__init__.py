"""Persistence behind one small interface: SQLite by default, PostgreSQL for shared deployments."""

from smslink.store.errors import (
    AlreadyExists,
    InUse,
    NotFound,
    RunConflict,
    SchemaTooNew,
    StoreError,
)
from smslink.store.sql import Store, open_store

__all__ = [
    "AlreadyExists",
    "InUse",
    "NotFound",
    "RunConflict",
    "SchemaTooNew",
    "Store",
    "StoreError",
    "open_store",
]
