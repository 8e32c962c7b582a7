"""`Smslink`, the front door, and `open_app`, which opens it over the configured store.

Each service (`.runs`, `.users`, `.webhooks`, ...) is made, and its module imported, the
first time it is asked for: a command that sends never loads password hashing (argon2),
webhooks or journeys, and `smslink --help` loads none of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from smslink.app.config import Config
from smslink.domain.errors import SmslinkError, StorageFailed, say
from smslink.engine import Timings
from smslink.store import Store, open_store

if TYPE_CHECKING:
    from smslink.app.callbacks import Callbacks
    from smslink.app.connections import Connections
    from smslink.app.events import Events
    from smslink.app.journeys import Journeys
    from smslink.app.optouts import OptOuts
    from smslink.app.runs import Runs
    from smslink.app.touchpoints import Touchpoints
    from smslink.app.users import Users
    from smslink.app.webhooks import Webhooks, WebhookTimings
    from smslink.app.work import Work


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
        self._timings = timings
        self._webhook_timings = webhook_timings
        self._workers = workers
        self._pacing_url = pacing_url

    @classmethod
    def open(cls, config: Config) -> Smslink:
        """The application over the configured store, for a long-lived face (the service):
        `close()` it when done. Errors as `open_app` raises them."""
        app = cls(
            _open_store(config),
            timings=config.timings,
            webhook_timings=config.webhook_timings,
            workers=config.workers,
            pacing_url=config.pacing_url,
        )
        # The service answers from many threads at once, and cached_property takes no
        # lock from Python 3.12 on: two threads could each make a service. It needs every
        # one anyway, so all are made here, once, before any request.
        for name in _SERVICES:
            getattr(app, name)
        return app

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

    @cached_property
    def connections(self) -> Connections:
        from smslink.app.connections import Connections

        return Connections(self._store)

    @cached_property
    def touchpoints(self) -> Touchpoints:
        from smslink.app.touchpoints import Touchpoints

        return Touchpoints(self._store)

    @cached_property
    def runs(self) -> Runs:
        from smslink.app.runs import Runs

        return Runs(self._store, self._timings_or_default(), self.touchpoints)

    @cached_property
    def optouts(self) -> OptOuts:
        from smslink.app.optouts import OptOuts

        return OptOuts(self._store)

    @cached_property
    def users(self) -> Users:
        from smslink.app.users import Users

        return Users(self._store)

    @cached_property
    def callbacks(self) -> Callbacks:
        from smslink.app.callbacks import Callbacks

        return Callbacks(self._store)

    @cached_property
    def events(self) -> Events:
        from smslink.app.events import Events

        return Events(self._store)

    @cached_property
    def webhooks(self) -> Webhooks:
        from smslink.app.webhooks import Webhooks

        return Webhooks(self._store, self._webhook_timings)

    @cached_property
    def journeys(self) -> Journeys:
        from smslink.app.journeys import Journeys

        return Journeys(self._store)

    @cached_property
    def work(self) -> Work:
        from smslink.app.work import Work

        return Work(
            self._store,
            self._timings_or_default(),
            enabled=self._workers,
            pacing_url=self._pacing_url,
        )

    def _timings_or_default(self) -> Timings:
        return self._timings or Timings()


@contextmanager
def open_app(config: Config | None = None) -> Iterator[Smslink]:
    """The application over the configured store, closed afterwards.

    A database that cannot be opened, or fails during the block, is StorageFailed (with
    the database named, any password hidden); errors of the tree pass as they are.
    """
    config = config or Config.from_environment()
    store = _open_store(config)
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


#: Every service `Smslink` makes on first use.
_SERVICES = (
    "connections",
    "touchpoints",
    "runs",
    "optouts",
    "users",
    "callbacks",
    "events",
    "webhooks",
    "journeys",
    "work",
)


def _open_store(config: Config) -> Store:
    """The configured store; DatabaseUnavailable when it cannot be opened at all."""
    try:
        return open_store(config.database_url)
    except SmslinkError:
        raise
    except Exception as error:  # a bad SMSLINK_DATABASE_URL, an unreachable server
        raise DatabaseUnavailable(
            say("cannot open the database: %(reason)s", reason=_first_line(error))
        ) from error


def _first_line(error: object) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
