"""Who is asking: signed session cookies for the pages, bearer tokens for the API, roles,
CSRF tokens, and a brake on guessing passwords.

A session is a cookie signed with a key derived from the store's secret key (itsdangerous,
through Starlette's SessionMiddleware): HttpOnly, SameSite=Lax, Secure when the service is
not on loopback, and it expires after `SESSION_HOURS`. It holds the user's id, when it was
issued and the CSRF token; a password reset or disabling the user ends it, because
`Users.session_user` compares the issue time with the user's `password_changed_at`.

Every state-changing request a page makes carries the session's CSRF token (a hidden form
field or the `X-CSRF-Token` header) and is refused without it; API requests authenticated
by a bearer token need none, since a browser never sends that token by itself.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from datetime import UTC, datetime

from fastapi import Request

from smslink.app import Smslink
from smslink.domain.models import Role, User

#: How long a sign-in lasts.
SESSION_HOURS = 12
#: Failed sign-ins per name (and per address) tolerated in `THROTTLE_WINDOW_S` before each
#: further attempt must wait, doubling the wait each time up to `THROTTLE_MAX_S`.
THROTTLE_FREE = 5
THROTTLE_WINDOW_S = 15 * 60
THROTTLE_MAX_S = 30.0


class NotSignedIn(Exception):
    """The request needs a signed-in user (pages redirect to the sign-in page)."""


class Forbidden(Exception):
    """The user's role may not do this."""


class CsrfRefused(Exception):
    """A state-changing request without the session's CSRF token."""


def sign_in(request: Request, user: User) -> None:
    """Start a new session for `user` (a fresh CSRF token, so none leaks across sign-ins)."""
    request.session.clear()
    request.session.update({"uid": user.id, "iat": time.time(), "csrf": secrets.token_urlsafe(32)})


def sign_out(request: Request) -> None:
    request.session.clear()


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made now for a visitor who has none yet)."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def check_csrf(request: Request, given: str | None) -> None:
    """Raise CsrfRefused unless `given` is the session's token (compared in constant time)."""
    expected = request.session.get("csrf")
    if not isinstance(expected, str) or not given or not hmac.compare_digest(expected, given):
        raise CsrfRefused()


def session_user(request: Request, smslink: Smslink) -> User | None:
    """The signed-in user, or None (no session, expired, disabled, password changed)."""
    uid, issued = request.session.get("uid"), request.session.get("iat")
    if not isinstance(uid, int) or not isinstance(issued, int | float):
        return None
    if time.time() - issued > SESSION_HOURS * 3600:
        request.session.clear()
        return None
    user = smslink.users.session_user(uid, datetime.fromtimestamp(issued, UTC))
    if user is None:
        request.session.clear()
    return user


def bearer_user(request: Request, smslink: Smslink) -> User | None:
    """The user of an `Authorization: Bearer <token>` header, or None."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return smslink.users.token_user(token.strip())


def require(user: User | None, role: Role | None = None) -> User:
    """`user`, when signed in and (for `role` ADMIN) an administrator."""
    if user is None:
        raise NotSignedIn()
    if role is Role.ADMIN and not user.is_admin:
        raise Forbidden()
    return user


class SignInBrake:
    """Slows down repeated failed sign-ins, per name and per client address.

    After `THROTTLE_FREE` failures within `THROTTLE_WINDOW_S`, each further attempt for
    that name or address must wait 1 s, then 2 s, 4 s ... up to `THROTTLE_MAX_S` after the
    previous failure; a success clears the name. Kept in memory: one service process per
    database in the embedded default (a shared store would keep it in Redis or the
    database; see the scale-out issue).
    """

    def __init__(self) -> None:
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait_s(self, *keys: str) -> float:
        """Seconds before another attempt for any of `keys` may be tried (0: now)."""
        now = time.monotonic()
        with self._lock:
            return max((self._wait(key, now) for key in keys), default=0.0)

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _wait(self, key: str, now: float) -> float:
        recent = self._failures.get(key)
        if not recent:
            return 0.0
        while recent and now - recent[0] > THROTTLE_WINDOW_S:
            recent.popleft()
        over = len(recent) - THROTTLE_FREE
        if over < 0:
            return 0.0
        delay = min(THROTTLE_MAX_S, 2.0**over)
        return max(0.0, recent[-1] + delay - now)
