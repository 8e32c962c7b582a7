"""The REST API for webhook subscriptions (administrators only): add, list, show, remove,
and enable again.

A subscription's signing secret is answered once, by the POST that creates it, and never
again (it is stored encrypted). Deliveries are signed per Standard Webhooks: see the
README's "Webhooks" and `smslink.domain.webhooks`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from smslink.domain.models import User
from smslink.domain.webhooks import WebhookSubscription
from smslink.web.api.common import Id, Text, administrator, api_router, errors, smslink

router = api_router("webhooks")

Admin = Annotated[User, Depends(administrator)]


class WebhookIn(BaseModel):
    """A new subscription."""

    model_config = ConfigDict(extra="forbid")

    url: Text = Field(
        max_length=2000,
        description="Where events are posted: https, or http to this machine only.",
    )
    touchpoint: Text | None = Field(
        None, max_length=200, description="Only this touchpoint's events; null: every one."
    )


class WebhookOut(BaseModel):
    """A subscription and how its deliveries go; never its secret."""

    id: int
    url: str
    touchpoint: str | None = Field(description="null: every touchpoint's events.")
    enabled: bool
    created_at: datetime
    created_by: str | None
    last_event_id: int = Field(description="Every event up to this one was delivered.")
    attempts: int = Field(description="Failed deliveries in a row.")
    next_attempt_at: datetime | None = Field(description="When a failing one is tried again.")
    failing_since: datetime | None
    disabled_at: datetime | None
    disabled_reason: str | None = Field(description="Why it was disabled.")
    last_error: str | None = Field(description="What the last failed delivery met.")

    @classmethod
    def of(cls, w: WebhookSubscription) -> WebhookOut:
        return cls(
            id=w.id,
            url=w.url,
            touchpoint=w.touchpoint,
            enabled=w.enabled,
            created_at=w.created_at.astimezone(UTC),
            created_by=w.created_by,
            last_event_id=w.last_event_id,
            attempts=w.attempts,
            next_attempt_at=_utc(w.next_attempt_at),
            failing_since=_utc(w.failing_since),
            disabled_at=_utc(w.disabled_at),
            disabled_reason=w.disabled_reason,
            last_error=w.last_error,
        )


class WebhookCreatedOut(WebhookOut):
    secret: str = Field(
        description="The signing secret (whsec_...): shown this once, keep it to verify "
        "the webhook-signature of each delivery."
    )


@router.get("/webhooks", summary="List the webhook subscriptions")
def list_webhooks(request: Request, _: Admin) -> list[WebhookOut]:
    return [WebhookOut.of(w) for w in smslink(request).webhooks.list()]


@router.post(
    "/webhooks",
    status_code=201,
    summary="Add a webhook subscription",
    description="Every delivery event from now on (of one touchpoint, or all) is posted to "
    "the URL, signed per Standard Webhooks. The answer holds the signing secret, once.",
)
def add_webhook(request: Request, user: Admin, body: WebhookIn) -> WebhookCreatedOut:
    added, secret = smslink(request).webhooks.add(body.url, body.touchpoint, user.name)
    return WebhookCreatedOut(**WebhookOut.of(added).model_dump(), secret=secret)


@router.get("/webhooks/{webhook_id}", summary="Show a webhook subscription", responses=errors(404))
def show_webhook(request: Request, webhook_id: Id, _: Admin) -> WebhookOut:
    return WebhookOut.of(smslink(request).webhooks.get(webhook_id))


@router.delete(
    "/webhooks/{webhook_id}",
    status_code=204,
    response_class=Response,
    summary="Remove a webhook subscription",
    responses=errors(404),
)
def remove_webhook(request: Request, webhook_id: Id, _: Admin) -> Response:
    smslink(request).webhooks.remove(webhook_id)
    return Response(status_code=204)


@router.post(
    "/webhooks/{webhook_id}/enable",
    summary="Enable a webhook subscription again",
    description="A disabled (or waiting) subscription is tried again at once, from where it "
    "stopped, with its failure count reset.",
    responses=errors(404),
)
def enable_webhook(request: Request, webhook_id: Id, _: Admin) -> WebhookOut:
    return WebhookOut.of(smslink(request).webhooks.enable(webhook_id))


def _utc(at: datetime | None) -> datetime | None:
    return None if at is None else at.astimezone(UTC)
