"""The application layer: the one front door every face calls.

The command line, the web pages, the journey API and the workers all do their work
through `Smslink`: connections, touchpoints, runs and opt-outs, each operation with typed
inputs and typed results, and errors from one tree (`smslink.domain.errors`) that carry
their remedy as data. No face touches the store or the Twilio client itself, so a rule
lives in one place and every face applies it the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import SQLAlchemyError

from smslink.app.callbacks import Callbacks
from smslink.app.config import Config
from smslink.app.connections import Connections
from smslink.app.events import Events
from smslink.app.journeys import Intake, Journeys
from smslink.app.optouts import OptOuts
from smslink.app.runs import Runs
from smslink.app.touchpoints import Touchpoints
from smslink.app.users import Users
from smslink.app.webhooks import Webhooks, WebhookTimings
from smslink.app.work import QUEUES, Work, WorkerSettings
from smslink.domain.errors import SmslinkError, StorageFailed, say
from smslink.engine import LeaseLost, PreviewTotals, RunCounters, RunRequest, Timings
from smslink.store import (
    AlreadyExists,
    InUse,
    NotFound,
    RunConflict,
    Store,
    open_store,
)

# What faces need of the layers below, named here so that a face imports the application
# and the domain only (a contract in pyproject.toml keeps it so).
__all__ = [
    "QUEUES",
    "AlreadyExists",
    "Config",
    "DatabaseUnavailable",
    "InUse",
    "Intake",
    "LeaseLost",
    "NotFound",
    "PreviewTotals",
    "RunConflict",
    "RunCounters",
    "RunRequest",
    "Smslink",
    "WebhookTimings",
    "Webhooks",
    "WorkerSettings",
    "open_app",
]


class DatabaseUnavailable(StorageFailed):
    """The database cannot be opened at all (a malformed URL, a server that is not there):
    nothing was done, and the configuration is the likely thing to check."""


class Smslink:
    """smslink over one store: `.connections`, `.touchpoints`, `.runs`, `.optouts`,
    `.users`, `.callbacks` (Twilio's status callbacks), `.events` (deliveries across
    runs and their status events), `.webhooks` (where events are posted) and `.journeys`
    (records handed over one at a time) and `.work` (runs sent by workers)."""

    def __init__(
        self,
        store: Store,
        *,
        timings: Timings | None = None,
        webhook_timings: WebhookTimings | None = None,
        workers: bool = False,
        pacing_url: str | None = None,
    ) -> None:
        self._store = store
        self.connections = Connections(store)
        self.touchpoints = Touchpoints(store)
        self.runs = Runs(store, timings or Timings(), self.touchpoints)
        self.optouts = OptOuts(store)
        self.users = Users(store)
        self.callbacks = Callbacks(store)
        self.events = Events(store)
        self.webhooks = Webhooks(store, webhook_timings)
        self.journeys = Journeys(store)
        self.work = Work(store, timings or Timings(), enabled=workers, pacing_url=pacing_url)

    @classmethod
    def open(cls, config: Config) -> Smslink:
        """The application over the configured store, for a long-lived face (the service):
        `close()` it when done. Errors as `open_app` raises them."""
        try:
            store = open_store(config.database_url)
        except SmslinkError:
            raise
        except Exception as error:
            raise DatabaseUnavailable(
                say("cannot open the database: %(reason)s", reason=_first_line(error))
            ) from error
        return cls(
            store,
            timings=config.timings,
            webhook_timings=config.webhook_timings,
            workers=config.workers,
            pacing_url=config.pacing_url,
        )

    def close(self) -> None:
        self._store.close()

    def signing_key(self, purpose: str) -> bytes:
        """A secret for signing what a face hands out (session cookies), derived from the
        key that seals the tokens: shared by every process on the same key."""
        return self._store.derived_key(purpose)

    @property
    def where(self) -> str:
        """Where the data is (the database URL, any password hidden): safe to show."""
        return self._store.url


@contextmanager
def open_app(config: Config | None = None) -> Iterator[Smslink]:
    """The application over the configured store, closed afterwards.

    A database that cannot be opened, or fails during the block, is StorageFailed (with
    the database named, any password hidden); errors of the tree pass as they are.
    """
    config = config or Config.from_environment()
    try:
        store = open_store(config.database_url)
    except SmslinkError:
        raise
    except Exception as error:  # a bad SMSLINK_DATABASE_URL, an unreachable server
        raise DatabaseUnavailable(
            say("cannot open the database: %(reason)s", reason=_first_line(error))
        ) from error
    try:
        yield Smslink(
            store,
            timings=config.timings,
            webhook_timings=config.webhook_timings,
            workers=config.workers,
            pacing_url=config.pacing_url,
        )
    except SQLAlchemyError as error:
        reason = _first_line(getattr(error, "orig", None) or error)
        raise StorageFailed(
            say("the database (%(url)s) failed: %(reason)s", url=store.url, reason=reason)
        ) from error
    finally:
        store.close()


def _first_line(error: object) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
