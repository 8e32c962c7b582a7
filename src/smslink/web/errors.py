"""How the web face answers an error of the tree: one JSON shape for the API, a page for
the browser. The problem's field, message and remedy are data; the API passes them on as
they are, and a page puts each message beside its form field."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from smslink.app import AlreadyExists, InUse, NotFound, RunConflict
from smslink.domain.errors import (
    Busy,
    ConfigurationRefused,
    Halted,
    InvalidInput,
    Problem,
    Remedy,
    SmslinkError,
    StorageFailed,
)
from smslink.web.i18n import error_message, translated


def status_of(error: SmslinkError) -> tuple[int, str]:
    """The HTTP status and the error's kind, by what the caller does about it."""
    if isinstance(error, NotFound):
        return 404, "not_found"
    if isinstance(error, AlreadyExists | InUse | RunConflict):
        return 409, "conflict"
    if isinstance(error, InvalidInput):
        return 422, "invalid_input"
    if isinstance(error, Busy):
        return 409, "busy"
    if isinstance(error, Halted):
        return 409, "halted"
    if isinstance(error, ConfigurationRefused):
        return 500, "configuration"
    if isinstance(error, StorageFailed):
        return 503, "storage"
    return 500, "error"


def remedy_json(remedy: Remedy | None) -> dict[str, Any] | None:
    return None if remedy is None else {"action": str(remedy.action), "args": dict(remedy.args)}


def problem_json(problem: Problem) -> dict[str, Any]:
    return {
        "field": problem.field,
        "message": translated(problem.message),
        "remedy": remedy_json(problem.remedy),
    }


def api_error(
    status: int,
    kind: str,
    message: str,
    problems: list[dict[str, Any]] | None = None,
    remedy: dict[str, Any] | None = None,
) -> JSONResponse:
    """The API's one error shape: `{"error": {kind, message, problems, remedy}}`."""
    return JSONResponse(
        {
            "error": {
                "kind": kind,
                "message": message,
                "problems": problems or [],
                "remedy": remedy,
            }
        },
        status_code=status,
    )


def error_response(request: Request, error: SmslinkError, *, api: bool) -> Response:
    status, kind = status_of(error)
    if api:
        problems = [problem_json(p) for p in getattr(error, "problems", ())]
        return api_error(status, kind, error_message(error), problems, remedy_json(error.remedy))
    from smslink.web.pages.common import page_error

    return page_error(request, error, status)
