"""The receiver of Twilio's status callbacks: `POST /twilio/status/{connection}`.

Twilio calls it, not a person: no session, no CSRF token, no page. Who may call it is
decided by `X-Twilio-Signature` alone (in `app/callbacks.py`): 403 when it is missing or
does not sign the request, with nothing changed. Everything else is answered 200 with an
empty body as soon as the store has it, whatever it changed (a duplicate, a late status,
a message smslink does not know), so Twilio never retries what cannot get better. Bodies
are capped before they are read: a status callback is a few hundred bytes.

Not part of the REST API under /api (nor its OpenAPI document): Twilio's form, not JSON.
And not a route of the FastAPI app: Twilio posts three callbacks a message, most of what
the service is asked, and the receiver answers them as plain ASGI middleware, in front of
the session, the language and FastAPI's routing and dependency solving, none of which a
callback uses. That halved its CPU per callback (bench/RESULTS.md section 16). Only the
security headers and Starlette's error handling wrap it, as every answer.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from smslink.app import Smslink
from smslink.app.callbacks import CallbackOutcome, StatusCallback
from smslink.waiting import wait_until
from smslink.web.batching import BatchedCalls
from smslink.web.twilio_requests import capped_body, requested_url

log = logging.getLogger("smslink.web.callbacks")

#: Where Twilio posts; the rest of the path is the connection's name.
PREFIX = "/twilio/status/"
#: How often the callbacks kept for another try are looked at.
RETRY_TICK_S = 0.1
#: How long the retries pause after the store failed.
RETRY_AFTER_FAILURE_S = 5.0
#: Largest body read: Twilio's status callbacks are well under 2 KiB.
MAX_BODY_BYTES = 16 * 1024
#: Most form fields taken from one body (Twilio sends about a dozen).
MAX_FIELDS = 100

Batches = BatchedCalls[StatusCallback, CallbackOutcome]


class StatusCallbackReceiver:
    """Answers every request under PREFIX (POST only: 405 to any other method) and hands
    the rest of the service's requests on to `app`."""

    def __init__(self, app: ASGIApp, batches: Batches) -> None:
        self.app = app
        self._batches = batches

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        if request.method != "POST":
            answer = Response(status_code=405, headers={"Allow": "POST"})
        else:
            answer = await self._answer(request, scope["path"][len(PREFIX) :])
        await answer(scope, receive, send)

    async def _answer(self, request: Request, connection: str) -> Response:
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
        # Applied in a worker thread (the store may wait for SQLite's one write lock), with
        # the other callbacks that arrived meanwhile, in one transaction.
        try:
            outcome = await self._batches.submit(callback)
        except Exception:  # the store failed: Twilio retries (its #rc= override) on a 500
            log.exception("a status callback could not be applied")
            return Response(status_code=500)
        return Response(status_code=200 if outcome.accepted else 403)


def callback_batches(smslink: Smslink) -> Batches:
    """What the receiver hands its callbacks to (one per service)."""
    return BatchedCalls(smslink.callbacks.receive_many)


async def retry_early_callbacks(smslink: Smslink, stop: asyncio.Event) -> None:
    """Until `stop` is set: the callbacks that came before their sid was stored are tried
    again as they fall due (`Callbacks.retry_early`), looked at every RETRY_TICK_S while
    any wait, and after a store failure once it had time to pass. Never cancelled: a try
    under way (a worker thread in a transaction) ends before the service closes the
    store."""
    while not await wait_until(stop, RETRY_TICK_S):
        if not smslink.callbacks.early_waiting:
            continue
        try:
            await run_in_threadpool(smslink.callbacks.retry_early)
        except Exception:
            log.exception("early status callbacks could not be applied; trying again")
            await wait_until(stop, RETRY_AFTER_FAILURE_S)
