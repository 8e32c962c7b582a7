"""The journey API: records handed over as customers reach a step, answered once stored.

`POST /api/touchpoints/{name}/messages` takes one record `{"identity": {...}, "fields":
{...}}` or up to 500 in `{"records": [...]}`, and answers 202 only after they are stored:
each record's delivery id (`queued`), or its problem as its results row would say it
(`error`, stored and final: a bad phone, an empty placeholder, an opted-out recipient),
or why it could not be read at all (`rejected`, with the `field`). What happens next comes
back as events (`GET /api/events`, webhooks), each with the record's identity.

A repeat is harmless: with an `Idempotency-Key` header the whole request is answered once
(a repeat gets the first answer, with `Idempotent-Replayed: true`, and the same key with
other records is refused); without one, a record whose identity this touchpoint took
already gets its first answer again, marked `repeated`. Keys and identities are
remembered for 24 hours.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from smslink.app import Intake
from smslink.domain.errors import InvalidInput, Problem, say
from smslink.domain.journeys import MAX_KEY_CHARS, MAX_RECORDS
from smslink.web.api.common import api_router, errors, marketer, smslink
from smslink.web.runner import RunExecutor
from smslink.web.twilio_requests import capped_body

router = api_router("journeys")

#: The largest request body: 500 records of a few dozen short fields fit many times over.
MAX_BODY_BYTES = 4 * 1024 * 1024


class RecordIn(BaseModel):
    """One customer: who they are (sent back on every event) and the values the
    touchpoint's mapping reads (its phone column and one per placeholder)."""

    identity: dict[str, str | int | float | bool | None] = Field(
        examples=[{"CustomerID": "C-1001"}]
    )
    fields: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict, examples=[{"Mobile": "+14155550100", "FirstName": "Ada"}]
    )


_RECORD = RecordIn.model_json_schema()
_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "anyOf": [
                        _RECORD,
                        {
                            "type": "object",
                            "properties": {
                                "records": {
                                    "type": "array",
                                    "items": _RECORD,
                                    "minItems": 1,
                                    "maxItems": MAX_RECORDS,
                                }
                            },
                            "required": ["records"],
                        },
                    ]
                },
                "example": {
                    "identity": {"CustomerID": "C-1001"},
                    "fields": {"Mobile": "+14155550100", "FirstName": "Ada"},
                },
            }
        },
    }
}


class RecordAnswerOut(BaseModel):
    id: str | None = Field(description='The delivery, "<run>-<record>"; null when rejected.')
    status: str = Field(description="queued, error (stored, final, not sent) or rejected")
    error_code: int | None = Field(description="Twilio's code, e.g. 21610 for an opt-out.")
    errormessage: str | None = Field(description="Why it was not queued.")
    field: str | None = Field(description="Where a rejected record is wrong.")
    repeated: bool = Field(description="Taken before (same identity): the first answer.")


class IntakeOut(BaseModel):
    run: int = Field(description="The touchpoint's standing journey run.")
    replayed: bool = Field(description="The Idempotency-Key was seen: the first answer.")
    records: list[RecordAnswerOut]


@router.post(
    "/touchpoints/{name:text}/messages",
    status_code=202,
    response_model=IntakeOut,
    responses=errors(404, 409, 422),
    openapi_extra=_BODY,
    tags=["journeys"],
)
async def accept_messages(
    request: Request,
    name: str,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Makes a retry of this request harmless (any unique text, e.g. a "
            "UUID, at most 255 characters).",
            max_length=MAX_KEY_CHARS,
        ),
    ] = None,
) -> JSONResponse:
    """Send touchpoint `name` to each record as it arrives (see the module docstring)."""
    marketer(request)
    raw = await capped_body(request, MAX_BODY_BYTES)
    if raw is None:
        message = say(
            "the request is larger than %(most)s MB: send fewer records at a time",
            most=MAX_BODY_BYTES // (1024 * 1024),
        )
        raise InvalidInput(problems=[Problem("body", message)])
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidInput(problems=[Problem("body", say("the body is not JSON"))]) from None
    intake: Intake = await run_in_threadpool(
        smslink(request).journeys.accept, name, body, idempotency_key
    )
    executor: RunExecutor = request.app.state.executor
    executor.arrived(intake.run)
    answer = IntakeOut(
        run=intake.run.id,
        replayed=intake.replayed,
        records=[RecordAnswerOut(repeated=a.repeated, **a.to_json()) for a in intake.answers],
    )
    headers = {"Idempotent-Replayed": "true"} if intake.replayed else {}
    return JSONResponse(answer.model_dump(mode="json"), status_code=202, headers=headers)
