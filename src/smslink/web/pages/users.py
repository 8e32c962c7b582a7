"""The users pages (administrators) and everyone's own API tokens.

- `/users`: every user (name, role, whether disabled, since when, live tokens) and a form
  to add one; `/users/{id}`: change the role, disable or enable, set a new password (all
  three end or keep sessions as `Users.update` says), and see or revoke their tokens. The
  last enabled administrator cannot be demoted or disabled: the page says so beside the
  control.
- `/tokens` ("My API tokens", for everyone signed in): create a token with a name, see
  one's tokens (name, first characters, created, last used) and revoke them. A new token
  is shown once, on the page the creation redirects to, and never again: it waits in this
  process's memory (never in a cookie or a URL) under a one-time key the session holds,
  and is gone when shown or after `REVEAL_S`. Administrators create tokens only for
  themselves (whoever sees a token can act as its user), and revoke anyone's from the
  user's page.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from functools import cache
from typing import Any
from zoneinfo import available_timezones

from fastapi import APIRouter, Request
from fastapi.responses import Response

from smslink.app.users import MIN_PASSWORD_CHARS, LastAdministrator
from smslink.domain.errors import InvalidInput
from smslink.domain.models import ApiToken, Role, User
from smslink.web.i18n import _
from smslink.web.pages.common import (
    administrator,
    field_errors,
    form,
    redirect,
    signed_in,
    smslink,
    text,
)
from smslink.web.session import sign_in
from smslink.web.templating import render

router = APIRouter(include_in_schema=False)
# The API's documentation at /docs, served with these pages until routes.py lists it.

#: How long a new token waits to be shown, should the redirect's page never be loaded.
REVEAL_S = 300.0


# -- users (administrators) -------------------------------------------------------------


@router.get("/users")
def list_page(request: Request) -> Response:
    user = administrator(request)
    return _list(request, user, {"name": "", "role": Role.MARKETER.value}, {}, [])


@router.post("/users")
async def add(request: Request) -> Response:
    user = administrator(request)
    posted = await form(request)
    values = {"name": text(posted, "name"), "role": text(posted, "role")}
    password = text(posted, "password")
    errors: dict[str, str] = {}
    general: list[str] = []
    role = _role(values["role"])
    if role is None:
        errors["role"] = _("Choose a role.")
    if password != text(posted, "password_again"):
        errors["password_again"] = _("The two passwords differ.")
    if not errors and role is not None:
        try:
            added = smslink(request).users.add(values["name"], password, role)
        except InvalidInput as error:
            errors, general = field_errors(error)
        else:
            return redirect(f"/users/{added.id}?added=1")
    return _list(request, user, values, errors, general, status_code=422)


@router.get("/users/{user_id:int}")
def detail_page(request: Request, user_id: int) -> Response:
    viewer = administrator(request)
    return _detail(request, viewer, user_id)


@router.post("/users/{user_id:int}/role")
async def change_role(request: Request, user_id: int) -> Response:
    administrator(request)
    posted = await form(request)
    role = _role(text(posted, "role"))
    if role is None:
        return _refused(request, user_id, {"role": _("Choose a role.")})
    return _change(request, user_id, "role", role=role)


@router.post("/users/{user_id:int}/disable")
async def disable(request: Request, user_id: int) -> Response:
    administrator(request)
    await form(request)
    return _change(request, user_id, "disabled", disabled=True)


@router.post("/users/{user_id:int}/enable")
async def enable(request: Request, user_id: int) -> Response:
    administrator(request)
    await form(request)
    return _change(request, user_id, "enabled", disabled=False)


@router.post("/users/{user_id:int}/password")
async def reset_password(request: Request, user_id: int) -> Response:
    viewer = administrator(request)
    posted = await form(request)
    password = text(posted, "password")
    if password != text(posted, "password_again"):
        return _refused(request, user_id, {"password_again": _("The two passwords differ.")})
    response = _change(request, user_id, "password", password=password)
    if user_id == viewer.id and response.status_code == 303:
        # Their own: the reset ends every session, this one included; start a new one.
        me = smslink(request).users.get(user_id)
        sign_in(request, me)
        if me.locale:
            request.session["lang"] = me.locale
    return response


@router.post("/users/{user_id:int}/tokens/{token_id:int}/revoke")
async def revoke_users_token(request: Request, user_id: int, token_id: int) -> Response:
    administrator(request)
    await form(request)
    smslink(request).users.revoke_token(token_id, owner=user_id)
    return redirect(f"/users/{user_id}?saved=revoked")


def _change(request: Request, user_id: int, saved: str, **changes: Any) -> Response:
    """Apply `changes` to the user, then show their page again (GET), or the refusal
    beside the control it concerns."""
    try:
        smslink(request).users.update(user_id, **changes)
    except LastAdministrator as error:
        field = error.problems[0].field if error.problems else "role"
        return _refused(
            request,
            user_id,
            {},
            last_admin=field,
            status_code=409,
        )
    except InvalidInput as error:
        errors, general = field_errors(error)
        return _refused(request, user_id, errors, general)
    return redirect(f"/users/{user_id}?saved={saved}")


def _refused(
    request: Request,
    user_id: int,
    errors: dict[str, str],
    general: list[str] | None = None,
    *,
    last_admin: str | None = None,
    status_code: int = 422,
) -> Response:
    return _detail(
        request,
        administrator(request),
        user_id,
        errors=errors,
        general=general or [],
        last_admin=last_admin,
        status_code=status_code,
    )


def _detail(
    request: Request,
    viewer: User,
    user_id: int,
    *,
    errors: dict[str, str] | None = None,
    general: list[str] | None = None,
    last_admin: str | None = None,
    status_code: int = 200,
) -> Response:
    users = smslink(request).users
    shown = users.get(user_id)
    live, revoked = _split(users.tokens(user_id))
    return render(
        request,
        "users/detail.html",
        viewer,
        status_code=status_code,
        shown=shown,
        tokens=live,
        revoked=revoked,
        errors=errors or {},
        general=general or [],
        last_admin=last_admin,
        added=request.query_params.get("added") == "1",
        saved=request.query_params.get("saved", ""),
        min_password=MIN_PASSWORD_CHARS,
        roles=_roles(),
    )


def _list(
    request: Request,
    viewer: User,
    values: dict[str, str],
    errors: dict[str, str],
    general: list[str],
    status_code: int = 200,
) -> Response:
    users = smslink(request).users
    live: dict[int, int] = {}
    for token in users.tokens():
        if token.revoked_at is None:
            live[token.user_id] = live.get(token.user_id, 0) + 1
    return render(
        request,
        "users/list.html",
        viewer,
        status_code=status_code,
        users=users.list(),
        live_tokens=live,
        values=values,
        errors=errors,
        general=general,
        min_password=MIN_PASSWORD_CHARS,
        roles=_roles(),
    )


def _roles() -> list[tuple[str, str, str]]:
    """The roles as the form offers them: value, label, what it may do."""
    return [
        (
            Role.MARKETER.value,
            _("Marketer"),
            _("Touchpoints, runs and opt-outs."),
        ),
        (
            Role.ADMIN.value,
            _("Administrator"),
            _("Everything a marketer does, plus connections and users."),
        ),
    ]


def _role(value: str) -> Role | None:
    try:
        return Role(value)
    except ValueError:
        return None


def _split(tokens: list[ApiToken]) -> tuple[list[ApiToken], list[ApiToken]]:
    """Live tokens (newest first) and revoked ones (latest revoked first)."""
    live = sorted((t for t in tokens if t.revoked_at is None), key=lambda t: -t.id)
    revoked = sorted(
        (t for t in tokens if t.revoked_at is not None),
        key=lambda t: t.revoked_at or t.created_at,
        reverse=True,
    )
    return live, revoked


# -- my API tokens (everyone) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Reveal:
    user_id: int
    token_id: int
    token: str
    expires: float


class TokenReveals:
    """New tokens waiting to be shown once, in this process's memory, by one-time key."""

    def __init__(self) -> None:
        self._waiting: dict[str, _Reveal] = {}
        self._lock = threading.Lock()

    def put(self, user_id: int, token_id: int, token: str) -> str:
        key = secrets.token_urlsafe(24)
        now = time.monotonic()
        with self._lock:
            for old in [k for k, r in self._waiting.items() if r.expires < now]:
                del self._waiting[old]
            self._waiting[key] = _Reveal(user_id, token_id, token, now + REVEAL_S)
        return key

    def take(self, key: object, user_id: int) -> _Reveal | None:
        """The waiting token under `key` for `user_id`, removed: it is shown only once."""
        if not isinstance(key, str):
            return None
        with self._lock:
            reveal = self._waiting.pop(key, None)
        if reveal is None or reveal.user_id != user_id or reveal.expires < time.monotonic():
            return None
        return reveal


