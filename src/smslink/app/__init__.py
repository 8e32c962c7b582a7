"""The application layer: the one front door every face calls.

The command line, the web pages, the journey API and the workers all do their work
through `Smslink`: connections, touchpoints, runs and opt-outs, each operation with typed
inputs and typed results, and errors from one tree (`smslink.domain.errors`) that carry
their remedy as data. No face touches the store or the Twilio client itself, so a rule
lives in one place and every face applies it the same way.

Each name below is imported the first time it is used (PEP 562), not with the package:
the command line imports this package to name what its commands call, and `smslink
--help`, or a command that needs none of it, should not load the store, the engine,
Twilio's client, argon2 or procrastinate for that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from smslink.lazy import lazy_names

if TYPE_CHECKING:
    from smslink.app.config import Config
    from smslink.app.facade import DatabaseUnavailable, Smslink, open_app
    from smslink.app.journeys import Intake
    from smslink.app.queues import QUEUES, WorkerSettings
    from smslink.app.webhooks import Webhooks, WebhookTimings
    from smslink.engine import LeaseLost, PreviewTotals, RunCounters, RunRequest
    from smslink.store import AlreadyExists, InUse, NotFound, RunConflict

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

#: Where each name above lives.
_HOMES = {
    "AlreadyExists": "smslink.store",
    "Config": "smslink.app.config",
    "DatabaseUnavailable": "smslink.app.facade",
    "InUse": "smslink.store",
    "Intake": "smslink.app.journeys",
    "LeaseLost": "smslink.engine",
    "NotFound": "smslink.store",
    "PreviewTotals": "smslink.engine",
    "QUEUES": "smslink.app.queues",
    "RunConflict": "smslink.store",
    "RunCounters": "smslink.engine",
    "RunRequest": "smslink.engine",
    "Smslink": "smslink.app.facade",
    "WebhookTimings": "smslink.app.webhooks",
    "Webhooks": "smslink.app.webhooks",
    "WorkerSettings": "smslink.app.queues",
    "open_app": "smslink.app.facade",
}


__getattr__, __dir__ = lazy_names(__name__, _HOMES)
