"""The REST API for connections (administrators only): list, add, show, replace, remove,
and the Test button.

The auth token is write-only: it goes in with POST (and PUT, when it changes) and never
comes out; an answer says only whether one is set (`secret_set`).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from smslink.app.connections import ConnectionChanges, ConnectionTest, ConnectionView
from smslink.domain.models import (
    DEFAULT_BASE_URL,
    DEFAULT_CONCURRENCY,
    DEFAULT_POLL_ATTEMPTS,
    DEFAULT_POLL_INTERVAL_MS,
    DEFAULT_REGION,
    DEFAULT_REQUEST_TIMEOUT_S,
    Connection,
    User,
)
from smslink.web.api.common import (
    Count,
    Number,
    Secret,
    Text,
    administrator,
    api_router,
    errors,
    smslink,
)

# -- connections ----------------------------------------------------------------------

router = api_router("connections")


class LastTestOut(BaseModel):
    at: datetime
    ok: bool
    message: str = Field(description="What answered, e.g. `20003: Authenticate`.")


class ConnectionOut(BaseModel):
    """A connection as the API shows it: every setting, never the token."""

    name: str
    account_sid: str
    api_key_sid: str | None
    secret_set: bool = Field(description="Whether an auth token (or API key secret) is set.")
    from_number: str | None
    messaging_service_sid: str | None
    sender: str = Field(description="What messages come from: the service or the number.")
    base_url: str
    poll_interval_ms: int
    poll_attempts: int
    concurrency: int
    region: str
    max_segments_per_second: float | None = Field(description="null: no cap.")
    request_timeout_s: float
    last_test: LastTestOut | None = Field(description="How the last Test ended, if any.")
    callback_base_url: str | None = Field(
        None, description="Where Twilio posts status callbacks; null: polling only."
    )
    status_callback_url: str | None = Field(
        None, description="The StatusCallback each message gives Twilio, when callbacks are on."
    )

    @classmethod
    def of(cls, view: ConnectionView) -> ConnectionOut:
        test = view.last_test
        return cls(
            name=view.name,
            account_sid=view.account_sid,
            api_key_sid=view.api_key_sid,
            secret_set=view.secret_set,
            from_number=view.from_number,
            messaging_service_sid=view.messaging_service_sid,
            sender=view.sender,
            base_url=view.base_url,
            poll_interval_ms=view.poll_interval_ms,
            poll_attempts=view.poll_attempts,
            concurrency=view.concurrency,
            region=view.region,
            max_segments_per_second=view.max_segments_per_second,
            request_timeout_s=view.request_timeout_s,
            callback_base_url=view.callback_base_url,
            status_callback_url=view.status_callback_url,
            last_test=None
            if test is None
            else LastTestOut(at=test.at, ok=test.ok, message=test.message),
        )


class ConnectionSettings(BaseModel):
    """Every setting but the name; omitted ones take their defaults."""

    model_config = ConfigDict(extra="forbid")

    account_sid: Text = Field(max_length=64, description="AC followed by 32 hex digits.")
    api_key_sid: Text | None = Field(
        None, max_length=64, description="SK...: authenticate with an API key instead."
    )
    from_number: Text | None = Field(
        None, max_length=32, description="E.164 number, short code or alphanumeric sender ID."
    )
    messaging_service_sid: Text | None = Field(
        None, max_length=64, description="MG...: send through a Messaging Service instead."
    )
    base_url: Text = Field(
        DEFAULT_BASE_URL, max_length=2000, description="https, or http for this machine only."
    )
    poll_interval_ms: Count = DEFAULT_POLL_INTERVAL_MS
    poll_attempts: Count = DEFAULT_POLL_ATTEMPTS
    concurrency: Count = DEFAULT_CONCURRENCY
    region: Text = Field(DEFAULT_REGION, max_length=8, description="ISO country, e.g. US.")
    max_segments_per_second: Number | None = Field(None, description="null or 0: no cap.")
    request_timeout_s: Number = DEFAULT_REQUEST_TIMEOUT_S
    callback_base_url: Text | None = Field(
        None,
        max_length=2000,
        description="This service's public https address: Twilio posts status callbacks to "
        "<it>/twilio/status/<name>, and polling becomes the fallback. null or empty: polling "
        "only. Not with an API key.",
    )


class ConnectionIn(ConnectionSettings):
    """A new connection."""

    name: Text = Field(min_length=1, max_length=200)
    auth_token: Secret = Field(
        min_length=1, max_length=1000, description="Write-only: stored encrypted, never shown."
    )


class ConnectionReplace(ConnectionSettings):
    """Every setting of a connection at once (PUT): an omitted setting takes its default
    and an omitted optional one is cleared; the token stays unless a new one is given."""

    auth_token: Secret | None = Field(
        None, min_length=1, max_length=1000, description="Write-only; omit to keep the token."
    )


class TestOutcome(StrEnum):
    OK = "ok"
    INACTIVE = "inactive"
    REFUSED = "refused"
    NOT_TWILIO = "not_twilio"
    UNREACHABLE = "unreachable"


class ConnectionTestOut(BaseModel):
    """What the Test button found: a read-only query of the account (nothing is sent)."""

    ok: bool
    outcome: TestOutcome
    base_url: str
    message: str = Field(description="Twilio's message, or what went wrong on the way.")
    code: int | None = Field(description="Twilio's error code (or the HTTP status).")
    more_info: str | None
    account_sid: str | None
    friendly_name: str | None
    account_status: str | None

    @classmethod
    def of(cls, test: ConnectionTest) -> ConnectionTestOut:
        return cls(
            ok=test.ok,
            outcome=TestOutcome(test.outcome.value),
            base_url=test.base_url,
            message=test.message,
            code=test.code,
            more_info=test.more_info,
            account_sid=test.account_sid,
            friendly_name=test.friendly_name,
            account_status=test.account_status,
        )


#: A connection's name in a path; `:text` so that a name with a slash is reachable too.
Name = Annotated[str, Path(min_length=1, max_length=200, description="The connection's name.")]
Admin = Annotated[User, Depends(administrator)]


@router.get("/connections", summary="List the connections")
def list_connections(request: Request, _: Admin) -> list[ConnectionOut]:
    return [ConnectionOut.of(view) for view in smslink(request).connections.list()]


@router.post(
    "/connections",
    status_code=201,
    summary="Add a connection",
    responses=errors(409),
)
def add_connection(request: Request, _: Admin, body: ConnectionIn) -> ConnectionOut:
    connection = Connection(
        name=body.name,
        account_sid=body.account_sid.strip(),
        auth_token=body.auth_token.get_secret_value().strip(),
        from_number=_optional(body.from_number),
        messaging_service_sid=_optional(body.messaging_service_sid),
        api_key_sid=_optional(body.api_key_sid),
        base_url=body.base_url.strip() or DEFAULT_BASE_URL,
        poll_interval_ms=body.poll_interval_ms,
        poll_attempts=body.poll_attempts,
        concurrency=body.concurrency,
        region=body.region.strip() or DEFAULT_REGION,
        max_segments_per_second=body.max_segments_per_second,
        request_timeout_s=body.request_timeout_s,
        callback_base_url=_optional(body.callback_base_url),
    )
    return ConnectionOut.of(smslink(request).connections.add(connection))


@router.post(
    "/connections/{name:text}/test",
    summary="Test a connection",
    description="Asks Twilio for the account with the connection's settings (GET "
    "Accounts/{Sid}): proves that the server answers and the credentials work. The outcome "
    "is kept as the connection's last test.",
    responses=errors(404),
)
async def test_connection(request: Request, name: Name, _: Admin) -> ConnectionTestOut:
    return ConnectionTestOut.of(await smslink(request).connections.test_async(name))


@router.get("/connections/{name:text}", summary="Show a connection", responses=errors(404))
def show_connection(request: Request, name: Name, _: Admin) -> ConnectionOut:
    return ConnectionOut.of(smslink(request).connections.show(name))


@router.put(
    "/connections/{name:text}",
    summary="Replace a connection's settings",
    description="Every setting at once: omitted settings take their defaults, omitted "
    "optional ones are cleared. The token is kept unless a new one is given.",
    responses=errors(404),
)
def replace_connection(
    request: Request, name: Name, _: Admin, body: ConnectionReplace
) -> ConnectionOut:
    token = body.auth_token.get_secret_value() if body.auth_token is not None else None
    changes = ConnectionChanges(
        account_sid=body.account_sid.strip(),
        auth_token=token,
        from_number=(body.from_number or "").strip(),
        messaging_service_sid=(body.messaging_service_sid or "").strip(),
        api_key_sid=(body.api_key_sid or "").strip(),
        base_url=body.base_url.strip() or DEFAULT_BASE_URL,
        poll_interval_ms=body.poll_interval_ms,
        poll_attempts=body.poll_attempts,
        concurrency=body.concurrency,
        region=body.region.strip() or DEFAULT_REGION,
        max_segments_per_second=body.max_segments_per_second or 0.0,  # 0: no cap
        request_timeout_s=body.request_timeout_s,
        callback_base_url=(body.callback_base_url or "").strip(),
    )
    return ConnectionOut.of(smslink(request).connections.update(name, changes))


@router.delete(
    "/connections/{name:text}",
    status_code=204,
    response_class=Response,
    summary="Remove a connection",
    description="Refused (409) while touchpoints use it; runs that used it keep their results.",
    responses=errors(404, 409),
)
def remove_connection(request: Request, name: Name, _: Admin) -> Response:
    smslink(request).connections.remove(name)
    return Response(status_code=204)


def _optional(value: str | None) -> str | None:
    return (value or "").strip() or None
