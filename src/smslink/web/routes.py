"""Every router of the service, pages and API, in one list."""

from __future__ import annotations

from fastapi import FastAPI

from smslink.web.pages import auth, connections, runs


def include_routes(app: FastAPI) -> None:
    for router in (auth.router, connections.router, runs.router):
        app.include_router(router)