def _reveals(request: Request) -> TokenReveals:
    state = request.app.state
    with _REVEALS_LOCK:
        if not hasattr(state, "token_reveals"):
            state.token_reveals = TokenReveals()
    reveals: TokenReveals = state.token_reveals
    return reveals


_REVEALS_LOCK = threading.Lock()


@router.get("/tokens")
def tokens_page(request: Request) -> Response:
    user = signed_in(request)
    reveal = _reveals(request).take(request.session.pop("token_reveal", None), user.id)
    return _tokens(request, user, "", {}, [], reveal)


@router.post("/tokens")
async def create_token(request: Request) -> Response:
    user = signed_in(request)
    posted = await form(request)
    name = text(posted, "name")
    try:
        record, token = smslink(request).users.create_token(user.id, name)
    except InvalidInput as error:
        errors, general = field_errors(error)
        return _tokens(request, user, name, errors, general, None, status_code=422)
    request.session["token_reveal"] = _reveals(request).put(user.id, record.id, token)
    return redirect("/tokens?created=1")


@router.post("/time-zone")
async def set_time_zone(request: Request) -> Response:
    """The signed-in user's own time zone, in which every page shows dates (empty: UTC)."""
    user = signed_in(request)
    posted = await form(request)
    zone = text(posted, "time_zone").strip()
    try:
        smslink(request).users.update(user.id, time_zone=zone)
    except InvalidInput as error:
        errors, general = field_errors(error)
        return _tokens(request, user, "", errors, general, None, status_code=422, zone=zone)
    return redirect("/tokens?zone=1")


