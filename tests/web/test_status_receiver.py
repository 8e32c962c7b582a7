"""The status callback receiver as ASGI (web/callbacks.py): when the store cannot take a
callback, Twilio gets a 500 (so it retries), and other paths go on to the app."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from smslink.app.callbacks import CallbackOutcome, StatusCallback
from smslink.web.batching import BatchedCalls
from smslink.web.callbacks import StatusCallbackReceiver


def _store_away(_: Sequence[StatusCallback]) -> list[CallbackOutcome]:
    raise OSError("the database is away")


async def _call(app: Any, path: str, body: bytes) -> list[dict[str, Any]]:
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [
            (b"host", b"sms.example.com"),
            (b"x-twilio-signature", b"c2ln"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(body)).encode()),
        ],
        "scheme": "https",
        "server": ("sms.example.com", 443),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def test_a_callback_the_store_cannot_take_is_answered_500():
    passed_on: list[str] = []

    async def rest_of_the_app(scope: Any, receive: Any, send: Any) -> None:
        passed_on.append(scope["path"])

    async def main() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        receiver = StatusCallbackReceiver(rest_of_the_app, BatchedCalls(_store_away))
        failed = await _call(receiver, "/twilio/status/sim", b"MessageSid=SM1&MessageStatus=sent")
        other = await _call(receiver, "/twilio/inbound/sim", b"Body=STOP")
        return failed, other

    failed, other = asyncio.run(main())
    assert failed[0]["type"] == "http.response.start" and failed[0]["status"] == 500
    assert other == [] and passed_on == ["/twilio/inbound/sim"]
