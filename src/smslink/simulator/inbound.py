"""Incoming messages: the simulator POSTing a recipient's reply to a number's webhook.

When someone texts a Twilio number, Twilio POSTs the message, form-encoded and signed with
`X-Twilio-Signature` (the account's auth token over the URL and the sorted parameters), to
the number's "A message comes in" webhook. A test plays the recipient with `POST /_inbound`
(no auth, a test hook like /_stats), a JSON object:

    {"url": "http://127.0.0.1:8000/twilio/inbound/prod",  # the webhook (required)
     "from": "+12125550101", "to": "+15005550006", "body": "STOP",
     "messaging_service_sid": "MG...",   # optional: the number belongs to this service
     "account_sid": "AC...",             # optional: whose number it is (default below)
     "auth_token": "...",                # optional: sign with this instead (a forger)
     "deliver_to": "http://127.0.0.1:8000/twilio/inbound/prod"}
                                         # optional: POST here instead, still signing `url`
                                         # (what a proxy between Twilio and the webhook does)

The simulator POSTs Twilio's inbound parameters (MessageSid SM..., AccountSid, From, To,
Body, NumMedia 0, NumSegments, SmsStatus received, ApiVersion, the empty geographic
fields, MessagingServiceSid when given) to `url` at once, and answers with what the
webhook answered and what was sent, so a test can also replay or alter it:

    {"status": 200, "content_type": "text/xml", "response": "<Response/>",
     "params": {...}, "signature": "..."}

or status 0 with "error" when the webhook could not be reached. The message is not kept
among the account's messages: a listing of sent messages stays what the sender sent.
The signature is computed with callbacks.sign, the simulator's own (never smslink's).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from smslink.simulator._segments import count_segments
from smslink.simulator.callbacks import CALLBACK_TIMEOUT_S, SIGNATURE_HEADER, USER_AGENT, sign
from smslink.simulator.resources import API_VERSION

#: Whose number it is when the test names no account.
DEFAULT_ACCOUNT_SID = "AC" + "0" * 32


def inbound_params(
    *,
    account_sid: str,
    from_: str,
    to: str,
    body: str,
    messaging_service_sid: str | None = None,
    message_sid: str | None = None,
) -> dict[str, str]:
    """The form Twilio POSTs to a webhook for an incoming SMS."""
    sid = message_sid or "SM" + secrets.token_hex(16)
    params = {
        "ToCountry": "",
        "ToState": "",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ToCity": "",
        "FromZip": "",
        "SmsSid": sid,
        "FromState": "",
        "SmsStatus": "received",
        "FromCity": "",
        "Body": body,
        "FromCountry": "",
        "To": to,
        "ToZip": "",
        "NumSegments": str(count_segments(body) if body else 1),
        "MessageSid": sid,
        "AccountSid": account_sid,
        "From": from_,
        "ApiVersion": API_VERSION,
    }
    if messaging_service_sid:
        params["MessagingServiceSid"] = messaging_service_sid
    return params


def inbound_handler(auth_token: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The POST /_inbound handler of a simulator whose account has `auth_token`."""

    async def handler(request: web.Request) -> web.Response:
        return await post_inbound(request, auth_token)

    return handler


async def post_inbound(request: web.Request, auth_token: str) -> web.Response:
    """POST /_inbound: deliver one incoming message to a webhook, signed like Twilio's."""
    try:
        asked = await request.json()
    except ValueError:
        return _bad("send a JSON object: url, from, to, body")
    if not isinstance(asked, dict):
        return _bad("send a JSON object: url, from, to, body")
    texts = {key: asked.get(key) for key in ("url", "from", "to", "body")}
    if not all(isinstance(value, str) for value in texts.values()) or not texts["url"]:
        return _bad("url, from, to and body are required strings")
    optional = {
        key: asked.get(key)
        for key in ("messaging_service_sid", "account_sid", "auth_token", "deliver_to")
    }
    if not all(value is None or isinstance(value, str) for value in optional.values()):
        return _bad("messaging_service_sid, account_sid, auth_token and deliver_to are strings")
    url = str(texts["url"])
    params = inbound_params(
        account_sid=optional["account_sid"] or DEFAULT_ACCOUNT_SID,
        from_=str(texts["from"]),
        to=str(texts["to"]),
        body=str(texts["body"]),
        messaging_service_sid=optional["messaging_service_sid"],
    )
    signature = sign(optional["auth_token"] or auth_token, url, params)
    answer: dict[str, Any] = {"params": params, "signature": signature}
    try:
        async with (
            aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=CALLBACK_TIMEOUT_S),
                headers={"User-Agent": USER_AGENT},
            ) as session,
            session.post(
                optional["deliver_to"] or url, data=params, headers={SIGNATURE_HEADER: signature}
            ) as response,
        ):
            text = await response.text(errors="replace")
            answer |= {
                "status": response.status,
                "content_type": response.content_type,
                "response": text,
            }
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        answer |= {"status": 0, "error": f"{type(error).__name__}: {error}"}
    return web.json_response(answer)


def _bad(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)