@router.post("/tokens/{token_id:int}/revoke")
async def revoke_token(request: Request, token_id: int) -> Response:
    user = signed_in(request)
    await form(request)
    smslink(request).users.revoke_token(token_id, owner=user.id)
    return redirect("/tokens?revoked=1")


def _tokens(
    request: Request,
    user: User,
    name: str,
    errors: dict[str, str],
    general: list[str],
    reveal: _Reveal | None,
    status_code: int = 200,
    zone: str | None = None,
) -> Response:
    live, revoked = _split(smslink(request).users.tokens(user.id))
    return render(
        request,
        "users/tokens.html",
        user,
        status_code=status_code,
        tokens=live,
        revoked=revoked,
        name=name,
        errors=errors,
        general=general,
        reveal=reveal,
        created=request.query_params.get("created") == "1",
        revoked_now=request.query_params.get("revoked") == "1",
        api_base=str(request.base_url).rstrip("/"),
        zone=user.time_zone or "" if zone is None else zone,
        zone_saved=request.query_params.get("zone") == "1",
        zones=time_zones(),
    )


@cache
def time_zones() -> list[str]:
    """The IANA time zones this machine knows, for the time-zone field's suggestions."""
    return sorted(z for z in available_timezones() if "/" in z and not z.startswith("Etc/"))
