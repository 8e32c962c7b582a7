"""Every request smslink's Twilio client sends validates against the official spec.

The client is what users' money stands on: a request Twilio would read differently (a `+`
decoded as a space, an undeclared or misspelt parameter, a body field of the wrong type)
fails in production only. So each of the client's calls is sent over real loopback HTTP to a
recording simulator, and the request as written on the wire is judged by openapi-core
against the spec's operation: path parameters, query, form body and Basic auth.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

import pytest

from smslink.twilio import TwilioClient
from tests.conformance.recording import (
    ACCOUNT_SID,
    API_ROOT,
    FAST,
    FROM,
    SERVICE_SID,
    TOKEN,
    Exchange,
    RecordingSimulator,
)
from tests.conformance.twilio_spec import TwilioSpec

TO = "+14155550123"
LIST = f"{API_ROOT}/Accounts/{ACCOUNT_SID}/Messages.json"
ACCOUNT = f"{API_ROOT}/Accounts/{ACCOUNT_SID}.json"


def _client(sim: RecordingSimulator) -> TwilioClient:
    return TwilioClient(
        base_url=sim.base_url, account_sid=ACCOUNT_SID, username=ACCOUNT_SID, password=TOKEN
    )


def test_every_call_of_smslinks_client_sends_a_request_the_spec_accepts(
    twilio_spec: TwilioSpec, recording_sim: RecordingSimulator
) -> None:
    sim = recording_sim

    async def scenario() -> list[list[str]]:
        async with _client(sim) as client:
            first = await client.create_message(to=TO, body="Hi + €uro & co", from_number=FROM)
            await client.create_message(to=TO, body="😀", messaging_service_sid=SERVICE_SID)
            await client.create_message(
                to=TO, body="tracked", from_number=FROM, status_callback=sim.callback_url
            )
            for n in range(2):
                await client.create_message(to=TO, body=f"more {n}", from_number=FROM)
            await asyncio.sleep(0.2)  # all sent: DateSent> has something to match
            await client.fetch_message(first.sid)
            pages = [
                [m.sid for m in page]
                async for page in client.list_messages(
                    to=TO,
                    from_number=FROM,
                    date_sent_after=datetime.now(UTC) - timedelta(days=1),
                    page_size=2,
                )
            ]
            await client.fetch_account()
            return pages

    pages = asyncio.run(scenario())
    # Five from FROM: the Messaging Service picked it as sender for its one too.
    assert [len(page) for page in pages] == [2, 2, 1]
    exchanges = sim.api_exchanges()
    calls = [(ex.method, ex.path.replace(ACCOUNT_SID, "{AC}")) for ex in exchanges]
    assert calls.count(("POST", "/2010-04-01/Accounts/{AC}/Messages.json")) == 5
    assert calls.count(("GET", "/2010-04-01/Accounts/{AC}/Messages.json")) == 3
    assert ("GET", "/2010-04-01/Accounts/{AC}.json") in calls
    followed = [ex for ex in exchanges if ex.method == "GET" and "PageToken" in ex.raw_path]
    assert len(followed) == 2  # the middle and last pages came from next_page_uri
    posted = {name for ex in exchanges if ex.method == "POST" for name, _ in _form(ex)}
    assert posted == {"To", "Body", "From", "MessagingServiceSid", "StatusCallback"}
    problems = [p for ex in exchanges for p in twilio_spec.exchange_problems(ex, requests=True)]
    account = next(ex for ex in exchanges if ex.path == ACCOUNT)
    withheld = f"{account}: $: 'auth_token' is a required property"  # see test_conf_responses
    assert [p for p in problems if p != withheld] == []


def _form(exchange: Exchange) -> list[tuple[str, str]]:
    return parse_qsl(exchange.body.decode(), keep_blank_values=True)


def test_query_values_reach_the_server_exactly(recording_sim: RecordingSimulator) -> None:
    """A `+` must travel as %2B: decoded as a space it would filter on another number."""

    async def scenario() -> None:
        async with _client(recording_sim) as client:
            async for _ in client.list_messages(to=TO, from_number=FROM, page_size=5):
                pass

    asyncio.run(scenario())
    [listing] = recording_sim.api_exchanges()
    assert dict(listing.query) == {"To": TO, "From": FROM, "PageSize": "5"}


# -- the request referee is not vacuous ----------------------------------------------------


FORM = b"To=%2B14155550123&Body=hi"


@pytest.mark.parametrize(
    ("method", "raw_path", "headers", "body", "expected"),
    [
        ("GET", f"{LIST}?PageSize=1001", "auth", b"", "1001 is greater than the maximum of 1000"),
        ("GET", f"{LIST}?PageSize=0", "auth", b"", "0 is less than the minimum of 1"),
        ("GET", f"{LIST}?Pagesize=5", "auth", b"", "'Pagesize' is not declared"),
        ("GET", f"{LIST}?To=+14155550123", "auth", b"", "' 14155550123' is not a 'phone-number'"),
        ("GET", f"{LIST}?DateSent%3E=yesterday", "auth", b"", "is not a 'date-time'"),
        ("GET", LIST.replace(".json", "/XX1.json"), "auth", b"", "'XX1' does not match"),
        ("GET", LIST, "none", b"", "Security"),
        ("POST", LIST, "form", b"Body=hi&From=%2B15005550006", "'To' is a required property"),
        ("POST", LIST, "form", FORM + b"&Bogus=1", "form field 'Bogus' is not declared"),
        ("POST", LIST, "form", FORM + b"&ValidityPeriod=soon", "cast value to integer"),
    ],
)
def test_a_request_that_breaks_the_spec_is_caught(
    twilio_spec: TwilioSpec, method: str, raw_path: str, headers: str, body: bytes, expected: str
) -> None:
    sent = {"Authorization": "Basic " + "QUM6dG9rZW4="} if headers != "none" else {}
    if headers == "form":
        sent["Content-Type"] = "application/x-www-form-urlencoded"
    exchange = Exchange(method, raw_path, sent, body, 200, "application/json", b"{}")
    problems = twilio_spec.request_problems(exchange)
    assert any(expected in problem for problem in problems), problems


def test_the_sdks_own_requests_pass_the_same_checks(
    twilio_spec: TwilioSpec, start_recording: Callable[..., RecordingSimulator]
) -> None:
    """Calibration: the requests of Twilio's own SDK meet what smslink's are held to."""
    sim = start_recording(FAST)
    sdk = sim.sdk()
    msg = sdk.messages.create(to=TO, from_=FROM, body="Hi +", status_callback=sim.callback_url)
    sdk.messages.create(to=TO, messaging_service_sid=SERVICE_SID, body="x")
    time.sleep(0.15)
    sdk.messages(msg.sid).fetch()
    assert len(sdk.messages.list(to=TO, from_=FROM, page_size=1)) == 2
    sdk.api.accounts(ACCOUNT_SID).fetch()
    problems = [p for ex in sim.api_exchanges() for p in twilio_spec.request_problems(ex)]
    assert problems == []
