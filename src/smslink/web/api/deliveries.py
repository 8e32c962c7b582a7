"""The REST API for deliveries across runs: one delivery as it is now with its events
(`GET /api/deliveries/{id}`), and a filtered list paged by key (`GET /api/deliveries`).

A delivery's id is `"<run>-<record>"`: the run's id and the record's number in its
audience, from 1 (`"12-1"` is run 12's first record). Its events are those of
`GET /api/events` (see web/api/events.py), in order.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Path, Query, Request
from pydantic import BaseModel, Field

from smslink.app.events import MAX_PAGE, DeliveryNow
from smslink.domain.events import DeliveryEvent
from smslink.web.api.common import (
    DeliveryFieldsOut,
    api_router,
    delivery_fields,
    errors,
    marketer,
    smslink,
)

router = api_router("deliveries")

#: A delivery id in a path: whatever stands there (a malformed one is simply not found).
DeliveryId = Annotated[
    str, Path(max_length=200, description='"<run>-<record>", the record counted from 1.')
]


class EventOut(BaseModel):
    """One status change of one delivery, as `GET /api/events` sends it."""

    event_id: int = Field(description="The global order; resume after it.")
    delivery_id: str = Field(description='"<run>-<record>"')
    touchpoint: str | None
    run: int
    identity: dict[str, str] | None = Field(
        description="The identity fields a journey gave with the record; null for a "
        "campaign's record (its results file carries the audience's row)."
    )
    status: str | None = Field(
        description="The final result (delivered, undelivered, failed, sent, error) on the "
        "delivery's one final event; null before."
    )
    twilio_status: str | None
    error_code: int | None
    errormessage: str | None
    segments: int
    message_sid: str | None
    timestamp: datetime

    @classmethod
    def of(cls, e: DeliveryEvent) -> EventOut:
        return cls(
            event_id=e.id,
            delivery_id=e.delivery_id,
            touchpoint=e.touchpoint,
            run=e.run_id,
            identity=e.identity,
            status=e.status,
            twilio_status=e.twilio_status,
            error_code=e.error_code,
            errormessage=e.error_message,
            segments=e.segments,
            message_sid=e.message_sid,
            timestamp=e.created_at.astimezone(UTC),
        )


def event_json(e: DeliveryEvent) -> str:
    """An event as the stream's `data:` and a webhook's body carry it: compact JSON."""
    return json.dumps(EventOut.of(e).model_dump(mode="json"), separators=(",", ":"))


class DeliveryNowOut(DeliveryFieldsOut):
    id: str = Field(description='"<run>-<record>"')
    run: int
    touchpoint: str
    identity: dict[str, str] | None = Field(
        description="The identity fields a journey gave with the record; null for a "
        "campaign's record."
    )


class DeliveryOut(DeliveryNowOut):
    events: list[EventOut] = Field(description="Its status changes, in order.")


class DeliveryListOut(BaseModel):
    deliveries: list[DeliveryNowOut]
    next_after: str | None = Field(
        description="Pass as `after` for the next page; null when this page is the last."
    )


@router.get("/deliveries/{delivery_id:text}", response_model=DeliveryOut, responses=errors(404))
def get_delivery(request: Request, delivery_id: DeliveryId) -> DeliveryOut:
    """One delivery as it is now, with its events in order."""
    marketer(request)
    found = smslink(request).events.delivery(delivery_id)
    return DeliveryOut(**now_out(found).model_dump(), events=[EventOut.of(e) for e in found.events])


@router.get("/deliveries", response_model=DeliveryListOut)
def list_deliveries(
    request: Request,
    run: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="Only this run's.")] = None,
    status: Annotated[str, Query(max_length=20)] = "",
    after: Annotated[str, Query(max_length=40)] = "",
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> DeliveryListOut:
    """Deliveries of every run (or of `run`) in run and record order, a page at a time:
    `status` one of delivered, sent, undelivered, failed, error, unfinished, problems;
    `after` the last id of the page before (keyset pagination)."""
    marketer(request)
    found = smslink(request).events.deliveries(
        run=run, status=status, after=after or None, limit=limit
    )
    return DeliveryListOut(
        deliveries=[now_out(d) for d in found],
        next_after=found[-1].id if len(found) == limit else None,
    )


def now_out(found: DeliveryNow) -> DeliveryNowOut:
    d = found.delivery
    return DeliveryNowOut(
        id=found.id,
        run=d.run_id,
        touchpoint=found.touchpoint,
        identity=d.identity,
        **delivery_fields(d),
    )
