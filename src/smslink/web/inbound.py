"""Twilio's incoming-message webhook: `POST /twilio/inbound/{connection}`.

Point a Twilio number's (or Messaging Service's) "A message comes in" webhook here, naming
the smslink connection that sends from it. A recipient's STOP (or another of Twilio's
opt-out keywords) is recorded as their opt-out from that sender at once; START, YES or
UNSTOP removes it (`smslink.app.optouts.OptOuts.receive`, `smslink.domain.keywords`).

Twilio calls this, not a person: no session, no CSRF token, nothing in the OpenAPI
document. What proves the caller is Twilio is the `X-Twilio-Signature` header, checked with
the named connection's auth token over the URL Twilio requested and every form parameter.
A request without it, with a wrong one, for a connection that does not exist or that holds
an API key instead of the account's auth token, is answered 403 and changes nothing; the
reason goes to the service's log only.

Twilio signs the URL it requested. When the connection has a callback base URL (where
Twilio reaches this service, also used for status callbacks), the URL checked is that base
with this path: right behind any proxy. Else it is the request's URL as the service sees
it: the scheme from `X-Forwarded-Proto` when the proxy is one uvicorn trusts (loopback by
default; `FORWARDED_ALLOW_IPS` widens it) and the host from the `Host` header, which the
proxy must pass on as the client sent it. `X-Forwarded-Host` is never trusted: anyone could
set it, and choose the URL the signature is checked against.

Every answer that is not a refusal is an empty TwiML `<Response/>`, so Twilio sends no
reply of ours (its own STOP/START confirmation is Twilio's business).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from smslink.app.optouts import INBOUND_PATH, InboundAction, InboundRefused
from smslink.web.pages.common import smslink
from smslink.web.twilio_requests import capped_body, requested_url

log = logging.getLogger("smslink.web.inbound")

router = APIRouter(include_in_schema=False)

SIGNATURE_HEADER = "X-Twilio-Signature"
#: Twilio's inbound form is a few kilobytes (a 1,600-character body, ten media URLs, the
#: sender's location); anything much larger is not Twilio.
MAX_BODY_BYTES = 64 * 1024
#: Twilio sends some 20 parameters (more with media); a flood of names is not Twilio either.
MAX_FIELDS = 200
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

_LOGGED = {
    InboundAction.OPTED_OUT: "opt-out recorded",
    InboundAction.ALREADY_OPTED_OUT: "opt-out already recorded",
    InboundAction.OPTED_IN: "opt-out removed",
    InboundAction.NOT_OPTED_OUT: "no opt-out to remove",
    InboundAction.NOTHING: "nothing to do",
}


@router.post(INBOUND_PATH + "{connection}")
async def inbound(request: Request, connection: str) -> Response:
    raw = await capped_body(request, MAX_BODY_BYTES)
    if raw is None:
        log.warning("inbound message for %r refused: over %s bytes", connection, MAX_BODY_BYTES)
        return _refused(413)
    try:
        pairs = parse_qsl(
            raw.decode("utf-8", errors="replace"),
            keep_blank_values=True,
            max_num_fields=MAX_FIELDS,
        )
    except ValueError:
        log.warning("inbound message for %r refused: more than %s fields", connection, MAX_FIELDS)
        return _refused(403)
    params: dict[str, list[str]] = defaultdict(list)
    for name, value in pairs:
        params[name].append(value)
    app = smslink(request)
    try:
        outcome = await run_in_threadpool(
            app.optouts.receive,
            connection,
            requested_url(request),
            dict(params),
            request.headers.get(SIGNATURE_HEADER),
        )
    except InboundRefused as refused:
        log.warning("inbound message for %r refused: %s", connection, refused)
        return _refused(403)
    log.info(
        "inbound message for %r: %s%s",
        connection,
        _LOGGED[outcome.action],
        f" ({outcome.keyword} from {outcome.phone} to {outcome.sender})" if outcome.keyword else "",
    )
    return Response(EMPTY_TWIML, media_type="text/xml")


def _refused(status: int) -> Response:
    """A refusal that says no more than that (the reason is in the log)."""
    return Response("refused\n", status_code=status, media_type="text/plain")
