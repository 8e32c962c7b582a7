"""The application's configuration, read from the environment in one place.

Two variables point a whole deployment somewhere else (`SMSLINK_HOME`, a container
volume; `SMSLINK_DATABASE_URL`, a shared PostgreSQL) and `SMSLINK_SECRET_KEY` holds the
key when several workers share a database. Timing overrides exist for operations that
need them (`SMSLINK_LEASE_TTL_S`). Faces read the environment through `Config`, and pass
what it says down; nothing below the application reads a timing from the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from smslink.app.webhooks import WebhookTimings
from smslink.domain.errors import ConfigurationRefused, say
from smslink.engine import Timings

LEASE_TTL_ENV = "SMSLINK_LEASE_TTL_S"
#: "on": the service queues the runs it starts (pages, API, journeys) for `smslink worker`
#: processes instead of sending them itself (the store must be on PostgreSQL).
WORKERS_ENV = "SMSLINK_WORKERS"
#: Where workers keep the limits they share (an account's request window, a sender's
#: segment cap): a Redis URL. Unset: each worker paces on its own (docs/deploy.md).
PACING_URL_ENV = "SMSLINK_REDIS_URL"
_ON, _OFF = ("1", "on", "true", "yes"), ("", "0", "off", "false", "no")
#: Shorter leases than this would be renewed more often than a busy database answers.
MIN_LEASE_TTL_S = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    #: The store's SQLAlchemy URL; None: `SMSLINK_DATABASE_URL`, else the SQLite file in
    #: the home (resolved by the store, which also checks the home is safe).
    database_url: str | None = None
    timings: Timings = field(default_factory=Timings)
    #: How the web service's webhook dispatcher waits and retries.
    webhook_timings: WebhookTimings = field(default_factory=WebhookTimings)
    #: Runs started by the service go to workers (SMSLINK_WORKERS=on).
    workers: bool = False
    #: The Redis that workers share their pacing through (SMSLINK_REDIS_URL).
    pacing_url: str | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Config:
        env = os.environ if environ is None else environ
        return cls(
            timings=Timings(lease_ttl_s=_lease_ttl_s(env.get(LEASE_TTL_ENV))),
            workers=_switch(WORKERS_ENV, env.get(WORKERS_ENV)),
            pacing_url=env.get(PACING_URL_ENV) or None,
        )


def _switch(name: str, raw: str | None) -> bool:
    """An on/off variable; anything else is refused, naming the variable and the fix."""
    value = (raw or "").strip().lower()
    if value in _ON:
        return True
    if value in _OFF:
        return False
    raise ConfigurationRefused(
        say(
            "%(name)s must be on or off, not %(value)s",
            name=name,
            value=repr(raw[:40] if raw else raw),
        )
    )


def _lease_ttl_s(raw: str | None) -> float:
    """`SMSLINK_LEASE_TTL_S` as seconds; the default when unset or not a number."""
    default = Timings().lease_ttl_s
    if not raw:
        return default
    try:
        return max(MIN_LEASE_TTL_S, float(raw))
    except ValueError:
        return default
