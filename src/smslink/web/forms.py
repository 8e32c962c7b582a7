"""Posted forms: their fields once the CSRF token is checked, and text fields as typed.
The pages and the upload of an audience (pages and API) read forms this way."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from smslink.web.session import check_csrf


async def form(request: Request) -> dict[str, Any]:
    """The posted form's fields (files included), once its CSRF token is checked."""
    data = await request.form()
    check_csrf(request, _text(data.get("csrf")) or request.headers.get("x-csrf-token"))
    return {key: value for key, value in data.items() if key != "csrf"}


def text(fields: dict[str, Any], name: str) -> str:
    """A text field as typed (a missing field is empty)."""
    return _text(fields.get(name))


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
