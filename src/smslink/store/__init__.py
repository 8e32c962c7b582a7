"""Persistence behind one small interface: SQLite by default, PostgreSQL for shared deployments.

`open_store()` gives a `Store`, which owns the database and hands out one object per
concern, each in its own module:

- `store.catalogue` (catalogue.py): what administrators and marketers configure:
  connections (their tokens encrypted), touchpoints, opt-outs;
- `store.runs` (runs.py): runs, their creation without conflicts, and their leases;
- `store.deliveries` (deliveries.py): a run's deliveries, the per-message hot paths;
- `store.accounts` (accounts.py): who signs in to the pages, and their API tokens;
- `store.callbacks` (callbacks.py): Twilio status callbacks applied to deliveries, once
  each and forward only;
- `store.events` (events.py): every status change of a delivery, written by the two
  above in the transaction of the change, read back in order;
- `store.webhooks` (webhooks.py): webhook subscriptions (their secrets encrypted) and each
  one's cursor over the events;
- `store.intake` (intake.py): journeys' standing runs, records appended to them, and the
  keys that make a repeated request harmless.

database.py opens the database and knows the dialects; migrations/ brings its schema up to
date when it opens; schema.py and rows.py describe the tables and map rows to models.

SQLAlchemy Core, not the ORM: the hot paths (ingest, claim, progress) are batch statements
over plain dicts, and an identity map would only cost memory on a 100,000-row run.

Every write is one short transaction that starts with a write statement. On SQLite (where
Python's driver begins a transaction only before DML) that means a writer takes the lock at
its first statement and waits out the busy timeout instead of failing on a stale snapshot;
constraint checks (unique names, foreign keys) are left to the database, so there is no
check-then-write race between processes either.
"""

from __future__ import annotations

from smslink.store.accounts import Accounts
from smslink.store.callbacks import Applied, CallbackStore, CallbackWrite
from smslink.store.catalogue import Catalogue
from smslink.store.database import Database
from smslink.store.deliveries import DeliveryStore
from smslink.store.errors import (
    AlreadyExists,
    InUse,
    KeyReused,
    LeaseTaken,
    NotFound,
    RunConflict,
    RunSealed,
    SchemaTooNew,
    StoreError,
)
from smslink.store.events import EventStore
from smslink.store.intake import Incoming, IntakeStore
from smslink.store.location import database_url
from smslink.store.migrations import ensure_schema
from smslink.store.runs import LeaseHolder, RunStore
from smslink.store.secrets import SecretBox
from smslink.store.webhooks import WebhookStore
from smslink.store.workers import WorkerRow, WorkerStore

__all__ = [
    "Accounts",
    "AlreadyExists",
    "Applied",
    "CallbackStore",
    "CallbackWrite",
    "Catalogue",
    "DeliveryStore",
    "EventStore",
    "InUse",
    "Incoming",
    "IntakeStore",
    "KeyReused",
    "LeaseHolder",
    "LeaseTaken",
    "NotFound",
    "RunConflict",
    "RunSealed",
    "RunStore",
    "SchemaTooNew",
    "Store",
    "StoreError",
    "WebhookStore",
    "WorkerRow",
    "WorkerStore",
    "open_store",
]


def open_store(url: str | None = None, *, secret_box: SecretBox | None = None) -> Store:
    """The store at `url`, else at `SMSLINK_DATABASE_URL`, else the SQLite file in the home.

    The secret box defaults to the key from `SMSLINK_SECRET_KEY` or `<home>/secret.key`.
    The database's schema is created or upgraded first (see `smslink.store.migrations`).
    """
    return Store(url or database_url(), secret_box or SecretBox())


class Store:
    """One open database: its catalogue, runs and deliveries. Close it (or use it as a
    context manager) to release its connections."""

    def __init__(self, url: str, secret_box: SecretBox) -> None:
        db = Database(url)
        try:
            ensure_schema(db)
        except BaseException:
            db.dispose()
            raise
        self._db = db
        self._engine = db.engine
        self.catalogue = Catalogue(db, secret_box)
        self.runs = RunStore(db)
        self.deliveries = DeliveryStore(db)
        self.accounts = Accounts(db)
        self.callbacks = CallbackStore(db)
        self.events = EventStore(db)
        self.webhooks = WebhookStore(db, secret_box)
        self.intake = IntakeStore(db, self.deliveries)
        self.workers = WorkerStore(db)
        self._secret_box = secret_box

    def derived_key(self, purpose: str) -> bytes:
        """A key for `purpose` derived from the store's secret key (see SecretBox.derive)."""
        return self._secret_box.derive(purpose)

    @property
    def url(self) -> str:
        """Where the store is, with any password hidden (safe to print)."""
        return self._db.url

    def close(self) -> None:
        self._db.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
