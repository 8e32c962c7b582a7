"""The receiver of Twilio's status callbacks: `POST /twilio/status/{connection}`.

Twilio calls it, not a person: no session, no CSRF token, no page. Who may call it is
decided by `X-Twilio-Signature` alone (in `app/callbacks.py`): 403 when it is missing or
does not sign the request, with nothing changed. Everything else is answered 200 with an
empty body as soon as the store has it, whatever it changed (a duplicate, a late status,
a message smslink does not know), so Twilio never retries what cannot get better. Bodies
are capped before they are read: a status callback is a few hundred bytes.

Not part of the REST API under /api (nor its OpenAPI document): Twilio's form, not JSON.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from smslink.app.callbacks import StatusCallback
from smslink.web.api import common as _convertors  # noqa: F401  (registers `{...:text}`)
from smslink.web.pages.common import smslink
from smslink.web.twilio_requests import capped_body, requested_url

router = APIRouter(include_in_schema=False)

#: Largest body read: Twilio's status callbacks are well under 2 KiB.
MAX_BODY_BYTES = 16 * 1024
#: Most form fields taken from one body (Twilio sends about a dozen).
MAX_FIELDS = 100


@router.post("/twilio/status/{connection:text}")
async def status_callback(request: Request, connection: str) -> Response:
    body = await capped_body(request, MAX_BODY_BYTES)
    if body is None:
        return Response(status_code=413)
    signature = request.headers.get("X-Twilio-Signature")
    if not signature:
        return Response(status_code=403)
    try:
        form = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        return Response(status_code=400)
    callback = StatusCallback(
        connection=connection,
        form=form,
        signature=signature,
        idempotency_token=request.headers.get("I-Twilio-Idempotency-Token"),
        request_url=requested_url(request),
    )
    # The store may wait for a run's writer (SQLite's one write lock): not on the loop.
    outcome = await run_in_threadpool(smslink(request).callbacks.receive, callback)
    return Response(status_code=200 if outcome.accepted else 403)
