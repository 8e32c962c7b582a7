"""What every page handler needs: the application, the viewer and their role, a form read
with its CSRF token checked, and the pages for refusals."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from smslink.app import Smslink
from smslink.domain.errors import InvalidInput, SmslinkError
from smslink.domain.models import Role, User
from smslink.web.forms import form as form  # the pages read forms through here too
from smslink.web.forms import text as text
from smslink.web.i18n import _, error_message, translated
from smslink.web.runner import RunExecutor
from smslink.web.session import require, session_user
from smslink.web.templating import render


def smslink(request: Request) -> Smslink:
    app: Smslink = request.app.state.smslink
    return app


def executor(request: Request) -> RunExecutor:
    runner: RunExecutor = request.app.state.executor
    return runner


def viewer(request: Request) -> User | None:
    """The signed-in user, or None."""
    return session_user(request, smslink(request))


def signed_in(request: Request) -> User:
    """The signed-in user (administrator or marketer); NotSignedIn otherwise."""
    return require(viewer(request))


def administrator(request: Request) -> User:
    """The signed-in administrator; Forbidden for a marketer."""
    return require(viewer(request), Role.ADMIN)


def field_errors(error: InvalidInput) -> tuple[dict[str, str], list[str]]:
    """The problems by form field, and those that belong to no field (shown on top)."""
    by_field: dict[str, str] = {}
    general: list[str] = []
    for problem in error.problems:
        message = translated(problem.message)
        if problem.field in by_field:
            by_field[problem.field] += "; " + message
        elif problem.field:
            by_field[problem.field] = message
        else:
            general.append(message)
    if not error.problems:
        general.append(translated(error.args[0] if error.args else str(error)))
    return by_field, general


def redirect(path: str) -> RedirectResponse:
    """After a successful POST: see the result with GET (no resubmission on reload)."""
    return RedirectResponse(path, status_code=303)


def page_forbidden(request: Request) -> HTMLResponse:
    return render(
        request,
        "message.html",
        viewer(request),
        status_code=403,
        title=_("Not for your role"),
        message=_("This page is for administrators. Ask one if you need something changed here."),
    )


def page_csrf_refused(request: Request) -> HTMLResponse:
    return render(
        request,
        "message.html",
        viewer(request),
        status_code=403,
        title=_("The form has expired"),
        message=_("Go back, reload the page and send the form again."),
    )


def page_error(request: Request, error: SmslinkError, status: int) -> HTMLResponse:
    return render(
        request,
        "message.html",
        viewer(request),
        status_code=status,
        title=_("That did not work"),
        message=error_message(error),
    )


def page_not_found(request: Request, status: int = 404) -> HTMLResponse:
    return render(
        request,
        "message.html",
        viewer(request),
        status_code=status,
        title=_("Nothing here"),
        message=_("This address leads nowhere. Use the menu to find your way."),
    )
