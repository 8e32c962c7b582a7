"""The REST API's events: every status change of every delivery, in order, as
Server-Sent Events or as JSON pages.

Each event has an id, the global order in which the changes were stored. A delivery's
events are its changes in order, the last one (with a `status`) its final result, exactly
once. A reader remembers the last id it handled and resumes after it: the SSE stream from
the `Last-Event-ID` header its client sends when it reconnects (or `?after=`), a JSON
reader with `?after=`. Ids are handed out in commit order, so nothing is skipped.

- `Accept: text/event-stream` (what EventSource sends; `curl -N -H 'Accept:
  text/event-stream'`): the stream. Each event is `id: <event id>`, `event: delivery`,
  `data: {...}` (the fields of `EventOut`). The store is polled every `POLL_EVERY_S`; a
  comment line is sent every `HEARTBEAT_EVERY_S` while nothing happens (so proxies keep
  the connection), and the stream ends after `STREAM_LIFETIME_S`: the client reconnects
  (EventSource by itself, after the `retry` it was told) and resumes where it was.
- anything else (`application/json`): one page of up to `limit` events after `after`,
  with `last_event_id` to pass as the next `after`. This is what a plain HTTP client
  asks by default, so a request that forgot its Accept header never hangs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Header, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from smslink.app import Smslink
from smslink.app.events import MAX_PAGE
from smslink.web.api.common import api_router, marketer, smslink
from smslink.web.api.deliveries import EventOut, event_json

router = api_router("events")

#: How often the stream asks the store for new events.
POLL_EVERY_S = 0.5
#: A comment line this often while there is nothing to send.
HEARTBEAT_EVERY_S = 10.0
#: A stream ends after this long, and its client reconnects: a service that is stopping
#: is never held up by a reader, and a reader behind a proxy never times out.
STREAM_LIFETIME_S = 15.0
#: Events read from the store at a time by the stream.
STREAM_BATCH = 500
#: How long the client waits before it reconnects (milliseconds, the stream's `retry`).
RECONNECT_MS = 500

EventId = Annotated[int, Field(ge=0, le=2**63 - 1)]


class EventPageOut(BaseModel):
    events: list[EventOut]
    last_event_id: int = Field(
        description="The last event's id (or `after` when there is none): the next `after`."
    )


@router.get(
    "/events",
    response_model=EventPageOut,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "A page of events (JSON), or their stream when asked for it.",
        }
    },
)
async def events(
    request: Request,
    after: Annotated[int, Query(ge=0, le=2**63 - 1, description="Only events after it.")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="A JSON page's size.")] = 100,
    last_event_id: Annotated[
        int | None,
        Header(
            alias="Last-Event-ID",
            ge=0,
            le=2**63 - 1,
            description="Where a reconnecting stream resumes (wins over `after`).",
        ),
    ] = None,
) -> Response:
    """Every delivery's status changes in order (see the module's documentation): a JSON
    page of events after `after`, or with `Accept: text/event-stream` their stream, resumed
    after `Last-Event-ID` (or `after`)."""
    marketer(request)
    app = smslink(request)
    start = last_event_id if last_event_id is not None else after
    if "text/event-stream" in request.headers.get("accept", ""):
        return StreamingResponse(
            _stream(request, app, start),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
    found = await asyncio.to_thread(app.events.events_after, start, limit)
    page = EventPageOut(
        events=[EventOut.of(e) for e in found], last_event_id=found[-1].id if found else start
    )
    return JSONResponse(page.model_dump(mode="json"))


async def _stream(request: Request, app: Smslink, cursor: int) -> AsyncIterator[str]:
    started = time.monotonic()
    quiet_since = started
    yield f"retry: {RECONNECT_MS}\n\n"
    while True:
        found = await asyncio.to_thread(app.events.events_after, cursor, STREAM_BATCH)
        for event in found:
            yield f"id: {event.id}\nevent: delivery\ndata: {event_json(event)}\n\n"
            cursor = event.id
        now = time.monotonic()
        if now - started > STREAM_LIFETIME_S or await request.is_disconnected():
            return
        if found:
            quiet_since = now
            if len(found) == STREAM_BATCH:
                continue  # more are waiting: no pause
        elif now - quiet_since >= HEARTBEAT_EVERY_S:
            quiet_since = now
            yield ": heartbeat\n\n"
        await asyncio.sleep(POLL_EVERY_S)
