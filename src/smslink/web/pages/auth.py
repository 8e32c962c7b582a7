"""Signing in and out, the first administrator, and the language switch."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import Response

from smslink.domain.errors import InvalidInput
from smslink.domain.models import Role
from smslink.web import i18n
from smslink.web.i18n import _
from smslink.web.pages.common import field_errors, form, redirect, smslink, text, viewer
from smslink.web.session import SignInBrake, sign_in, sign_out
from smslink.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/")
def home(request: Request) -> Response:
    if viewer(request) is None:
        return redirect("/signin")
    return redirect("/runs")


@router.get("/signin")
def signin_page(request: Request, next: str = "/runs") -> Response:
    if smslink(request).users.count() == 0:
        return redirect("/setup")
    return render(request, "signin.html", None, next=_local(next), name="", error=None)


@router.post("/signin")
async def signin(request: Request) -> Response:
    fields = await form(request)
    name, password, next_ = text(fields, "name"), text(fields, "password"), text(fields, "next")
    brake: SignInBrake = request.app.state.brake
    keys = (f"name:{name.casefold()}", f"addr:{request.client.host if request.client else ''}")
    wait = brake.wait_s(*keys)
    if wait > 0:  # slow down guessing: answer only once the wait is over
        await asyncio.sleep(wait)
    user = await asyncio.to_thread(smslink(request).users.authenticate, name, password)
    if user is None:
        brake.failed(*keys)
        return render(
            request,
            "signin.html",
            None,
            status_code=401,
            next=_local(next_),
            name=name,
            error=_("The name or the password is wrong."),
        )
    brake.succeeded(keys[0])
    sign_in(request, user)
    if user.locale:
        request.session["lang"] = user.locale
    return redirect(_local(next_))


@router.post("/signout")
async def signout(request: Request) -> Response:
    await form(request)
    sign_out(request)
    return redirect("/signin")


@router.get("/setup")
def setup_page(request: Request) -> Response:
    if smslink(request).users.count() > 0:
        return redirect("/signin")
    return render(request, "setup.html", None, name="", errors={}, general=[])


@router.post("/setup")
async def setup(request: Request) -> Response:
    """The first start: whoever reaches the service first (on loopback, where it starts
    when it has no user) becomes its first administrator."""
    fields = await form(request)
    app = smslink(request)
    if app.users.count() > 0:
        return redirect("/signin")
    name, password = text(fields, "name"), text(fields, "password")
    errors: dict[str, str] = {}
    general: list[str] = []
    if password != text(fields, "password_again"):
        errors["password_again"] = _("The two passwords differ.")
    else:
        try:
            user = await asyncio.to_thread(app.users.add, name, password, Role.ADMIN)
        except InvalidInput as error:
            errors, general = field_errors(error)
        else:
            sign_in(request, user)
            return redirect("/connections")
    return render(
        request, "setup.html", None, status_code=422, name=name, errors=errors, general=general
    )


@router.post("/language")
async def language(request: Request) -> Response:
    fields = await form(request)
    chosen = text(fields, "lang")
    if chosen in i18n.LANGUAGES:
        request.session["lang"] = chosen
        user = viewer(request)
        if user is not None:
            smslink(request).users.update(user.id, locale=chosen)
    return redirect(_local(text(fields, "next")))


def _local(target: str) -> str:
    """Only a path of this site: never send a signed-in user on to another."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/runs"
    return target
