"""What every API handler needs: the caller (a bearer token, or a page's session with its
CSRF header for anything that changes state), their role, and the application."""

from __future__ import annotations

from fastapi import Request

from smslink.app import Smslink
from smslink.domain.models import Role, User
from smslink.web.session import bearer_user, check_csrf, require, session_user

#: Methods that change nothing: a session may call them without a CSRF header.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def smslink(request: Request) -> Smslink:
    app: Smslink = request.app.state.smslink
    return app


def caller(request: Request, role: Role | None = None) -> User:
    """The API's caller: a bearer token's user, else the signed-in page user (whose
    state-changing requests must carry the session's CSRF token in `X-CSRF-Token`).
    NotSignedIn / Forbidden / CsrfRefused otherwise; `role` ADMIN for administrators only."""
    app = smslink(request)
    user = bearer_user(request, app)
    if user is None:
        user = session_user(request, app)
        if user is not None and request.method not in SAFE_METHODS:
            check_csrf(request, request.headers.get("x-csrf-token"))
    return require(user, role)


def marketer(request: Request) -> User:
    """Anyone signed in (administrators do what marketers do)."""
    return caller(request)


def administrator(request: Request) -> User:
    return caller(request, Role.ADMIN)
