"""Server-rendered pages: Jinja2 with the i18n extension, autoescaping, and what every
page needs (the user, the language, the CSRF token, the navigation).

Autoescaping is on for every template, so a value from outside (a name, a message, an
audience value, Twilio's words) is shown, never run; nothing is marked safe that came from
outside. The i18n extension takes its gettext from the request's language (`i18n.use`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from smslink.domain.models import User
from smslink.web import i18n
from smslink.web.session import csrf_token

TEMPLATES = Path(__file__).parent / "templates"


class _CurrentTranslations:
    """gettext callables for Jinja that look up the request's language at call time."""

    def ugettext(self, message: str) -> str:
        return i18n.translations(i18n.current()).ugettext(message)

    def ungettext(self, singular: str, plural: str, n: int) -> str:
        return i18n.translations(i18n.current()).ungettext(singular, plural, n)

    gettext = ugettext
    ngettext = ungettext


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(_CurrentTranslations(), newstyle=True)  # type: ignore[attr-defined]
    env.filters["number"] = i18n.number
    env.filters["utc"] = i18n.utc
    return env


ENVIRONMENT = _environment()


def render(
    request: Request,
    template: str,
    user: User | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """The page `template` for `user`, in the request's language."""
    zone = user.time_zone if user else None
    html = ENVIRONMENT.get_template(template).render(
        request=request,
        user=user,
        lang=i18n.current(),
        languages=i18n.LANGUAGES,
        csrf=csrf_token(request),
        moment=lambda value: i18n.moment(value, zone),
        path=request.url.path,
        **context,
    )
    return HTMLResponse(html, status_code=status_code)
