"""What every API handler needs: the caller (a bearer token, or a page's session with its
CSRF header for anything that changes state), their role, and the application; and what
every API router shares: `api_router()`, whose `ApiRoute` turns FastAPI's own request
validation into the one error shape, the `Error` model that documents that shape, the
`errors()` table of answers, and the types of text and numbers a caller may send."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from pydantic import AfterValidator, BaseModel, Field, SecretStr
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException

from smslink.app import Smslink
from smslink.domain.errors import InvalidInput, Problem
from smslink.domain.models import Delivery, Role, User
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


class ApiRoute(APIRoute):
    """A route whose refusals of the request itself (a body that is not JSON, a missing or
    mistyped field, a query parameter out of range) come back in the one error shape, as
    InvalidInput with a problem per field, like every other refusal of the API."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as error:
                raise InvalidInput(problems=_problems(error)) from None
            except HTTPException as error:
                if error.status_code != 400:
                    raise
                raise InvalidInput(problems=[Problem("body", str(error.detail))]) from None

        return handle


def _problems(error: RequestValidationError) -> list[Problem]:
    problems = []
    for found in error.errors():
        where = [str(part) for part in found.get("loc", ())]
        field = ".".join(where[1:]) if where and where[0] in ("body", "query", "path") else ""
        if where and where[0] == "body" and found.get("type") == "json_invalid":
            field = "body"
        problems.append(Problem(field or "body", str(found.get("msg", "invalid"))))
    return problems or [Problem("body", "the request cannot be read")]


class AnyText(Convertor[str]):
    """A path parameter that is whatever stands there: slashes, line breaks, nothing at all.
    The route is found whatever a caller sends, so a value that cannot be one is refused in
    the one error shape (by the parameter's own checks, or as not found), never by the
    router's bare 404."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


#: `{name:text}` in a route's path (Starlette's convertors are registered by name).
register_url_convertor("text", AnyText())


class RemedyOut(BaseModel):
    action: str = Field(description="What the caller can do, e.g. resume_run.")
    args: dict[str, Any] = Field(description="What to do it to, e.g. {'run_id': 12}.")


class ProblemOut(BaseModel):
    field: str = Field(description="The request's field the problem concerns.")
    message: str
    remedy: RemedyOut | None


class ErrorBody(BaseModel):
    kind: str = Field(
        description="not_signed_in, forbidden, csrf, not_found, conflict, invalid_input, "
        "busy, halted, configuration, storage or error."
    )
    message: str
    problems: list[ProblemOut]
    remedy: RemedyOut | None


class Error(BaseModel):
    """The API's one error shape."""

    error: ErrorBody


_WHY = {
    401: "Not signed in: send `Authorization: Bearer <token>`.",
    403: "Your role may not do this (or a session's request lacks its X-CSRF-Token).",
    404: "There is no such thing.",
    409: "It conflicts with what is there (the name is taken, it is in use, the run is "
    "being sent or is not in a state for this).",
    413: "The file is larger than the service takes.",
    422: "The request cannot be used: `problems` names each field.",
    503: "The database failed.",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The documented error answers `codes`, each in the one error shape."""
    return {code: {"model": Error, "description": _WHY[code]} for code in codes}


#: Documents the bearer token in /openapi.json (a page's session works as well).
bearer = HTTPBearer(
    auto_error=False,
    description="An API token (smslink_...), created on the My API tokens page or with "
    "POST /api/tokens.",
)


def _plain(text: str) -> str:
    """Text that can be stored: no lone surrogates (JSON can carry them) and no NUL."""
    try:
        text.encode()
    except UnicodeEncodeError:
        raise ValueError("contains characters that are not text") from None
    if "\x00" in text:
        raise ValueError("contains a NUL character")
    return text


#: Text from the caller: storable (see `_plain`).
Text = Annotated[str, AfterValidator(_plain)]
Secret = Annotated[SecretStr, AfterValidator(lambda s: SecretStr(_plain(s.get_secret_value())))]
#: Whole numbers as the database holds them.
Count = Annotated[int, Field(ge=0, le=2**31 - 1)]
Number = Annotated[float, Field(ge=0, allow_inf_nan=False)]
#: An id in a path, as the database holds it.
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
#: A page number in a query (1 is the first).
PageNumber = Annotated[int, Query(ge=1, le=2**31 - 1)]


def api_router(tag: str) -> APIRouter:
    """An API router for `tag`, with the one error shape and the bearer token documented."""
    return APIRouter(
        prefix="/api",
        tags=[tag],
        route_class=ApiRoute,
        responses=errors(401, 403, 422),
        dependencies=[Security(bearer)],
    )


class DeliveryFieldsOut(BaseModel):
    """What every API answer says of a delivery (`delivery_fields` fills it)."""

    record: int = Field(description="The record's number in the audience, from 1.")
    to: str | None = Field(description="The phone number in E.164, when it validated.")
    status: str = Field(description="delivered, sent, undelivered, failed, error or unfinished")
    stage: str = Field(description="pending, posting, tracking or done")
    twilio_status: str | None
    error_code: int | None
    error_message: str | None
    segments: int
    message_sid: str | None
    updated_at: datetime | None


def delivery_fields(d: Delivery) -> dict[str, Any]:
    """What every API answer says of a delivery, as its models name the fields."""
    return {
        "record": d.seq + 1,
        "to": d.to,
        "status": str(d.status) if d.status is not None else "unfinished",
        "stage": str(d.stage),
        "twilio_status": d.twilio_status,
        "error_code": d.error_code,
        "error_message": d.error_message,
        "segments": d.segments,
        "message_sid": d.message_sid,
        "updated_at": d.updated_at.astimezone(UTC) if d.updated_at else None,
    }
