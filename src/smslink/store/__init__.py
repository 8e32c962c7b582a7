"""Persistence behind one small interface: SQLite by default, PostgreSQL for shared deployments."""

from smslink.store.errors import AlreadyExists, InUse, NotFound, SchemaTooNew, StoreError
from smslink.store.sql import Store, open_store

__all__ = [
    "AlreadyExists",
    "InUse",
    "NotFound",
    "SchemaTooNew",
    "Store",
    "StoreError",
    "open_store",
]
