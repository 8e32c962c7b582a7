"""Every router of the service, pages and API, in one list."""

from __future__ import annotations

from fastapi import FastAPI

from smslink.web import api, inbound, pages
from smslink.web.api import connections as api_connections
from smslink.web.api import deliveries as api_deliveries
from smslink.web.api import events as api_events
from smslink.web.api import journeys as api_journeys
from smslink.web.api import optouts as api_optouts
from smslink.web.api import runs as api_runs
from smslink.web.api import touchpoints as api_touchpoints
from smslink.web.api import users as api_users
from smslink.web.api import webhooks as api_webhooks
from smslink.web.pages import apidocs, auth, connections, optouts, runs, touchpoints, users

PAGES = (auth, connections, touchpoints, runs, optouts, users, apidocs)
API = (
    api_connections,
    api_touchpoints,
    api_runs,
    api_deliveries,
    api_events,
    api_optouts,
    api_users,
    api_webhooks,
    api_journeys,
)
#: What Twilio calls (signature-checked, outside /api and its OpenAPI document). Its
#: status callbacks are answered before the router (web/callbacks.py).
TWILIO = (inbound,)


def include_routes(app: FastAPI) -> None:
    """Twilio's receivers first, then the API, then the pages: a request is matched
    against the routes in this order, and after Twilio's status callbacks (answered before
    the router) the journey API is most of what the service is asked. No path of one group
    matches a path of another, so the order changes nothing else."""
    for module in (*TWILIO, *API, *PAGES):
        app.include_router(module.router)


__all__ = ["api", "include_routes", "pages"]
